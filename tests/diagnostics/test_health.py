"""Live health of charge points and connectors, and its API."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from diagnostics import health
from diagnostics.models import Incident
from sessions.models import Transaction, TransactionStatus
from stations.models import ChargePoint, Direction, OcppMessage, StatusChange
from stations.selectors import charge_points_for
from tests.factories import ChargePointFactory, ConnectorFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _boot(cp, at):
    OcppMessage.objects.create(
        charge_point=cp,
        direction=Direction.IN,
        message_type=2,
        action="BootNotification",
        raw='[2,"1","BootNotification",{}]',
        created_at=at,
    )


def _session(cp, number, power_w):
    return Transaction.objects.create(
        charge_point=cp,
        connector=cp.connectors.get(connector_id=number),
        connector_number=number,
        id_tag="TAG1",
        started_at=NOW - dt.timedelta(minutes=30),
        meter_start=0,
        status=TransactionStatus.ACTIVE,
        last_power_w=power_w,
    )


def test_connectivity_ok_late_offline(site):
    cp = ChargePointFactory.build(site=site, heartbeat_interval=60, is_connected=True)
    cp.last_seen_at = NOW - dt.timedelta(seconds=30)
    assert health.connectivity(cp, NOW) == (health.OK, 30)
    cp.last_seen_at = NOW - dt.timedelta(seconds=100)  # past 1.5 intervals
    assert health.connectivity(cp, NOW)[0] == health.LATE
    cp.last_seen_at = NOW - dt.timedelta(seconds=200)  # past the sweep's 2.5 intervals
    assert health.connectivity(cp, NOW)[0] == health.OFFLINE
    cp.is_connected, cp.last_seen_at = False, NOW
    assert health.connectivity(cp, NOW)[0] == health.OFFLINE


def test_health_rows_carry_power_reboots_incidents_in_fixed_queries(
    operator_admin, site, operator, django_assert_num_queries
):
    cps = []
    for i in range(4):
        cp = ChargePointFactory(site=site, identity=f"VW-H{i}", last_seen_at=NOW, firmware_version=f"1.{i}")
        ConnectorFactory(charge_point=cp, connector_id=1, status="Charging", max_power_kw=Decimal("22"))
        ConnectorFactory(charge_point=cp, connector_id=2, status="Faulted", error_code="GroundFailure")
        cps.append(cp)
    _session(cps[0], 1, Decimal("20000"))
    _session(cps[1], 1, Decimal("5000"))  # 5 of 22 kW: under half
    for minutes in (10, 200, 2000):  # the last is older than 24 h
        _boot(cps[2], NOW - dt.timedelta(minutes=minutes))
    Incident.objects.create(
        operator=operator,
        charge_point=cps[3],
        kind="offline",
        key="k1",
        title="t",
        opened_at=NOW,
        last_seen_at=NOW,
    )
    with django_assert_num_queries(5):  # charge points, connectors, sessions, boots, incidents
        rows = {
            r.charge_point.identity: r
            for r in health.charge_point_health(charge_points_for(operator_admin), now=NOW)
        }
    a, b, c, d = (rows[f"VW-H{i}"] for i in range(4))
    assert a.connectors[0].power_kw == Decimal("20.00") and a.connectors[0].power_share == Decimal("0.91")
    assert not a.connectors[0].under_delivering
    assert b.connectors[0].under_delivering and b.needs_attention
    assert c.reboots_24h == 2
    assert d.open_incidents == 1
    assert a.connectors[1].error_code == "GroundFailure"
    assert a.faulted and a.charging and a.state == "faulted"
    assert a.charge_point.firmware_version == "1.0"


def test_last_boot_counts_when_the_log_has_none(operator_admin, site):
    ChargePointFactory(site=site, identity="VW-B", last_boot_at=NOW - dt.timedelta(hours=2))
    (row,) = health.charge_point_health(charge_points_for(operator_admin), now=NOW)
    assert row.reboots_24h == 1


def test_summary_counts_units(site, operator_admin):
    ok = ChargePointFactory(site=site, identity="VW-OK")
    ConnectorFactory(charge_point=ok, connector_id=1, status="Charging")
    gone = ChargePointFactory(site=site, identity="VW-GONE", is_connected=False)
    ConnectorFactory(charge_point=gone, connector_id=1, status="Faulted")  # offline wins
    silent = ChargePointFactory(
        site=site, identity="VW-SILENT", heartbeat_interval=60, last_seen_at=NOW - dt.timedelta(minutes=10)
    )
    ConnectorFactory(charge_point=silent, connector_id=1)
    bad = ChargePointFactory(site=site, identity="VW-BAD")
    ConnectorFactory(charge_point=bad, connector_id=1, status="Faulted")
    ConnectorFactory(charge_point=bad, connector_id=2, status="Faulted")
    s = health.summary(ChargePoint.objects.all(), now=NOW)
    assert s == {"units": 4, "online": 2, "offline": 2, "faulted": 1, "charging": 1, "down": 3}


def test_health_api_is_scoped_and_paginated(api_as, technician, site, other_charge_point):
    for i in range(3):
        cp = ChargePointFactory(site=site, identity=f"VW-A{i}")
        ConnectorFactory(charge_point=cp, connector_id=1)
    response = api_as(technician).get("/api/v1/diagnostics/health/", {"page_size": 2})
    assert response.status_code == 200
    data = response.json()
    assert data["summary"]["units"] == 3
    assert data["count"] == 3 and data["next"]
    assert [r["identity"] for r in data["results"]] == ["VW-A0", "VW-A1"]
    assert data["results"][0]["connectivity"] == "ok"
    assert data["results"][0]["connectors"][0]["connector_id"] == 1
    assert "NG-0001" not in str(data)


def test_health_api_needs_operator_staff(api_as, driver, api_client):
    assert api_client.get("/api/v1/diagnostics/health/").status_code in (401, 403)
    assert api_as(driver).get("/api/v1/diagnostics/health/").status_code == 403


def test_uptime_api(api_as, technician, charge_point, other_charge_point):
    day = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    for cp in (charge_point, other_charge_point):
        StatusChange.objects.create(
            charge_point=cp,
            connector=cp.connectors.get(connector_id=1),
            connector_number=1,
            status="Faulted",
            timestamp=day - dt.timedelta(days=1),
        )
    StatusChange.objects.create(
        charge_point=charge_point,
        connector=charge_point.connectors.get(connector_id=1),
        connector_number=1,
        status="Available",
        timestamp=day + dt.timedelta(hours=12),
    )
    response = api_as(technician).get(
        "/api/v1/diagnostics/uptime/",
        {"from": "2026-11-02", "to": "2026-11-03", "site": charge_point.site_id},
    )
    assert response.status_code == 200, response.content
    data = response.json()
    (site,) = data["sites"]
    (cp,) = site["charge_points"]
    assert cp["identity"] == "VW-0001"
    c1, c2 = cp["connectors"]
    # 48 h, 12 h faulted: 75 %; connector 2 never reported.
    assert (c1["uptime_percent"], c1["meets_target"], c1["outage_hours"]) == ("75.00", False, "12.00")
    assert c2["uptime_percent"] is None
    assert data["network"]["uptime_percent"] == "75.00"


def test_uptime_api_rejects_bad_dates_and_foreign_sites(api_as, technician, other_charge_point):
    client = api_as(technician)
    assert (
        client.get("/api/v1/diagnostics/uptime/", {"from": "2026-11-05", "to": "2026-11-01"}).status_code
        == 400
    )
    response = client.get("/api/v1/diagnostics/uptime/", {"site": other_charge_point.site_id})
    assert response.status_code == 400 and "site" in response.json()


def test_schema_documents_health_and_uptime(api_client):
    schema = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    health_op = schema["paths"]["/api/v1/diagnostics/health/"]["get"]
    uptime_op = schema["paths"]["/api/v1/diagnostics/uptime/"]["get"]
    assert {"site", "page", "page_size"} <= {p["name"] for p in health_op["parameters"]}
    assert {"from", "to", "site"} <= {p["name"] for p in uptime_op["parameters"]}
