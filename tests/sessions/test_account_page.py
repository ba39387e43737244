"""The driver's account page: only their own data, and not for operator staff."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from sessions.models import IdTokenStatus, IdTokenType
from tests.factories import IdTokenFactory

ACCOUNT = "/account/"


def test_account_url_is_named_account():
    assert reverse("account:account") == ACCOUNT


def test_anonymous_is_redirected_to_login(client, db):
    response = client.get(ACCOUNT)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("staff", ["operator_admin", "technician"])
def test_operator_staff_get_403_on_account_page(request, login, staff):
    assert login(request.getfixturevalue(staff)).get(ACCOUNT).status_code == 403


def test_driver_sees_their_name_and_email(login, driver):
    html = login(driver).get(ACCOUNT).content.decode()
    assert driver.get_full_name() in html
    assert "alice@example.com" in html


def test_driver_sees_only_their_own_tokens(login, driver, other_driver):
    IdTokenFactory(driver=driver, token="04AAAA0001", label="Blue card")
    IdTokenFactory(driver=driver, token="APP-ALICE", label="Phone", type=IdTokenType.APP)
    IdTokenFactory(driver=other_driver, token="04BBBB0002", label="Bob's card")
    IdTokenFactory(driver=None, token="04FLEET0003", label="Fleet spare")

    response = login(driver).get(ACCOUNT)
    assert response.status_code == 200
    assert [t.token for t in response.context["id_tokens"]] == ["04AAAA0001", "APP-ALICE"]
    html = response.content.decode()
    assert "Blue card" in html and "App token" in html and "RFID card" in html
    assert "04BBBB0002" not in html and "Bob&#x27;s card" not in html
    assert "04FLEET0003" not in html
    assert "bob@example.com" not in html


def test_token_status_is_the_effective_one_with_expiry(login, driver):
    IdTokenFactory(driver=driver, token="04OLD", expires_at=timezone.now() - dt.timedelta(days=1))
    IdTokenFactory(driver=driver, token="04BLOCKED", status=IdTokenStatus.BLOCKED)
    IdTokenFactory(driver=driver, token="04GOOD", expires_at=timezone.now() + dt.timedelta(days=400))
    html = login(driver).get(ACCOUNT).content.decode()
    assert 'class="badge badge-expired">Expired' in html
    assert 'class="badge badge-blocked">Blocked' in html
    assert 'class="badge badge-accepted">Accepted' in html
    assert (timezone.now() + dt.timedelta(days=400)).strftime("%Y-%m-%d") in html


def test_driver_without_tokens_is_told_so(login, driver):
    assert "You have no ID tokens yet" in login(driver).get(ACCOUNT).content.decode()


def test_account_page_says_there_are_no_charging_sessions_yet(login, driver):
    html = login(driver).get(ACCOUNT).content.decode()
    assert "Charging sessions" in html
    assert "No charging sessions yet" in html
