"""Password reset by email, delivered over a real SMTP connection."""

import re

import pytest

pytestmark = pytest.mark.django_db


def test_password_reset_mail_arrives_over_smtp_and_its_link_sets_a_new_password(client, smtp_server, driver):
    response = client.post("/accounts/password_reset/", {"email": driver.email})
    assert response.status_code == 302
    assert len(smtp_server) == 1
    mail = smtp_server[0]
    assert mail["To"] == driver.email
    body = mail.get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", body).group(1)

    form = client.get(link, follow=True)
    assert form.status_code == 200
    set_url = form.redirect_chain[-1][0] if form.redirect_chain else link
    done = client.post(
        set_url, {"new_password1": "a-new-Long-passw0rd", "new_password2": "a-new-Long-passw0rd"}
    )
    assert done.status_code == 302
    client.logout()
    assert client.login(email=driver.email, password="a-new-Long-passw0rd")


def test_unknown_address_gets_the_same_answer_and_no_mail(client, smtp_server):
    response = client.post("/accounts/password_reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert smtp_server == []
