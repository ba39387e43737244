"""The public station finder: stations near a point, with filters and live availability."""

from decimal import Decimal

import pytest
from django.urls import reverse

from stations.models import ConnectorStandard, ConnectorStatus, PowerType, RegistrationStatus
from tests.factories import ChargePointFactory, ConnectorFactory, SiteFactory

pytestmark = pytest.mark.django_db

AMSTERDAM = {"latitude": "52.3676", "longitude": "4.9041"}
URL = "/api/v1/stations/"


@pytest.fixture
def network(operator, other_operator):
    """Amsterdam centre (AC), Amsterdam Zuid (DC fast), Utrecht (~35 km), and a private depot."""
    centre = SiteFactory(
        operator=operator, name="Centre", latitude=Decimal("52.370216"), longitude=Decimal("4.895168")
    )
    zuid = SiteFactory(
        operator=other_operator, name="Zuid", latitude=Decimal("52.338951"), longitude=Decimal("4.872260")
    )
    utrecht = SiteFactory(
        operator=operator, name="Utrecht", latitude=Decimal("52.090737"), longitude=Decimal("5.121420")
    )
    depot = SiteFactory(
        operator=operator,
        name="Depot",
        is_public=False,
        latitude=Decimal("52.371"),
        longitude=Decimal("4.896"),
    )
    ac = ChargePointFactory(site=centre, identity="AMS-AC-1")
    ConnectorFactory(charge_point=ac, connector_id=1, status=ConnectorStatus.AVAILABLE)
    ConnectorFactory(charge_point=ac, connector_id=2, status=ConnectorStatus.CHARGING)
    offline = ChargePointFactory(site=centre, identity="AMS-AC-2", is_connected=False)
    ConnectorFactory(charge_point=offline, connector_id=1, status=ConnectorStatus.AVAILABLE)
    dc = ChargePointFactory(site=zuid, identity="ZUID-DC-1")
    ConnectorFactory(
        charge_point=dc,
        connector_id=1,
        standard=ConnectorStandard.CCS2,
        power_type=PowerType.DC,
        max_power_kw=Decimal("150"),
        status=ConnectorStatus.FAULTED,
    )
    ConnectorFactory(
        charge_point=dc,
        connector_id=2,
        standard=ConnectorStandard.CHADEMO,
        power_type=PowerType.DC,
        max_power_kw=Decimal("50"),
        status=ConnectorStatus.AVAILABLE,
    )
    ConnectorFactory(charge_point=ChargePointFactory(site=utrecht, identity="UTR-1"), connector_id=1)
    ConnectorFactory(charge_point=ChargePointFactory(site=depot, identity="DEPOT-1"), connector_id=1)
    pending = ChargePointFactory(
        site=SiteFactory(operator=operator, name="New", latitude=Decimal("52.36"), longitude=Decimal("4.90")),
        identity="NEW-1",
        registration_status=RegistrationStatus.PENDING,
    )
    ConnectorFactory(charge_point=pending, connector_id=1)
    return {"centre": centre, "zuid": zuid, "utrecht": utrecht, "depot": depot}


def names(response):
    return [s["name"] for s in response.json()["results"]]


def test_nearby_lists_public_stations_nearest_first_within_radius(api_client, network):
    response = api_client.get(URL, {**AMSTERDAM, "radius_km": 10})
    assert response.status_code == 200
    assert names(response) == ["Centre", "Zuid"]
    centre = response.json()["results"][0]
    assert 0 < centre["distance_km"] < 1
    assert centre["operator"] == "Voltway"


def test_nearby_radius_widens_to_other_city(api_client, network):
    response = api_client.get(URL, {**AMSTERDAM, "radius_km": 50})
    assert names(response) == ["Centre", "Zuid", "Utrecht"]
    utrecht = response.json()["results"][2]
    assert 33 < utrecht["distance_km"] < 40


