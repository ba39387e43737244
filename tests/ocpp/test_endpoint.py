"""The OCPP 1.6J endpoint, through the real consumer: admission, frames, errors, storage."""

import asyncio
import json

import pytest

from stations.commands import send_command, send_command_async
from stations.models import ChargePoint, Command, CommandStatus, OcppMessage, StatusChange
from tests.factories import ChargePointFactory, ConnectorFactory, OperatorFactory
from tests.ocpp.conftest import Charger

pytestmark = pytest.mark.django_db(transaction=True)

BOOT = {"chargePointVendor": "Alfen", "chargePointModel": "Eve", "firmwareVersion": "6.1.0", "iccid": "8931"}


@pytest.fixture
def cp(db):
    charge_point = ChargePointFactory(identity="CP-1", is_connected=False)
    ConnectorFactory(charge_point=charge_point, connector_id=1, status="Unknown", status_updated_at=None)
    return charge_point


def test_boot_is_accepted_and_stored(run, cp):
    async def scenario():
        charger = Charger("CP-1")
        connected, subprotocol = await charger.connect()
        assert connected and subprotocol == "ocpp1.6"
        reply = await charger.call("BootNotification", BOOT)
        await charger.close()
        return reply

    reply = run(scenario())
    assert reply[0] == 3 and reply[1] == "m1"
    assert reply[2]["status"] == "Accepted"
    assert reply[2]["interval"] == cp.heartbeat_interval
    assert reply[2]["currentTime"].endswith("Z")
    cp.refresh_from_db()
    assert (cp.vendor, cp.firmware_version, cp.iccid) == ("Alfen", "6.1.0", "8931")
    assert cp.last_boot_at is not None
    assert not cp.is_connected  # closed again
    logged = list(
        OcppMessage.objects.filter(charge_point=cp).order_by("id").values_list("direction", "action")
    )
    assert logged == [("in", "BootNotification"), ("out", "BootNotification")]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"identity": "CP-1", "subprotocols": ("ocpp2.0.1",)}, "no supported subprotocol"),
        ({"identity": "CP-1", "subprotocols": ()}, "no subprotocol"),
        ({"identity": "CP-1", "password": "wrong-password-123456"}, "wrong password"),
        ({"identity": "CP-1", "password": None}, "no credentials"),
        ({"identity": "NOPE-1"}, "unknown charger"),
    ],
)
def test_refused_before_accept(run, cp, kwargs, reason):
    async def scenario():
        charger = Charger(**kwargs)
        connected, _ = await charger.connect()
        await charger.comm.wait()
        return connected

    assert run(scenario()) is False, reason
    cp.refresh_from_db()
    assert not cp.is_connected


def test_one_charger_cannot_act_as_another(run, cp):
    ChargePointFactory(identity="CP-2")

    async def scenario():
        # CP-2's URL with CP-1's (valid) credentials.
        charger = Charger("CP-1", path="/ocpp/CP-2")
        connected, _ = await charger.connect()
        return connected

    assert run(scenario()) is False


def test_unknown_charger_admitted_as_pending_where_operator_accepts(run, settings):
    OperatorFactory(slug="open-net", accept_unknown_chargers=True)
    settings.CHARGEDESK_UNKNOWN_CHARGERS_OPERATOR = "open-net"

    async def scenario():
        charger = Charger("NEW-77")
        connected, _ = await charger.connect()
        boot = await charger.call("BootNotification", BOOT)
        status = await charger.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        )
        beat = await charger.call("Heartbeat", {})
        await charger.close()
        return connected, boot, status, beat

    connected, boot, status, beat = run(scenario())
    assert connected
    assert boot[2]["status"] == "Pending"
    assert status[0] == 4 and status[2] == "SecurityError"
    assert beat[0] == 3
    new = ChargePoint.objects.get(identity="NEW-77")
    assert new.registration_status == "Pending"
    assert new.operator.slug == "open-net"
    assert new.check_password("charger-secret-0123456789")


def test_status_notification_updates_connector_and_history(run, cp):
    async def scenario():
        charger = Charger("CP-1")
        await charger.connect()
        payload = {
            "connectorId": 1,
            "errorCode": "GroundFailure",
            "status": "Faulted",
            "info": "RCD tripped",
            "vendorErrorCode": "E42",
            "timestamp": "2026-11-25T10:00:00Z",
        }
        first = await charger.call("StatusNotification", payload)
        again = await charger.call("StatusNotification", payload)  # re-sent after a reconnect
        await charger.close()
        return first, again

    first, again = run(scenario())
    assert first == [3, "m1", {}] and again == [3, "m2", {}]
    connector = cp.connectors.get(connector_id=1)
    assert (connector.status, connector.error_code, connector.vendor_error_code) == (
        "Faulted",
        "GroundFailure",
        "E42",
    )
    assert connector.status_updated_at.isoformat() == "2026-11-25T10:00:00+00:00"
    assert StatusChange.objects.filter(charge_point=cp, connector_number=1).count() == 1


