"""Content-Security-Policy and Permissions-Policy on the HTML pages (config/security_headers.py).

The browser tests check that the pages keep to the policy (tests/test_browser.py and the card
page's test collect every violation the browser reports)."""

import pytest
from django.test import Client

from tests.factories import ChargePointFactory, ConnectorFactory, SiteFactory


def policy(response) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in response["Content-Security-Policy"].split("; ")}


STRICT = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "frame-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


@pytest.mark.parametrize(
    ("who", "url"),
    [
        (None, "/accounts/login/"),
        ("operator_admin", "/dashboard/"),
        ("operator_admin", "/charge-points/VW-0001/"),
        ("operator_admin", "/diagnostics/"),
        ("operator_admin", "/billing/reports/"),
        ("driver", "/account/"),
        ("driver", "/alerts/settings/"),
        ("superuser", "/admin/"),
    ],
)
def test_html_pages_carry_the_strict_policy_and_the_permissions_policy(
    request, client, login, charge_point, who, url
):
    if who == "superuser":
        from tests.factories import UserFactory

        login(UserFactory(email="root@example.com", is_staff=True, is_superuser=True))
    elif who:
        login(request.getfixturevalue(who))
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert policy(response) == {**policy(response), **STRICT}
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    permissions = response["Permissions-Policy"]
    for off in ("camera=()", "microphone=()", "usb=()", "display-capture=()"):
        assert off in permissions
    assert "geolocation=(self)" in permissions  # the driver's "stations near me"


def test_no_template_has_inline_script_style_or_event_handler():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates"
    found = []
    for path in root.rglob("*.html"):
        if "email" in path.parts:  # mail clients, not browsers, read these
            continue
        text = path.read_text()
        for pattern in (
            r"<script(?![^>]*\ssrc=)[^>]*>",
            r"<style",
            r"\sstyle\s*=\s*[\"']",
            r"\son[a-z]+\s*=\s*[\"']",
        ):
            found += [f"{path.relative_to(root)}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert found == []


def test_the_card_pages_add_stripe_and_nothing_else(client, login, driver, settings):
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_x"
    settings.STRIPE_JS_URL = "https://js.stripe.com/v3/"
    login(driver)
    csp = policy(client.get("/billing/"))
    assert csp["script-src"] == ["'self'", "https://js.stripe.com", "https://*.js.stripe.com"]
    assert csp["frame-src"] == [
        "https://js.stripe.com",
        "https://*.js.stripe.com",
        "https://hooks.stripe.com",
    ]
    assert csp["connect-src"] == ["'self'", "https://api.stripe.com"]
    assert csp["style-src"] == ["'self'"]
    # Elsewhere Stripe is not allowed.
    assert policy(client.get("/account/"))["script-src"] == ["'self'"]


def test_the_guest_checkout_follows_the_stripe_js_setting(db, settings):
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_x"
    settings.STRIPE_JS_URL = "http://127.0.0.1:8420/js.stripe.com/v3/"
    settings.STRIPE_API_BASE = "http://127.0.0.1:8420"
    cp = ChargePointFactory(site=SiteFactory(), identity="PUB-1", registration_status="Accepted")
    ConnectorFactory(charge_point=cp, connector_id=1)
    response = Client().get("/billing/pay/PUB-1/1/")
    assert response.status_code == 200
    csp = policy(response)
    assert csp["script-src"] == ["'self'", "http://127.0.0.1:8420"]
    assert csp["connect-src"] == ["'self'", "http://127.0.0.1:8420"]


def test_the_api_docs_allow_inline_styles_but_no_inline_script(client, login, driver):
    login(driver)
    for url in ("/api/v1/docs/", "/api/v1/redoc/"):
        response = client.get(url)
        assert response.status_code == 200, url
        csp = policy(response)
        assert csp["script-src"] == ["'self'"]
        assert "'unsafe-inline'" in csp["style-src"]
    # Swagger UI's init script comes from a URL of its own, not inline.
    html = client.get("/api/v1/docs/").content.decode()
    assert "<script>" not in html and "?script=" in html
