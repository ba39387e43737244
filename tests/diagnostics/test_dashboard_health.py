"""The diagnostics dashboard, the uptime report page (HTML, CSV) and outage exclusions."""

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from diagnostics.models import ExclusionCategory, Incident, OutageExclusion
from stations.models import StatusChange
from tests.factories import ChargePointFactory, ConnectorFactory, SiteFactory

pytestmark = pytest.mark.django_db


def _history(cp, number, status, at):
    return StatusChange.objects.create(
        charge_point=cp,
        connector=cp.connectors.get(connector_id=number),
        connector_number=number,
        status=status,
        timestamp=at,
    )


@pytest.fixture
def network(operator, site, charge_point, other_charge_point):
    """Voltway: one healthy unit, one offline, one faulted; Northgrid has its own faulted one."""
    now = timezone.now()
    offline = ChargePointFactory(site=site, identity="VW-OFF", is_connected=False, last_seen_at=now)
    ConnectorFactory(charge_point=offline, connector_id=1)
    north = SiteFactory(operator=operator, name="North Yard")
    faulted = ChargePointFactory(site=north, identity="VW-FLT")
    ConnectorFactory(charge_point=faulted, connector_id=1, status="Faulted", error_code="GroundFailure")
    other_charge_point.connectors.update(status="Faulted")
    Incident.objects.create(
        operator=operator,
        charge_point=faulted,
        kind="faulted",
        key=f"faulted:cp:{faulted.pk}:1",
        title="Ground failure on VW-FLT",
        opened_at=now,
        last_seen_at=now,
    )
    Incident.objects.create(
        operator=other_charge_point.operator,
        charge_point=other_charge_point,
        kind="faulted",
        key="faulted:ng",
        title="Northgrid secret incident",
        opened_at=now,
        last_seen_at=now,
    )
    day = now - dt.timedelta(days=2)
    _history(charge_point, 1, "Available", day)
    _history(faulted, 1, "Faulted", day)
    return {"offline": offline, "faulted": faulted, "north": north}


def test_dashboard_counts_units_and_lists_only_own_network(login, technician, network):
    response = login(technician).get("/diagnostics/")
    assert response.status_code == 200
    summary = response.context["summary"]
    assert (summary["units"], summary["online"], summary["offline"], summary["faulted"]) == (3, 2, 1, 1)
    html = response.content.decode()
    assert "VW-OFF" in html and "VW-FLT" in html and "GroundFailure" in html
    assert "/diagnostics/incidents/" in html and "Ground failure on VW-FLT" in html
    assert "NG-0001" not in html and "Northgrid secret incident" not in html and "Harbour" not in html
    worst = response.context["worst_sites"]
    assert {s.name: s.down_count for s in worst} == {"Central Station": 1, "North Yard": 1}


def test_dashboard_filters_by_site(login, technician, network):
    response = login(technician).get("/diagnostics/", {"site": network["north"].pk})
    assert response.context["summary"]["units"] == 1
    html = response.content.decode()
    assert "VW-FLT" in html and "VW-OFF" not in html


def test_dashboard_refuses_another_operators_site(login, technician, network, other_charge_point):
    response = login(technician).get("/diagnostics/", {"site": other_charge_point.site_id})
    assert response.status_code == 200
    assert response.context["site"] is None
    assert "Harbour" not in response.content.decode().split("<main")[1].split("</select>")[1]


def test_dashboard_needs_operator_staff(client, login, driver):
    assert client.get("/diagnostics/").status_code == 302
    assert login(driver).get("/diagnostics/").status_code == 403


def _add_units(site, start, count):
    now = timezone.now()
    for i in range(start, start + count):
        cp = ChargePointFactory(site=site, identity=f"VW-X{i:02d}", is_connected=i % 2 == 0)
        ConnectorFactory(charge_point=cp, connector_id=1, status="Faulted" if i % 3 == 0 else "Available")
        ConnectorFactory(charge_point=cp, connector_id=2)
        _history(cp, 1, "Available", now - dt.timedelta(days=1, minutes=i))


