"""Commands from the charge point page and the dashboard: the forms, what they send to a charger
(played by hand over the real OCPP consumer), and what the operator then sees."""

import asyncio
import datetime as dt
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from sessions.models import IdTokenStatus, Reservation, ReservationStatus
from stations.commands import validate_command
from stations.forms import BULK_FORMS, COMMAND_FORMS
from stations.models import Command, CommandStatus, ConfigurationKey, OcppMessage
from stations.ocpp import consumer
from stations.ocpp.v16 import CENTRAL_SYSTEM_ACTIONS
from tests.factories import ChargePointFactory, ConnectorFactory, IdTokenFactory, SiteFactory
from tests.ocpp.conftest import Charger, close_thread_connections
from tests.sessions.factories import ReservationFactory, TransactionFactory

# --- Playing a charger while a page or API call waits for it ---------------------------------

WORKERS = 4


def play(scenario):
    """Run ``scenario()`` (a coroutine function) on a fresh event loop. Blocking calls made
    with ``in_thread`` run in the loop's executor alongside the consumer's database work;
    every executor thread closes its connection at the end (a barrier makes each take one)."""

    async def main():
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=WORKERS)
        loop.set_default_executor(executor)
        barrier = threading.Barrier(WORKERS)

        def close():
            barrier.wait(timeout=10)
            connections.close_all()

        try:
            return await scenario()
        finally:
            await asyncio.gather(*(loop.run_in_executor(executor, close) for _ in range(WORKERS)))

    try:
        return asyncio.run(main())
    finally:
        close_thread_connections(consumer._executor)


def in_thread(fn, *args, **kwargs) -> asyncio.Future:
    """Start a blocking call (a view, an API request, a service) in a worker thread; await it."""
    return asyncio.ensure_future(sync_to_async(fn, thread_sensitive=False)(*args, **kwargs))


async def connected(identity: str) -> Charger:
    charger = Charger(identity)
    ok, _ = await charger.connect()
    assert ok, f"{identity} could not connect"
    return charger


async def answer(charger: Charger, payload: dict, action: str | None = None) -> list:
    """Receive the next CALL and answer it with ``payload``; returns the CALL."""
    call = await charger.receive()
    assert call[0] == 2, call
    if action is not None:
        assert call[2] == action, call
    await charger.comm.send_to(text_data=json.dumps([3, call[1], payload]))
    return call


pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _short_command_timeout(settings):
    settings.OCPP_COMMAND_TIMEOUT = 5


def page_url(cp) -> str:
    return cp.get_absolute_url()


def command_url(cp) -> str:
    return reverse("stations:charge-point-command", args=[cp.identity])


def flash_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- The forms: each builds a payload the OCPP 1.6 schema accepts ----------------------------

