"""Operator CRUD of sites and charge points, and that each operator sees only their own."""

import pytest
from django.urls import reverse

from stations.models import ChargePoint, Site
from tests.factories import CHARGER_PASSWORD, SiteFactory

pytestmark = pytest.mark.django_db

SITES = "/api/v1/operator/sites/"
CPS = "/api/v1/operator/charge-points/"

NEW_SITE = {
    "name": "Schiphol P3",
    "address": "Evert van de Beekstraat 202",
    "city": "Schiphol",
    "postal_code": "1118 CP",
    "country": "nl",
    "latitude": "52.308600",
    "longitude": "4.763889",
    "time_zone": "Europe/Amsterdam",
}


def test_operator_admin_creates_site_for_own_operator(api_as, operator_admin, operator):
    response = api_as(operator_admin).post(SITES, NEW_SITE)
    assert response.status_code == 201, response.json()
    site = Site.objects.get(pk=response.json()["id"])
    assert site.operator == operator
    assert site.country == "NL"


def test_site_with_bad_fields_gets_field_messages(api_as, operator_admin):
    bad = {**NEW_SITE, "latitude": "123", "time_zone": "Mars/Olympus", "country": "Netherlands", "name": ""}
    response = api_as(operator_admin).post(SITES, bad)
    assert response.status_code == 400
    assert set(response.json()) >= {"latitude", "time_zone", "country", "name"}


def test_duplicate_site_name_is_400_not_500(api_as, operator_admin, site):
    response = api_as(operator_admin).post(SITES, {**NEW_SITE, "name": site.name})
    assert response.status_code == 400
    assert "already exists" in str(response.json())


def test_site_list_has_live_counts(api_as, technician, charge_point):
    body = api_as(technician).get(SITES).json()
    assert body["count"] == 1
    assert body["results"][0]["charge_point_count"] == 1
    assert body["results"][0]["connector_count"] == 2
    assert body["results"][0]["available_count"] == 2


def test_operator_never_sees_another_operators_sites_or_charge_points(
    api_as, other_operator_admin, charge_point, site
):
    client = api_as(other_operator_admin)
    assert client.get(SITES).json()["count"] == 0
    assert client.get(CPS).json()["count"] == 0
    assert client.get(f"{SITES}{site.pk}/").status_code == 404
    assert client.get(f"{CPS}{charge_point.identity}/").status_code == 404
    assert client.patch(f"{SITES}{site.pk}/", {"name": "Mine now"}).status_code == 404
    assert client.delete(f"{CPS}{charge_point.identity}/").status_code == 404
    assert ChargePoint.objects.filter(pk=charge_point.pk).exists()


def test_create_charge_point_with_connectors_and_hashed_password(api_as, operator_admin, site):
    payload = {
        "identity": "VW-NEW-01",
        "site": site.pk,
        "vendor": "ABB",
        "model": "Terra 184",
        "password": CHARGER_PASSWORD,
        "connectors": [
            {"connector_id": 1, "standard": "IEC_62196_T2_COMBO", "power_type": "DC", "max_power_kw": "180"},
            {"connector_id": 2, "standard": "CHADEMO", "power_type": "DC", "max_power_kw": "50"},
        ],
    }
    response = api_as(operator_admin).post(CPS, payload)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert "password" not in body
    assert body["has_password"] is True
    assert [c["connector_id"] for c in body["connectors"]] == [1, 2]
    cp = ChargePoint.objects.get(identity="VW-NEW-01")
    assert cp.password_hash != CHARGER_PASSWORD
    assert cp.check_password(CHARGER_PASSWORD)
    assert not cp.check_password("wrong-password-123456")
    assert cp.connectors.get(connector_id=1).evse.evse_id == 1


def test_charge_point_bad_input_gets_field_messages(api_as, operator_admin, charge_point):
    payload = {
        "identity": "has/slash",
        "password": "short",
        "heartbeat_interval": 0,
        "connectors": [{"connector_id": 0, "max_power_kw": "-1"}],
    }
    response = api_as(operator_admin).post(CPS, payload)
    assert response.status_code == 400
    body = response.json()
    assert {"identity", "password", "heartbeat_interval", "connectors"} <= set(body)


def test_duplicate_identity_is_400(api_as, operator_admin, charge_point):
    response = api_as(operator_admin).post(CPS, {"identity": charge_point.identity})
    assert response.status_code == 400
    assert "identity" in response.json()


def test_cannot_put_charge_point_on_another_operators_site(api_as, operator_admin, other_operator):
    foreign = SiteFactory(operator=other_operator)
    response = api_as(operator_admin).post(CPS, {"identity": "VW-X", "site": foreign.pk})
    assert response.status_code == 400
    assert "site" in response.json()


def test_update_approves_pending_charge_point(api_as, operator_admin, charge_point):
    charge_point.registration_status = "Pending"
    charge_point.save()
    url = reverse("api:operator-charge-point-detail", args=[charge_point.identity])
    response = api_as(operator_admin).patch(url, {"registration_status": "Accepted", "name": "Front left"})
    assert response.status_code == 200
    charge_point.refresh_from_db()
    assert charge_point.registration_status == "Accepted"
    assert charge_point.name == "Front left"


def test_technician_reads_but_cannot_write(api_as, technician, charge_point):
    client = api_as(technician)
    assert client.get(CPS).status_code == 200
    assert client.post(SITES, NEW_SITE).status_code == 403
    url = reverse("api:operator-charge-point-detail", args=[charge_point.identity])
    assert client.patch(url, {"name": "x"}).status_code == 403


def test_deleting_site_in_use_is_409(api_as, operator_admin, charge_point, site):
    response = api_as(operator_admin).delete(f"{SITES}{site.pk}/")
    assert response.status_code == 409
    assert Site.objects.filter(pk=site.pk).exists()


def test_filters_and_search(api_as, operator_admin, charge_point, site):
    from tests.factories import ChargePointFactory

    ChargePointFactory(site=site, identity="VW-0002", is_connected=False, vendor="Kempower")
    client = api_as(operator_admin)
    assert [c["identity"] for c in client.get(CPS, {"is_connected": "false"}).json()["results"]] == [
        "VW-0002"
    ]
    assert [c["identity"] for c in client.get(CPS, {"search": "kempow"}).json()["results"]] == ["VW-0002"]
    assert client.get(CPS, {"site": site.pk}).json()["count"] == 2
    assert client.get(CPS, {"site": "abc"}).status_code == 400


@pytest.mark.parametrize("who", ["driver", None])
def test_drivers_and_anonymous_get_no_operator_api(api_client, request, who, charge_point):
    if who:
        api_client.force_authenticate(request.getfixturevalue(who))
    for url in (SITES, CPS, f"{CPS}{charge_point.identity}/"):
        assert api_client.get(url).status_code in (401, 403)
    assert api_client.post(SITES, NEW_SITE).status_code in (401, 403)


def test_charge_point_list_query_count_is_constant(
    api_as, operator_admin, site, django_assert_max_num_queries
):
    from tests.factories import ChargePointFactory, ConnectorFactory

    for n in range(12):
        cp = ChargePointFactory(site=site)
        ConnectorFactory(charge_point=cp, connector_id=1)
        ConnectorFactory(charge_point=cp, connector_id=2)
    client = api_as(operator_admin)
    with django_assert_max_num_queries(6):
        response = client.get(CPS)
    assert response.json()["count"] == 12
