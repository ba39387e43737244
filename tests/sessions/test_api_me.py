"""Drivers through the API: their token, their profile, their ID tokens and nobody else's."""

import pytest
from rest_framework.test import APIClient

from tests.factories import PASSWORD, IdTokenFactory

pytestmark = pytest.mark.django_db


def test_app_gets_token_with_email_and_password_and_uses_it(driver):
    client = APIClient()
    response = client.post("/api/v1/auth/token/", {"email": driver.email, "password": PASSWORD})
    assert response.status_code == 200
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/me/").json()["email"] == driver.email
    assert client.delete("/api/v1/auth/token/").status_code == 204
    assert client.get("/api/v1/me/").status_code == 401


def test_wrong_password_gets_clear_400(driver):
    response = APIClient().post("/api/v1/auth/token/", {"email": driver.email, "password": "nope"})
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Wrong email or password."]}


def test_token_request_with_missing_fields_names_them():
    response = APIClient().post("/api/v1/auth/token/", {"email": "not-an-email"})
    assert response.status_code == 400
    assert set(response.json()) == {"email", "password"}


def test_me_update_cannot_change_role_or_email(api_as, driver):
    client = api_as(driver)
    response = client.patch(
        "/api/v1/me/", {"first_name": "Alice", "role": "operator_admin", "email": "x@y.z"}
    )
    assert response.status_code == 200
    driver.refresh_from_db()
    assert (driver.first_name, driver.role, driver.email) == ("Alice", "driver", "alice@example.com")


def test_driver_sees_only_own_id_tokens(api_as, driver, other_driver):
    mine = IdTokenFactory(driver=driver, token="AAAA0001")
    theirs = IdTokenFactory(driver=other_driver, token="BBBB0001")
    client = api_as(driver)
    assert [t["token"] for t in client.get("/api/v1/me/id-tokens/").json()["results"]] == ["AAAA0001"]
    assert client.get(f"/api/v1/me/id-tokens/{mine.pk}/").status_code == 200
    assert client.get(f"/api/v1/me/id-tokens/{theirs.pk}/").status_code == 404
    assert client.patch(f"/api/v1/me/id-tokens/{theirs.pk}/", {"label": "stolen"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.label == "My card"


def test_driver_renames_token_but_cannot_change_its_status(api_as, driver):
    token = IdTokenFactory(driver=driver)
    response = api_as(driver).patch(
        f"/api/v1/me/id-tokens/{token.pk}/", {"label": "Blue", "status": "Blocked"}
    )
    assert response.status_code == 200
    token.refresh_from_db()
    assert (token.label, token.status) == ("Blue", "Accepted")


def test_operator_staff_have_no_driver_token_list(api_as, operator_admin):
    assert api_as(operator_admin).get("/api/v1/me/id-tokens/").status_code == 403
