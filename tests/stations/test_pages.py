"""The operator portal: dashboard and charge point page, as operator staff and others see them."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from stations import services
from stations.models import ConnectorStatus, RegistrationStatus, StatusChange
from tests.factories import (
    CHARGER_PASSWORD,
    ChargePointFactory,
    ConnectorFactory,
    OperatorAdminFactory,
    SiteFactory,
)


def dashboard_url(**params):
    url = reverse("stations:dashboard")
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url


def listed(response) -> list[str]:
    return [cp.identity for cp in response.context["charge_points"]]


def tile(response, key: str) -> int:
    html = response.content.decode()
    match = re.search(rf'data-tile="{key}">\s*<span class="tile-value">(\d+)</span>', html)
    assert match, f"no tile {key}"
    return int(match.group(1))


@pytest.fixture
def network(operator, other_operator):
    """Voltway: two sites, five charge points in every state; Northgrid: one charge point."""
    central = SiteFactory(operator=operator, name="Central Station")
    harbour_view = SiteFactory(operator=operator, name="Harbour View")

    cp1 = ChargePointFactory(site=central, identity="VW-0001", vendor="Alfen", model="Eve Double Pro")
    ConnectorFactory(charge_point=cp1, connector_id=1, status=ConnectorStatus.AVAILABLE)
    ConnectorFactory(charge_point=cp1, connector_id=2, status=ConnectorStatus.CHARGING)

    cp2 = ChargePointFactory(site=central, identity="VW-0002", vendor="ABB", model="Terra AC")
    ConnectorFactory(
        charge_point=cp2, connector_id=1, status=ConnectorStatus.FAULTED, error_code="GroundFailure"
    )
    ConnectorFactory(charge_point=cp2, connector_id=2, status=ConnectorStatus.UNAVAILABLE)

    cp3 = ChargePointFactory(
        site=harbour_view,
        identity="VW-0003",
        vendor="Wallbox",
        model="Commander 2",
        serial_number="WB-SN-778899",
        is_connected=False,
        last_seen_at=timezone.now() - dt.timedelta(hours=3),
    )
    # Offline: counts as offline whatever it last reported.
    ConnectorFactory(charge_point=cp3, connector_id=1, status=ConnectorStatus.AVAILABLE)

    cp4 = ChargePointFactory(
        site=harbour_view,
        identity="VW-0004",
        name="Visitor parking",
        vendor="Kempower",
        model="S-Series",
        registration_status=RegistrationStatus.PENDING,
    )
    ConnectorFactory(charge_point=cp4, connector_id=1, status=ConnectorStatus.PREPARING)
    ConnectorFactory(charge_point=cp4, connector_id=2, status=ConnectorStatus.RESERVED)

    foreign = ChargePointFactory(
        site=SiteFactory(operator=other_operator, name="Harbour"), identity="NG-0001"
    )
    ConnectorFactory(charge_point=foreign, connector_id=1, status=ConnectorStatus.FAULTED)
    return {"central": central, "harbour_view": harbour_view, "foreign": foreign}


# --- Who may see what ----------------------------------------------------------------------


def test_anonymous_is_redirected_to_login_from_dashboard(client):
    response = client.get(dashboard_url())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_anonymous_is_redirected_to_login_from_charge_point_page(client, charge_point):
    response = client.get(charge_point.get_absolute_url())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_driver_gets_403_on_dashboard(login, driver):
    assert login(driver).get(dashboard_url()).status_code == 403


def test_driver_gets_403_on_charge_point_page(login, driver, charge_point):
    assert login(driver).get(charge_point.get_absolute_url()).status_code == 403


def test_technician_sees_dashboard(login, technician, charge_point):
    response = login(technician).get(dashboard_url())
    assert response.status_code == 200
    assert listed(response) == ["VW-0001"]


def test_operator_admin_never_sees_other_operators_sites_or_charge_points(login, operator_admin, network):
    response = login(operator_admin).get(dashboard_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert "NG-0001" not in html
    assert ">Harbour<" not in html
    assert {site.name for site in response.context["sites"]} == {"Central Station", "Harbour View"}
    assert sorted(listed(response)) == ["VW-0001", "VW-0002", "VW-0003", "VW-0004"]


def test_other_operator_sees_only_their_own_network(login, other_operator_admin, network):
    response = login(other_operator_admin).get(dashboard_url())
    assert listed(response) == ["NG-0001"]
    assert [site.name for site in response.context["sites"]] == ["Harbour"]
    assert response.context["counts"]["charge_points"] == 1


def test_charge_point_of_other_operator_is_404(login, operator_admin, other_charge_point):
    assert login(operator_admin).get(other_charge_point.get_absolute_url()).status_code == 404


def test_unknown_charge_point_is_404(login, operator_admin):
    assert login(operator_admin).get(reverse("stations:charge-point", args=["NOPE"])).status_code == 404


def test_superuser_without_operator_sees_every_network(login, network):
    superuser = OperatorAdminFactory(
        operator=None, is_superuser=True, is_staff=True, email="root@example.com"
    )
    response = login(superuser).get(dashboard_url())
    assert response.status_code == 200
    assert "NG-0001" in listed(response)


# --- Dashboard content ---------------------------------------------------------------------


def test_dashboard_counts_charge_points_and_connectors_by_state(login, operator_admin, network):
    response = login(operator_admin).get(dashboard_url())
    counts = response.context["counts"]
    assert counts["charge_points"] == 4
    assert counts["online"] == 3
    assert counts["offline_charge_points"] == 1
    assert counts["pending"] == 1
    assert counts["connectors"] == 7
    assert counts["available"] == 1  # the offline charger's "Available" does not count
    assert counts["charging"] == 2  # Charging and Preparing
    assert counts["faulted"] == 1  # the other operator's fault is not ours
    assert counts["unavailable"] == 2  # Unavailable and Reserved
    assert counts["offline"] == 1


def test_dashboard_tiles_show_the_counts(login, operator_admin, network):
    response = login(operator_admin).get(dashboard_url())
    assert tile(response, "charge_points") == 4
    assert tile(response, "online") == 3
    assert tile(response, "offline_charge_points") == 1
    assert tile(response, "pending") == 1
    assert tile(response, "available") == 1
    assert tile(response, "charging") == 2
    assert tile(response, "faulted") == 1
    assert tile(response, "unavailable") == 2
    assert tile(response, "offline") == 1


def test_dashboard_tiles_count_the_whole_network_even_when_filtered(login, operator_admin, network):
    response = login(operator_admin).get(dashboard_url(connectivity="offline"))
    assert listed(response) == ["VW-0003"]
    assert response.context["counts"]["charge_points"] == 4


def test_sites_table_summarises_each_site(login, operator_admin, network):
    response = login(operator_admin).get(dashboard_url())
    sites = {site.name: site for site in response.context["sites"]}
    central, harbour_view = sites["Central Station"], sites["Harbour View"]
    assert (central.charge_point_count, central.connector_count) == (2, 4)
    assert (central.available_count, central.faulted_count, central.offline_count) == (1, 1, 0)
    assert (harbour_view.charge_point_count, harbour_view.connector_count) == (2, 3)
    assert (harbour_view.available_count, harbour_view.offline_count) == (0, 1)


def test_charge_point_row_shows_link_site_vendor_firmware_connectivity_and_connector_badges(
    login, operator_admin, network
):
    html = login(operator_admin).get(dashboard_url(q="VW-0002")).content.decode()
    assert 'href="/charge-points/VW-0002/"' in html
    assert "Central Station" in html
    assert "ABB" in html and "Terra AC" in html
    assert "5.8.1" in html
    assert "Online" in html
    assert 'class="badge badge-faulted"' in html
    assert 'class="badge badge-unavailable"' in html


def test_offline_charge_point_row_says_when_it_was_last_seen(login, operator_admin, network):
    html = login(operator_admin).get(dashboard_url(q="VW-0003")).content.decode()
    assert "Offline" in html
    assert "3\xa0hours ago" in html


# --- Filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Available", ["VW-0001", "VW-0003"]),
        ("Faulted", ["VW-0002"]),
        ("Preparing", ["VW-0004"]),
        ("SuspendedEV", []),
    ],
)
def test_filter_by_connector_status_lists_charge_points_with_any_connector_in_it(
    login, operator_admin, network, status, expected
):
    response = login(operator_admin).get(dashboard_url(connector_status=status))
    assert response.status_code == 200
    assert listed(response) == expected


def test_filter_by_connectivity(login, operator_admin, network):
    client = login(operator_admin)
    assert listed(client.get(dashboard_url(connectivity="offline"))) == ["VW-0003"]
    assert listed(client.get(dashboard_url(connectivity="online"))) == ["VW-0001", "VW-0002", "VW-0004"]


def test_filter_by_site(login, operator_admin, network):
    response = login(operator_admin).get(dashboard_url(site=network["harbour_view"].pk))
    assert listed(response) == ["VW-0003", "VW-0004"]


def test_filter_by_registration_status(login, operator_admin, network):
    response = login(operator_admin).get(dashboard_url(registration_status="Pending"))
    assert listed(response) == ["VW-0004"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("vw-0002", ["VW-0002"]),  # identity, any case
        ("visitor", ["VW-0004"]),  # name
        ("wallbox", ["VW-0003"]),  # vendor
        ("terra", ["VW-0002"]),  # model
        ("778899", ["VW-0003"]),  # serial number
        ("NG-0001", []),  # another operator's charge point stays hidden
    ],
)
def test_search_matches_identity_name_vendor_model_and_serial(
    login, operator_admin, network, query, expected
):
    assert listed(login(operator_admin).get(dashboard_url(q=query))) == expected


def test_filters_combine(login, operator_admin, network):
    response = login(operator_admin).get(
        dashboard_url(site=network["central"].pk, connectivity="online", connector_status="Charging")
    )
    assert listed(response) == ["VW-0001"]


def test_site_filter_offers_only_the_users_own_sites(login, operator_admin, network):
    response = login(operator_admin).get(dashboard_url())
    choices = {site.name for site in response.context["filter"].form.fields["site"].queryset}
    assert choices == {"Central Station", "Harbour View"}


def test_site_of_another_operator_in_filter_is_an_error_and_lists_nothing(login, operator_admin, network):
    response = login(operator_admin).get(dashboard_url(site=network["foreign"].site_id))
    assert response.status_code == 200
    assert listed(response) == []
    assert "site" in response.context["filter"].errors
    assert "Select a valid choice" in response.content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {"connectivity": "sideways"},
        {"connector_status": "Exploded"},
        {"registration_status": "Maybe"},
        {"site": "not-a-number"},
        {"q": "x" * 101},
    ],
)
def test_invalid_filter_input_shows_a_clear_error_not_a_500(login, operator_admin, network, params):
    response = login(operator_admin).get(reverse("stations:dashboard"), params)
    assert response.status_code == 200
    assert listed(response) == []
    html = response.content.decode()
    assert "Some filters are not valid" in html
    assert 'class="field-error"' in html


def test_dashboard_lists_50_charge_points_a_page_and_keeps_filters_across_pages(login, operator_admin, site):
    identities = [f"VW-{n:04d}" for n in range(1, 56)]
    services.charge_points_provision(
        operator=operator_admin.operator,
        identities=identities,
        password=CHARGER_PASSWORD,
        site=site,
        connectors=1,
    )
    client = login(operator_admin)
    first = client.get(dashboard_url(connectivity="offline"))
    assert listed(first) == identities[:50]
    assert 'href="?connectivity=offline&amp;page=2"' in first.content.decode()
    second = client.get(dashboard_url(connectivity="offline", page=2))
    assert listed(second) == identities[50:]


def test_page_past_the_end_is_404(login, operator_admin, charge_point):
    assert login(operator_admin).get(dashboard_url(page=9)).status_code == 404


def test_dashboard_queries_do_not_grow_with_charge_points(
    login, operator_admin, operator, charge_point, django_assert_max_num_queries
):
    client = login(operator_admin)
    with CaptureQueriesContext(connection) as one:
        assert client.get(dashboard_url()).status_code == 200
    for n in range(2, 14):
        cp = ChargePointFactory(site=SiteFactory(operator=operator), identity=f"VW-{n:04d}")
        ConnectorFactory(charge_point=cp, connector_id=1)
        ConnectorFactory(charge_point=cp, connector_id=2, status=ConnectorStatus.CHARGING)
    with django_assert_max_num_queries(len(one)):
        response = client.get(dashboard_url())
    assert len(listed(response)) == 13


# --- Charge point page ------------------------------------------------------------------------


@pytest.fixture
def reported_charge_point(charge_point):
    # As provisioned: no connector has reported yet.
    charge_point.connectors.update(status=ConnectorStatus.UNKNOWN, status_updated_at=None)
    t0 = timezone.now() - dt.timedelta(minutes=30)
    services.status_record(charge_point=charge_point, connector_id=0, status="Available", timestamp=t0)
    services.status_record(
        charge_point=charge_point,
        connector_id=1,
        status="Faulted",
        error_code="GroundFailure",
        info="RCD tripped",
        vendor_error_code="E-042",
        timestamp=t0 + dt.timedelta(minutes=5),
    )
    services.status_record(
        charge_point=charge_point, connector_id=2, status="Charging", timestamp=t0 + dt.timedelta(minutes=10)
    )
    charge_point.serial_number = "ALF-123456"
    charge_point.last_boot_at = t0 - dt.timedelta(days=2)
    charge_point.save()
    return charge_point


def test_charge_point_page_shows_the_station_and_its_connection(login, technician, reported_charge_point):
    response = login(technician).get(reported_charge_point.get_absolute_url())
    assert response.status_code == 200
    html = response.content.decode()
    for text in [
        "VW-0001",
        "Central Station",
        "Amsterdam",
        "Alfen",
        "Eve Double Pro",
        "ALF-123456",
        "5.8.1",
        "OCPP 1.6J",
        "Accepted",
        "300 s",
        "Europe/Amsterdam",
    ]:
        assert text in html, text


def test_charge_point_page_lists_connectors_with_status_and_error(
    login, operator_admin, reported_charge_point
):
    response = login(operator_admin).get(reported_charge_point.get_absolute_url())
    connectors = list(response.context["connectors"])
    assert [(c.connector_id, c.status) for c in connectors] == [(1, "Faulted"), (2, "Charging")]
    html = response.content.decode()
    assert "GroundFailure" in html
    assert "RCD tripped" in html
    assert "E-042" in html
    assert "Type 2" in html
    assert "AC three phase" in html


def test_charge_point_page_shows_status_history_newest_first(login, operator_admin, reported_charge_point):
    response = login(operator_admin).get(reported_charge_point.get_absolute_url())
    history = list(response.context["status_history"])
    assert [(h.connector_number, h.status) for h in history] == [
        (2, "Charging"),
        (1, "Faulted"),
        (0, "Available"),
    ]
    html = response.content.decode()
    assert "Charger time" in html and "Received" in html


def test_status_history_shows_the_latest_50_reports(login, operator_admin, charge_point):
    start = timezone.now() - dt.timedelta(days=1)
    StatusChange.objects.bulk_create(
        StatusChange(
            charge_point=charge_point,
            connector_number=1,
            status="Available" if n % 2 else "Charging",
            timestamp=start + dt.timedelta(minutes=n),
        )
        for n in range(60)
    )
    response = login(operator_admin).get(charge_point.get_absolute_url())
    history = list(response.context["status_history"])
    assert len(history) == 50
    assert history[0].timestamp == start + dt.timedelta(minutes=59)


def test_charge_point_page_queries_do_not_grow_with_connectors_or_history(
    login, operator_admin, charge_point, django_assert_max_num_queries
):
    client = login(operator_admin)
    with CaptureQueriesContext(connection) as before:
        client.get(charge_point.get_absolute_url())
    for n in range(3, 9):
        ConnectorFactory(charge_point=charge_point, connector_id=n)
        services.status_record(charge_point=charge_point, connector_id=n, status="Charging")
    with django_assert_max_num_queries(len(before)):
        client.get(charge_point.get_absolute_url())
