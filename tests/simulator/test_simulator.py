"""The charger simulator against a small central system written here with the same `ocpp`
library (not ChargeDesk's endpoint): real sockets on 127.0.0.1, every answer checked against
the official schemas by the library on both sides. No database."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.server
import io
import logging
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest
from django.core.management import call_command
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint as OcppChargePoint
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from stations.simulator import (
    ChargerConfig,
    ConnectionRefusedByServer,
    Fleet,
    SimulatedChargePoint,
    SimulatorError,
)
from stations.simulator.fleet import BehaviourSettings, configs_from, identities_from

PASSWORD = "simulator-test-password-01"
ID = "SIM-01"


def iso(value: datetime | None = None) -> str:
    return (value or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- A small central system ----------------------------------------------------------------


class CsConnection(OcppChargePoint):
    """The central system's side of one charger's connection."""

    def __init__(self, identity, connection, cs):
        super().__init__(identity, connection, response_timeout=5)
        self.cs = cs

    async def _handle_call(self, msg):
        self.cs.log[self.id].append((msg.action, msg.payload, time.time()))
        return await super()._handle_call(msg)

    @on(Action.boot_notification)
    def cs_boot(self, **_):
        return call_result.BootNotification(
            current_time=iso(), interval=self.cs.heartbeat_interval, status=self.cs.boot_status
        )

    @on(Action.heartbeat)
    def cs_heartbeat(self, **_):
        return call_result.Heartbeat(current_time=iso())

    @on(Action.status_notification)
    def cs_status(self, **_):
        return call_result.StatusNotification()

    @on(Action.authorize)
    def cs_authorize(self, id_tag, **_):
        return call_result.Authorize(id_tag_info={"status": self.cs.tags.get(id_tag, "Accepted")})

    @on(Action.start_transaction)
    def cs_start(self, id_tag, **_):
        self.cs.next_transaction_id += 1
        return call_result.StartTransaction(
            transaction_id=self.cs.next_transaction_id,
            id_tag_info={"status": self.cs.tags.get(id_tag, "Accepted")},
        )

    @on(Action.stop_transaction)
    def cs_stop(self, **_):
        return call_result.StopTransaction(id_tag_info={"status": "Accepted"})

    @on(Action.meter_values)
    def cs_meter_values(self, **_):
        return call_result.MeterValues()

    @on(Action.diagnostics_status_notification)
    def cs_diagnostics_status(self, **_):
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def cs_firmware_status(self, **_):
        return call_result.FirmwareStatusNotification()

    @on(Action.data_transfer)
    def cs_data_transfer(self, **_):
        return call_result.DataTransfer(status="Accepted")


class CentralSystem:
    def __init__(self, heartbeat_interval=300, boot_status="Accepted"):
        self.heartbeat_interval = heartbeat_interval
        self.boot_status = boot_status
        self.passwords: dict[str, str] = {}  # identity → password; others use PASSWORD
        self.tags: dict[str, str] = {}  # idTag → status; others are Accepted
        self.log: dict[str, list] = defaultdict(list)  # identity → [(action, payload, arrived)]
        self.connections: dict[str, CsConnection] = {}
        self.refused: list[tuple[str, str]] = []
        self.next_transaction_id = 1000

    async def start(self):
        self.server = await serve(
            self._serve, "127.0.0.1", 0, subprotocols=["ocpp1.6"], process_request=self._admit
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 2)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    def _admit(self, connection, request):
        identity = request.path.rsplit("/", 1)[-1]
        scheme, _, encoded = (request.headers.get("Authorization") or "").partition(" ")
        user, _, password = base64.b64decode(encoded).decode().partition(":") if encoded else ("", "", "")
        if scheme != "Basic" or user != identity or password != self.passwords.get(identity, PASSWORD):
            self.refused.append((identity, "bad credentials"))
            return connection.respond(HTTPStatus.FORBIDDEN, "Forbidden\n")
        return None

    async def _serve(self, connection):
        identity = connection.request.path.rsplit("/", 1)[-1]
        cp = CsConnection(identity, connection, self)
        self.connections[identity] = cp
        with contextlib.suppress(ConnectionClosed):
            await cp.start()

    def of(self, action: str, identity: str = ID) -> list[dict]:
        return [payload for name, payload, _at in self.log[identity] if name == action]

    def actions(self, identity: str = ID) -> list[str]:
        return [name for name, _payload, _at in self.log[identity]]

    async def wait_for(self, predicate, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"not seen within {timeout} s; the charger sent {self.actions()}")
            await asyncio.sleep(0.01)

    async def wait_count(self, action: str, count: int = 1, identity: str = ID, timeout: float = 5.0):
        await self.wait_for(lambda: len(self.of(action, identity)) >= count, timeout)
        return self.of(action, identity)

    async def send(self, payload, identity: str = ID):
        """Send a command; the library checks the charger's answer against the schema."""
        return await self.connections[identity].call(payload, suppress=False)


FAST = {
    "meter_interval": 0.1,
    "step_delay": 0.05,
    "reconnect_initial": 0.05,
    "reconnect_max": 0.2,
    "boot_retry_interval": 0.1,
    "response_timeout": 5,
    "energy_speedup": 60,
    "seed": 1,
}


@contextlib.asynccontextmanager
async def harness(cs_options: dict | None = None, **charger):
    cs = await CentralSystem(**(cs_options or {})).start()
    options = {"identity": ID, "password": PASSWORD, "url": cs.url, **FAST, **charger}
    try:
        async with SimulatedChargePoint(**options) as cp:
            if options["password"] == cs.passwords.get(options["identity"], PASSWORD):
                await cp.wait_booted(5)
                await cs.wait_count("StatusNotification", 1 + cp.config.connectors, identity=cp.id)
            yield cs, cp
    finally:
        await cs.stop()


def run(scenario, timeout: float = 30.0):
    async def bounded():
        async with asyncio.timeout(timeout):
            await scenario()

    asyncio.run(bounded())


