"""The health panel of the charge point page: power over time and the status timeline."""

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from diagnostics.templatetags.diagnostics_health import power_series
from sessions.models import MeterSample, Transaction, TransactionStatus
from stations.models import StatusChange

pytestmark = pytest.mark.django_db


def _sample(cp, number, at, watts, measurand="Power.Active.Import", phase="", tx=None):
    return MeterSample.objects.create(
        charge_point=cp,
        connector_number=number,
        transaction=tx,
        timestamp=at,
        measurand=measurand,
        phase=phase,
        unit="W",
        value_raw=str(watts),
        value=Decimal(watts),
        power_w=Decimal(watts),
    )


def _json(html, element_id):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert match, f"no {element_id} block"
    return json.loads(match.group(1))


def test_power_is_averaged_per_bucket_in_the_database(charge_point):
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(hours=24)  # 144 buckets of 600 s
    _sample(charge_point, 1, start + dt.timedelta(seconds=10), 10000)
    _sample(charge_point, 1, start + dt.timedelta(seconds=300), 20000)
    _sample(charge_point, 1, start + dt.timedelta(seconds=700), 7000)
    _sample(charge_point, 1, start + dt.timedelta(seconds=20), 99999, phase="L1")  # a phase: not the total
    _sample(charge_point, 1, start + dt.timedelta(seconds=30), 99999, measurand="Power.Offered")
    _sample(charge_point, 2, start + dt.timedelta(seconds=30), 3000)
    _sample(charge_point, 1, end + dt.timedelta(seconds=1), 1)  # outside
    data = power_series(MeterSample.objects.filter(charge_point=charge_point), start=start, end=end)
    assert data["bucket_seconds"] == 600
    one, two = data["connectors"]
    assert one["number"] == 1
    base = int(start.timestamp())
    assert one["points"] == [
        {"x": (base + 300) * 1000, "y": 15.0, "peak": 20.0},
        {"x": (base + 900) * 1000, "y": 7.0, "peak": 7.0},
    ]
    assert two["points"] == [{"x": (base + 300) * 1000, "y": 3.0, "peak": 3.0}]


def test_panel_shows_power_and_timeline(login, technician, charge_point):
    now = timezone.now()
    _sample(charge_point, 1, now - dt.timedelta(hours=1), 11000)
    StatusChange.objects.create(
        charge_point=charge_point,
        connector=charge_point.connectors.get(connector_id=1),
        connector_number=1,
        status="Charging",
        timestamp=now - dt.timedelta(days=3),
    )
    StatusChange.objects.create(
        charge_point=charge_point,
        connector=charge_point.connectors.get(connector_id=1),
        connector_number=1,
        status="Faulted",
        timestamp=now - dt.timedelta(hours=6),
    )
    html = login(technician).get(charge_point.get_absolute_url()).content.decode()
    power = _json(html, "power-chart-data")
    assert power["kind"] == "power" and power["connectors"][0]["points"][0]["y"] == 11.0
    timeline = _json(html, "timeline-chart-data")
    kinds = [(b["row"], b["kind"], b["status"]) for b in timeline["bands"]]
    assert kinds[:2] == [("#1", "up", "Charging"), ("#1", "down", "Faulted")]
    assert ("#2", "unknown", "Unknown") in kinds
    assert timeline["time_zone"] == "Europe/Amsterdam"
    # 18 of 24 hours up.
    assert "75.00 %" in html


def test_panel_falls_back_to_the_last_session(login, technician, charge_point):
    started = timezone.now() - dt.timedelta(days=3)
    tx = Transaction.objects.create(
        charge_point=charge_point,
        connector=charge_point.connectors.get(connector_id=1),
        connector_number=1,
        id_tag="TAG",
        started_at=started,
        stopped_at=started + dt.timedelta(hours=1),
        meter_start=0,
        status=TransactionStatus.COMPLETED,
    )
    _sample(charge_point, 1, started + dt.timedelta(minutes=5), 7400, tx=tx)
    html = login(technician).get(charge_point.get_absolute_url()).content.decode()
    assert "last session" in html
    assert _json(html, "power-chart-data")["connectors"][0]["points"][0]["y"] == 7.4


def test_panel_seven_days_and_bounded_queries(login, technician, charge_point, django_assert_max_num_queries):
    client = login(technician)
    client.get(charge_point.get_absolute_url())  # warm the session
    with django_assert_max_num_queries(30) as ctx:
        response = client.get(charge_point.get_absolute_url(), {"timeline": "7d"})
    assert response.status_code == 200
    panel = [q["sql"] for q in ctx.captured_queries if "diagnostics_outageexclusion" in q["sql"]]
    assert len(panel) == 1
    assert "No status reports in this span." in response.content.decode()
