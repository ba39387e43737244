"""The commands API: send to one charge point or many, list what was sent, and the 400s,
403s and 404s that keep operators to their own chargers."""

import asyncio
import datetime as dt

import pytest
from django.utils import timezone

from sessions.models import Reservation, ReservationStatus
from stations.models import Command, CommandStatus
from tests.factories import ChargePointFactory, ConnectorFactory, SiteFactory
from tests.stations.test_commands_ui import (
    answer,
    connected,
    in_thread,
    play,
)

pytestmark = pytest.mark.django_db(transaction=True)

BULK = "/api/v1/operator/commands/"


def commands_url(identity: str) -> str:
    return f"/api/v1/operator/charge-points/{identity}/commands/"


@pytest.fixture(autouse=True)
def _short_command_timeout(settings):
    settings.OCPP_COMMAND_TIMEOUT = 5


def test_command_is_sent_and_answered_with_the_command_row(api_as, technician, charge_point):
    client = api_as(technician)

    async def scenario():
        charger = await connected(charge_point.identity)
        request = in_thread(
            client.post,
            commands_url("VW-0001"),
            {"action": "Reset", "payload": {"type": "Soft"}, "timeout": 30},
        )
        call = await answer(charger, {"status": "Accepted"}, "Reset")
        response = await request
        await charger.close()
        return call, response

    call, response = play(scenario)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"] == call[1]
    assert body["action"] == "Reset" and body["payload"] == {"type": "Soft"}
    assert body["status"] == "accepted" and body["outcome"] == "Accepted"
    assert body["response"] == {"status": "Accepted"}
    assert body["error_code"] == "" and body["error_description"] == ""
    assert body["charge_point"] == "VW-0001" and body["requested_by"] == "tech@voltway.example"
    assert body["created_at"] and body["sent_at"] and body["completed_at"]


def test_callerror_answer_is_recorded_as_error(api_as, operator_admin, charge_point):
    client = api_as(operator_admin)

    async def scenario():
        charger = await connected(charge_point.identity)
        request = in_thread(
            client.post, commands_url("VW-0001"), {"action": "DataTransfer", "payload": {"vendorId": "x"}}
        )
        call = await charger.receive()
        await charger.comm.send_to(
            text_data=f'[4, "{call[1]}", "NotSupported", "no vendor extensions", {{}}]'
        )
        response = await request
        await charger.close()
        return response

    body = play(scenario).json()
    assert body["status"] == "error"
    assert body["error_code"] == "NotSupported" and body["error_description"] == "no vendor extensions"


def test_command_to_offline_charger_is_recorded_offline(api_as, technician, charge_point):
    charge_point.is_connected = False
    charge_point.save()
    response = api_as(technician).post(commands_url("VW-0001"), {"action": "ClearCache"})
    assert response.status_code == 201
    assert response.json()["status"] == "offline"
    assert response.json()["sent_at"] is None and response.json()["completed_at"]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"action": "Reset", "payload": {"type": "Gentle"}}, {"payload": {"type"}}),
        ({"action": "Reset", "payload": {}}, {"payload": {"type"}}),
        ({"action": "Reset", "payload": {"type": "Soft", "extra": 1}}, {"payload": None}),
        (
            {"action": "ChangeAvailability", "payload": {"connectorId": "one", "type": "Operative"}},
            {"payload": {"connectorId"}},
        ),
        ({"action": "GetDiagnostics", "payload": {"location": "not a uri"}}, {"payload": {"location"}}),
        (
            {
                "action": "SetChargingProfile",
                "payload": {
                    "connectorId": 0,
                    "csChargingProfiles": {
                        "chargingProfileId": 1,
                        "stackLevel": 0,
                        "chargingProfilePurpose": "TxDefaultProfile",
                        "chargingProfileKind": "Relative",
                        "chargingSchedule": {
                            "chargingRateUnit": "kW",
                            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11}],
                        },
                    },
                },
            },
            {"payload": {"csChargingProfiles/chargingSchedule/chargingRateUnit"}},
        ),
        ({"action": "BootNotification", "payload": {}}, {"action": None}),
        ({"action": "Reset", "payload": ["Soft"]}, {"payload": None}),
        ({"payload": {"type": "Soft"}}, {"action": None}),
        ({"action": "Reset", "payload": {"type": "Soft"}, "timeout": 0}, {"timeout": None}),
    ],
)
def test_bad_action_or_payload_is_400_with_field_messages(api_as, technician, charge_point, body, errors):
    response = api_as(technician).post(commands_url("VW-0001"), body)
    assert response.status_code == 400, response.json()
    detail = response.json()
    assert set(detail) == set(errors)
    for field, inner in errors.items():
        if inner is not None:
            assert set(detail[field]) == inner, detail
            assert all(isinstance(m, str) and m for ms in detail[field].values() for m in ms)
    assert not Command.objects.exists()