def sampled(meter_values: dict, measurand: str) -> list[dict]:
    return [
        sv
        for mv in meter_values["meterValue"]
        for sv in mv["sampledValue"]
        if sv.get("measurand", "Energy.Active.Import.Register") == measurand
    ]


def energy(meter_values: dict) -> int:
    return int(sampled(meter_values, "Energy.Active.Import.Register")[0]["value"])


def statuses(cs: CentralSystem, connector_id: int) -> list[str]:
    return [s["status"] for s in cs.of("StatusNotification") if s["connectorId"] == connector_id]


# --- Connecting, booting, reporting ---------------------------------------------------------


def test_boot_and_status_of_every_connector_arrive():
    async def scenario():
        async with harness(connectors=3, vendor="Voltway", model="VW-AC22", firmware_version="4.2.1") as (
            cs,
            cp,
        ):
            boot = cs.of("BootNotification")[0]
            assert boot["chargePointVendor"] == "Voltway"
            assert boot["chargePointModel"] == "VW-AC22"
            assert boot["firmwareVersion"] == "4.2.1"
            assert boot["chargePointSerialNumber"] == "SIM-SIM-01"
            reports = cs.of("StatusNotification")
            assert [r["connectorId"] for r in reports] == [0, 1, 2, 3]
            assert {(r["status"], r["errorCode"]) for r in reports} == {("Available", "NoError")}
            assert cs.actions()[:1] == ["BootNotification"]
            assert cp.state == "booted"
            assert cp.heartbeat_interval == 300  # from the BootNotification answer

    run(scenario)


def test_heartbeat_follows_the_boot_interval():
    async def scenario():
        async with harness({"heartbeat_interval": 1}) as (cs, _cp):
            started = time.monotonic()
            await cs.wait_count("Heartbeat", 2, timeout=4)
            assert 1.5 < time.monotonic() - started < 3.5

    run(scenario)


def test_wrong_password_is_reported_and_retried_with_backoff(caplog):
    caplog.set_level(logging.WARNING, logger="stations.simulator")

    async def scenario():
        async with harness(password="not-the-right-password-1") as (cs, cp):
            with pytest.raises(ConnectionRefusedByServer) as refused:
                await cp.wait_booted(5)
            assert refused.value.status == 403
            assert "wrong password" in str(refused.value)
            await cp.wait_until(lambda: cp.refusals >= 3, 5)  # retried, not crashed
            assert cp.running and cp.state in ("refused", "connecting")
            assert not cs.log[ID]  # nothing was ever accepted
            # Once the central system knows the password the charger gets in on its next try.
            cs.passwords[ID] = "not-the-right-password-1"
            await cp.wait_booted(5, raise_on_refusal=False)
            assert cs.of("BootNotification")

    run(scenario)
    assert any("refused the connection (HTTP 403)" in r.getMessage() for r in caplog.records)


def test_pending_boot_is_retried_after_the_interval_and_sends_nothing_else_meanwhile():
    async def scenario():
        cs = await CentralSystem(boot_status="Pending", heartbeat_interval=1).start()
        try:
            async with SimulatedChargePoint(identity=ID, password=PASSWORD, url=cs.url, **FAST) as cp:
                await cs.wait_count("BootNotification", 1)
                await asyncio.sleep(0.3)
                assert cs.actions() == ["BootNotification"]
                assert cp.registration_status == "Pending" and not cp.booted
                cs.boot_status = "Accepted"
                await cs.wait_count("BootNotification", 2, timeout=3)
                await cp.wait_booted(3)
                await cs.wait_count("StatusNotification", 3)
        finally:
            await cs.stop()

    run(scenario)


def test_a_dropped_connection_is_reopened_and_boot_sent_again():
    async def scenario():
        async with harness() as (cs, cp):
            await cs.connections[ID]._connection.close()
            await cs.wait_count("BootNotification", 2)
            await cp.wait_booted(5)
            assert cp.connects == 2
            await cs.wait_count("StatusNotification", 6)

    run(scenario)


# --- Sessions ------------------------------------------------------------------------------


def test_a_full_session_authorize_start_meter_values_stop():
    async def scenario():
        async with harness() as (cs, cp):
            await cp.plug_in(1)
            await cs.wait_for(lambda: statuses(cs, 1)[-1] == "Preparing")
            started = await cp.start_session(1, "TAG-0001")
            assert started.accepted and started.transaction_id == 1001
            assert started.id_tag_info["status"] == "Accepted"
            values = await cs.wait_count("MeterValues", 3)
            await cp.stop_session(1)
            stop = (await cs.wait_count("StopTransaction"))[0]
            await cs.wait_for(lambda: statuses(cs, 1)[-1] == "Available")

            actions = [a for a in cs.actions() if a in ("Authorize", "StartTransaction", "StopTransaction")]
            assert actions == ["Authorize", "StartTransaction", "StopTransaction"]
            start = cs.of("StartTransaction")[0]
            assert start["connectorId"] == 1 and start["idTag"] == "TAG-0001"
            assert statuses(cs, 1) == ["Available", "Preparing", "Charging", "Finishing", "Available"]

            energies = [energy(mv) for mv in values]
            assert energies == sorted(energies) and energies[-1] > energies[0] >= start["meterStart"]
            for mv in values:
                assert mv["transactionId"] == 1001 and mv["connectorId"] == 1
                assert {sv["context"] for sv in mv["meterValue"][0]["sampledValue"]} == {"Sample.Periodic"}
                power = int(sampled(mv, "Power.Active.Import")[0]["value"])
                assert 0 < power <= 22_000
                assert [sv["phase"] for sv in sampled(mv, "Current.Import")] == ["L1", "L2", "L3"]
                volts = sampled(mv, "Voltage")
                assert [sv["phase"] for sv in volts] == ["L1-N", "L2-N", "L3-N"]
                assert all(220 < float(sv["value"]) < 240 and sv["unit"] == "V" for sv in volts)
                assert not sampled(mv, "SoC")  # AC chargers do not know the car's SoC

            assert stop["transactionId"] == 1001 and stop["idTag"] == "TAG-0001"
            assert stop["reason"] == "Local"
            assert stop["meterStop"] >= energies[-1]
            assert parse(stop["timestamp"]) >= parse(start["timestamp"])
            contexts = [mv["sampledValue"][0]["context"] for mv in stop["transactionData"]]
            assert contexts == ["Transaction.Begin", "Transaction.End"]
            assert int(stop["transactionData"][0]["sampledValue"][0]["value"]) == start["meterStart"]
            assert int(stop["transactionData"][1]["sampledValue"][0]["value"]) == stop["meterStop"]

    run(scenario)


