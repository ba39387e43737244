"""The uptime report and the charge point's health panel draw their charts in a real browser."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from sessions.models import MeterSample
from stations.models import StatusChange
from tests.factories import PASSWORD, ChargePointFactory, ConnectorFactory, SiteFactory

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_uptime_and_charge_point_charts_render(asgi_server, browser_page, operator_admin):
    now = timezone.now()
    site = SiteFactory(operator=operator_admin.operator, name="Amsterdam Centraal")
    cp = ChargePointFactory(site=site, identity="VW-CHART-1")
    for number in (1, 2):
        connector = ConnectorFactory(charge_point=cp, connector_id=number)
        StatusChange.objects.create(
            charge_point=cp,
            connector=connector,
            connector_number=number,
            status="Available",
            timestamp=now - dt.timedelta(days=2),
        )
    StatusChange.objects.create(
        charge_point=cp,
        connector=cp.connectors.get(connector_id=2),
        connector_number=2,
        status="Faulted",
        timestamp=now - dt.timedelta(hours=5),
    )
    for minutes in range(0, 180, 10):
        MeterSample.objects.create(
            charge_point=cp,
            connector_number=1,
            timestamp=now - dt.timedelta(minutes=minutes + 1),
            measurand="Power.Active.Import",
            unit="W",
            value_raw="11000",
            value=Decimal(11000),
            power_w=Decimal(11000 + minutes),
        )

    page = browser_page
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{asgi_server}/accounts/login/")
    page.fill("input[name=username]", operator_admin.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url("**/dashboard/**")

    page.click("nav.main-nav >> text=Diagnostics")
    page.wait_for_url("**/diagnostics/")
    assert "Units" in page.inner_text("main")

    page.goto(f"{asgi_server}/diagnostics/uptime/")
    page.wait_for_selector("canvas[data-chart-ready]")
    assert page.evaluate(
        "window.Chart !== undefined && Chart.getChart(document.querySelector('canvas')) != null"
    )
    assert "VW-CHART-1" in page.inner_text("main")

    page.goto(f"{asgi_server}/charge-points/VW-CHART-1/")
    page.wait_for_function("() => document.querySelectorAll('#health canvas[data-chart-ready]').length === 2")
    size = page.evaluate(
        "(() => { const c = document.querySelector('#health canvas'); return [c.width, c.height]; })()"
    )
    assert size[0] > 100 and size[1] > 50

    # Phone width: the panel still draws, within the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{asgi_server}/diagnostics/uptime/")
    page.wait_for_selector("canvas[data-chart-ready]")
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    assert problems == []
