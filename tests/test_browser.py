"""One path through the portal in a real browser against the real ASGI server."""

import pytest

from tests.factories import PASSWORD, ChargePointFactory, ConnectorFactory, IdTokenFactory, SiteFactory

pytestmark = [pytest.mark.browser, pytest.mark.live]


def _login(page, base_url, email):
    page.goto(f"{base_url}/")
    page.wait_for_url("**/accounts/login/**")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")


def test_operator_logs_in_and_sees_dashboard_with_network(
    asgi_server, browser_page, csp_violations, operator_admin, other_operator
):
    site = SiteFactory(operator=operator_admin.operator, name="Amsterdam Centraal")
    cp = ChargePointFactory(site=site, identity="VW-AMS-01")
    ConnectorFactory(charge_point=cp, connector_id=1, status="Available")
    ConnectorFactory(charge_point=cp, connector_id=2, status="Faulted", error_code="GroundFailure")
    foreign = ChargePointFactory(
        site=SiteFactory(operator=other_operator, name="Groningen"), identity="NG-01"
    )
    ConnectorFactory(charge_point=foreign, connector_id=1)

    page = browser_page
    _login(page, asgi_server, operator_admin.email)
    page.wait_for_url("**/dashboard/**")
    body = page.inner_text("body")
    assert "Amsterdam Centraal" in body
    assert "VW-AMS-01" in body
    assert "NG-01" not in body and "Groningen" not in body
    # Static files are served by the app itself.
    css = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert css
    page.click("text=VW-AMS-01")
    page.wait_for_url("**/charge-points/VW-AMS-01/**")
    assert "GroundFailure" in page.inner_text("body")
    # The live dashboard and the charge point's page (socket, charts) keep to the
    # Content-Security-Policy: no inline script or style, nothing from elsewhere.
    page.wait_for_load_state("networkidle")
    assert csp_violations == []


def test_driver_logs_in_and_sees_account_page(asgi_server, browser_page, csp_violations, driver):
    IdTokenFactory(driver=driver, token="04AABBCCDD", label="Blue card")
    page = browser_page
    _login(page, asgi_server, driver.email)
    page.wait_for_url("**/account/**")
    body = page.inner_text("body")
    assert "Blue card" in body
    assert driver.email in body
    assert csp_violations == []
    assert page.goto(f"{asgi_server}/dashboard/").status == 403