def test_dc_session_reports_soc_and_dc_current():
    async def scenario():
        async with harness(dc=True, connectors=1) as (cs, cp):
            await cp.start_session(1, "TAG-DC")
            mv = (await cs.wait_count("MeterValues", 2))[-1]
            soc = sampled(mv, "SoC")
            assert soc and soc[0]["unit"] == "Percent" and soc[0]["location"] == "EV"
            assert 0 <= int(soc[0]["value"]) <= 100
            assert [sv.get("phase") for sv in sampled(mv, "Current.Import")] == [None]
            await cp.stop_session(1)
            stop = (await cs.wait_count("StopTransaction"))[0]
            measurands = {sv["measurand"] for sv in stop["transactionData"][1]["sampledValue"]}
            assert measurands == {"Energy.Active.Import.Register", "SoC"}

    run(scenario)


def test_an_id_tag_the_central_system_refuses_starts_nothing():
    async def scenario():
        async with harness() as (cs, cp):
            cs.tags["BLOCKED-1"] = "Blocked"
            result = await cp.start_session(1, "BLOCKED-1")
            assert not result.accepted and result.id_tag_info["status"] == "Blocked"
            assert result.transaction_id is None and cp.transaction(1) is None
            await asyncio.sleep(0.2)
            assert not cs.of("StartTransaction")

    run(scenario)


def test_going_offline_mid_session_queues_and_delivers_late_in_order_with_original_timestamps():
    async def scenario():
        async with harness() as (cs, cp):
            await cp.start_session(1, "TAG-0001")
            await cs.wait_count("MeterValues", 2)
            await cp.go_offline()
            assert not cp.online and cp.state == "offline"
            sent_before = len(cs.log[ID])
            await asyncio.sleep(0.45)
            stopped = await cp.stop_session(1)
            assert stopped.queued and stopped.transaction_id == 1001
            queued = list(cp.outbox)
            assert len(queued) >= 4 and type(queued[-1].payload).__name__ == "StopTransaction"
            assert len(cs.log[ID]) == sent_before  # nothing reached the central system meanwhile
            back_at = datetime.now(UTC)
            await asyncio.sleep(0.05)
            await cp.come_back()
            await cs.wait_count("StopTransaction")

            late = cs.log[ID][sent_before:]
            names = [name for name, _p, _at in late]
            assert names[0] == "BootNotification"
            delivered = [(n, p) for n, p, _at in late if n in ("MeterValues", "StopTransaction")]
            assert [n for n, _p in delivered] == ["MeterValues"] * (len(delivered) - 1) + ["StopTransaction"]
            assert len(delivered) == len(queued)
            stamps = [parse(p["meterValue"][0]["timestamp"]) for n, p in delivered[:-1]]
            stamps.append(parse(delivered[-1][1]["timestamp"]))
            assert stamps == sorted(stamps)
            assert all(stamp < back_at for stamp in stamps)  # the original times, not the sending time
            assert all(p["transactionId"] == 1001 for _n, p in delivered)
            energies = [energy(p) for n, p in delivered[:-1]]
            assert energies == sorted(energies) and delivered[-1][1]["meterStop"] >= energies[-1]
            assert not cp.outbox

    run(scenario)


def test_a_session_started_offline_gets_its_transaction_id_after_reconnecting():
    async def scenario():
        async with harness() as (cs, cp):
            assert cp.set_configuration("AllowOfflineTxForUnknownId", "true") == "Accepted"
            await cp.go_offline(abrupt=True)
            started = await cp.start_session(2, "OFFLINE-TAG")
            assert started.queued and started.transaction_id is None and started.accepted
            await asyncio.sleep(0.25)
            await cp.come_back()
            start = (await cs.wait_count("StartTransaction"))[0]
            assert start["idTag"] == "OFFLINE-TAG" and parse(start["timestamp"]) < datetime.now(UTC)
            values = await cs.wait_count("MeterValues", 2)
            assert all(mv["transactionId"] == cs.next_transaction_id for mv in values)
            assert cp.transaction(2).transaction_id == cs.next_transaction_id
            names = cs.actions()
            assert names.index("StartTransaction") < names.index("MeterValues")

    run(scenario)


def test_a_fault_during_a_session_stops_it_and_recovery_makes_the_connector_available():
    async def scenario():
        async with harness() as (cs, cp):
            await cp.start_session(1, "TAG-0001")
            await cs.wait_count("MeterValues")
            await cp.fault(1, "GroundFailure", vendor_error_code="RCD-30mA", info="residual current")
            stop = (await cs.wait_count("StopTransaction"))[0]
            assert stop["reason"] == "Other"
            faulted = [s for s in cs.of("StatusNotification") if s["status"] == "Faulted"]
            assert faulted[0]["connectorId"] == 1 and faulted[0]["errorCode"] == "GroundFailure"
            assert faulted[0]["vendorErrorCode"] == "RCD-30mA" and faulted[0]["info"] == "residual current"
            log = [(name, payload) for name, payload, _at in cs.log[ID]]
            first_faulted = next(i for i, (n, p) in enumerate(log) if p.get("status") == "Faulted")
            assert first_faulted < cs.actions().index("StopTransaction")  # the fault, then the stop
            with pytest.raises(SimulatorError):
                await cp.start_session(1)
            await cp.recover(1)
            await cp.unplug(1)
            await cs.wait_for(lambda: statuses(cs, 1)[-1] == "Available")
            assert cs.of("StatusNotification")[-1]["errorCode"] == "NoError"

    run(scenario)