def test_nearby_hides_private_sites_and_pending_chargers(api_client, network):
    response = api_client.get(URL, {**AMSTERDAM, "radius_km": 5})
    assert "Depot" not in names(response)
    assert "New" not in names(response)


def test_availability_counts_offline_charger_connectors_as_offline(api_client, network):
    centre = api_client.get(URL, {**AMSTERDAM, "radius_km": 2}).json()["results"][0]
    assert centre["availability"] == {
        "total": 3,
        "available": 1,
        "occupied": 1,
        "reserved": 0,
        "out_of_service": 0,
        "offline": 1,
        "unknown": 0,
    }
    by_cp = {(c["charge_point"], c["connector_id"]): c["availability"] for c in centre["connectors"]}
    assert by_cp == {("AMS-AC-1", 1): "available", ("AMS-AC-1", 2): "occupied", ("AMS-AC-2", 1): "offline"}


def test_filter_by_standard_keeps_only_matching_stations_and_connectors(api_client, network):
    response = api_client.get(URL, {**AMSTERDAM, "radius_km": 10, "standard": "CHADEMO"})
    assert names(response) == ["Zuid"]
    zuid = response.json()["results"][0]
    assert [c["standard"] for c in zuid["connectors"]] == ["CHADEMO"]
    assert zuid["availability"]["available"] == 1


def test_filter_by_min_power(api_client, network):
    response = api_client.get(URL, {**AMSTERDAM, "radius_km": 10, "min_power_kw": "100"})
    assert names(response) == ["Zuid"]
    zuid = response.json()["results"][0]
    assert [c["max_power_kw"] for c in zuid["connectors"]] == ["150.00"]
    assert zuid["availability"]["out_of_service"] == 1
    assert zuid["max_power_kw"] == "150.00"


def test_filters_combine(api_client, network):
    response = api_client.get(URL, {**AMSTERDAM, "radius_km": 10, "standard": "CHADEMO", "min_power_kw": 60})
    assert names(response) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "latitude"),
        ({"latitude": "52.3"}, "longitude"),
        ({**AMSTERDAM, "latitude": "91"}, "latitude"),
        ({**AMSTERDAM, "longitude": "abc"}, "longitude"),
        ({**AMSTERDAM, "radius_km": "0"}, "radius_km"),
        ({**AMSTERDAM, "radius_km": "100000"}, "radius_km"),
        ({**AMSTERDAM, "standard": "USB"}, "standard"),
        ({**AMSTERDAM, "min_power_kw": "-3"}, "min_power_kw"),
    ],
)
def test_bad_parameters_get_400_with_field_message(api_client, network, params, field):
    response = api_client.get(URL, params)
    assert response.status_code == 400
    assert field in response.json()


def test_station_detail_shows_connectors(api_client, network):
    response = api_client.get(reverse("api:station-detail", args=[network["zuid"].pk]))
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Zuid"
    assert body["distance_km"] is None
    assert [(c["connector_id"], c["standard"], c["availability"]) for c in body["connectors"]] == [
        (1, "IEC_62196_T2_COMBO", "out_of_service"),
        (2, "CHADEMO", "available"),
    ]


def test_private_station_detail_is_404(api_client, network):
    assert api_client.get(reverse("api:station-detail", args=[network["depot"].pk])).status_code == 404


def test_nearby_query_count_does_not_grow_with_stations(api_client, network, django_assert_max_num_queries):
    for n in range(15):
        site = SiteFactory(name=f"Extra {n}", latitude=Decimal("52.37"), longitude=Decimal("4.90"))
        cp = ChargePointFactory(site=site)
        ConnectorFactory(charge_point=cp, connector_id=1)
        ConnectorFactory(charge_point=cp, connector_id=2)
    with django_assert_max_num_queries(6):
        response = api_client.get(URL, {**AMSTERDAM, "radius_km": 10})
    assert response.json()["count"] == 17
