"""End to end on the real stack: a uvicorn process with the Redis channel layer and
PostgreSQL, chargers over TCP, commands from other processes."""

import asyncio
import base64
import datetime as dt
import json
import sys
from pathlib import Path

import pytest
import websockets
from ocpp.v16 import call

from stations.models import ChargePoint, Command, CommandStatus
from tests.factories import CHARGER_PASSWORD, ChargePointFactory, ConnectorFactory

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.live]

ROOT = Path(__file__).resolve().parents[2]
BOOT = {"chargePointVendor": "ABB", "chargePointModel": "Terra AC"}


def ws_url(base: str, identity: str) -> str:
    return base.replace("http://", "ws://") + f"/ocpp/{identity}"


def auth(identity: str, password: str = CHARGER_PASSWORD) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{identity}:{password}".encode()).decode()}


@pytest.fixture
def charge_point(transactional_db):
    cp = ChargePointFactory(identity="E2E-1", is_connected=False)
    ConnectorFactory(charge_point=cp, connector_id=1)
    return cp


def test_command_from_a_management_command_process_reaches_the_charger_through_redis(
    asgi_process, charge_point
):
    base, env = asgi_process

    async def scenario():
        async with websockets.connect(
            ws_url(base, "E2E-1"), subprotocols=["ocpp1.6"], additional_headers=auth("E2E-1")
        ) as ws:
            await ws.send(json.dumps([2, "b1", "BootNotification", BOOT]))
            boot = json.loads(await ws.recv())
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "manage.py", "ocpp_command", "E2E-1", "--action", "Reset",
                "--payload", '{"type": "Soft"}', "--timeout", "20",
                cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            call = json.loads(await asyncio.wait_for(ws.recv(), 60))
            await ws.send(json.dumps([3, call[1], {"status": "Accepted"}]))
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            return boot, call, proc.returncode, out.decode(), err.decode()

    boot, call, returncode, out, err = asyncio.run(scenario())
    assert boot[2]["status"] == "Accepted"
    assert call[2:] == ["Reset", {"type": "Soft"}]
    assert returncode == 0, err
    assert "E2E-1\taccepted\tAccepted" in out
    command = Command.objects.get(pk=call[1])
    assert command.status == CommandStatus.ACCEPTED


def test_unknown_charger_and_wrong_password_are_refused_over_tcp(asgi_process, charge_point):
    base, _ = asgi_process

    async def attempt(identity, password):
        try:
            async with websockets.connect(
                ws_url(base, identity), subprotocols=["ocpp1.6"], additional_headers=auth(identity, password)
            ):
                return "accepted"
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(attempt("E2E-1", "not-the-password-000")) == 403
    assert asyncio.run(attempt("NOBODY-9", CHARGER_PASSWORD)) == 403
    assert asyncio.run(attempt("E2E-1", CHARGER_PASSWORD)) == "accepted"


def test_offline_after_disconnect_and_command_then_says_offline(asgi_process, charge_point):
    base, _ = asgi_process

    async def scenario():
        async with websockets.connect(
            ws_url(base, "E2E-1"), subprotocols=["ocpp1.6"], additional_headers=auth("E2E-1")
        ) as ws:
            await ws.send(json.dumps([2, "h1", "Heartbeat", {}]))
            await ws.recv()
        await asyncio.sleep(0.5)

    asyncio.run(scenario())
    charge_point.refresh_from_db()
    assert charge_point.is_connected is False
    from stations.commands import send_command

    assert (
        send_command(ChargePoint.objects.get(pk=charge_point.pk), "ClearCache", {}).status
        == CommandStatus.OFFLINE
    )


def test_simulated_charger_full_session_over_tcp(asgi_process, charge_point):
    """Boot, authorise, a session with meter values, stop; then a re-sent StopTransaction
    changes nothing, and a remote command goes out and is answered."""
    from sessions.models import MeterSample, Transaction
    from stations.simulator import SimulatedChargePoint
    from tests.factories import IdTokenFactory

    base, _ = asgi_process
    IdTokenFactory(token="04E2E0001")

    async def scenario():
        async with SimulatedChargePoint(
            identity="E2E-1",
            password=CHARGER_PASSWORD,
            url=base.replace("http://", "ws://") + "/ocpp",
            connectors=1,
            meter_interval=0.2,
            energy_speedup=50,
            seed=7,
        ) as cp:
            await cp.wait_booted(timeout=20)
            started = await cp.start_session(1, "04E2E0001")
            await asyncio.sleep(1.5)  # a few MeterValues
            stopped = await cp.stop_session(1, reason="Local")
            # The same StopTransaction again, as after a reconnect.
            again = await cp.call(
                call.StopTransaction(
                    meter_stop=stopped.meter_stop + 500,
                    timestamp=dt.datetime.now(dt.UTC).isoformat(),
                    transaction_id=started.transaction_id,
                    id_tag="04E2E0001",
                )
            )
            return started, stopped, again

    started, stopped, again = asyncio.run(scenario())
    assert again.id_tag_info["status"] == "Accepted"
    assert started.accepted and started.transaction_id
    tx = Transaction.objects.get(pk=started.transaction_id)
    assert tx.charge_point_id == charge_point.pk
    assert tx.stopped_at is not None and tx.stop_reason == "Local"
    assert tx.meter_stop == stopped.meter_stop
    assert tx.energy_wh == stopped.meter_stop - tx.meter_start
    energy = MeterSample.objects.filter(transaction=tx, measurand="Energy.Active.Import.Register")
    assert energy.count() >= 3
    stopped_at, meter_stop = tx.stopped_at, tx.meter_stop
    tx.refresh_from_db()
    assert (tx.stopped_at, tx.meter_stop) == (stopped_at, meter_stop)  # the re-sent stop changed nothing
    assert Transaction.objects.count() == 1


def test_a_charger_gone_while_its_message_was_stored_is_still_marked_offline(asgi_process, charge_point):
    """The server cannot send the answer to a socket closed meanwhile; the connection's
    disconnect must run all the same (it once ended the consumer silently)."""
    base, _ = asgi_process

    async def scenario():
        for n in range(5):  # the close lands during the store in some of them
            async with websockets.connect(
                ws_url(base, "E2E-1"), subprotocols=["ocpp1.6"], additional_headers=auth("E2E-1")
            ) as ws:
                await ws.send(json.dumps([2, f"b{n}", "BootNotification", BOOT]))
                await ws.send(json.dumps([2, f"s{n}", "StatusNotification", {
                    "connectorId": 1, "errorCode": "NoError", "status": "Available"}]))  # fmt: skip
                ws.transport.abort()  # gone without waiting for any answer
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                connected = await asyncio.to_thread(
                    lambda: ChargePoint.objects.values_list("is_connected", flat=True).get(pk=charge_point.pk)
                )
                if not connected:
                    break
                assert asyncio.get_running_loop().time() < deadline, f"still online after drop {n}"
                await asyncio.sleep(0.05)

    asyncio.run(scenario())
