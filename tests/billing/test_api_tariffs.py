"""The tariff API: what a connector costs the caller, what the caller's session costs, and the
operators' tariffs and assignments (scoped to their operator; technicians read; drivers 403)."""

import datetime as dt
from decimal import Decimal as D

import pytest
from django.utils import timezone

from billing.models import CustomerGroup, Tariff, TariffAssignment
from billing.services.charges import price_session
from tests.billing.test_pricing import comp, make_tariff
from tests.sessions.factories import TransactionFactory

pytestmark = pytest.mark.django_db

TARIFFS = "/api/v1/operator/tariffs/"
ASSIGNMENTS = "/api/v1/operator/tariff-assignments/"

NEW_TARIFF = {
    "name": "Evening",
    "currency": "eur",
    "tax_rate": "21.00",
    "prices_include_tax": True,
    "idle_grace_minutes": 30,
    "idle_fee_cap": "20.00",
    "elements": [
        {
            "start_time": "17:00",
            "end_time": "21:00",
            "day_of_week": ["friday", "MONDAY"],
            "components": [{"type": "ENERGY", "price": "0.45"}],
        },
        {
            "components": [
                {"type": "energy", "price": "0.30"},
                {"type": "PARKING_TIME", "price": "10", "step_size": 60},
            ]
        },
    ],
}


@pytest.fixture
def tariff(operator, charge_point):
    tariff = make_tariff(
        operator,
        [{"components": [comp("ENERGY", "0.30"), comp("FLAT", "1")]}],
        name="Standard",
        tax_rate=D("21"),
    )
    TariffAssignment.objects.create(tariff=tariff, operator=operator, site=charge_point.site)
    return tariff


def test_a_driver_sees_the_tariff_of_a_connector(api_as, driver, tariff, operator, charge_point):
    response = api_as(driver).get("/api/v1/stations/VW-0001/tariff/?connector=2")
    assert response.status_code == 200
    data = response.json()
    assert data["name"] == "Standard" and data["currency"] == "EUR"
    assert data["text"] == "€0.30 per kWh, a €1.00 session fee; prices include 21% VAT"
    assert data["elements"][0]["price_components"][0] == {
        "type": "ENERGY",
        "price": "0.30000",
        "step_size": 1,
    }
    group = CustomerGroup.objects.create(operator=operator, name="Fleet")
    group.members.add(driver)
    fleet = make_tariff(operator, [{"components": [comp("ENERGY", "0.20")]}], name="Fleet")
    TariffAssignment.objects.create(
        tariff=fleet, operator=operator, site=charge_point.site, customer_group=group
    )
    assert api_as(driver).get("/api/v1/stations/VW-0001/tariff/").json()["name"] == "Fleet"


def test_no_tariff_or_no_station_is_404(api_as, driver, charge_point):
    assert api_as(driver).get("/api/v1/stations/VW-0001/tariff/").status_code == 404
    assert api_as(driver).get("/api/v1/stations/NOPE/tariff/").status_code == 404
    assert api_as(driver).get("/api/v1/stations/VW-0001/tariff/?connector=x").status_code == 400


def test_the_tariff_needs_a_signed_in_user(api_client, tariff):
    assert api_client.get("/api/v1/stations/VW-0001/tariff/").status_code in (401, 403)