@pytest.mark.parametrize(
    ("frame", "code", "unique_id"),
    [
        ("this is not json", "FormationViolation", "-1"),
        ('{"a": 1}', "FormationViolation", "-1"),
        ('[2, "x1", "Heartbeat"]', "FormationViolation", "x1"),
        ('[7, "x2", "Heartbeat", {}]', "FormationViolation", "x2"),
        ('[2, "x3", "FlyToTheMoon", {}]', "NotImplemented", "x3"),
        ('[2, "x4", "Reset", {"type": "Hard"}]', "NotSupported", "x4"),
        ('[2, "x5", "StatusNotification", {"connectorId": 1, "status": "Available"}]', "ProtocolError", "x5"),
        (
            '[2, "x6", "StatusNotification", {"connectorId": "one", "errorCode": "NoError", "status": "Available"}]',
            "TypeConstraintViolation",
            "x6",
        ),
        (
            '[2, "x7", "StatusNotification", {"connectorId": 1, "errorCode": "Oops", "status": "Available"}]',
            "PropertyConstraintViolation",
            "x7",
        ),
        ('[2, "x8", "Heartbeat", {"extra": true}]', "FormationViolation", "x8"),
        (
            '[2, "x9", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available",'
            ' "timestamp": "yesterday"}]',
            "PropertyConstraintViolation",
            "x9",
        ),
    ],
)
def test_bad_frames_get_the_callerror_the_spec_names_and_the_connection_lives(
    run, cp, frame, code, unique_id
):
    async def scenario():
        charger = Charger("CP-1")
        await charger.connect()
        error = await charger.raw(frame)
        still_alive = await charger.call("Heartbeat", {})
        await charger.close()
        return error, still_alive

    error, still_alive = run(scenario())
    assert error[0] == 4
    assert error[1] == unique_id
    assert error[2] == code
    assert isinstance(error[3], str) and error[3]
    assert still_alive[0] == 3
    assert OcppMessage.objects.filter(charge_point=cp, direction="in", raw=frame).exists()


def test_oversized_frame_is_refused(run, cp, settings):
    settings.OCPP_MAX_FRAME_BYTES = 2048

    async def scenario():
        charger = Charger("CP-1")
        await charger.connect()
        error = await charger.raw(
            '[2, "big", "DataTransfer", {"vendorId": "x", "data": "' + "A" * 5000 + '"}]'
        )
        alive = await charger.call("Heartbeat", {})
        await charger.close()
        return error, alive

    error, alive = run(scenario())
    assert error[0] == 4 and error[2] == "FormationViolation" and "larger" in error[3]
    assert alive[0] == 3


def test_reconnect_replaces_the_old_connection_and_keeps_charger_online(run, cp):
    async def scenario():
        old = Charger("CP-1")
        await old.connect()
        new = Charger("CP-1")
        await new.connect()
        closed = await old.comm.receive_output(timeout=5)
        reply = await new.call("Heartbeat", {})
        online_mid = await asyncio.to_thread(lambda: ChargePoint.objects.get(pk=cp.pk).is_connected)
        await new.close()
        return closed, reply, online_mid

    closed, reply, online_mid = run(scenario())
    assert closed["type"] == "websocket.close"
    assert reply[0] == 3
    assert online_mid is True
    cp.refresh_from_db()
    assert cp.is_connected is False


def test_command_reaches_charger_and_its_answer_comes_back(run, cp):
    result = {}

    async def scenario():
        charger = Charger("CP-1")
        await charger.connect()
        task = asyncio.create_task(send_command_async(cp, "Reset", {"type": "Soft"}, timeout=10))
        call = await charger.receive()
        await charger.comm.send_to(text_data=f'[3, "{call[1]}", {{"status": "Accepted"}}]')
        result["cmd"] = await task
        await charger.close()
        return call

    call = run(scenario())
    assert call[0] == 2 and call[2] == "Reset" and call[3] == {"type": "Soft"}
    command = result["cmd"]
    assert command.status == CommandStatus.ACCEPTED
    assert command.response == {"status": "Accepted"}
    assert str(command.pk) == call[1]
    assert command.sent_at and command.completed_at


def test_command_rejected_errored_and_timed_out(run, cp):
    results = []

    async def scenario():
        charger = Charger("CP-1")
        await charger.connect()

        async def issue():
            # Issued together: the second and third wait until the one in flight is answered.
            return await asyncio.gather(
                send_command_async(cp, "UnlockConnector", {"connectorId": 1}, timeout=5),
                send_command_async(cp, "ClearCache", {}, timeout=5),
                send_command_async(cp, "GetLocalListVersion", {}, timeout=1),
            )

        task = asyncio.create_task(issue())
        # One CALL at a time, in whatever order the three reached the charger's queue: the
        # next comes only once the one in flight is answered (or has timed out).
        seen, alone = [], []
        for _ in range(3):
            frame = await charger.receive()
            seen.append(frame[2])
            alone.append(await charger.comm.receive_nothing(timeout=0.2))
            if frame[2] == "UnlockConnector":
                await charger.comm.send_to(text_data=f'[3, "{frame[1]}", {{"status": "UnlockFailed"}}]')
            elif frame[2] == "ClearCache":
                await charger.comm.send_to(text_data=f'[4, "{frame[1]}", "InternalError", "disk full", {{}}]')
            # GetLocalListVersion is never answered.
        results.extend(await task)
        await charger.close()
        return seen, alone

    seen, alone = run(scenario())
    assert sorted(seen) == ["ClearCache", "GetLocalListVersion", "UnlockConnector"]
    assert all(alone)  # never a second CALL while one was in flight
    assert [c.status for c in results] == [CommandStatus.REJECTED, CommandStatus.ERROR, CommandStatus.TIMEOUT]
    assert results[0].outcome == "UnlockFailed"
    assert results[1].error_code == "InternalError" and results[1].error_description == "disk full"


