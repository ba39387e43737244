"""Signing in and out, the password reset flow, and where each role lands."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from tests.factories import PASSWORD, OperatorAdminFactory

NEW_PASSWORD = "violet-lantern-orbit-42"


# --- Home: each role to its page --------------------------------------------------------------


def test_home_redirects_anonymous_to_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("login")


@pytest.mark.parametrize("staff", ["operator_admin", "technician"])
def test_home_redirects_operator_staff_to_dashboard(request, login, staff):
    response = login(request.getfixturevalue(staff)).get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("stations:dashboard")


def test_home_redirects_superuser_to_dashboard(login, db):
    superuser = OperatorAdminFactory(operator=None, is_superuser=True, is_staff=True)
    assert login(superuser).get("/")["Location"] == reverse("stations:dashboard")


def test_home_redirects_driver_to_account(login, driver):
    assert login(driver).get("/")["Location"] == reverse("account:account")


# --- Navigation by role -----------------------------------------------------------------------


def test_operator_staff_navigation_has_dashboard_and_logout(login, technician):
    html = login(technician).get(reverse("stations:dashboard")).content.decode()
    assert f'href="{reverse("stations:dashboard")}"' in html
    assert "My account" not in html
    assert ">Admin<" not in html
    assert 'href="/api/v1/docs/"' in html
    assert "tech@voltway.example" in html
    assert f'action="{reverse("logout")}"' in html
    assert "csrfmiddlewaretoken" in html


def test_driver_navigation_has_my_account_and_no_dashboard(login, driver):
    html = login(driver).get(reverse("account:account")).content.decode()
    assert "My account" in html
    assert f'href="{reverse("stations:dashboard")}"' not in html


def test_staff_user_navigation_has_admin_link(login, operator):
    admin = OperatorAdminFactory(operator=operator, is_staff=True)
    html = login(admin).get(reverse("stations:dashboard")).content.decode()
    assert f'href="{reverse("admin:index")}"' in html


def test_pages_use_local_stylesheet_and_favicon(client, db):
    html = client.get(reverse("login")).content.decode()
    assert 'href="/static/css/chargedesk.css"' in html
    assert 'href="/static/img/favicon.svg"' in html
    assert "//cdn" not in html and "https://" not in html


# --- Log in and out ----------------------------------------------------------------------------


def test_login_page_asks_for_email_and_password(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Email address" in html
    assert 'name="password"' in html
    assert reverse("password_reset") in html


def test_login_with_wrong_password_shows_an_error(client, operator_admin):
    response = client.post(reverse("login"), {"username": operator_admin.email, "password": "wrong-password"})
    assert response.status_code == 200
    assert "Please enter a correct email address and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_with_empty_fields_shows_errors_next_to_the_fields(client, db):
    response = client.post(reverse("login"), {"username": "", "password": ""})
    html = response.content.decode()
    assert html.count('class="field-error"') == 2
    assert "This field is required." in html


def test_login_lands_operator_on_dashboard(client, operator_admin):
    response = client.post(
        reverse("login"), {"username": operator_admin.email, "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("stations:dashboard")
    assert response.status_code == 200


def test_login_honours_next(client, driver):
    response = client.post(
        reverse("login"), {"username": driver.email, "password": PASSWORD, "next": reverse("account:account")}
    )
    assert response["Location"] == reverse("account:account")


def test_logout_via_post_logs_out_and_returns_to_login(login, driver):
    client = login(driver)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert client.get(reverse("account:account")).status_code == 302


def test_logout_via_get_is_refused(login, driver):
    client = login(driver)
    assert client.get(reverse("logout")).status_code == 405
    assert client.get(reverse("account:account")).status_code == 200


# --- Password reset -------------------------------------------------------------------------


def test_password_reset_sends_a_link_that_sets_a_new_password(client, driver):
    response = client.post(reverse("password_reset"), {"email": driver.email}, follow=True)
    assert "Check your email" in response.content.decode()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [driver.email]
    assert message.subject == "Reset your ChargeDesk password"
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", message.body).group(1)

    form_page = client.get(link, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    set_password_url = form_page.redirect_chain[-1][0]
    done = client.post(
        set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True
    )
    assert "Your password has been set" in done.content.decode()

    client.logout()
    assert not client.login(email=driver.email, password=PASSWORD)
    assert client.login(email=driver.email, password=NEW_PASSWORD)


def test_password_reset_link_works_only_once(client, driver):
    client.post(reverse("password_reset"), {"email": driver.email})
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    set_password_url = client.get(link, follow=True).redirect_chain[-1][0]
    client.post(set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    client.logout()
    html = client.get(link, follow=True).content.decode()
    assert "This link no longer works" in html


def test_password_reset_mismatch_shows_error_next_to_field(client, driver):
    client.post(reverse("password_reset"), {"email": driver.email})
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    set_password_url = client.get(link, follow=True).redirect_chain[-1][0]
    response = client.post(
        set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": "something-else-77"}
    )
    html = response.content.decode()
    assert 'class="field-error"' in html
    assert "password fields didn\u2019t match" in html


def test_password_reset_for_unknown_email_sends_nothing_and_reveals_nothing(client, db):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"}, follow=True)
    assert "Check your email" in response.content.decode()
    assert mail.outbox == []


def test_forbidden_page_is_the_portals_own(client, driver):
    client.login(email=driver.email, password=PASSWORD)
    response = client.get("/dashboard/")
    assert response.status_code == 403
    assert b"Not allowed" in response.content
    assert b"My account" in response.content


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"Page not found" in response.content


def test_password_change_flow(client, driver):
    client.login(email=driver.email, password=PASSWORD)
    assert b"Change password" in client.get("/accounts/password_change/").content
    bad = client.post(
        "/accounts/password_change/",
        {
            "old_password": "wrong",
            "new_password1": "Another-long-pass1",
            "new_password2": "Another-long-pass1",
        },
    )
    assert bad.status_code == 200
    assert b"field-error" in bad.content
    ok = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "Another-long-pass1",
            "new_password2": "Another-long-pass1",
        },
    )
    assert ok.status_code == 302
    client.logout()
    assert client.login(email=driver.email, password="Another-long-pass1")