def test_a_fault_without_stop_suspends_the_session_until_recovery():
    async def scenario():
        async with harness() as (cs, cp):
            await cp.start_session(1, "TAG-0001")
            await cp.fault(1, "HighTemperature", stop=False)
            await asyncio.sleep(0.25)
            assert cp.transaction(1) is not None and not cs.of("StopTransaction")
            assert int(sampled(cs.of("MeterValues")[-1], "Power.Active.Import")[0]["value"]) == 0
            await cp.recover(1)
            await cs.wait_for(lambda: statuses(cs, 1)[-1] == "Charging")

    run(scenario)


def test_undervoltage_on_connector_zero_stops_every_session_with_power_loss():
    async def scenario():
        async with harness() as (cs, cp):
            await cp.start_session(1, "TAG-0001")
            await cp.start_session(2, "TAG-0002")
            await cp.fault(0, "UnderVoltage")
            stops = await cs.wait_count("StopTransaction", 2)
            assert {s["reason"] for s in stops} == {"PowerLoss"}
            assert statuses(cs, 0)[-1] == "Faulted"

    run(scenario)


def test_raw_frames_reach_the_central_system_and_its_answers_come_back_raw():
    async def scenario():
        async with harness() as (_cs, cp):
            await cp.send_raw('[2,"raw-1","NoSuchAction",{}]')
            reply = await cp.next_raw_reply()
            assert reply.startswith('[4,"raw-1","NotSupported"')
            await cp.send_raw('[2,"raw-2","Heartbeat",{"unexpected":1}]')
            reply = await cp.next_raw_reply()
            assert reply.startswith('[4,"raw-2",')
            await cp.send_raw('[2,"raw-3","Heartbeat",{}]')
            assert (await cp.next_raw_reply()).startswith('[3,"raw-3",{"currentTime"')
            await cp.heartbeat()  # our own CALLs still get their answers

    run(scenario)


# --- The 19 commands of a central system ----------------------------------------------------


def test_remote_start_is_accepted_and_starts_a_session_with_that_id_tag():
    async def scenario():
        async with harness() as (cs, _cp):
            answer = await cs.send(call.RemoteStartTransaction(id_tag="APP-7", connector_id=2))
            assert answer.status == "Accepted"
            start = (await cs.wait_count("StartTransaction"))[0]
            assert start["connectorId"] == 2 and start["idTag"] == "APP-7"
            assert cs.of("Authorize")[0]["idTag"] == "APP-7"  # AuthorizeRemoteTxRequests is true
            await cs.wait_count("MeterValues")
            await cs.wait_for(lambda: statuses(cs, 2)[-1] == "Charging")
            again = await cs.send(call.RemoteStartTransaction(id_tag="APP-8", connector_id=2))
            assert again.status == "Rejected"  # that connector is busy

    run(scenario)


def test_remote_start_without_connector_and_without_authorize_when_configured():
    async def scenario():
        async with harness(authorize_remote_start=False) as (cs, cp):
            await cp.plug_in(2)  # the car waiting at connector 2 is the one to start
            answer = await cs.send(call.RemoteStartTransaction(id_tag="APP-9"))
            assert answer.status == "Accepted"
            start = (await cs.wait_count("StartTransaction"))[0]
            assert start["connectorId"] == 2 and not cs.of("Authorize")

    run(scenario)


def test_remote_stop_stops_that_transaction_with_reason_remote():
    async def scenario():
        async with harness() as (cs, cp):
            started = await cp.start_session(1, "TAG-0001")
            unknown = await cs.send(call.RemoteStopTransaction(transaction_id=4242))
            assert unknown.status == "Rejected"
            answer = await cs.send(call.RemoteStopTransaction(transaction_id=started.transaction_id))
            assert answer.status == "Accepted"
            stop = (await cs.wait_count("StopTransaction"))[0]
            assert stop["reason"] == "Remote" and stop["transactionId"] == started.transaction_id
            await cs.wait_for(lambda: statuses(cs, 1)[-1] == "Available")

    run(scenario)


def test_soft_reset_stops_sessions_reconnects_and_boots_again():
    async def scenario():
        async with harness() as (cs, cp):
            await cp.start_session(1, "TAG-0001")
            answer = await cs.send(call.Reset(type="Soft"))
            assert answer.status == "Accepted"
            stop = (await cs.wait_count("StopTransaction"))[0]
            assert stop["reason"] == "SoftReset"
            await cs.wait_count("BootNotification", 2)
            await cp.wait_booted(5)
            names = cs.actions()
            assert names.index("StopTransaction") < len(names) - 1 - names[::-1].index("BootNotification")
            assert cp.boot_count == 1 and cp.connects == 2

    run(scenario)


def test_hard_reset_delivers_the_stop_transaction_after_the_reboot():
    async def scenario():
        async with harness() as (cs, cp):
            await cp.start_session(2, "TAG-0002")
            assert (await cs.send(call.Reset(type="Hard"))).status == "Accepted"
            stop = (await cs.wait_count("StopTransaction"))[0]
            assert stop["reason"] == "HardReset"
            names = cs.actions()
            assert names.index("StopTransaction") > names.index("BootNotification", 1)

    run(scenario)