def test_command_to_offline_charger_is_recorded_offline_at_once(cp):
    command = send_command(cp, "Reset", {"type": "Hard"}, timeout=5)
    assert command.status == CommandStatus.OFFLINE
    assert Command.objects.get(pk=command.pk).completed_at is not None


def test_bad_command_payload_is_a_validation_error(cp):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as info:
        send_command(cp, "Reset", {"type": "Gentle"})
    assert "payload" in info.value.message_dict
    with pytest.raises(ValidationError):
        send_command(cp, "BootNotification", {})


def test_get_configuration_result_is_stored(run, cp):
    async def scenario():
        charger = Charger("CP-1")
        await charger.connect()
        task = asyncio.create_task(send_command_async(cp, "GetConfiguration", {}, timeout=10))
        call = await charger.receive()
        answer = {
            "configurationKey": [
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
            ],
            "unknownKey": [],
        }
        await charger.comm.send_to(text_data=json.dumps([3, call[1], answer]))
        await task
        await charger.close()

    run(scenario())
    keys = dict(cp.configuration.values_list("key", "readonly"))
    assert keys == {"HeartbeatInterval": False, "NumberOfConnectors": True}


# Regressions for the three crashes atheris found in protocol.py (commit 54866dc). Each frame is
# answered (or, a CALLERROR, taken) as the protocol says, and the connection goes on.
DEEP = 1000  # orjson reads arrays nested up to 1024 deep, far past Python's recursion limit


def test_a_nul_nested_a_thousand_deep_gets_property_constraint_violation(run, cp):
    frame = (
        '[2, "nul", "DataTransfer", {"vendorId": "x", "data": ' + "[" * DEEP + '"\\u0000"' + "]" * DEEP + "}]"
    )

    async def scenario():
        charger = Charger("CP-1")
        await charger.connect()
        error = await charger.raw(frame)
        alive = await charger.call("Heartbeat", {})
        await charger.close()
        return error, alive

    error, alive = run(scenario())
    assert error[:3] == [4, "nul", "PropertyConstraintViolation"]
    assert "NUL" in error[3]
    assert alive[0] == 3
    logged = OcppMessage.objects.get(charge_point=cp, direction="in", unique_id="nul")
    assert "\x00" not in logged.raw


def test_a_callerror_whose_description_is_nested_a_thousand_deep_ends_the_command_as_an_error(run, cp):
    result = {}

    async def scenario():
        charger = Charger("CP-1")
        await charger.connect()
        task = asyncio.create_task(send_command_async(cp, "ClearCache", {}, timeout=10))
        call = await charger.receive()
        description = "[" * DEEP + "]" * DEEP
        await charger.comm.send_to(text_data=f'[4, "{call[1]}", "InternalError", {description}, {{}}]')
        result["cmd"] = await task
        # A CALLERROR is never answered; the charger's next CALL is.
        nothing = await charger.comm.receive_nothing(timeout=0.2)
        alive = await charger.call("Heartbeat", {})
        await charger.close()
        return nothing, alive

    nothing, alive = run(scenario())
    command = result["cmd"]
    assert command.status == CommandStatus.ERROR
    assert command.error_code == "InternalError"
    assert isinstance(command.error_description, str) and command.error_description
    assert nothing and alive[0] == 3


def test_an_action_name_too_long_for_a_file_name_is_not_implemented(run, cp):
    from stations.ocpp import protocol

    action = "A" * 4096  # past any file system's name limit (255 bytes)
    for name in ("Heartbeat", "HeartbeatResponse"):
        protocol.has_schema("ocpp1.6", name)
    cached = protocol._compiled.cache_info().currsize

    async def scenario():
        charger = Charger("CP-1")
        await charger.connect()
        error = await charger.call(action, {}, unique_id="long")
        other = await charger.call(action[:-1] + "B", {}, unique_id="long2")
        alive = await charger.call("Heartbeat", {})
        await charger.close()
        return error, other, alive

    error, other, alive = run(scenario())
    assert error[:3] == [4, "long", "NotImplemented"]
    assert other[:3] == [4, "long2", "NotImplemented"]
    assert alive[0] == 3
    # Names from the wire are not kept: only real schemas are compiled and cached.
    assert protocol._compiled.cache_info().currsize == cached