def test_commands_are_listed_newest_first_paginated_and_filtered(api_as, technician, charge_point, operator):
    other_cp = ChargePointFactory(site=SiteFactory(operator=operator), identity="VW-0002")
    for n in range(3):
        Command.objects.create(charge_point=charge_point, action="Reset", status=CommandStatus.ACCEPTED)
    Command.objects.create(charge_point=charge_point, action="ClearCache", status=CommandStatus.OFFLINE)
    Command.objects.create(charge_point=other_cp, action="Reset", status=CommandStatus.ACCEPTED)
    client = api_as(technician)
    body = client.get(commands_url("VW-0001")).json()
    assert body["count"] == 4
    assert body["results"][0]["action"] == "ClearCache"
    assert client.get(commands_url("VW-0001") + "?action=Reset").json()["count"] == 3
    assert client.get(commands_url("VW-0001") + "?status=offline").json()["count"] == 1
    assert client.get(commands_url("VW-0001") + "?page_size=2").json()["next"]
    assert client.get(BULK + "?action=Reset").json()["count"] == 4


def test_operators_never_reach_other_operators_charge_points(
    api_as, other_operator_admin, charge_point, other_charge_point
):
    Command.objects.create(charge_point=charge_point, action="Reset")
    client = api_as(other_operator_admin)
    assert client.post(commands_url("VW-0001"), {"action": "ClearCache"}).status_code == 404
    assert client.get(commands_url("VW-0001")).status_code == 404
    assert client.get(commands_url("NOPE")).status_code == 404
    assert client.get(BULK).json()["count"] == 0
    assert client.get(f"{BULK}{Command.objects.get().pk}/").status_code == 404
    assert Command.objects.count() == 1


def test_drivers_and_anonymous_cannot_send_commands(api_as, api_client, driver, charge_point):
    assert api_as(driver).post(commands_url("VW-0001"), {"action": "ClearCache"}).status_code == 403
    assert api_as(driver).get(commands_url("VW-0001")).status_code == 403
    assert (
        api_as(driver).post(BULK, {"action": "ClearCache", "charge_points": ["VW-0001"]}).status_code == 403
    )
    api_client.force_authenticate(None)
    assert api_client.post(commands_url("VW-0001"), {"action": "ClearCache"}).status_code in (401, 403)
    assert not Command.objects.exists()


def test_reserve_now_records_the_reservation_and_sends_its_id(api_as, operator_admin, charge_point):
    client = api_as(operator_admin)
    expiry = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    body = {"action": "ReserveNow", "payload": {"connectorId": 1, "idTag": "04R1", "expiryDate": expiry}}

    async def scenario():
        charger = await connected(charge_point.identity)
        request = in_thread(client.post, commands_url("VW-0001"), body)
        call = await answer(charger, {"status": "Accepted"}, "ReserveNow")
        response = await request
        await charger.close()
        return call, response

    call, response = play(scenario)
    reservation = Reservation.objects.get()
    assert call[3]["reservationId"] == reservation.pk
    assert response.json()["payload"]["reservationId"] == reservation.pk
    assert reservation.status == ReservationStatus.ACCEPTED