def test_unlock_connector_unlocks_and_ends_the_session_and_tethered_is_not_supported():
    async def scenario():
        async with harness() as (cs, cp):
            await cp.start_session(1, "TAG-0001")
            assert (await cs.send(call.UnlockConnector(connector_id=1))).status == "Unlocked"
            stop = (await cs.wait_count("StopTransaction"))[0]
            assert stop["reason"] == "UnlockCommand"
            assert (await cs.send(call.UnlockConnector(connector_id=9))).status == "NotSupported"
        async with harness(dc=True, identity="SIM-DC") as (cs, cp):
            answer = await cs.send(call.UnlockConnector(connector_id=1), identity="SIM-DC")
            assert answer.status == "NotSupported"

    run(scenario)


def test_change_availability_accepted_when_idle_and_scheduled_during_a_session():
    async def scenario():
        async with harness() as (cs, cp):
            answer = await cs.send(call.ChangeAvailability(connector_id=2, type="Inoperative"))
            assert answer.status == "Accepted"
            await cs.wait_for(lambda: statuses(cs, 2)[-1] == "Unavailable")
            with pytest.raises(SimulatorError):
                await cp.start_session(2)

            await cp.start_session(1, "TAG-0001")
            answer = await cs.send(call.ChangeAvailability(connector_id=1, type="Inoperative"))
            assert answer.status == "Scheduled"
            await asyncio.sleep(0.15)
            assert statuses(cs, 1)[-1] == "Charging"
            await cp.stop_session(1)
            await cs.wait_for(lambda: statuses(cs, 1)[-1] == "Unavailable")

            answer = await cs.send(call.ChangeAvailability(connector_id=0, type="Operative"))
            assert answer.status == "Accepted"
            await cs.wait_for(
                lambda: statuses(cs, 1)[-1] == "Available" and statuses(cs, 2)[-1] == "Available"
            )
            missing = await cs.send(call.ChangeAvailability(connector_id=7, type="Inoperative"))
            assert missing.status == "Rejected"

    run(scenario)


def test_change_configuration_of_heartbeat_interval_changes_the_heartbeat():
    async def scenario():
        async with harness() as (cs, cp):
            assert not cs.of("Heartbeat")  # 300 s from the boot answer
            answer = await cs.send(call.ChangeConfiguration(key="HeartbeatInterval", value="1"))
            assert answer.status == "Accepted"
            assert cp.heartbeat_interval == 1
            await cs.wait_count("Heartbeat", 2, timeout=3.5)
            read_only = await cs.send(call.ChangeConfiguration(key="NumberOfConnectors", value="4"))
            assert read_only.status == "Rejected"
            unknown = await cs.send(call.ChangeConfiguration(key="NoSuchKey", value="1"))
            assert unknown.status == "NotSupported"
            bad = await cs.send(call.ChangeConfiguration(key="MeterValueSampleInterval", value="soon"))
            assert bad.status == "Rejected"

    run(scenario)


def test_change_configuration_of_meter_values_takes_effect():
    async def scenario():
        async with harness(meter_interval=5) as (cs, cp):
            await cp.start_session(1, "TAG-0001")
            await asyncio.sleep(0.2)
            assert not cs.of("MeterValues")
            for key, value in (
                ("MeterValueSampleInterval", "0.1"),
                ("MeterValuesSampledData", "Energy.Active.Import.Register,Power.Offered"),
            ):
                assert (await cs.send(call.ChangeConfiguration(key=key, value=value))).status == "Accepted"
            mv = (await cs.wait_count("MeterValues", 2, timeout=2))[-1]
            measurands = [sv["measurand"] for sv in mv["meterValue"][0]["sampledValue"]]
            assert measurands == ["Energy.Active.Import.Register", "Power.Offered"]
            bad = await cs.send(call.ChangeConfiguration(key="MeterValuesSampledData", value="Colour"))
            assert bad.status == "Rejected"

    run(scenario)


def test_get_configuration_lists_every_key_and_names_unknown_ones():
    async def scenario():
        async with harness(connectors=3) as (cs, _cp):
            every = await cs.send(call.GetConfiguration())
            keys = {k["key"]: k for k in every.configuration_key}
            for name in (
                "HeartbeatInterval",
                "MeterValueSampleInterval",
                "MeterValuesSampledData",
                "NumberOfConnectors",
                "AuthorizeRemoteTxRequests",
                "LocalAuthListEnabled",
                "ConnectionTimeOut",
            ):
                assert name in keys
            assert keys["NumberOfConnectors"] == {"key": "NumberOfConnectors", "readonly": True, "value": "3"}
            assert keys["HeartbeatInterval"]["value"] == "300" and not keys["HeartbeatInterval"]["readonly"]
            some = await cs.send(call.GetConfiguration(key=["ConnectionTimeOut", "Bogus"]))
            assert [k["key"] for k in some.configuration_key] == ["ConnectionTimeOut"]
            assert some.unknown_key == ["Bogus"]

    run(scenario)


def test_clear_cache_empties_the_authorization_cache():
    async def scenario():
        async with harness() as (cs, cp):
            await cp.authorize("TAG-CACHED")
            assert "TAG-CACHED" in cp.auth_cache
            assert (await cs.send(call.ClearCache())).status == "Accepted"
            assert cp.auth_cache == {}

    run(scenario)


def test_trigger_message_sends_each_requested_message():
    async def scenario():
        async with harness() as (cs, cp):
            await cp.start_session(1, "TAG-0001")
            before = {a: len(cs.of(a)) for a in ("BootNotification", "Heartbeat", "StatusNotification")}
            for message, connector_id in (
                ("BootNotification", None),
                ("Heartbeat", None),
                ("StatusNotification", 2),
                ("MeterValues", 1),
                ("DiagnosticsStatusNotification", None),
                ("FirmwareStatusNotification", None),
            ):
                answer = await cs.send(
                    call.TriggerMessage(requested_message=message, connector_id=connector_id)
                )
                assert answer.status == "Accepted", message
            await cs.wait_for(
                lambda: cs.of("FirmwareStatusNotification") and cs.of("DiagnosticsStatusNotification")
            )
            await cs.wait_for(
                lambda: any(
                    sv["context"] == "Trigger"
                    for mv in cs.of("MeterValues")
                    for sv in mv["meterValue"][0]["sampledValue"]
                )
            )
            assert len(cs.of("BootNotification")) == before["BootNotification"] + 1
            assert len(cs.of("Heartbeat")) == before["Heartbeat"] + 1
            assert cs.of("StatusNotification")[-1]["connectorId"] == 2
            assert cs.of("DiagnosticsStatusNotification")[-1]["status"] == "Idle"
            assert cs.of("FirmwareStatusNotification")[-1]["status"] == "Idle"
            rejected = await cs.send(call.TriggerMessage(requested_message="MeterValues", connector_id=5))
            assert rejected.status == "Rejected"

    run(scenario)