def test_cost_of_a_running_session_then_of_the_priced_one(api_as, driver, other_driver, tariff, charge_point):
    now = timezone.now()
    tx = TransactionFactory(
        charge_point=charge_point,
        id_token__driver=driver,
        started_at=now - dt.timedelta(minutes=30),
        meter_start=D("1000"),
        last_meter_wh=D("11000"),
    )
    response = api_as(driver).get(f"/api/v1/me/sessions/{tx.pk}/cost/")
    assert response.status_code == 200
    data = response.json()
    assert (data["final"], data["total"], data["energy_kwh"]) == (False, "4.00", "10.000")
    assert [line["kind"] for line in data["lines"]] == ["energy", "flat"]
    assert api_as(other_driver).get(f"/api/v1/me/sessions/{tx.pk}/cost/").status_code == 404

    tx.stopped_at, tx.status, tx.meter_stop, tx.energy_wh = now, "completed", D("13000"), D("12000")
    tx.save()
    price_session(tx)
    data = api_as(driver).get(f"/api/v1/me/sessions/{tx.pk}/cost/").json()
    assert (data["final"], data["total"], data["net"], data["tax"]) == (True, "4.60", "3.81", "0.79")
    assert data["lines"][0]["description"] == "Energy 12.000 kWh × €0.30"


def test_an_operator_admin_creates_and_edits_a_tariff(api_as, operator_admin):
    api = api_as(operator_admin)
    response = api.post(TARIFFS, NEW_TARIFF, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["currency"] == "EUR"
    assert data["elements"][0]["day_of_week"] == ["MONDAY", "FRIDAY"]
    assert data["elements"][1]["components"][1] == {
        "type": "PARKING_TIME",
        "price": "10.00000",
        "step_size": 60,
    }
    assert data["text"].startswith("€0.45 per kWh between 17:00 and 21:00 on Mondays and Fridays")
    tariff = Tariff.objects.get(pk=data["id"])
    assert tariff.operator == operator_admin.operator and tariff.elements.count() == 2

    response = api.patch(f"{TARIFFS}{tariff.pk}/", {"elements": [NEW_TARIFF["elements"][1]]}, format="json")
    assert response.status_code == 200
    assert len(response.json()["elements"]) == 1
    response = api.patch(f"{TARIFFS}{tariff.pk}/", {"name": "Late"}, format="json")
    assert response.json()["name"] == "Late" and len(response.json()["elements"]) == 1
    assert api.delete(f"{TARIFFS}{tariff.pk}/").status_code == 204


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"elements": [{"components": [{"type": "ENERGY", "price": "-0.10"}]}]}, "elements"),
        ({"elements": [{"components": [{"type": "TIME", "price": "1", "step_size": 0}]}]}, "elements"),
        ({"elements": [{"components": [{"type": "KWH", "price": "1"}]}]}, "elements"),
        ({"elements": [{"components": []}]}, "elements"),
        (
            {"elements": [{"day_of_week": ["FUNDAY"], "components": [{"type": "FLAT", "price": "1"}]}]},
            "elements",
        ),
        ({"elements": [{"start_time": "25:00", "components": [{"type": "FLAT", "price": "1"}]}]}, "elements"),
        (
            {
                "elements": [
                    {
                        "start_time": "08:00",
                        "end_time": "08:00",
                        "components": [{"type": "FLAT", "price": "1"}],
                    }
                ]
            },
            "elements",
        ),
        (
            {
                "elements": [
                    {
                        "start_date": "2026-05-01",
                        "end_date": "2026-04-01",
                        "components": [{"type": "FLAT", "price": "1"}],
                    }
                ]
            },
            "elements",
        ),
        ({"min_price": "5", "max_price": "2"}, "max_price"),
        ({"tax_rate": "120"}, "tax_rate"),
        ({"currency": "EURO"}, "currency"),
    ],
)
def test_tariffs_are_validated(api_as, operator_admin, change, field):
    response = api_as(operator_admin).post(TARIFFS, {**NEW_TARIFF, **change}, format="json")
    assert response.status_code == 400
    assert field in str(response.json())


def test_tariffs_are_scoped_and_technicians_only_read(
    api_as, operator_admin, other_operator_admin, technician, driver, tariff
):
    assert [t["name"] for t in api_as(operator_admin).get(TARIFFS).json()["results"]] == ["Standard"]
    assert api_as(other_operator_admin).get(TARIFFS).json()["results"] == []
    assert api_as(other_operator_admin).get(f"{TARIFFS}{tariff.pk}/").status_code == 404
    assert api_as(other_operator_admin).delete(f"{TARIFFS}{tariff.pk}/").status_code == 404
    assert api_as(technician).get(f"{TARIFFS}{tariff.pk}/").status_code == 200
    assert api_as(technician).post(TARIFFS, NEW_TARIFF, format="json").status_code == 403
    assert api_as(driver).get(TARIFFS).status_code == 403