SOON = (timezone.now() + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
EARLIER = (timezone.now() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")

FORM_DATA = {
    "Reset": ({"type": "Hard"}, {"type": "Hard"}),
    "UnlockConnector": ({"connector": "2"}, {"connectorId": 2}),
    "ChangeAvailability": (
        {"connector": "0", "type": "Inoperative"},
        {"connectorId": 0, "type": "Inoperative"},
    ),
    "ChangeConfiguration": (
        {"key": "HeartbeatInterval", "value": "120"},
        {"key": "HeartbeatInterval", "value": "120"},
    ),
    "GetConfiguration": (
        {"keys": "HeartbeatInterval, MeterValueSampleInterval\nHeartbeatInterval"},
        {"key": ["HeartbeatInterval", "MeterValueSampleInterval"]},
    ),
    "ClearCache": ({}, {}),
    "TriggerMessage": (
        {"requested_message": "StatusNotification", "connector": "1"},
        {"requestedMessage": "StatusNotification", "connectorId": 1},
    ),
    "GetDiagnostics": (
        {"location": "ftp://logs.example.com/up/", "start_time": EARLIER, "retries": "3"},
        None,
    ),
    "UpdateFirmware": ({"location": "https://fw.example.com/eve-6.2.bin", "retrieve_date": SOON}, None),
    "SetChargingProfile": (
        {
            "connector": "0",
            "limit": "16.5",
            "unit": "A",
            "purpose": "TxDefaultProfile",
            "stack_level": "1",
            "profile_id": "7",
        },
        None,
    ),
    "ClearChargingProfile": ({"purpose": "TxDefaultProfile"}, {"chargingProfilePurpose": "TxDefaultProfile"}),
    "GetCompositeSchedule": (
        {"connector": "1", "duration": "600", "unit": "W"},
        {"connectorId": 1, "duration": 600, "chargingRateUnit": "W"},
    ),
    "ReserveNow": ({"connector": "1", "id_tag": "04RESERVE01", "expiry": SOON}, None),
    "CancelReservation": (None, None),  # needs a reservation: below
    "SendLocalList": (
        {"list_version": "4", "update_type": "Full", "id_tags": "04LIST0001\n04list0002"},
        None,
    ),
    "GetLocalListVersion": ({}, {}),
    "RemoteStartTransaction": (
        {"connector": "1", "id_tag": "04START01"},
        {"connectorId": 1, "idTag": "04START01"},
    ),
    "RemoteStopTransaction": (None, None),  # needs a session: below
    "DataTransfer": (
        {"vendor_id": "com.alfen", "message_id": "SetLed", "data": '{"led": "green"}'},
        {"vendorId": "com.alfen", "messageId": "SetLed", "data": '{"led": "green"}'},
    ),
}


def test_every_central_system_command_has_a_form():
    assert set(COMMAND_FORMS) == set(CENTRAL_SYSTEM_ACTIONS) == set(FORM_DATA)
    assert set(BULK_FORMS) == {
        "Reset",
        "ChangeAvailability",
        "TriggerMessage",
        "ClearCache",
        "UpdateFirmware",
    }


@pytest.mark.parametrize("action", sorted(FORM_DATA))
def test_each_command_form_builds_a_schema_valid_payload(action, charge_point, operator_admin):
    data, expected = FORM_DATA[action]
    if action == "CancelReservation":
        reservation = ReservationFactory(charge_point=charge_point)
        data, expected = {"reservation": str(reservation.pk)}, {"reservationId": reservation.pk}
    if action == "RemoteStopTransaction":
        tx = TransactionFactory(charge_point=charge_point, connector_number=2)
        data, expected = {"transaction": str(tx.pk)}, {"transactionId": tx.pk}
    if action == "SendLocalList":
        IdTokenFactory(token="04LIST0001")
        IdTokenFactory(token="04LIST0002", status=IdTokenStatus.BLOCKED, parent_token="FLEET")
    cp = ChargePointFactory._meta.model.objects.prefetch_related("connectors").get(pk=charge_point.pk)
    form = COMMAND_FORMS[action](data, charge_points=[cp], user=operator_admin)
    assert form.is_valid(), form.errors
    payload = form.prepare()
    validate_command(cp, action, payload)
    if expected is not None:
        assert payload == expected
    if action == "SetChargingProfile":
        profile = payload["csChargingProfiles"]
        assert payload["connectorId"] == 0
        assert profile["chargingProfileId"] == 7 and profile["stackLevel"] == 1
        assert profile["chargingProfilePurpose"] == "TxDefaultProfile"
        assert profile["chargingSchedule"]["chargingRateUnit"] == "A"
        assert profile["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 16.5}]
    if action == "ReserveNow":
        reservation = Reservation.objects.get()
        assert payload["reservationId"] == reservation.pk
        assert reservation.status == ReservationStatus.PENDING and reservation.id_tag == "04RESERVE01"
        assert payload["expiryDate"].endswith("Z")
    if action == "SendLocalList":
        assert payload["listVersion"] == 4 and payload["updateType"] == "Full"
        assert payload["localAuthorizationList"] == [
            {"idTag": "04LIST0001", "idTagInfo": {"status": "Accepted"}},
            {"idTag": "04LIST0002", "idTagInfo": {"status": "Blocked", "parentIdTag": "FLEET"}},
        ]
    if action == "GetDiagnostics":
        assert payload["location"] == "ftp://logs.example.com/up/" and payload["retries"] == 3
        assert payload["startTime"].endswith("Z") and "stopTime" not in payload
    if action == "UpdateFirmware":
        assert payload["location"] == "https://fw.example.com/eve-6.2.bin"
        assert payload["retrieveDate"].endswith("Z")


@pytest.mark.parametrize(
    ("action", "data", "field"),
    [
        ("Reset", {"type": "Gentle"}, "type"),
        ("UnlockConnector", {"connector": "9"}, "connector"),
        ("ChangeAvailability", {"connector": "1", "type": "Sideways"}, "type"),
        ("ChangeConfiguration", {"key": "x" * 51, "value": "1"}, "key"),
        ("GetDiagnostics", {"location": "not a url"}, "location"),
        (
            "GetDiagnostics",
            {"location": "ftp://x.example/", "start_time": SOON, "stop_time": EARLIER},
            "stop_time",
        ),
        ("UpdateFirmware", {"location": "file:///etc/passwd"}, "location"),
        (
            "SetChargingProfile",
            {
                "connector": "1",
                "limit": "16.55",
                "unit": "A",
                "purpose": "TxDefaultProfile",
                "stack_level": "0",
                "profile_id": "1",
            },
            "limit",
        ),
        (
            "SetChargingProfile",
            {
                "connector": "1",
                "limit": "32",
                "unit": "A",
                "purpose": "ChargePointMaxProfile",
                "stack_level": "0",
                "profile_id": "1",
            },
            "connector",
        ),
        ("ReserveNow", {"connector": "1", "id_tag": "04R", "expiry": EARLIER}, "expiry"),
        ("ReserveNow", {"connector": "1", "id_tag": "X" * 21, "expiry": SOON}, "id_tag"),
        ("SendLocalList", {"list_version": "2", "update_type": "Full", "id_tags": "NOPE-1"}, "id_tags"),
        ("RemoteStartTransaction", {"connector": "1", "id_tag": ""}, "id_tag"),
        ("RemoteStopTransaction", {"transaction": "12345"}, "transaction"),
        ("CancelReservation", {"reservation": "999"}, "reservation"),
        ("DataTransfer", {"vendor_id": ""}, "vendor_id"),
    ],
)
def test_bad_form_input_is_an_error_at_its_field(charge_point, operator_admin, action, data, field):
    form = COMMAND_FORMS[action](data, charge_points=[charge_point], user=operator_admin)
    assert not form.is_valid()
    assert field in form.errors, form.errors


def test_a_read_only_key_cannot_be_changed(charge_point, operator_admin):
    ConfigurationKey.objects.create(
        charge_point=charge_point, key="ChargePointModel", value="Eve", readonly=True
    )
    form = COMMAND_FORMS["ChangeConfiguration"](
        {"key": "ChargePointModel", "value": "X"}, charge_points=[charge_point], user=operator_admin
    )
    assert not form.is_valid()
    assert "read-only" in form.errors["key"][0]


def test_a_schema_complaint_lands_at_its_field(charge_point, operator_admin):
    # The forms' own fields keep out what the schema refuses; make one build a bad payload to
    # see the schema's complaint shown at the field it names.
    form = COMMAND_FORMS["Reset"]({"type": "Soft"}, charge_points=[charge_point], user=operator_admin)
    form.payload_from = lambda data: {"type": "Gentle"}
    assert not form.is_valid()
    assert "type" in form.errors and "Gentle" in form.errors["type"][0]


# --- The charge point page: send, see the outcome -------------------------------------------


def test_charge_point_page_offers_every_command_and_shows_a_chosen_form(login, technician, charge_point):
    client = login(technician)
    html = client.get(page_url(charge_point)).content.decode()
    for action in CENTRAL_SYSTEM_ACTIONS:
        assert f'<option value="{action}"' in html
    html = client.get(page_url(charge_point) + "?command=ChangeAvailability").content.decode()
    assert 'name="action" value="ChangeAvailability"' in html
    assert 'name="type"' in html and "Inoperative" in html
    assert re.search(r'value="0"( selected)?>Whole charge point', html) and 'value="2">Connector 2' in html


def test_command_to_offline_charger_is_recorded_offline_at_once(login, technician, charge_point):
    charge_point.is_connected = False
    charge_point.save()
    response = login(technician).post(
        command_url(charge_point), {"action": "Reset", "type": "Soft"}, follow=True
    )
    assert response.status_code == 200
    command = Command.objects.get()
    assert command.status == CommandStatus.OFFLINE and command.requested_by == technician
    assert command.payload == {"type": "Soft"}
    assert any("offline" in m for m in flash_messages(response))


def test_accepted_command_shows_the_chargers_answer(login, technician, charge_point):
    client = login(technician)

    async def scenario():
        charger = await connected(charge_point.identity)
        request = in_thread(
            client.post, command_url(charge_point), {"action": "GetConfiguration"}, follow=True
        )
        call = await answer(
            charger,
            {
                "configurationKey": [
                    {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                    {"key": "ChargePointModel", "readonly": True, "value": "Eve"},
                ],
                "unknownKey": [],
            },
            "GetConfiguration",
        )
        response = await request
        await charger.close()
        return call, response

    call, response = play(scenario)
    assert call[3] == {}
    assert response.status_code == 200
    assert "?command=GetConfiguration&sent=" in response.redirect_chain[-1][0]
    assert flash_messages(response) == ["GetConfiguration → VW-0001: Accepted (2 keys)."]
    html = response.content.decode()
    assert "HeartbeatInterval" in html and "ChargePointModel" in html and "Read-only" in html
    command = Command.objects.get()
    assert command.status == CommandStatus.ACCEPTED and str(command.pk) == call[1]
    assert command.requested_by == technician
    # ... and again in the commands section, where the page opens.
    assert re.search(rf'data-sent-command="{command.pk}">GetConfiguration → VW-0001: Accepted', html)


def test_rejected_command_says_what_the_charger_answered(login, operator_admin, charge_point):
    client = login(operator_admin)

    async def scenario():
        charger = await connected(charge_point.identity)
        request = in_thread(
            client.post,
            command_url(charge_point),
            {"action": "UnlockConnector", "connector": "1"},
            follow=True,
        )
        call = await answer(charger, {"status": "UnlockFailed"}, "UnlockConnector")
        response = await request
        await charger.close()
        return call, response

    call, response = play(scenario)
    assert call[3] == {"connectorId": 1}
    assert flash_messages(response) == ["UnlockConnector → VW-0001: the charger answered UnlockFailed."]
    assert 'class="alert alert-error"' in response.content.decode()
    assert Command.objects.get().status == CommandStatus.REJECTED


def test_unanswered_command_times_out_and_says_so(login, operator_admin, charge_point, settings):
    settings.OCPP_COMMAND_TIMEOUT = 0.5
    client = login(operator_admin)

    async def scenario():
        charger = await connected(charge_point.identity)
        request = in_thread(client.post, command_url(charge_point), {"action": "ClearCache"}, follow=True)
        call = await charger.receive()  # and never answered
        response = await request
        await charger.close()
        return call, response

    call, response = play(scenario)
    assert call[2] == "ClearCache"
    assert flash_messages(response) == ["ClearCache → VW-0001: the charger did not answer in time."]
    assert Command.objects.get().status == CommandStatus.TIMEOUT


def test_reserve_now_from_the_page_reserves_with_the_reservation_id(login, operator_admin, charge_point):
    client = login(operator_admin)
    data = {"action": "ReserveNow", "connector": "1", "id_tag": "04RES001", "expiry": SOON}

    async def scenario():
        charger = await connected(charge_point.identity)
        request = in_thread(client.post, command_url(charge_point), data, follow=True)
        call = await answer(charger, {"status": "Accepted"}, "ReserveNow")
        response = await request
        await charger.close()
        return call, response

    call, response = play(scenario)
    reservation = Reservation.objects.get()
    assert call[3]["reservationId"] == reservation.pk
    assert reservation.status == ReservationStatus.ACCEPTED
    assert flash_messages(response) == ["ReserveNow → VW-0001: Accepted."]


def test_reservation_not_sent_to_an_offline_charger_is_cancelled(login, operator_admin, charge_point):
    charge_point.is_connected = False
    charge_point.save()
    data = {"action": "ReserveNow", "connector": "1", "id_tag": "04RES001", "expiry": SOON}
    login(operator_admin).post(command_url(charge_point), data)
    assert Command.objects.get().status == CommandStatus.OFFLINE
    assert Reservation.objects.get().status == ReservationStatus.CANCELLED


def test_invalid_form_is_shown_again_with_the_error_at_the_field(login, technician, charge_point):
    response = login(technician).post(
        command_url(charge_point), {"action": "GetDiagnostics", "location": "not a url"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'field has-error">\s*<label for="id_location"', html)
    assert 'value="not a url"' in html
    assert not Command.objects.exists()


def test_unknown_action_is_a_message_not_a_500(login, technician, charge_point):
    response = login(technician).post(command_url(charge_point), {"action": "BootNotification"}, follow=True)
    assert response.status_code == 200
    assert flash_messages(response) == ["“BootNotification” is not a command ChargeDesk can send."]
    assert not Command.objects.exists()


def test_a_reservation_the_service_refuses_is_an_error_at_the_field(login, technician, charge_point):
    ReservationFactory(charge_point=charge_point, connector_number=1)
    response = login(technician).post(
        command_url(charge_point), {"action": "ReserveNow", "connector": "1", "id_tag": "04X", "expiry": SOON}
    )
    assert response.status_code == 200
    assert "reserved already" in str(response.context["command_form"].errors["connector"])
    assert not Command.objects.exists()


def test_drivers_get_403_and_other_operators_404(login, driver, other_operator_admin, charge_point):
    assert login(driver).post(command_url(charge_point), {"action": "ClearCache"}).status_code == 403
    assert (
        login(other_operator_admin).post(command_url(charge_point), {"action": "ClearCache"}).status_code
        == 404
    )
    assert login(other_operator_admin).get(page_url(charge_point)).status_code == 404
    assert not Command.objects.exists()


def test_anonymous_is_sent_to_login(client, charge_point):
    response = client.post(command_url(charge_point), {"action": "ClearCache"})
    assert response.status_code == 302 and reverse("login") in response["Location"]


# --- The charge point page: history, configuration, message log ------------------------------


def test_page_lists_latest_50_commands_configuration_and_latest_100_messages(
    login, operator_admin, charge_point
):
    for n in range(55):
        Command.objects.create(
            charge_point=charge_point,
            action="Reset",
            payload={"type": "Soft"},
            status=CommandStatus.ACCEPTED,
            response={"status": "Accepted"},
            requested_by=operator_admin,
        )
    Command.objects.create(
        charge_point=charge_point,
        action="GetLocalListVersion",
        status=CommandStatus.ACCEPTED,
        response={"listVersion": 12},
    )
    ConfigurationKey.objects.create(charge_point=charge_point, key="MeterValueSampleInterval", value="60")
    now = timezone.now()
    OcppMessage.objects.bulk_create(
        OcppMessage(
            charge_point=charge_point,
            direction="in",
            message_type=2,
            unique_id=f"m{n}",
            action="Heartbeat",
            raw=f'[2, "m{n}", "Heartbeat", {{}}]',
            created_at=now - dt.timedelta(seconds=n),
        )
        for n in range(120)
    )
    response = login(operator_admin).get(page_url(charge_point))
    assert len(response.context["commands"]) == 50
    assert response.context["commands"][0].action == "GetLocalListVersion"
    assert len(response.context["ocpp_messages"]) == 100
    html = response.content.decode()
    assert "list version 12" in html
    assert "admin@voltway.example" in html
    assert "MeterValueSampleInterval" in html
    assert "[2, &quot;m0&quot;, &quot;Heartbeat&quot;, {}]" in html
    assert "m119" not in html


def test_charge_point_page_queries_do_not_grow_with_commands_or_messages(
    login, operator_admin, charge_point, django_assert_max_num_queries
):
    client = login(operator_admin)
    with CaptureQueriesContext(connection) as before:
        client.get(page_url(charge_point))
    for n in range(20):
        Command.objects.create(charge_point=charge_point, action="ClearCache", requested_by=operator_admin)
        ConfigurationKey.objects.create(charge_point=charge_point, key=f"Key{n}", value="1")
        TransactionFactory(charge_point=charge_point, connector_number=1 + n % 2, stopped=n > 1)
    with django_assert_max_num_queries(len(before)):
        client.get(page_url(charge_point))


def test_refresh_button_sends_get_configuration(login, technician, charge_point):
    html = login(technician).get(page_url(charge_point)).content.decode()
    assert re.search(
        r'<input type="hidden" name="action" value="GetConfiguration">\s*<button[^>]*>Refresh', html
    )


# --- Bulk from the dashboard ------------------------------------------------------------------


@pytest.fixture
def fleet(operator, charge_point):
    site = SiteFactory(operator=operator, name="Depot")
    second = ChargePointFactory(site=site, identity="VW-0002")
    ConnectorFactory(charge_point=second, connector_id=1)
    asleep = ChargePointFactory(site=site, identity="VW-0003", is_connected=False)
    ConnectorFactory(charge_point=asleep, connector_id=1)
    return [charge_point, second, asleep]


def test_dashboard_rows_can_be_selected_for_a_bulk_command(login, technician, fleet):
    html = login(technician).get(reverse("stations:dashboard")).content.decode()
    for cp in fleet:
        assert f'name="charge_points" value="{cp.identity}" form="bulk-form"' in html
    for action in BULK_FORMS:
        assert f'<option value="{action}">' in html


def test_bulk_command_asks_for_details_then_sends_to_all_and_lists_each_outcome(login, technician, fleet):
    client = login(technician)
    bulk = reverse("stations:bulk-command")
    identities = [cp.identity for cp in fleet]
    details = client.post(bulk, {"action": "ChangeAvailability", "charge_points": identities})
    assert details.status_code == 200
    assert details.context["charge_points"] == fleet
    assert not Command.objects.exists()

    async def scenario():
        first, second = await connected("VW-0001"), await connected("VW-0002")
        request = in_thread(
            client.post,
            bulk,
            {
                "action": "ChangeAvailability",
                "send": "1",
                "charge_points": identities,
                "connector": "0",
                "type": "Inoperative",
            },
            follow=True,
        )
        calls = await asyncio.gather(
            answer(first, {"status": "Accepted"}, "ChangeAvailability"),
            answer(second, {"status": "Scheduled"}, "ChangeAvailability"),
        )
        response = await request
        await first.close()
        await second.close()
        return calls, response

    calls, response = play(scenario)
    assert [c[3] for c in calls] == [{"connectorId": 0, "type": "Inoperative"}] * 2
    assert response.status_code == 200
    commands = response.context["commands"]
    assert [(c.charge_point.identity, c.status, c.outcome) for c in commands] == [
        ("VW-0001", CommandStatus.ACCEPTED, "Accepted"),
        ("VW-0002", CommandStatus.ACCEPTED, "Scheduled"),
        ("VW-0003", CommandStatus.OFFLINE, "Charger offline"),
    ]
    assert len({c.batch for c in Command.objects.all()}) == 1
    assert all(c.requested_by == technician for c in Command.objects.all())
    html = response.content.decode()
    assert "2 accepted" in html and "1 charger offline" in html


def test_bulk_command_with_bad_details_shows_the_form_again(login, technician, fleet):
    response = login(technician).post(
        reverse("stations:bulk-command"),
        {"action": "UpdateFirmware", "send": "1", "charge_points": ["VW-0001"], "location": "nope"},
    )
    assert response.status_code == 200
    assert "location" in response.context["form"].errors
    assert not Command.objects.exists()


def test_bulk_command_refuses_foreign_charge_points_and_empty_selections(
    login, technician, fleet, other_charge_point
):
    client = login(technician)
    bulk = reverse("stations:bulk-command")
    response = client.post(
        bulk, {"action": "Reset", "send": "1", "type": "Soft", "charge_points": ["VW-0003", "NG-0001"]}
    )
    assert response.status_code == 400 and b"NG-0001" in response.content
    response = client.post(bulk, {"action": "Reset"}, follow=True)
    assert flash_messages(response) == ["Select at least one charge point."]
    response = client.post(bulk, {"action": "UnlockConnector", "charge_points": ["VW-0001"]}, follow=True)
    assert flash_messages(response) == ["Choose a command to send to the selected charge points."]
    assert not Command.objects.exists()


def test_batch_results_are_only_the_operators_own(login, technician, other_operator_admin, fleet):
    client = login(technician)
    client.post(
        reverse("stations:bulk-command"),
        {"action": "ClearCache", "send": "1", "charge_points": ["VW-0003"]},
    )
    batch = Command.objects.get().batch
    url = reverse("stations:command-batch", args=[batch])
    assert client.get(url).status_code == 200
    assert login(other_operator_admin).get(url).status_code == 404