class _Uploads(http.server.BaseHTTPRequestHandler):
    received: list = []

    def _store(self):
        length = int(self.headers.get("Content-Length", 0))
        self.received.append(
            (self.command, self.path, self.headers.get("Content-Type"), self.rfile.read(length))
        )
        self.send_response(201)
        self.end_headers()

    do_POST = _store
    do_PUT = _store

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def upload_server():
    _Uploads.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Uploads)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/diagnostics/", _Uploads.received
    finally:
        server.shutdown()
        server.server_close()


def test_get_diagnostics_really_uploads_the_file_to_an_http_location():
    async def scenario():
        with upload_server() as (location, received):
            async with harness() as (cs, _cp):
                answer = await cs.send(call.GetDiagnostics(location=location))
                assert answer.file_name.startswith("SIM-01-diagnostics-") and answer.file_name.endswith(
                    ".log"
                )
                await cs.wait_count("DiagnosticsStatusNotification", 2)
                assert [d["status"] for d in cs.of("DiagnosticsStatusNotification")] == [
                    "Uploading",
                    "Uploaded",
                ]
            method, path, content_type, body = received[0]
            assert method == "POST" and path == "/diagnostics/"
            assert content_type.startswith("multipart/form-data; boundary=")
            assert f'filename="{answer.file_name}"'.encode() in body
            assert b"identity: SIM-01" in body and b"received GetDiagnostics" in body

    run(scenario)


def test_get_diagnostics_with_put_and_a_failed_upload_reports_upload_failed():
    async def scenario():
        with upload_server() as (location, received):
            async with harness(diagnostics_upload_method="PUT") as (cs, cp):
                answer = await cs.send(call.GetDiagnostics(location=location))
                await cs.wait_count("DiagnosticsStatusNotification", 2)
                assert received[0][0] == "PUT" and received[0][1] == f"/diagnostics/{answer.file_name}"
                assert received[0][3].startswith(b"ChargeDesk simulator diagnostics")
                # Nothing listens on port 9 of localhost.
                await cs.send(
                    call.GetDiagnostics(location="http://127.0.0.1:9/up", retries=1, retry_interval=0)
                )
                await cs.wait_count("DiagnosticsStatusNotification", 4, timeout=10)
                assert cs.of("DiagnosticsStatusNotification")[-1]["status"] == "UploadFailed"
                assert cp.uploads[-1]["ok"] is False

    run(scenario)


def test_update_firmware_reports_each_step_then_boots_with_the_new_version():
    async def scenario():
        async with harness() as (cs, cp):
            answer = await cs.send(
                call.UpdateFirmware(location="https://firmware.example/sim/fw-2.1.0.bin", retrieve_date=iso())
            )
            assert answer is not None
            await cs.wait_count("BootNotification", 2)
            steps = [f["status"] for f in cs.of("FirmwareStatusNotification")]
            assert steps == ["Downloading", "Downloaded", "Installing", "Installed"]
            assert cs.of("BootNotification")[-1]["firmwareVersion"] == "2.1.0"
            assert cp.firmware_version == "2.1.0" and cp.firmware_status == "Idle"

    run(scenario)


def test_firmware_installation_waits_for_the_running_session():
    async def scenario():
        async with harness() as (cs, cp):
            await cp.start_session(1, "TAG-0001")
            await cs.send(call.UpdateFirmware(location="ftp://firmware.example/fw.bin", retrieve_date=iso()))
            await cs.wait_count("FirmwareStatusNotification", 2)
            await asyncio.sleep(0.2)
            assert [f["status"] for f in cs.of("FirmwareStatusNotification")] == ["Downloading", "Downloaded"]
            await cp.stop_session(1)
            await cs.wait_count("BootNotification", 2)
            assert cs.of("BootNotification")[-1]["firmwareVersion"] == "1.0.1"

    run(scenario)


def _profile(purpose="TxDefaultProfile", limit=6.0, unit="A", profile_id=1, stack_level=0, **extra):
    return {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": unit,
            "startSchedule": iso(datetime.now(UTC) - timedelta(minutes=1)),
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
        },
        **extra,
    }


def test_set_charging_profile_limits_the_power_reported_and_the_composite_schedule():
    async def scenario():
        async with harness(seed=3) as (cs, cp):
            cp.rng.seed(7)  # an EV that takes 11 or 22 kW on three phases
            answer = await cs.send(
                call.SetChargingProfile(connector_id=0, cs_charging_profiles=_profile(limit=6))
            )
            assert answer.status == "Accepted"
            await cp.start_session(1, "TAG-0001")
            mv = (await cs.wait_count("MeterValues", 2))[-1]
            power = int(sampled(mv, "Power.Active.Import")[0]["value"])
            assert 0 < power <= 6 * 230 * 3
            composite = await cs.send(
                call.GetCompositeSchedule(connector_id=1, duration=3600, charging_rate_unit="A")
            )
            assert composite.status == "Accepted" and composite.connector_id == 1
            periods = composite.charging_schedule["charging_schedule_period"]
            assert periods[0]["start_period"] == 0 and float(periods[0]["limit"]) <= 6.0

            tx_profile = _profile("TxProfile", limit=2000, unit="W", profile_id=2, stack_level=1)
            answer = await cs.send(call.SetChargingProfile(connector_id=1, cs_charging_profiles=tx_profile))
            assert answer.status == "Accepted"
            await asyncio.sleep(0.25)
            power = int(sampled(cs.of("MeterValues")[-1], "Power.Active.Import")[0]["value"])
            assert 0 < power <= 2000

            cleared = await cs.send(call.ClearChargingProfile(id=2))
            assert cleared.status == "Accepted"
            assert (await cs.send(call.ClearChargingProfile(id=2))).status == "Unknown"
            assert (await cs.send(call.ClearChargingProfile())).status == "Accepted"
            assert cp.charging_profiles == []
            whole = await cs.send(call.GetCompositeSchedule(connector_id=0, duration=600))
            assert whole.charging_schedule["charging_schedule_period"] == [
                {"start_period": 0, "limit": 44000.0}
            ]

    run(scenario)