def test_reserve_now_the_service_refuses_is_400_at_the_field(api_as, operator_admin, charge_point):
    expiry = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    body = {"action": "ReserveNow", "payload": {"connectorId": 7, "idTag": "04R1", "expiryDate": expiry}}
    response = api_as(operator_admin).post(commands_url("VW-0001"), body)
    assert response.status_code == 400
    assert "connectorId" in response.json()["payload"]
    assert not Reservation.objects.exists() and not Command.objects.exists()


# --- Many at once -----------------------------------------------------------------------------


@pytest.fixture
def fleet(operator, charge_point):
    site = SiteFactory(operator=operator, name="Depot")
    second = ChargePointFactory(site=site, identity="VW-0002")
    ConnectorFactory(charge_point=second, connector_id=1)
    asleep = ChargePointFactory(site=site, identity="VW-0003", is_connected=False)
    return [charge_point, second, asleep]


def test_one_command_to_many_charge_points(api_as, technician, fleet):
    client = api_as(technician)
    body = {
        "charge_points": ["VW-0003", "VW-0001", "VW-0002"],
        "action": "TriggerMessage",
        "payload": {"requestedMessage": "StatusNotification"},
    }

    async def scenario():
        first, second = await connected("VW-0001"), await connected("VW-0002")
        request = in_thread(client.post, BULK, body)
        await asyncio.gather(
            answer(first, {"status": "Accepted"}, "TriggerMessage"),
            answer(second, {"status": "NotImplemented"}, "TriggerMessage"),
        )
        response = await request
        await first.close()
        await second.close()
        return response

    response = play(scenario)
    assert response.status_code == 201, response.json()
    results = {c["charge_point"]: (c["status"], c["outcome"]) for c in response.json()}
    assert results == {
        "VW-0001": ("accepted", "Accepted"),
        "VW-0002": ("rejected", "NotImplemented"),
        "VW-0003": ("offline", "Charger offline"),
    }
    batches = {c["batch"] for c in response.json()}
    assert len(batches) == 1 and None not in batches
    listed = client.get(f"{BULK}?batch={batches.pop()}").json()
    assert listed["count"] == 3


def test_many_with_foreign_or_unknown_identities_is_400_naming_them(
    api_as, technician, fleet, other_charge_point
):
    response = api_as(technician).post(
        BULK, {"charge_points": ["VW-0001", "NG-0001", "GHOST"], "action": "ClearCache", "payload": {}}
    )
    assert response.status_code == 400
    message = response.json()["charge_points"][0]
    assert "NG-0001" in message and "GHOST" in message and "VW-0001" not in message
    assert not Command.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"charge_points": [], "action": "ClearCache"}, "charge_points"),
        ({"charge_points": ["VW-0003"], "action": "Reset", "payload": {"type": "Warm"}}, "payload"),
        ({"charge_points": ["VW-0003"], "action": "ReserveNow", "payload": {}}, "action"),
    ],
)
def test_many_with_bad_input_is_400(api_as, technician, fleet, body, field):
    response = api_as(technician).post(BULK, body)
    assert response.status_code == 400
    assert field in response.json()
    assert not Command.objects.exists()


def test_command_list_queries_do_not_grow(api_as, technician, charge_point, django_assert_max_num_queries):
    client = api_as(technician)
    Command.objects.create(charge_point=charge_point, action="Reset", requested_by=technician)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        client.get(commands_url("VW-0001"))
        client.get(BULK)
    for _ in range(10):
        Command.objects.create(charge_point=charge_point, action="Reset", requested_by=technician)
    with django_assert_max_num_queries(len(one)):
        client.get(commands_url("VW-0001"))
        client.get(BULK)


def test_schema_documents_the_command_endpoints(api_client, db):
    schema = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    assert set(paths["/api/v1/operator/charge-points/{identity}/commands/"]) >= {"get", "post"}
    assert set(paths["/api/v1/operator/commands/"]) >= {"get", "post"}
    assert "/api/v1/operator/commands/{id}/" in paths