def test_dashboard_query_count_does_not_grow_with_units(
    login, technician, network, django_assert_max_num_queries, site
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(technician)
    _add_units(site, 0, 5)
    with CaptureQueriesContext(connection) as few:
        client.get("/diagnostics/")
    _add_units(site, 5, 20)
    with django_assert_max_num_queries(len(few)):
        response = client.get("/diagnostics/")
    assert response.status_code == 200
    assert len(few) <= 22  # 21 + the menu's unread-notifications count


def test_uptime_page_shows_the_period_and_hides_other_operators(
    login, technician, network, other_charge_point
):
    now = timezone.now()
    _history(other_charge_point, 1, "Faulted", now - dt.timedelta(days=2))
    response = login(technician).get("/diagnostics/uptime/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "VW-FLT" in html and "uptime-chart-data" in html and "Network uptime" in html
    assert "NG-0001" not in html and "Harbour" not in html
    assert 'src="/static/vendor/chartjs/chart.umd.min.js"' in html
    assert "<script>" not in html  # no inline scripts: json_script blocks and static files only


def test_uptime_csv_has_a_row_per_site_charge_point_and_connector(login, technician, network):
    now = timezone.now()
    start = (now - dt.timedelta(days=3)).date()
    response = login(technician).get(
        "/diagnostics/uptime/", {"start": start.isoformat(), "end": now.date().isoformat(), "format": "csv"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_unit = {(r["level"], r["charge_point"], r["connector"]): r for r in rows}
    faulted = by_unit[("connector", "VW-FLT", "1")]
    assert faulted["uptime_percent"] == "0.00" and faulted["meets_97_percent"] == "no"
    healthy = by_unit[("connector", "VW-0001", "1")]
    assert healthy["uptime_percent"] == "100.00" and healthy["meets_97_percent"] == "yes"
    assert by_unit[("connector", "VW-0001", "2")]["uptime_percent"] == ""  # no history: no figure
    assert ("site", "", "") in {(r["level"], r["charge_point"], r["connector"]) for r in rows}
    assert rows[-1]["level"] == "network"
    assert not any("NG-" in r["charge_point"] for r in rows)


def test_uptime_period_form_rejects_reversed_dates(login, technician, network):
    response = login(technician).get("/diagnostics/uptime/", {"start": "2026-11-20", "end": "2026-11-01"})
    assert response.status_code == 200
    assert response.context["report"] is None
    assert "must not be before" in response.content.decode()


def test_operator_admin_adds_an_exclusion_that_the_report_lists(login, operator_admin, network):
    client = login(operator_admin)
    faulted = network["faulted"]
    now = timezone.now()
    response = client.post(
        "/diagnostics/uptime/exclusions/new/",
        {
            "category": ExclusionCategory.GRID_OUTAGE,
            "starts_at": (now - dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
            "charge_point": faulted.pk,
            "note": "Utility work",
        },
    )
    assert response.status_code == 302
    exclusion = OutageExclusion.objects.get()
    assert (exclusion.operator, exclusion.charge_point, exclusion.created_by) == (
        operator_admin.operator,
        faulted,
        operator_admin,
    )
    page = client.get(response["Location"])
    html = page.content.decode()
    assert "Utility work" in html and "Electric utility service interruption" in html
    row = next(c for c in page.context["report"].connectors if c.connector.charge_point_id == faulted.pk)
    assert row.figures.excluded_us > 0


def test_exclusion_form_refuses_other_operators_units_and_two_scopes(
    login, operator_admin, network, other_charge_point, site
):
    client = login(operator_admin)
    base = {"category": "vandalism", "starts_at": "2026-11-01T00:00", "ends_at": "2026-11-02T00:00"}
    response = client.post(
        "/diagnostics/uptime/exclusions/new/", {**base, "charge_point": other_charge_point.pk}
    )
    assert response.status_code == 400
    response = client.post(
        "/diagnostics/uptime/exclusions/new/",
        {**base, "site": site.pk, "charge_point": network["faulted"].pk},
    )
    assert response.status_code == 400
    assert not OutageExclusion.objects.exists()


def test_technicians_cannot_add_exclusions(login, technician, network):
    assert login(technician).get("/diagnostics/uptime/exclusions/new/").status_code == 403


def test_charge_point_page_has_the_health_panel(login, technician, network, charge_point):
    response = login(technician).get(charge_point.get_absolute_url())
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="health"' in html and "timeline-chart-data" in html
    assert "/static/js/charts.js" in html


def test_platform_admin_sees_every_operator(client, network):
    from tests.factories import UserFactory

    admin = UserFactory(email="root@chargedesk.example", is_superuser=True, is_staff=True)
    client.force_login(admin)
    html = client.get("/diagnostics/uptime/").content.decode()
    assert "VW-FLT" in html and "NG-0001" in html


def test_uptime_page_queries_do_not_grow_with_units(login, technician, network, site):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(technician)
    _add_units(site, 0, 3)
    with CaptureQueriesContext(connection) as few:
        client.get("/diagnostics/uptime/")
    _add_units(site, 3, 20)
    with CaptureQueriesContext(connection) as many:
        client.get("/diagnostics/uptime/")
    assert len(many) == len(few)


def test_exclusion_form_page_lists_only_own_units(login, operator_admin, network, other_charge_point):
    html = login(operator_admin).get("/diagnostics/uptime/exclusions/new/").content.decode()
    assert "VW-FLT" in html and "Scheduled maintenance" in html
    assert "NG-0001" not in html and "Harbour" not in html
