"""Drivers start and stop charging from afar: the use case (sessions/charging.py) with a charger
played by hand over the real OCPP consumer, the API and the account page."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from sessions import charging
from sessions.charging import Reason
from sessions.models import IdTokenStatus, IdTokenType, Transaction, TransactionStatus
from stations.models import Command, CommandStatus, ConnectorStatus
from tests.factories import IdTokenFactory
from tests.sessions.factories import ReservationFactory, TransactionFactory
from tests.stations.test_commands_ui import (
    answer,
    connected,
    in_thread,
    play,
)

pytestmark = pytest.mark.django_db(transaction=True)

SESSIONS = "/api/v1/me/sessions/"
NOW = "2026-03-01T08:00:00Z"


@pytest.fixture(autouse=True)
def _short_command_timeout(settings):
    settings.OCPP_COMMAND_TIMEOUT = 3


@pytest.fixture
def card(driver):
    return IdTokenFactory(driver=driver, token="04ALICE01", type=IdTokenType.RFID)


@pytest.fixture
def app_token(driver, card):
    return IdTokenFactory(driver=driver, token="APP-ALICE", type=IdTokenType.APP)


async def start_when_asked(charger, *, status="Accepted", start=True, meter_start=1000):
    """Play a charger that answers RemoteStartTransaction and then starts the session."""
    call = await answer(charger, {"status": status}, "RemoteStartTransaction")
    reply = None
    if start:
        reply = await charger.call(
            "StartTransaction",
            {
                "connectorId": call[3]["connectorId"],
                "idTag": call[3]["idTag"],
                "meterStart": meter_start,
                "timestamp": NOW,
            },
        )
    return call, reply


def test_remote_start_returns_the_session_the_charger_starts(charge_point, driver, app_token):
    async def scenario():
        charger = await connected(charge_point.identity)
        outcome = in_thread(
            charging.remote_start,
            charge_point=charge_point,
            connector_id=2,
            id_tag=app_token,
            requested_by=driver,
        )
        call, reply = await start_when_asked(charger)
        result = await outcome
        await charger.close()
        return call, reply, result

    call, reply, outcome = play(scenario)
    assert call[3] == {"connectorId": 2, "idTag": "APP-ALICE"}
    assert outcome.ok, outcome.reason
    tx = outcome.transaction
    assert reply[2]["transactionId"] == tx.pk and reply[2]["idTagInfo"]["status"] == "Accepted"
    assert (tx.connector_number, tx.id_tag, tx.driver) == (2, "APP-ALICE", driver)
    assert outcome.command.status == CommandStatus.ACCEPTED and outcome.command.requested_by == driver


@pytest.mark.parametrize(
    ("charger_answer", "code"),
    [({"status": "Rejected"}, Reason.REJECTED), (None, Reason.TIMEOUT)],
)
def test_remote_start_refused_or_unanswered(charge_point, driver, card, settings, charger_answer, code):
    settings.OCPP_COMMAND_TIMEOUT = 0.5

    async def scenario():
        charger = await connected(charge_point.identity)
        outcome = in_thread(
            charging.remote_start, charge_point=charge_point, connector_id=1, id_tag=card, requested_by=driver
        )
        if charger_answer is None:
            await charger.receive()
        else:
            await answer(charger, charger_answer, "RemoteStartTransaction")
        result = await outcome
        await charger.close()
        return result

    outcome = play(scenario)
    assert not outcome.ok and outcome.code == code and outcome.reason
    assert not Transaction.objects.exists()


def test_accepted_but_no_session_in_time(charge_point, driver, card, settings):
    settings.OCPP_COMMAND_TIMEOUT = 0.6

    async def scenario():
        charger = await connected(charge_point.identity)
        outcome = in_thread(
            charging.remote_start, charge_point=charge_point, connector_id=1, id_tag=card, requested_by=driver
        )
        await start_when_asked(charger, start=False)
        result = await outcome
        await charger.close()
        return result

    outcome = play(scenario)
    assert outcome.code == Reason.NO_SESSION
    assert "plugged in" in outcome.reason
    assert outcome.command.status == CommandStatus.ACCEPTED


def test_an_older_session_on_the_connector_is_not_taken_for_the_new_one(charge_point, driver, card, settings):
    settings.OCPP_COMMAND_TIMEOUT = 0.6
    TransactionFactory(charge_point=charge_point, connector_number=1, id_token=card, stopped=True)

    async def scenario():
        charger = await connected(charge_point.identity)
        outcome = in_thread(
            charging.remote_start, charge_point=charge_point, connector_id=1, id_tag=card, requested_by=driver
        )
        await start_when_asked(charger, start=False)
        result = await outcome
        await charger.close()
        return result

    assert play(scenario).code == Reason.NO_SESSION


def test_offline_charger_is_said_at_once_without_a_command(charge_point, driver, card):
    charge_point.is_connected = False
    charge_point.save()
    outcome = charging.remote_start(
        charge_point=charge_point, connector_id=1, id_tag=card, requested_by=driver
    )
    assert outcome.code == Reason.OFFLINE
    assert not Command.objects.exists()


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (ConnectorStatus.CHARGING, Reason.CONNECTOR_BUSY),
        (ConnectorStatus.SUSPENDED_EV, Reason.CONNECTOR_BUSY),
        (ConnectorStatus.FAULTED, Reason.CONNECTOR_FAULTED),
        (ConnectorStatus.UNAVAILABLE, Reason.CONNECTOR_UNAVAILABLE),
        (ConnectorStatus.RESERVED, Reason.CONNECTOR_RESERVED),
    ],
)
def test_connector_that_cannot_charge_is_refused_before_sending(charge_point, driver, card, status, code):
    charge_point.connectors.filter(connector_id=1).update(status=status)
    outcome = charging.remote_start(
        charge_point=charge_point, connector_id=1, id_tag=card, requested_by=driver
    )
    assert outcome.code == code, outcome.reason
    assert not Command.objects.exists()


def test_connector_with_a_running_session_or_unknown_is_refused(charge_point, driver, card, other_driver):
    TransactionFactory(
        charge_point=charge_point, connector_number=1, id_token=IdTokenFactory(driver=other_driver)
    )
    outcome = charging.remote_start(
        charge_point=charge_point, connector_id=1, id_tag=card, requested_by=driver
    )
    assert outcome.code == Reason.CONNECTOR_BUSY
    outcome = charging.remote_start(
        charge_point=charge_point, connector_id=9, id_tag=card, requested_by=driver
    )
    assert outcome.code == Reason.CONNECTOR_UNKNOWN
    assert not Command.objects.exists()


def test_reserved_connector_is_free_for_the_token_it_is_reserved_for(charge_point, driver, card):
    charge_point.connectors.filter(connector_id=1).update(status=ConnectorStatus.RESERVED)
    ReservationFactory(charge_point=charge_point, connector_number=1, id_token=card)
    charge_point.is_connected = False  # stops right after the checks that matter here
    charge_point.save()
    outcome = charging.remote_start(
        charge_point=charge_point, connector_id=1, id_tag=card, requested_by=driver
    )
    assert outcome.code == Reason.OFFLINE


@pytest.mark.parametrize(
    "token_kwargs",
    [
        {"status": IdTokenStatus.BLOCKED},
        {"status": IdTokenStatus.INVALID},
        {"expires_at": timezone.now() - dt.timedelta(days=1)},
    ],
)
def test_blocked_or_expired_token_is_refused(charge_point, driver, token_kwargs):
    token = IdTokenFactory(driver=driver, **token_kwargs)
    outcome = charging.remote_start(
        charge_point=charge_point, connector_id=1, id_tag=token, requested_by=driver
    )
    assert outcome.code == Reason.TOKEN_NOT_ACCEPTED
    assert not Command.objects.exists()


def test_driver_cannot_charge_with_another_drivers_token(charge_point, driver, other_driver):
    token = IdTokenFactory(driver=other_driver, token="04BOB")
    outcome = charging.remote_start(
        charge_point=charge_point, connector_id=1, id_tag="04bob", requested_by=driver
    )
    assert outcome.code == Reason.TOKEN_NOT_ACCEPTED and "not yours" in outcome.reason
    assert token.pk and not Command.objects.exists()


def test_token_charging_elsewhere_is_refused(charge_point, other_charge_point, driver, card):
    TransactionFactory(charge_point=other_charge_point, connector_number=1, id_token=card)
    outcome = charging.remote_start(
        charge_point=charge_point, connector_id=1, id_tag=card, requested_by=driver
    )
    assert outcome.code == Reason.TOKEN_IN_USE


def test_drivers_default_token_is_the_first_accepted_app_token(driver, other_driver):
    assert charging.driver_token(driver) is None
    card = IdTokenFactory(driver=driver, token="04CARD")
    assert charging.driver_token(driver) == card
    IdTokenFactory(driver=driver, token="APP-OLD", type=IdTokenType.APP, status=IdTokenStatus.BLOCKED)
    app = IdTokenFactory(driver=driver, token="APP-NEW", type=IdTokenType.APP)
    assert charging.driver_token(driver) == app
    assert charging.driver_token(driver, card.pk) == card
    assert charging.driver_token(driver, IdTokenFactory(driver=other_driver).pk) is None


# --- Stop -------------------------------------------------------------------------------------


def test_remote_stop_waits_for_the_charger_to_stop(charge_point, driver, card):
    tx = TransactionFactory(charge_point=charge_point, connector_number=1, id_token=card, meter_start=1000)

    async def scenario():
        charger = await connected(charge_point.identity)
        outcome = in_thread(charging.remote_stop, transaction=tx, requested_by=driver)
        call = await answer(charger, {"status": "Accepted"}, "RemoteStopTransaction")
        await charger.call(
            "StopTransaction",
            {"transactionId": tx.pk, "meterStop": 8400, "timestamp": NOW, "reason": "Remote"},
        )
        result = await outcome
        await charger.close()
        return call, result

    call, outcome = play(scenario)
    assert call[3] == {"transactionId": tx.pk}
    assert outcome.ok
    assert outcome.transaction.status == TransactionStatus.COMPLETED
    assert outcome.transaction.stop_reason == "Remote"


def test_driver_cannot_stop_another_drivers_session(charge_point, driver, other_driver):
    tx = TransactionFactory(charge_point=charge_point, id_token=IdTokenFactory(driver=other_driver))
    outcome = charging.remote_stop(transaction=tx, requested_by=driver)
    assert outcome.code == Reason.NOT_YOURS
    assert not Command.objects.exists()


def test_stopping_a_finished_session_is_refused(charge_point, driver, card):
    tx = TransactionFactory(charge_point=charge_point, id_token=card, stopped=True)
    assert charging.remote_stop(transaction=tx, requested_by=driver).code == Reason.NOT_ACTIVE


# --- The API ----------------------------------------------------------------------------------


def test_api_start_returns_201_with_the_session(api_as, charge_point, driver, app_token):
    client = api_as(driver)

    async def scenario():
        charger = await connected(charge_point.identity)
        request = in_thread(client.post, SESSIONS, {"charge_point": "VW-0001", "connector_id": 1})
        await start_when_asked(charger)
        response = await request
        await charger.close()
        return response

    response = play(scenario)
    assert response.status_code == 201, response.json()
    body = response.json()
    tx = Transaction.objects.get()
    assert body["id"] == body["transaction_id"] == tx.pk
    assert body["charge_point"] == "VW-0001" and body["connector_id"] == 1
    assert body["status"] == "active" and body["started_at"]
    assert body["id_token"] == "APP-ALICE"


def test_api_start_with_a_chosen_token(api_as, charge_point, driver, card, app_token):
    client = api_as(driver)

    async def scenario():
        charger = await connected(charge_point.identity)
        request = in_thread(
            client.post, SESSIONS, {"charge_point": "VW-0001", "connector_id": 2, "id_token": card.pk}
        )
        call, _ = await start_when_asked(charger)
        response = await request
        await charger.close()
        return call, response

    call, response = play(scenario)
    assert call[3]["idTag"] == "04ALICE01"
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("setup", "status", "code"),
    [
        ("offline", 503, "offline"),
        ("faulted", 409, "connector_faulted"),
        ("charging", 409, "connector_busy"),
        ("blocked", 400, "token_not_accepted"),
        ("no_token", 400, "no_token"),
    ],
)
def test_api_start_failures_say_why(api_as, charge_point, driver, setup, status, code):
    if setup != "no_token":
        IdTokenFactory(driver=driver, status=IdTokenStatus.BLOCKED if setup == "blocked" else "Accepted")
    if setup == "offline":
        charge_point.is_connected = False
        charge_point.save()
    if setup in ("faulted", "charging"):
        charge_point.connectors.update(status=setup.capitalize())
    response = api_as(driver).post(SESSIONS, {"charge_point": "VW-0001", "connector_id": 1})
    assert response.status_code == status, response.json()
    assert response.json()["code"] == code and response.json()["detail"]
    assert not Command.objects.exists()


def test_api_start_timeout_and_rejection(api_as, charge_point, driver, card, settings):
    settings.OCPP_COMMAND_TIMEOUT = 0.5
    client = api_as(driver)

    async def scenario():
        charger = await connected(charge_point.identity)
        rejected = in_thread(client.post, SESSIONS, {"charge_point": "VW-0001", "connector_id": 1})
        await answer(charger, {"status": "Rejected"}, "RemoteStartTransaction")
        first = await rejected
        unanswered = in_thread(client.post, SESSIONS, {"charge_point": "VW-0001", "connector_id": 1})
        await charger.receive()
        second = await unanswered
        await charger.close()
        return first, second

    first, second = play(scenario)
    assert (first.status_code, first.json()["code"]) == (409, "rejected")
    assert (second.status_code, second.json()["code"]) == (503, "timeout")


def test_api_start_validates_its_fields(api_as, driver, charge_point, other_driver):
    client = api_as(driver)
    response = client.post(SESSIONS, {"charge_point": "NOPE", "connector_id": 0})
    assert response.status_code == 400
    assert set(response.json()) == {"charge_point", "connector_id"}
    foreign = IdTokenFactory(driver=other_driver)
    response = client.post(SESSIONS, {"charge_point": "VW-0001", "connector_id": 1, "id_token": foreign.pk})
    assert response.status_code == 400 and "id_token" in response.json()


def test_api_lists_only_the_drivers_own_sessions_newest_first(
    api_as, charge_point, driver, other_driver, card
):
    older = TransactionFactory(
        charge_point=charge_point,
        id_token=card,
        stopped=True,
        started_at=timezone.now() - dt.timedelta(days=2),
    )
    newer = TransactionFactory(
        charge_point=charge_point, connector_number=2, id_token=card, last_power_w=7200
    )
    newer.last_meter_wh = newer.meter_start + 2500
    newer.save()
    theirs = TransactionFactory(charge_point=charge_point, id_token=IdTokenFactory(driver=other_driver))
    client = api_as(driver)
    body = client.get(SESSIONS).json()
    assert [s["id"] for s in body["results"]] == [newer.pk, older.pk]
    running, done = body["results"]
    assert running["energy_kwh"] == "2.500" and running["power_kw"] == "7.200"
    assert running["duration_s"] >= 7199 and running["status"] == "active"
    assert done["energy_kwh"] == "7.400" and done["power_kw"] is None and done["duration_s"] == 3600
    assert client.get(f"{SESSIONS}{newer.pk}/").json()["transaction_id"] == newer.pk
    assert client.get(f"{SESSIONS}{theirs.pk}/").status_code == 404


def test_api_stop_of_own_session(api_as, charge_point, driver, card):
    tx = TransactionFactory(charge_point=charge_point, id_token=card)
    client = api_as(driver)

    async def scenario():
        charger = await connected(charge_point.identity)
        request = in_thread(client.post, f"{SESSIONS}{tx.pk}/stop/")
        await answer(charger, {"status": "Accepted"}, "RemoteStopTransaction")
        await charger.call("StopTransaction", {"transactionId": tx.pk, "meterStop": 200000, "timestamp": NOW})
        response = await request
        await charger.close()
        return response

    response = play(scenario)
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "completed" and response.json()["stopped_at"]


def test_api_stop_accepted_but_not_yet_reported_is_202(api_as, charge_point, driver, card, settings):
    settings.OCPP_COMMAND_TIMEOUT = 0.5
    tx = TransactionFactory(charge_point=charge_point, id_token=card)
    client = api_as(driver)

    async def scenario():
        charger = await connected(charge_point.identity)
        request = in_thread(client.post, f"{SESSIONS}{tx.pk}/stop/")
        await answer(charger, {"status": "Accepted"}, "RemoteStopTransaction")
        response = await request
        await charger.close()
        return response

    response = play(scenario)
    assert response.status_code == 202 and response.json()["status"] == "active"


def test_driver_cannot_stop_another_drivers_session_through_the_api(
    api_as, charge_point, driver, other_driver
):
    theirs = TransactionFactory(charge_point=charge_point, id_token=IdTokenFactory(driver=other_driver))
    response = api_as(driver).post(f"{SESSIONS}{theirs.pk}/stop/")
    assert response.status_code == 404
    assert not Command.objects.exists()
    theirs.refresh_from_db()
    assert theirs.status == TransactionStatus.ACTIVE


def test_operator_staff_have_no_driver_sessions(api_as, operator_admin):
    assert api_as(operator_admin).get(SESSIONS).status_code == 403
    assert api_as(operator_admin).post(SESSIONS, {"charge_point": "X", "connector_id": 1}).status_code == 403


# --- The account page -------------------------------------------------------------------------


def test_account_page_lists_sessions_with_a_stop_button_on_active_ones(login, charge_point, driver, card):
    done = TransactionFactory(charge_point=charge_point, id_token=card, stopped=True)
    running = TransactionFactory(
        charge_point=charge_point, connector_number=2, id_token=card, last_power_w=11000
    )
    html = login(driver).get(reverse("account:account")).content.decode()
    assert "Start charging" in html
    assert reverse("account:stop-charging", args=[running.pk]) in html
    assert reverse("account:stop-charging", args=[done.pk]) not in html
    assert "7.40 kWh" in html and "11.0 kW" in html
    assert "No charging sessions yet" not in html


def test_account_page_start_success(login, charge_point, driver, card):
    client = login(driver)

    async def scenario():
        charger = await connected(charge_point.identity)
        request = in_thread(
            client.post,
            reverse("account:start-charging"),
            {"charge_point": "vw-0001", "connector": "1", "id_token": ""},
            follow=True,
        )
        await start_when_asked(charger)
        response = await request
        await charger.close()
        return response

    response = play(scenario)
    assert [str(m) for m in response.context["messages"]] == ["Charging started at VW-0001, connector 1."]
    assert Transaction.objects.get().driver == driver


def test_account_page_start_failure_is_a_message(login, charge_point, driver, card):
    charge_point.is_connected = False
    charge_point.save()
    response = login(driver).post(
        reverse("account:start-charging"), {"charge_point": "VW-0001", "connector": "1"}
    )
    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == [
        "Charging did not start: The charge point VW-0001 is offline."
    ]


def test_account_page_start_form_errors_at_the_fields(login, driver, card):
    response = login(driver).post(
        reverse("account:start-charging"), {"charge_point": "NOPE", "connector": "0"}
    )
    assert response.status_code == 200
    assert set(response.context["start_form"].errors) == {"charge_point", "connector"}


def test_account_page_stop_of_another_drivers_session_is_404(login, charge_point, driver, other_driver):
    theirs = TransactionFactory(charge_point=charge_point, id_token=IdTokenFactory(driver=other_driver))
    assert login(driver).post(reverse("account:stop-charging", args=[theirs.pk])).status_code == 404
    assert not Command.objects.exists()