def test_charging_profiles_that_do_not_fit_are_rejected():
    async def scenario():
        async with harness() as (cs, _cp):
            no_session = _profile("TxProfile", profile_id=3)
            answer = await cs.send(call.SetChargingProfile(connector_id=1, cs_charging_profiles=no_session))
            assert answer.status == "Rejected"
            station_on_connector = _profile("ChargePointMaxProfile", profile_id=4)
            answer = await cs.send(
                call.SetChargingProfile(connector_id=1, cs_charging_profiles=station_on_connector)
            )
            assert answer.status == "Rejected"
            too_high = _profile(profile_id=5, stack_level=99)
            assert (
                await cs.send(call.SetChargingProfile(connector_id=0, cs_charging_profiles=too_high))
            ).status == ("Rejected")
            assert (
                await cs.send(call.GetCompositeSchedule(connector_id=9, duration=60))
            ).status == "Rejected"

    run(scenario)


def test_reserve_now_reserves_expires_and_cancel_reservation_frees():
    async def scenario():
        async with harness() as (cs, cp):
            expiry = iso(datetime.now(UTC) + timedelta(seconds=0.4))
            answer = await cs.send(
                call.ReserveNow(connector_id=1, expiry_date=expiry, id_tag="RES-1", reservation_id=7)
            )
            assert answer.status == "Accepted"
            await cs.wait_for(lambda: statuses(cs, 1)[-1] == "Reserved")
            taken = await cs.send(
                call.ReserveNow(connector_id=1, expiry_date=expiry, id_tag="RES-2", reservation_id=8)
            )
            assert taken.status == "Occupied"
            await cs.wait_for(lambda: statuses(cs, 1)[-1] == "Available", timeout=3)  # expired
            assert cp.reservations == {}

            later = iso(datetime.now(UTC) + timedelta(minutes=10))
            answer = await cs.send(
                call.ReserveNow(connector_id=2, expiry_date=later, id_tag="RES-3", reservation_id=9)
            )
            assert answer.status == "Accepted"
            assert (await cs.send(call.CancelReservation(reservation_id=9))).status == "Accepted"
            assert (await cs.send(call.CancelReservation(reservation_id=9))).status == "Rejected"
            await cs.wait_for(lambda: statuses(cs, 2)[-2:] == ["Reserved", "Available"])
            zero = await cs.send(
                call.ReserveNow(connector_id=0, expiry_date=later, id_tag="X", reservation_id=10)
            )
            assert zero.status == "Rejected"

    run(scenario)


def test_a_session_on_a_reserved_connector_carries_the_reservation_id():
    async def scenario():
        async with harness() as (cs, cp):
            later = iso(datetime.now(UTC) + timedelta(minutes=10))
            await cs.send(
                call.ReserveNow(connector_id=1, expiry_date=later, id_tag="RES-1", reservation_id=11)
            )
            with pytest.raises(SimulatorError):
                await cp.start_session(1, "SOMEONE-ELSE")
            await cp.start_session(1, "RES-1")
            start = (await cs.wait_count("StartTransaction"))[0]
            assert start["reservationId"] == 11 and cp.reservations == {}

    run(scenario)


def test_send_local_list_full_and_differential_and_get_local_list_version():
    async def scenario():
        async with harness() as (cs, cp):
            assert (await cs.send(call.GetLocalListVersion())).list_version == 0
            full = await cs.send(
                call.SendLocalList(
                    list_version=3,
                    update_type="Full",
                    local_authorization_list=[
                        {"idTag": "LOCAL-1", "idTagInfo": {"status": "Accepted"}},
                        {"idTag": "LOCAL-2", "idTagInfo": {"status": "Blocked"}},
                    ],
                )
            )
            assert full.status == "Accepted"
            assert (await cs.send(call.GetLocalListVersion())).list_version == 3
            stale = await cs.send(call.SendLocalList(list_version=2, update_type="Differential"))
            assert stale.status == "VersionMismatch"
            diff = await cs.send(
                call.SendLocalList(
                    list_version=4,
                    update_type="Differential",
                    local_authorization_list=[{"idTag": "LOCAL-2"}],
                )
            )
            assert diff.status == "Accepted"
            assert set(cp.local_list) == {"LOCAL-1"} and cp.local_list_version == 4
            # Offline, the local list decides.
            await cp.go_offline()
            assert (await cp.authorize("LOCAL-1"))["status"] == "Accepted"
            assert (await cp.authorize("STRANGER"))["status"] == "Invalid"

    run(scenario)


def test_data_transfer_echoes_for_a_known_vendor_only():
    async def scenario():
        async with harness(data_transfer_vendors=("com.voltway",)) as (cs, _cp):
            known = await cs.send(call.DataTransfer(vendor_id="com.voltway", message_id="ping", data="hello"))
            assert known.status == "Accepted" and known.data == "hello"
            unknown = await cs.send(call.DataTransfer(vendor_id="org.other", data="x"))
            assert unknown.status == "UnknownVendorId"

    run(scenario)