def test_a_tariff_used_by_a_priced_session_cannot_be_deleted(api_as, operator_admin, tariff, charge_point):
    tx = TransactionFactory(charge_point=charge_point, stopped=True)
    price_session(tx)
    response = api_as(operator_admin).delete(f"{TARIFFS}{tariff.pk}/")
    assert response.status_code == 409
    assert "deactivate" in response.json()["detail"]


def test_tariff_list_reads_a_fixed_number_of_queries(
    api_as, operator_admin, operator, django_assert_max_num_queries
):
    for n in range(5):
        make_tariff(operator, [{"components": [comp("ENERGY", "0.3"), comp("FLAT", "1")]}], name=f"T{n}")
    api = api_as(operator_admin)
    with django_assert_max_num_queries(6):
        assert len(api.get(TARIFFS).json()["results"]) == 5


def test_assignments_crud(api_as, operator_admin, technician, driver, tariff, charge_point, operator):
    group = CustomerGroup.objects.create(operator=operator, name="Staff")
    api = api_as(operator_admin)
    body = {"tariff": tariff.pk, "charge_point": "VW-0001", "connector_number": 2, "customer_group": group.pk}
    response = api.post(ASSIGNMENTS, body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["charge_point"], data["connector_number"], data["customer_group"]) == (
        "VW-0001",
        2,
        group.pk,
    )
    assignment = TariffAssignment.objects.get(pk=data["id"])
    assert assignment.connector.connector_id == 2 and assignment.operator == operator
    assert (
        api.patch(f"{ASSIGNMENTS}{assignment.pk}/", {"valid_from": "2026-01-01T00:00:00Z"}).status_code == 200
    )
    assignment.refresh_from_db()
    assert assignment.connector is not None  # a change of dates keeps the place
    assert api_as(technician).get(ASSIGNMENTS).status_code == 200
    assert api_as(technician).delete(f"{ASSIGNMENTS}{assignment.pk}/").status_code == 403
    assert api_as(driver).get(ASSIGNMENTS).status_code == 403
    assert api_as(operator_admin).delete(f"{ASSIGNMENTS}{assignment.pk}/").status_code == 204


def test_assignments_are_validated_and_scoped(
    api_as, operator_admin, other_operator_admin, tariff, charge_point, other_charge_point, other_operator
):
    api = api_as(operator_admin)
    theirs = make_tariff(other_operator, [{"components": [comp("FLAT", "1")]}], name="Theirs")
    for body, field in [
        ({"tariff": theirs.pk}, "tariff"),
        ({"tariff": tariff.pk, "charge_point": "NG-0001"}, "charge_point"),
        ({"tariff": tariff.pk, "connector_number": 1}, "connector_number"),
        ({"tariff": tariff.pk, "charge_point": "VW-0001", "connector_number": 9}, "connector_number"),
        (
            {
                "tariff": tariff.pk,
                "valid_from": "2026-02-01T00:00:00Z",
                "valid_until": "2026-01-01T00:00:00Z",
            },
            "valid_until",
        ),
    ]:
        response = api.post(ASSIGNMENTS, body, format="json")
        assert response.status_code == 400, body
        assert field in response.json(), response.json()
    mine = TariffAssignment.objects.get(tariff=tariff)
    assert api_as(other_operator_admin).get(f"{ASSIGNMENTS}{mine.pk}/").status_code == 404
    assert api_as(other_operator_admin).patch(f"{ASSIGNMENTS}{mine.pk}/", {}).status_code == 404