def test_every_command_gets_a_schema_valid_answer_and_is_recorded():
    later = iso(datetime.now(UTC) + timedelta(minutes=5))
    commands = [
        call.CancelReservation(reservation_id=1),
        call.ChangeAvailability(connector_id=1, type="Operative"),
        call.ChangeConfiguration(key="ConnectionTimeOut", value="90"),
        call.ClearCache(),
        call.ClearChargingProfile(),
        call.DataTransfer(vendor_id="ChargeDesk", data="x"),
        call.GetCompositeSchedule(connector_id=1, duration=60, charging_rate_unit="W"),
        call.GetConfiguration(),
        call.GetDiagnostics(location="ftp://diagnostics.example/upload/"),
        call.GetLocalListVersion(),
        call.RemoteStartTransaction(id_tag="ALL-1", connector_id=1),
        call.RemoteStopTransaction(transaction_id=99999),
        call.ReserveNow(connector_id=2, expiry_date=later, id_tag="ALL-2", reservation_id=5),
        call.SendLocalList(list_version=1, update_type="Full", local_authorization_list=[]),
        call.SetChargingProfile(connector_id=0, cs_charging_profiles=_profile()),
        call.TriggerMessage(requested_message="Heartbeat"),
        call.UnlockConnector(connector_id=2),
        call.UpdateFirmware(location="https://firmware.example/fw-1.0.0.bin", retrieve_date=later),
        call.Reset(type="Soft"),
    ]
    assert len({type(c).__name__ for c in commands}) == 19

    async def scenario():
        async with harness() as (cs, cp):
            for command in commands:
                try:
                    answer = await cs.send(command)
                except OCPPError as error:  # a CALLERROR would be a missing handler
                    pytest.fail(f"{type(command).__name__}: {error!r}")
                assert answer is not None
            assert [action for action, _payload in cp.received] == [type(c).__name__ for c in commands]
            assert cp.commands("ChangeConfiguration") == [{"key": "ConnectionTimeOut", "value": "90"}]
            assert cp.get_configuration("ConnectionTimeOut") == "90"

    run(scenario)


# --- Many chargers and the command line -----------------------------------------------------


def test_a_fleet_boots_every_charger_staggered_and_measures_latency():
    async def scenario():
        cs = await CentralSystem().start()
        try:
            configs = [
                ChargerConfig(identity=f"FLEET-{n:03d}", password=PASSWORD, url=cs.url, **FAST)
                for n in range(20)
            ]
            fleet = Fleet(configs, rate=400)
            runner = asyncio.create_task(fleet.run())
            await fleet.wait_booted(timeout=10)
            await cs.wait_for(lambda: all(len(cs.of("StatusNotification", c.identity)) == 3 for c in configs))
            fleet.request_stop()
            summary = await runner
        finally:
            await cs.stop()
        assert summary["chargers"] == summary["started"] == 20
        assert summary["boots"] == 20 and summary["refusals"] == 0
        assert summary["calls_sent"] == 20 * 4  # a boot and three statuses each
        assert summary["by_action"] == {"BootNotification": 20, "StatusNotification": 60}
        assert 0 < summary["p50_ms"] <= summary["p99_ms"] <= summary["max_ms"]
        assert all(not cp.running for cp in fleet.chargers)

    run(scenario)


def test_a_busy_fleet_runs_sessions_on_its_own():
    async def scenario():
        cs = await CentralSystem().start()
        try:
            configs = [
                ChargerConfig(identity=f"BUSY-{n}", password=PASSWORD, url=cs.url, **FAST) for n in range(3)
            ]
            settings = BehaviourSettings(session_gap=0.05, session_duration=0.3)
            fleet = Fleet(configs, rate=100, profile="busy", settings=settings)
            summary = await fleet.run(duration=1.5)
        finally:
            await cs.stop()
        assert summary["by_action"].get("StartTransaction", 0) >= 3
        assert summary["by_action"].get("StopTransaction", 0) >= 1
        assert summary["by_action"].get("MeterValues", 0) >= 3
        assert summary["call_errors"] == 0

    run(scenario)


def test_command_line_identities_and_configs():
    options = {"identities": ["A-1"], "prefix": "LOAD-", "count": 3, "first": 1}
    assert identities_from(options) == ["A-1", "LOAD-00001", "LOAD-00002", "LOAD-00003"]
    with pytest.raises(ValueError):
        identities_from({"prefix": "LOAD-"})
    configs = configs_from(
        {"url": "ws://h/ocpp", "password": PASSWORD, "connectors": 2, "dc": False, "meter_interval": 30.0},
        ["A-1", "B-2"],
        {"B-2": {"connectors": 4, "dc": True}},
    )
    assert [c.connectors for c in configs] == [2, 4] and configs[1].dc
    assert configs[0].charge_point_url == "ws://h/ocpp/A-1"
    assert ChargerConfig("X:1", url="ws://h/{identity}/socket").charge_point_url == "ws://h/X:1/socket"


def test_the_management_command_simulates_chargers_for_a_while():
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder = {}

    def serve_in_thread():
        asyncio.set_event_loop(loop)
        holder["cs"] = loop.run_until_complete(CentralSystem().start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve_in_thread, daemon=True)
    thread.start()
    assert ready.wait(5)
    cs = holder["cs"]
    out = io.StringIO()
    try:
        call_command(
            "simulate_chargers",
            "--url",
            cs.url,
            "--identities",
            "CMD-1",
            "CMD-2",
            "--password",
            PASSWORD,
            "--duration",
            "0.8",
            "--report-every",
            "0.3",
            stdout=out,
        )
    finally:
        asyncio.run_coroutine_threadsafe(cs.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    text = out.getvalue()
    assert "simulating 2 chargers" in text and "chargers 2/2 booted" in text
    assert "2 chargers, 2 booted when stopped" in text
    assert cs.of("BootNotification", "CMD-1") and cs.of("BootNotification", "CMD-2")
