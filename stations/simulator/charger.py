"""One simulated OCPP 1.6J charge point over a real WebSocket.

`SimulatedChargePoint` is an `ocpp.v16.ChargePoint` that connects (HTTP Basic auth,
subprotocol ``ocpp1.6``), boots, reports its connectors, beats, reconnects with backoff and
answers every command a central system can send in OCPP 1.6 with the state change a real
charger would make. Sessions are scripted coroutines (`plug_in`, `start_session`,
`stop_session`, `fault`, `go_offline`, …) so that tests and the fleet runner drive it alike.

Cost per charger is kept small for load runs with thousands in one process: while connected
it holds two tasks (the receive loop and the boot/heartbeat loop) plus one meter task per
running transaction; follow-up work of commands runs in short-lived tasks of the charger's
one task group; timers (reservation expiry) are loop callbacks, not tasks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import logging
import math
import random
import re
import time
import uuid
from array import array
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit
from urllib.request import Request, urlopen

from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, MessageType, validate_payload
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

try:  # websockets >= 13: the asyncio implementation
    from websockets.asyncio.client import connect as _ws_connect

    _NEW_WEBSOCKETS = True
except ImportError:  # pragma: no cover - legacy websockets
    from websockets import connect as _ws_connect

    _NEW_WEBSOCKETS = False
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidMessage, WebSocketException

try:
    from websockets.exceptions import InvalidStatus
except ImportError:  # pragma: no cover - legacy websockets
    from websockets.exceptions import InvalidStatusCode as InvalidStatus

log = logging.getLogger("stations.simulator")

SUBPROTOCOL = "ocpp1.6"
_CONNECT_KWARGS = set(inspect.signature(_ws_connect).parameters)

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
CURRENT = "Current.Import"
VOLTAGE = "Voltage"
SOC = "SoC"
POWER_OFFERED = "Power.Offered"
CURRENT_OFFERED = "Current.Offered"
TEMPERATURE = "Temperature"
FREQUENCY = "Frequency"
SUPPORTED_MEASURANDS = frozenset(
    {ENERGY, POWER, CURRENT, VOLTAGE, SOC, POWER_OFFERED, CURRENT_OFFERED, TEMPERATURE, FREQUENCY}
)
AC_VOLTAGE = 230.0
DC_CHARGING_STATUSES = ("Charging", "SuspendedEV", "SuspendedEVSE")

# Why a fault ends a running transaction (OCPP 1.6 StopTransaction.reason).
FAULT_STOP_REASONS = {
    "EVCommunicationError": "EVDisconnected",
    "UnderVoltage": "PowerLoss",
    "PowerMeterFailure": "Other",
}

_DISCONNECTED = object()


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None = None) -> str:
    return (value or now_utc()).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def basic_auth_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _plain(value: Any) -> Any:
    """Payloads the `ocpp` library parsed with Decimal floats, as plain JSON values."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --- Errors ------------------------------------------------------------------------------


class SimulatorError(Exception):
    """A scripted action the charger cannot do in its present state."""


class NotConnected(SimulatorError):
    """There is no accepted connection to send this on."""


class ConnectionLost(NotConnected):
    """The connection dropped while waiting for the answer to a CALL."""


class ConnectionRefusedByServer(SimulatorError):
    """The central system refused the WebSocket handshake (unknown charger, wrong password, …)."""

    def __init__(self, identity: str, url: str, status: int | None, reason: str):
        self.identity, self.url, self.status, self.reason = identity, url, status, reason
        where = f"HTTP {status}" if status else "no HTTP answer"
        super().__init__(
            f"{identity}: the central system at {url} refused the connection ({where}): {reason}"
        )


# --- Configuration and state ---------------------------------------------------------------


@dataclass(slots=True)
class ChargerConfig:
    """What is fixed about a simulated charger. Every interval is in seconds and may be small."""

    identity: str
    password: str | None = None
    # Base URL (the identity is appended) or a URL with an "{identity}" / "<identity>" slot.
    url: str = "ws://127.0.0.1:8000/ocpp"
    vendor: str = "ChargeDesk"
    model: str = "SimCharger"
    serial_number: str | None = None
    firmware_version: str = "1.0.0"
    meter_type: str = "SIM-METER"
    iccid: str | None = None
    imsi: str | None = None
    connectors: int = 2
    dc: bool = False
    max_power_w: float | None = None  # per connector; 22 kW AC, 150 kW DC
    tethered: bool | None = None  # a fixed cable (UnlockConnector NotSupported); default: DC
    meter_interval: float = 60.0
    heartbeat_interval: float | None = None  # None: the interval from BootNotification's answer
    id_tags: tuple[str, ...] = ("SIM-TAG-0001", "SIM-TAG-0002", "SIM-TAG-0003")
    seed: int | str | None = None
    # Simulated energy runs this many times faster than the wall clock (demos, fast tests).
    energy_speedup: float = 1.0
    authorize_remote_start: bool = True  # AuthorizeRemoteTxRequests
    data_transfer_vendors: tuple[str, ...] = ()  # known vendorIds besides `vendor`
    reconnect_initial: float = 1.0
    reconnect_max: float = 60.0
    connect_timeout: float = 10.0
    response_timeout: float = 30.0
    boot_retry_interval: float = 30.0  # when Pending/Rejected comes with interval 0, or boot fails
    step_delay: float = 2.0  # each firmware/diagnostics step and a reboot take this long
    unplug_delay: float = 0.0  # Finishing lasts this long before the driver unplugs
    ping_interval: float | None = None  # WebSocket pings; Heartbeat already proves liveness
    validate: bool = True  # check our own CALLs and their answers against the OCPP schemas
    diagnostics_upload_method: str = "POST"  # POST multipart/form-data, or PUT text/plain
    proxy: str | None = None
    max_queue: int = 10_000  # offline queue; beyond it new MeterValues are dropped
    # Keep (action, payload) of every CALL the central system answered with a CALLRESULT, so a
    # fault test can check that nothing acknowledged was lost (off: a fleet would grow it forever).
    record_answers: bool = False

    @property
    def charge_point_url(self) -> str:
        ident = quote(self.identity, safe="._-~:@*+")
        for slot in ("{identity}", "<identity>"):
            if slot in self.url:
                return self.url.replace(slot, ident)
        return f"{self.url.rstrip('/')}/{ident}"


# key: (default, readonly, kind). Defaults that depend on the charger are set per instance.
CONFIG_KEYS: dict[str, tuple[str, bool, str]] = {
    "AllowOfflineTxForUnknownId": ("false", False, "bool"),
    "AuthorizationCacheEnabled": ("true", False, "bool"),
    "AuthorizeRemoteTxRequests": ("true", False, "bool"),
    "ClockAlignedDataInterval": ("0", False, "int"),
    "ConnectionTimeOut": ("60", False, "int"),
    "ConnectorPhaseRotation": ("0.RST", False, "str"),
    "GetConfigurationMaxKeys": ("50", True, "int"),
    "HeartbeatInterval": ("300", False, "int"),
    "LocalAuthorizeOffline": ("true", False, "bool"),
    "LocalPreAuthorize": ("false", False, "bool"),
    "MeterValuesAlignedData": (ENERGY, False, "measurands"),
    "MeterValuesAlignedDataMaxLength": ("8", True, "int"),
    "MeterValuesSampledData": (f"{ENERGY},{POWER},{CURRENT},{VOLTAGE}", False, "measurands"),
    "MeterValuesSampledDataMaxLength": ("8", True, "int"),
    "MeterValueSampleInterval": ("60", False, "int"),
    "NumberOfConnectors": ("2", True, "int"),
    "ResetRetries": ("3", False, "int"),
    "StopTransactionOnEVSideDisconnect": ("true", False, "bool"),
    "StopTransactionOnInvalidId": ("true", False, "bool"),
    "StopTxnAlignedData": ("", False, "measurands"),
    "StopTxnAlignedDataMaxLength": ("8", True, "int"),
    "StopTxnSampledData": (ENERGY, False, "measurands"),
    "StopTxnSampledDataMaxLength": ("8", True, "int"),
    "SupportedFeatureProfiles": (
        "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger",
        True,
        "str",
    ),
    "SupportedFeatureProfilesMaxLength": ("6", True, "int"),
    "TransactionMessageAttempts": ("3", False, "int"),
    "TransactionMessageRetryInterval": ("60", False, "int"),
    "UnlockConnectorOnEVSideDisconnect": ("true", False, "bool"),
    "WebSocketPingInterval": ("0", False, "int"),
    "LocalAuthListEnabled": ("true", False, "bool"),
    "LocalAuthListMaxLength": ("1000", True, "int"),
    "SendLocalListMaxLength": ("100", True, "int"),
    "ReserveConnectorZeroSupported": ("false", True, "bool"),
    "ChargeProfileMaxStackLevel": ("8", True, "int"),
    "ChargingScheduleAllowedChargingRateUnit": ("Current,Power", True, "str"),
    "ChargingScheduleMaxPeriods": ("24", True, "int"),
    "ConnectorSwitch3to1PhaseSupported": ("false", True, "bool"),
    "MaxChargingProfilesInstalled": ("16", True, "int"),
}


@dataclass(slots=True, eq=False)
class Transaction:
    connector_id: int
    id_tag: str
    meter_start: int
    timestamp: str
    started_at: datetime
    reservation_id: int | None = None
    transaction_id: int | None = None  # known once the central system answered StartTransaction
    id_tag_info: dict | None = None
    begin_sample: dict | None = None
    meter_task: asyncio.Task | None = None
    stop_requested: bool = False
    ended: bool = False
    meter_flushing: bool = False  # the meter task is delivering the queue: let it finish


@dataclass(slots=True, eq=False)
class Reservation:
    reservation_id: int
    connector_id: int
    id_tag: str
    parent_id_tag: str | None
    expiry: datetime
    timer: asyncio.TimerHandle | None = None


@dataclass(slots=True, eq=False)
class Connector:
    connector_id: int
    max_power_w: float
    status: str = "Available"
    error_code: str = "NoError"
    info: str | None = None
    vendor_error_code: str | None = None
    plugged: bool = False
    finished: bool = False  # a session ended while the car is still plugged in
    operative: bool = True
    inoperative_scheduled: bool = False  # ChangeAvailability answered Scheduled
    fault: tuple[str, str | None, str | None] | None = None  # error code, vendor code, info
    transaction: Transaction | None = None
    reservation: Reservation | None = None
    remote_pending: str | None = None  # idTag of an accepted RemoteStart not started yet
    charging_status: str = "Charging"  # Charging / SuspendedEV / SuspendedEVSE during a session
    meter_wh: float = 0.0
    power_w: float = 0.0
    last_tick: float = 0.0
    ev_max_w: float = 0.0
    ev_phases: int = 3
    battery_wh: float = 60_000.0
    soc: float = 50.0
    ev_voltage: float = 400.0


@dataclass(slots=True, eq=False)
class InstalledProfile:
    connector_id: int
    profile_id: int
    stack_level: int
    purpose: str
    kind: str
    unit: str
    periods: list[tuple[int, float, int | None]]
    duration: int | None
    start_schedule: datetime | None
    recurrency: str | None
    valid_from: datetime | None
    valid_to: datetime | None
    transaction_id: int | None
    transaction: Transaction | None
    installed_at: datetime
    raw: dict


@dataclass(slots=True, eq=False)
class QueuedMessage:
    """A transaction message waiting for (or in) delivery, in order, with its own timestamps."""

    payload: Any
    tx: Transaction | None
    attempts: int = 0
    done: bool = False
    result: Any = None
    error: Exception | None = None


@dataclass(slots=True)
class StartResult:
    transaction_id: int | None
    id_tag_info: dict  # snake_case keys, as the ocpp library hands them: status, expiry_date, …
    accepted: bool
    queued: bool = False  # StartTransaction waits in the offline queue


@dataclass(slots=True)
class StopResult:
    transaction_id: int | None
    meter_stop: int
    id_tag_info: dict | None
    queued: bool = False


class CallStats:
    """Counters and round-trip latencies, shareable by a whole fleet (one object, no locks:
    one event loop). Latencies past `max_samples` are kept as a uniform reservoir sample."""

    __slots__ = (
        "_rng",
        "_seen",
        "boots",
        "by_action",
        "call_errors",
        "calls_sent",
        "commands_received",
        "connects",
        "disconnects",
        "latencies",
        "max_samples",
        "refusals",
        "results_sent",
        "timeouts",
        "window",
    )

    def __init__(self, max_samples: int = 1_000_000):
        self.max_samples = max_samples
        self._rng = random.Random(0)
        self.reset()

    def reset(self) -> None:
        self.calls_sent = self.results_sent = self.commands_received = 0
        self.call_errors = self.timeouts = self.connects = self.disconnects = 0
        self.refusals = self.boots = 0
        self.by_action: dict[str, int] = {}
        self.latencies = array("d")
        self.window = array("d")  # since the last take_window()
        self._seen = 0

    def record(self, seconds: float) -> None:
        self._seen += 1
        if len(self.latencies) < self.max_samples:
            self.latencies.append(seconds)
        else:
            slot = self._rng.randrange(self._seen)
            if slot < self.max_samples:
                self.latencies[slot] = seconds
        if len(self.window) < self.max_samples:
            self.window.append(seconds)

    def take_window(self) -> array:
        window, self.window = self.window, array("d")
        return window

    @staticmethod
    def percentile(samples: Iterable[float], q: float, presorted: bool = False) -> float | None:
        """Nearest-rank percentile `q` (0-100) of `samples`, or None if there are none."""
        ordered = samples if presorted else sorted(samples)
        if not ordered:
            return None
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]

    @property
    def messages_sent(self) -> int:
        return self.calls_sent + self.results_sent

    def summary(self) -> dict:
        ordered = sorted(self.latencies)

        def ms(q: float) -> float | None:
            value = self.percentile(ordered, q, presorted=True)
            return None if value is None else round(value * 1000, 3)

        return {
            "calls_sent": self.calls_sent,
            "results_sent": self.results_sent,
            "messages_sent": self.messages_sent,
            "commands_received": self.commands_received,
            "call_errors": self.call_errors,
            "timeouts": self.timeouts,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "refusals": self.refusals,
            "boots": self.boots,
            "answered": self._seen,
            "p50_ms": ms(50),
            "p90_ms": ms(90),
            "p99_ms": ms(99),
            "max_ms": round(ordered[-1] * 1000, 3) if ordered else None,
            "by_action": dict(self.by_action),
        }


# --- Uploads (in a worker thread) -----------------------------------------------------------


def http_upload(url: str, file_name: str, body: bytes, method: str = "POST", timeout: float = 30.0) -> int:
    """Upload a diagnostics file: POST multipart/form-data (field "file") or PUT text/plain.
    Returns the HTTP status; raises OSError (urllib's URLError/HTTPError) on failure."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url}")
    if method.upper() == "PUT":
        target = url + quote(file_name) if url.endswith("/") else url
        request = Request(  # noqa: S310 - http(s) only, checked above
            target, data=body, method="PUT", headers={"Content-Type": "text/plain; charset=utf-8"}
        )
    else:
        boundary = uuid.uuid4().hex
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        ).encode()
        data = head + body + f"\r\n--{boundary}--\r\n".encode()
        request = Request(  # noqa: S310 - http(s) only, checked above
            url,
            data=data,
            method="POST",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    # The scheme is checked above: only http(s) reaches urlopen.
    with urlopen(request, timeout=timeout) as response:  # noqa: S310
        response.read()
        return response.status


# --- The charge point ----------------------------------------------------------------------


class SimulatedChargePoint(ChargePoint):
    """A simulated OCPP 1.6J charge point. Use it as an async context manager (runs in the
    background) or `await cp.run()` it as one task of a fleet.

        async with SimulatedChargePoint(ChargerConfig("CP-1", "secret-password-16", url)) as cp:
            await cp.wait_booted()
            started = await cp.start_session(1, "TAG-1")
            await cp.stop_session(1)
    """

    def __init__(
        self,
        config: ChargerConfig | None = None,
        *,
        stats: CallStats | None = None,
        logger: logging.Logger | None = None,
        **config_kwargs: Any,
    ):
        if config is None:
            config = ChargerConfig(**config_kwargs)
        elif config_kwargs:
            raise TypeError("give a ChargerConfig or keyword arguments for one, not both")
        super().__init__(
            config.identity, None, response_timeout=config.response_timeout, logger=logger or log
        )
        self.config = config
        self.stats = stats or CallStats()
        self.answered: list[tuple[str, dict]] = []  # filled when config.record_answers
        # Seeded per charger, so a fleet with one seed is reproducible charger by charger.
        self.rng = (
            random.Random(f"{config.seed}:{config.identity}") if config.seed is not None else random.Random()
        )
        max_w = config.max_power_w or (150_000.0 if config.dc else 22_000.0)
        self.connectors: dict[int, Connector] = {
            n: Connector(n, max_w, meter_wh=round(self.rng.uniform(10_000, 3_000_000)))
            for n in range(1, config.connectors + 1)
        }
        self.tethered = config.dc if config.tethered is None else config.tethered
        self.firmware_version = config.firmware_version
        self.meter_interval = float(config.meter_interval)
        self.heartbeat_interval = float(config.heartbeat_interval or 0) or 300.0
        self._config_values: dict[str, str] = {
            "NumberOfConnectors": str(config.connectors),
            "MeterValueSampleInterval": _num(self.meter_interval),
            "HeartbeatInterval": _num(self.heartbeat_interval),
            "AuthorizeRemoteTxRequests": "true" if config.authorize_remote_start else "false",
            "WebSocketPingInterval": _num(config.ping_interval or 0),
        }
        if config.dc:
            self._config_values["MeterValuesSampledData"] = f"{ENERGY},{POWER},{CURRENT},{VOLTAGE},{SOC}"
            self._config_values["StopTxnSampledData"] = f"{ENERGY},{SOC}"

        # What a test or an operator may want to look at.
        self.received: list[tuple[str, dict]] = []  # every command the central system sent
        self.state = "stopped"
        self.last_error: Exception | None = None
        self.registration_status: str | None = None
        self.refusals = 0
        self.connects = 0
        self.boot_count = 0
        self.server_time: str | None = None
        self.outbox: deque[QueuedMessage] = deque()
        self.auth_cache: dict[str, dict] = {}
        self.local_list: dict[str, dict] = {}
        self.local_list_version = 0
        self.charging_profiles: list[InstalledProfile] = []
        self.reservations: dict[int, Reservation] = {}
        self.firmware_status = "Idle"
        self.diagnostics_status = "Idle"
        self.uploads: list[dict] = []  # diagnostics uploads: location, file name, ok, error
        self.events: deque[tuple[str, str]] = deque(maxlen=100)  # for the diagnostics file
        self.operative = True  # connector 0
        self.inoperative_scheduled = False
        self.fault_state: tuple[str, str | None, str | None] | None = None  # connector 0
        self.cp_status = "Available"
        self.cp_error_code = "NoError"

        self._ws: Any = None
        self._booted = False
        self._allow_online = asyncio.Event()
        self._allow_online.set()
        self._user_offline = False
        self._stopping = False
        self._tg: asyncio.TaskGroup | None = None
        self._run_task: asyncio.Task | None = None
        self._online_task: asyncio.Task | None = None
        self._bg: asyncio.Task | None = None
        self._changed: asyncio.Event | None = None
        self._config_changed: asyncio.Event | None = None
        self._followups: list[tuple[Callable[..., Awaitable], tuple]] = []
        self._my_ids: set[str] = set()
        self._flushing = False
        self._raw_replies: asyncio.Queue | None = None

    # --- Public state --------------------------------------------------------------------

    @property
    def booted(self) -> bool:
        """Connected and accepted by the central system."""
        return self._booted

    @property
    def online(self) -> bool:
        return self._ws is not None

    @property
    def running(self) -> bool:
        return self._tg is not None

    def transaction(self, connector_id: int) -> Transaction | None:
        return self._connector(connector_id).transaction

    def get_configuration(self, key: str) -> str | None:
        if key not in CONFIG_KEYS:
            return None
        return self._config_values.get(key, CONFIG_KEYS[key][0])

    def commands(self, action: str) -> list[dict]:
        """The payloads of every `action` the central system sent, oldest first."""
        return [payload for name, payload in self.received if name == action]

    # --- Running -------------------------------------------------------------------------

    async def __aenter__(self) -> SimulatedChargePoint:
        self._bg = asyncio.create_task(self.run(), name=f"charger {self.id}")
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    async def run(self, behaviour: Callable[[SimulatedChargePoint], Awaitable[None]] | None = None) -> None:
        """Connect and stay connected (reconnecting with backoff) until cancelled or `stop()`."""
        self._run_task = asyncio.current_task()
        self._stopping = False
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self._connection_loop())
                if behaviour is not None:
                    tg.create_task(self._guard(behaviour(self), "behaviour"))
        finally:
            self._tg = None
            self._set_state("stopped")

    async def stop(self) -> None:
        """Close the connection and end every task of this charger."""
        self._stopping = True
        task = self._run_task or self._bg
        for reservation in self.reservations.values():
            if reservation.timer:
                reservation.timer.cancel()
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._run_task = self._bg = None

    def spawn(self, coro: Awaitable, name: str = "task") -> asyncio.Task | None:
        """Run `coro` in this charger's task group; an error in it is logged, not fatal."""
        return self._spawn(coro, name)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float | None = 10.0) -> None:
        """Wait until `predicate()` holds; it is checked on every change of this charger's state."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not predicate():
            if self._changed is None:
                self._changed = asyncio.Event()
            event = self._changed
            if deadline is None:
                await event.wait()
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{self.id}: condition not met within {timeout} s (state {self.state})")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await event.wait()

    async def wait_booted(self, timeout: float | None = 10.0, raise_on_refusal: bool = True) -> None:
        """Wait for an accepted BootNotification; raise `ConnectionRefusedByServer` if the
        central system refuses the connection meanwhile (it is retried in the background)."""
        await self.wait_until(lambda: self._booted or (raise_on_refusal and self.state == "refused"), timeout)
        if not self._booted and self.last_error is not None:
            raise self.last_error

    async def wait_for_command(self, action: str, count: int = 1, timeout: float = 10.0) -> dict:
        """Wait until `count` commands `action` have arrived; return the last one's payload."""
        await self.wait_until(lambda: len(self.commands(action)) >= count, timeout)
        return self.commands(action)[count - 1]

    # --- Connection ----------------------------------------------------------------------

    async def _connection_loop(self) -> None:
        delay = self.config.reconnect_initial
        while True:
            await self._allow_online.wait()
            self._set_state("connecting")
            pause = delay * self.rng.uniform(0.8, 1.2)  # jitter: a fleet must not retry in step
            try:
                ws = await self._open()
            except ConnectionRefusedByServer as exc:
                self.last_error = exc
                self.refusals += 1
                self.stats.refusals += 1
                self._set_state("refused")
                log.warning("%s; retrying in %.1f s", exc, pause)
            except (OSError, TimeoutError, WebSocketException) as exc:
                self.last_error = exc
                self._set_state("disconnected")
                log.info(
                    "%s: cannot connect to %s (%s); retrying in %.1f s", self.id, self.config.url, exc, pause
                )
            else:
                if not self._allow_online.is_set():  # went offline while connecting
                    await self._close(ws, abrupt=True)
                    continue
                if await self._serve(ws):
                    delay = self.config.reconnect_initial
                    pause = delay * self.rng.uniform(0.8, 1.2)
                if not self._allow_online.is_set():  # an intentional disconnect: no backoff
                    continue
                log.info("%s: connection lost; reconnecting in %.1f s", self.id, pause)
            await asyncio.sleep(pause)
            delay = min(delay * 2, self.config.reconnect_max)

    async def _open(self) -> Any:
        cfg = self.config
        url = cfg.charge_point_url
        headers = {"Authorization": basic_auth_header(cfg.identity, cfg.password)} if cfg.password else {}
        kwargs: dict[str, Any] = {
            "subprotocols": [SUBPROTOCOL],
            "open_timeout": cfg.connect_timeout,
            "ping_interval": cfg.ping_interval,
            "compression": None,  # deflate costs ~100 kB a connection; chargers rarely use it
        }
        kwargs["additional_headers" if _NEW_WEBSOCKETS else "extra_headers"] = headers
        if "proxy" in _CONNECT_KWARGS:
            kwargs["proxy"] = cfg.proxy
        try:
            ws = await _ws_connect(url, **kwargs)
        except InvalidStatus as exc:
            response = getattr(exc, "response", None)
            status = response.status_code if response is not None else getattr(exc, "status_code", None)
            if status is not None and 400 <= status < 500:
                reason = "unknown charge point or wrong password" if status in (401, 403) else "refused"
                raise ConnectionRefusedByServer(cfg.identity, url, status, reason) from exc
            raise
        except InvalidMessage as exc:
            raise ConnectionRefusedByServer(
                cfg.identity, url, None, "the connection was closed before the WebSocket was accepted"
            ) from exc
        except InvalidHandshake as exc:
            raise ConnectionRefusedByServer(cfg.identity, url, None, f"handshake failed: {exc}") from exc
        if ws.subprotocol != SUBPROTOCOL:
            await self._close(ws, abrupt=True)
            raise ConnectionRefusedByServer(cfg.identity, url, None, f"no {SUBPROTOCOL} subprotocol agreed")
        return ws

    async def _serve(self, ws: Any) -> bool:
        """Hold one connection until it closes. Returns whether the charger was accepted on it."""
        self._ws = self._connection = ws
        self._response_queue = asyncio.Queue()
        self.connects += 1
        self.stats.connects += 1
        self._log_event("connected")
        self._set_state("connected")
        accepted = False
        self._online_task = self._spawn(self._online(), "online")
        try:
            while True:
                frame = await ws.recv()
                if self._booted:
                    accepted = True
                await self._on_frame(frame)
        except ConnectionClosed:
            pass
        except asyncio.CancelledError:
            await self._close(ws, code=1001)  # stopping: say goodbye ("going away")
            raise
        finally:
            accepted = accepted or self._booted
            self._ws = self._connection = None
            self._booted = False
            self._response_queue.put_nowait(_DISCONNECTED)
            if self._online_task is not None:
                self._online_task.cancel()
                self._online_task = None
            self.stats.disconnects += 1
            self._log_event("disconnected")
            if not self._stopping:
                self._set_state("offline" if self._user_offline else "disconnected")
            with contextlib.suppress(Exception):
                await self._close(ws, abrupt=True)
        return accepted

    async def _close(self, ws: Any, abrupt: bool = False, code: int = 1000) -> None:
        if abrupt:
            transport = getattr(ws, "transport", None)
            if transport is not None:
                transport.abort()
                return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await ws.close(code)

    async def _on_frame(self, frame: str | bytes) -> None:
        if self._raw_replies is not None and self._is_raw_reply(frame):
            self._raw_replies.put_nowait(
                frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
            )
            self._notify()
            return
        try:
            await self.route_message(frame)
        except ConnectionClosed:
            raise
        except Exception:
            log.exception("%s: could not handle frame %.200r", self.id, frame)

    def _is_raw_reply(self, frame: str | bytes) -> bool:
        """Whether `frame` answers something sent with send_raw (not one of our own CALLs)."""
        try:
            message = json.loads(frame)
        except ValueError:
            return True  # not JSON: nothing the router could use
        if not isinstance(message, list) or not message:
            return True
        if message[0] == 2:
            return False  # a CALL of the central system: route it
        if message[0] in (3, 4) and len(message) >= 2:
            return message[1] not in self._my_ids
        return True

    async def _online(self) -> None:
        """On a fresh connection: boot until accepted, report, deliver the queue, then beat."""
        while True:
            try:
                answer = await self._boot_notification()
            except (TimeoutError, OCPPError) as exc:
                log.info("%s: BootNotification failed (%s); retrying", self.id, exc)
                await asyncio.sleep(self.config.boot_retry_interval)
                continue
            if answer.status == "Accepted":
                break
            # Pending/Rejected: boot again after the interval (a triggered boot may be accepted first).
            with contextlib.suppress(TimeoutError):
                await self.wait_until(
                    lambda: self.registration_status == "Accepted",
                    answer.interval or self.config.boot_retry_interval,
                )
            if self.registration_status == "Accepted":
                break
        self._booted = True
        self.stats.boots += 1
        self._set_state("booted")
        await self._send_status(0)
        for connector_id in self.connectors:
            await self._send_status(connector_id)
        await self._flush_outbox()
        await self._heartbeat_loop()

    async def _boot_notification(self) -> call_result.BootNotification:
        cfg = self.config
        answer = await self.call(
            call.BootNotification(
                charge_point_vendor=cfg.vendor[:20],
                charge_point_model=cfg.model[:20],
                charge_point_serial_number=(cfg.serial_number or f"SIM-{cfg.identity}")[:25],
                firmware_version=self.firmware_version[:50],
                iccid=cfg.iccid,
                imsi=cfg.imsi,
                meter_type=cfg.meter_type[:25],
                meter_serial_number=f"M-{cfg.identity}"[:25],
            )
        )
        self.registration_status = answer.status
        self.server_time = answer.current_time
        self._log_event(f"BootNotification {answer.status}, interval {answer.interval}")
        if answer.status == "Accepted" and self.config.heartbeat_interval is None and answer.interval > 0:
            self._set_heartbeat_interval(float(answer.interval))
        self._notify()
        return answer

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            interval = self.heartbeat_interval
            if interval <= 0:  # HeartbeatInterval 0: no heartbeats
                await self._sleep_unless_changed(None)
                continue
            remaining = last + interval - loop.time()
            if remaining > 0 and await self._sleep_unless_changed(remaining):
                continue  # a configuration change: measure again with the (new) interval
            last = loop.time()
            try:
                await self.heartbeat()
            except TimeoutError:
                log.info("%s: no answer to Heartbeat; dropping the connection", self.id)
                if self._ws is not None:
                    await self._close(self._ws, abrupt=True)
                return
            except OCPPError:
                pass
            if self.outbox:
                await self._flush_outbox()

    async def _sleep_unless_changed(self, seconds: float | None) -> bool:
        """Sleep `seconds` (None: until woken). True if a configuration change woke us first."""
        if self._config_changed is None:
            self._config_changed = asyncio.Event()
        event = self._config_changed
        if seconds is None:
            await event.wait()
            return True
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            return False
        return True

    def _wake_loops(self) -> None:
        event, self._config_changed = self._config_changed, None
        if event is not None:
            event.set()

    # --- CALLs (ours) ----------------------------------------------------------------------

    async def call(self, payload, suppress=False, unique_id=None, skip_schema_validation=None):
        """Send a CALL and return the typed answer (`ocpp.v16.call_result.<Action>`).
        Raises NotConnected/ConnectionLost, TimeoutError, or the OCPPError of a CALLERROR
        (None instead with `suppress=True`).

        The library's own `call` serialises through `dataclasses.asdict` and a recursive
        key conversion, most of the CPU a charger spends; our payloads are flat dataclasses
        whose nested values (meter values) are already camelCase, so one pass suffices."""
        if self._ws is None:
            raise NotConnected(f"{self.id} is not connected")
        action = type(payload).__name__
        unique_id = unique_id or str(uuid.uuid4())
        validate = self.config.validate if skip_schema_validation is None else not skip_schema_validation
        body = _camel_payload(payload)
        if validate:
            await validate_payload(Call(unique_id, action, body), self._ocpp_version)
        frame = json.dumps([2, unique_id, action, body], separators=(",", ":"))
        stats = self.stats
        self._my_ids.add(unique_id)
        try:
            async with self._call_lock:
                # Checked here, with no await before the send: a reconnect may have happened
                # while this CALL waited for the lock (OCPP 1.6 §4.2.1: nothing but boot
                # before the charger is accepted).
                if not self._booted and action != "BootNotification":
                    raise NotConnected(f"{self.id} is not accepted by the central system (now)")
                stats.calls_sent += 1
                stats.by_action[action] = stats.by_action.get(action, 0) + 1
                sent_at = time.perf_counter()
                await self._send(frame)
                try:
                    response = await self._get_specific_response(unique_id, self._response_timeout)
                except TimeoutError:
                    stats.timeouts += 1
                    raise TimeoutError(
                        f"{self.id}: no answer to {action} within {self._response_timeout} s"
                    ) from None
                rtt = time.perf_counter() - sent_at
        except ConnectionClosed as exc:
            raise ConnectionLost(f"{self.id}: connection closed while sending {action}") from exc
        finally:
            self._my_ids.discard(unique_id)
        if response.message_type_id == MessageType.CallError:
            stats.call_errors += 1
            if suppress:
                return None
            raise response.to_exception()
        stats.record(rtt)
        if self.config.record_answers:
            self.answered.append((action, body))
        if validate:
            response.action = action
            await validate_payload(response, self._ocpp_version)
        return getattr(call_result, action)(**camel_to_snake_case(response.payload))

    async def _send(self, message: str) -> None:
        connection = self._connection
        if connection is None:
            raise NotConnected(f"{self.id} is not connected")
        if not message.startswith("[2,"):
            self.stats.results_sent += 1
        log.debug("%s > %s", self.id, message)
        await connection.send(message)

    async def _get_specific_response(self, unique_id, timeout):
        queue = self._response_queue
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                response = await queue.get()
            if response is _DISCONNECTED:
                raise ConnectionLost(f"{self.id}: connection closed before the answer arrived")
            if response.unique_id == unique_id:
                return response
            log.info("%s: ignoring an answer to an unknown or expired CALL %s", self.id, response.unique_id)

    async def heartbeat(self) -> str:
        answer = await self.call(call.Heartbeat())
        self.server_time = answer.current_time
        return answer.current_time

    async def authorize(self, id_tag: str) -> dict:
        """Authorize.req when online (unless LocalPreAuthorize finds it locally), else the
        local list / cache / AllowOfflineTxForUnknownId. Returns idTagInfo (snake_case keys)."""
        local = self._local_auth(id_tag)
        if self._booted:
            if local is not None and local.get("status") == "Accepted" and self._flag("LocalPreAuthorize"):
                return local
            try:
                answer = await self.call(call.Authorize(id_tag=id_tag))
            except (NotConnected, TimeoutError):
                pass
            except OCPPError:
                return {"status": "Invalid"}
            else:
                info = dict(answer.id_tag_info)
                if info.get("status") == "Accepted" and self._flag("AuthorizationCacheEnabled"):
                    self.auth_cache[id_tag] = info
                elif info.get("status") != "Accepted":
                    self.auth_cache.pop(id_tag, None)
                return info
        if local is not None and self._flag("LocalAuthorizeOffline"):
            return local
        if self._flag("AllowOfflineTxForUnknownId"):
            return {"status": "Accepted"}
        return {"status": "Invalid"}

    def _local_auth(self, id_tag: str) -> dict | None:
        info = None
        if self._flag("LocalAuthListEnabled") and id_tag in self.local_list:
            info = dict(self.local_list[id_tag])
        elif self._flag("AuthorizationCacheEnabled") and id_tag in self.auth_cache:
            info = dict(self.auth_cache[id_tag])
        if info and info.get("expiry_date"):
            with contextlib.suppress(ValueError):
                if parse_iso(info["expiry_date"]) < now_utc():
                    info["status"] = "Expired"
        return info

    # --- Raw frames (for tests of a central system's error handling) ------------------------

    async def send_raw(self, text: str) -> None:
        """Send `text` as it is. Answers that are not to our own CALLs then go to
        `next_raw_reply()` instead of the OCPP router."""
        if self._ws is None:
            raise NotConnected(f"{self.id} is not connected")
        if self._raw_replies is None:
            self._raw_replies = asyncio.Queue()
        await self._ws.send(text)

    async def next_raw_reply(self, timeout: float = 5.0) -> str:
        if self._raw_replies is None:
            self._raw_replies = asyncio.Queue()
        async with asyncio.timeout(timeout):
            return await self._raw_replies.get()

    # --- Offline queue -------------------------------------------------------------------

    def _enqueue(self, payload: Any, tx: Transaction | None) -> QueuedMessage:
        item = QueuedMessage(payload, tx)
        if len(self.outbox) >= self.config.max_queue and isinstance(payload, call.MeterValues):
            # A full store keeps what billing needs (Start/Stop) and drops new samples.
            item.done, item.error = True, SimulatorError("offline queue full")
            return item
        self.outbox.append(item)
        return item

    async def _deliver(self, item: QueuedMessage) -> None:
        """Deliver the queue now if connected and wait (bounded) for `item`'s answer."""
        await self._flush_outbox()
        if not item.done and self._booted:
            with contextlib.suppress(TimeoutError):
                await self.wait_until(lambda: item.done or not self._booted, self.config.response_timeout)

    async def _flush_outbox(self) -> None:
        if self._flushing or not self._booted:
            return
        self._flushing = True
        try:
            attempts_allowed = max(1, self._int("TransactionMessageAttempts"))
            while self.outbox and self._booted:
                item = self.outbox[0]
                payload = item.payload
                if item.tx is not None and getattr(payload, "transaction_id", 0) is None:
                    payload.transaction_id = item.tx.transaction_id
                    if payload.transaction_id is None and isinstance(payload, call.StopTransaction):
                        log.warning("%s: StopTransaction dropped: its StartTransaction got no id", self.id)
                        item.error = SimulatorError("StartTransaction got no transactionId")
                        self._finish_item(item)
                        continue
                try:
                    result = await self.call(payload)
                except NotConnected:
                    break  # stays first in the queue; sent again after the next boot
                except TimeoutError as exc:
                    item.attempts += 1
                    if item.attempts < attempts_allowed:
                        break
                    item.error = exc
                except OCPPError as exc:
                    log.warning("%s: %s refused: %s", self.id, type(payload).__name__, exc)
                    item.error = exc
                else:
                    item.result = result
                    if isinstance(payload, call.StartTransaction) and item.tx is not None:
                        item.tx.transaction_id = result.transaction_id
                        item.tx.id_tag_info = dict(result.id_tag_info)
                self._finish_item(item)
        finally:
            self._flushing = False

    def _finish_item(self, item: QueuedMessage) -> None:
        if self.outbox and self.outbox[0] is item:
            self.outbox.popleft()
        item.done = True
        self._notify()

    # --- Statuses ------------------------------------------------------------------------

    def _connector(self, connector_id: int) -> Connector:
        try:
            return self.connectors[connector_id]
        except KeyError:
            raise SimulatorError(f"{self.id} has no connector {connector_id}") from None

    def _wanted_status(self, c: Connector) -> tuple[str, str, str | None, str | None]:
        fault = c.fault or self.fault_state
        if fault:
            return "Faulted", fault[0], fault[2], fault[1]
        if c.transaction is not None:
            return c.charging_status, "NoError", None, None
        if not (c.operative and self.operative):
            return "Unavailable", "NoError", None, None
        if c.plugged:
            return ("Finishing" if c.finished else "Preparing"), "NoError", None, None
        if c.reservation is not None:
            return "Reserved", "NoError", None, None
        return "Available", "NoError", None, None

    def _refresh(self, connector_id: int) -> bool:
        """Recompute a connector's (or, for 0, the charge point's) status; True if it changed."""
        if connector_id == 0:
            if self.fault_state:
                wanted = ("Faulted", self.fault_state[0])
            else:
                wanted = ("Available" if self.operative else "Unavailable", "NoError")
            changed = wanted != (self.cp_status, self.cp_error_code)
            self.cp_status, self.cp_error_code = wanted
            if changed:
                self._notify()
            return changed
        c = self.connectors[connector_id]
        status, error_code, info, vendor_code = self._wanted_status(c)
        changed = (status, error_code) != (c.status, c.error_code)
        c.status, c.error_code, c.info, c.vendor_error_code = status, error_code, info, vendor_code
        if changed:
            self._notify()
        return changed

    async def _update_status(self, connector_id: int) -> None:
        if self._refresh(connector_id):
            await self._send_status(connector_id)

    async def _send_status(self, connector_id: int) -> None:
        if not self._booted:
            return  # the current status goes out after the next boot
        if connector_id == 0:
            fault = self.fault_state
            payload = call.StatusNotification(
                connector_id=0,
                error_code=self.cp_error_code,
                status=self.cp_status,
                timestamp=iso(),
                info=fault[2] if fault else None,
                vendor_error_code=fault[1] if fault else None,
            )
        else:
            c = self.connectors[connector_id]
            payload = call.StatusNotification(
                connector_id=connector_id,
                error_code=c.error_code,
                status=c.status,
                timestamp=iso(),
                info=c.info,
                vendor_error_code=c.vendor_error_code,
            )
        with contextlib.suppress(NotConnected, TimeoutError, OCPPError):
            await self.call(payload)

    # --- Scripted sessions ---------------------------------------------------------------

    async def plug_in(self, connector_id: int) -> None:
        """A car is plugged in: Preparing."""
        c = self._connector(connector_id)
        if c.plugged and not c.finished:
            return
        c.plugged, c.finished = True, False
        self._new_ev(c)
        self._log_event(f"connector {connector_id}: EV plugged in")
        await self._update_status(connector_id)

    async def unplug(self, connector_id: int) -> None:
        """The car leaves: a running session stops (EVDisconnected), then Available."""
        c = self._connector(connector_id)
        if c.transaction is not None:
            await self.stop_session(connector_id, reason="EVDisconnected")
            return
        c.plugged = c.finished = False
        self._apply_scheduled_availability(c)
        await self._update_status(connector_id)

    async def start_session(
        self,
        connector_id: int,
        id_tag: str | None = None,
        *,
        authorize: bool = True,
        charging_profile: dict | None = None,
    ) -> StartResult:
        """Authorize (unless `authorize=False`), then StartTransaction, Charging and a meter
        loop. Offline, authorisation is local and StartTransaction waits in the queue."""
        c = self._connector(connector_id)
        if c.transaction is not None:
            raise SimulatorError(f"{self.id}: connector {connector_id} already has a transaction")
        if c.fault or self.fault_state:
            raise SimulatorError(f"{self.id}: connector {connector_id} is faulted")
        if not (c.operative and self.operative):
            raise SimulatorError(f"{self.id}: connector {connector_id} is unavailable")
        id_tag = id_tag or self.rng.choice(self.config.id_tags)
        reservation = c.reservation
        if reservation is not None and id_tag not in (reservation.id_tag, reservation.parent_id_tag):
            raise SimulatorError(f"{self.id}: connector {connector_id} is reserved for another idTag")
        if not c.plugged or c.finished:
            await self.plug_in(connector_id)
        if authorize:
            info = await self.authorize(id_tag)
            if info.get("status") != "Accepted":
                self._log_event(f"connector {connector_id}: {id_tag} not authorized ({info.get('status')})")
                return StartResult(None, info, accepted=False)
        else:
            info = {"status": "Accepted"}
        if c.transaction is not None:  # started meanwhile (a remote start, say)
            raise SimulatorError(f"{self.id}: connector {connector_id} already has a transaction")

        started = now_utc()
        loop = asyncio.get_running_loop()
        tx = Transaction(
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start=int(c.meter_wh),
            timestamp=iso(started),
            started_at=started,
        )
        if reservation is not None:
            tx.reservation_id = reservation.reservation_id
            self._drop_reservation(reservation)
        c.transaction = tx
        c.charging_status = "Charging"
        c.last_tick = loop.time()
        c.power_w = self._target_power(c)
        tx.begin_sample = self._sample(c, "Transaction.Begin", self._measurands("StopTxnSampledData"))
        item = self._enqueue(
            call.StartTransaction(
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=tx.meter_start,
                timestamp=tx.timestamp,
                reservation_id=tx.reservation_id,
            ),
            tx,
        )
        self._log_event(f"connector {connector_id}: session started for {id_tag}")
        tx.meter_task = self._spawn(self._meter_loop(c, tx), f"meter {connector_id}")
        await self._deliver(item)
        if charging_profile:
            status = self._install_profile(connector_id, charging_profile, tx)
            if status != "Accepted":
                log.info("%s: charging profile of the remote start not installed (%s)", self.id, status)
        if not tx.ended:
            await self._update_status(connector_id)
        if item.result is not None:
            info = dict(item.result.id_tag_info)
            if info.get("status") != "Accepted" and not tx.ended:
                # The central system knows this idTag no better than Authorize did.
                if self._flag("StopTransactionOnInvalidId"):
                    await self.stop_session(connector_id, reason="DeAuthorized", unplug=False)
                else:
                    c.charging_status = "SuspendedEVSE"
                    await self._update_status(connector_id)
            return StartResult(tx.transaction_id, info, accepted=info.get("status") == "Accepted")
        return StartResult(tx.transaction_id, info, accepted=True, queued=not item.done)

    async def stop_session(
        self, connector_id: int, reason: str = "Local", *, unplug: bool = True
    ) -> StopResult:
        """StopTransaction (meterStop, timestamp, idTag, transactionData Begin/End), then
        Finishing and, when the car is unplugged, Available (or Unavailable if scheduled)."""
        c = self._connector(connector_id)
        tx = c.transaction
        if tx is None or tx.ended:
            raise SimulatorError(f"{self.id}: connector {connector_id} has no transaction")
        tx.ended = True
        # Cancelling the meter task mid-CALL would send that MeterValues twice; it ends by itself.
        if (
            tx.meter_task is not None
            and not tx.meter_flushing
            and tx.meter_task is not asyncio.current_task()
        ):
            tx.meter_task.cancel()
        self._tick(c)
        end = self._sample(c, "Transaction.End", self._measurands("StopTxnSampledData"))
        meter_stop = int(c.meter_wh)
        c.transaction = None
        c.power_w = 0.0
        c.finished = True
        c.charging_status = "Charging"
        self.charging_profiles = [p for p in self.charging_profiles if p.transaction is not tx]
        item = self._enqueue(
            call.StopTransaction(
                meter_stop=meter_stop,
                timestamp=end["timestamp"],
                transaction_id=tx.transaction_id,
                reason=reason,
                id_tag=tx.id_tag,
                transaction_data=[tx.begin_sample, end] if tx.begin_sample else [end],
            ),
            tx,
        )
        self._log_event(
            f"connector {connector_id}: session stopped ({reason}), {meter_stop - tx.meter_start} Wh"
        )
        await self._deliver(item)
        if reason == "EVDisconnected":
            c.plugged = c.finished = False
        if c.plugged:
            await self._update_status(connector_id)  # Finishing
        if unplug and c.plugged:
            if self.config.unplug_delay > 0:
                await asyncio.sleep(self.config.unplug_delay)
            c.plugged = c.finished = False
        if not c.plugged:
            self._apply_scheduled_availability(c)
        await self._update_status(connector_id)
        result = item.result
        return StopResult(
            tx.transaction_id,
            meter_stop,
            dict(result.id_tag_info) if result is not None and result.id_tag_info else None,
            queued=not item.done,
        )

    async def fault(
        self,
        connector_id: int,
        error_code: str = "GroundFailure",
        *,
        vendor_error_code: str | None = None,
        info: str | None = None,
        stop: bool = True,
    ) -> None:
        """StatusNotification Faulted (connector 0: the whole charge point). A running session
        stops (PowerLoss for UnderVoltage, EVDisconnected for EVCommunicationError, else
        Other), or with `stop=False` is suspended: no power until `recover()`."""
        fault = (error_code, vendor_error_code, info)
        if connector_id == 0:
            self.fault_state = fault
            targets = list(self.connectors.values())
        else:
            c = self._connector(connector_id)
            c.fault = fault
            targets = [c]
        self._log_event(f"connector {connector_id}: fault {error_code}")
        for c in targets:
            self._tick(c)
            c.power_w = 0.0
        if connector_id == 0:
            await self._update_status(0)
        for c in targets:
            await self._update_status(c.connector_id)
        if stop:
            reason = FAULT_STOP_REASONS.get(error_code, "Other")
            for c in targets:
                if c.transaction is not None and not c.transaction.ended:
                    await self.stop_session(c.connector_id, reason=reason, unplug=False)

    async def recover(self, connector_id: int) -> None:
        """The fault clears: back to Available (or Charging, Finishing, … as the state says)."""
        if connector_id == 0:
            self.fault_state = None
            targets = list(self.connectors.values())
            await self._update_status(0)
        else:
            c = self._connector(connector_id)
            c.fault = None
            targets = [c]
        loop = asyncio.get_running_loop()
        for c in targets:
            c.last_tick = loop.time()
            c.power_w = self._target_power(c)
            await self._update_status(c.connector_id)
        self._log_event(f"connector {connector_id}: recovered")

    async def go_offline(self, abrupt: bool = False) -> None:
        """Lose the connection (close it, or with `abrupt` just drop it) and stay offline:
        transaction messages queue up until `come_back()`."""
        self._user_offline = True
        self._allow_online.clear()
        ws = self._ws
        if ws is not None:
            await self._close(ws, abrupt=abrupt)
            await self.wait_until(lambda: self._ws is None, 5)
        self._set_state("offline")

    async def come_back(self, timeout: float = 10.0) -> None:
        """Reconnect, boot, and wait until the offline queue is delivered."""
        self._user_offline = False
        self._allow_online.set()
        await self.wait_booted(timeout)
        await self.wait_until(lambda: not self.outbox or not self._booted, timeout)

    async def reboot(self, reason: str = "Reboot") -> None:
        """Stop sessions (reason `reason`), drop the connection, wait `step_delay`, come back
        and boot again."""
        self._set_state("rebooting")
        for c in self.connectors.values():
            if c.transaction is not None and not c.transaction.ended:
                await self.stop_session(c.connector_id, reason=reason)
        await self._restart()

    async def _restart(self) -> None:
        self._allow_online.clear()
        self._booted = False
        ws = self._ws
        if ws is not None:
            await self._close(ws)
            with contextlib.suppress(TimeoutError):
                await self.wait_until(lambda: self._ws is None, 5)
        self._set_state("rebooting")
        await asyncio.sleep(self.config.step_delay)
        self.boot_count += 1
        self._log_event("rebooted")
        if not self._user_offline:
            self._allow_online.set()

    # --- Meter -----------------------------------------------------------------------------

    def _new_ev(self, c: Connector) -> None:
        rng = self.rng
        if self.config.dc:
            c.ev_max_w = rng.choice((50_000.0, 100_000.0, 150_000.0, 250_000.0))
            c.ev_phases = 1
            c.ev_voltage = rng.choice((400.0, 800.0))
        else:
            c.ev_max_w, c.ev_phases = rng.choice(((7_400.0, 1), (11_000.0, 3), (22_000.0, 3)))
        c.battery_wh = rng.choice((40_000.0, 58_000.0, 77_000.0, 100_000.0))
        c.soc = rng.uniform(10, 60)

    def _tick(self, c: Connector) -> None:
        """Count the energy of the power since the last tick; take the new power."""
        now = asyncio.get_running_loop().time()
        elapsed, c.last_tick = now - c.last_tick, now
        if c.power_w > 0 and elapsed > 0:
            wh = c.power_w * elapsed * self.config.energy_speedup / 3600
            c.meter_wh += wh
            c.soc = min(100.0, c.soc + wh / c.battery_wh * 100)
        c.power_w = self._target_power(c)
        if c.transaction is not None:
            limit = self._limit_w(c)
            if c.soc >= 100:
                c.charging_status = "SuspendedEV"
            elif limit is not None and limit <= 0:
                c.charging_status = "SuspendedEVSE"
            else:
                c.charging_status = "Charging"

    def _target_power(self, c: Connector) -> float:
        if c.transaction is None or c.fault or self.fault_state or c.soc >= 100:
            return 0.0
        power = min(c.max_power_w, c.ev_max_w)
        limit = self._limit_w(c)
        if limit is not None:
            power = min(power, limit)
        # Batteries take less as they fill.
        if self.config.dc and c.soc > 80:
            power *= max(0.1, (100 - c.soc) / 20)
        elif c.soc > 95:
            power *= max(0.1, (100 - c.soc) / 5)
        if power <= 0:
            return 0.0
        return power * self.rng.uniform(0.97, 1.0)

    def _measurands(self, key: str) -> list[str]:
        return [m for m in self.get_configuration(key).split(",") if m]

    def _sample(self, c: Connector, context: str, measurands: list[str]) -> dict:
        """One MeterValue of connector `c` now, with the measurands asked for."""
        power = c.power_w
        values: list[dict] = []
        dc = self.config.dc
        volts: list[float] = []
        if not dc and (CURRENT in measurands or VOLTAGE in measurands):
            volts = [AC_VOLTAGE + self.rng.gauss(0, 1.5) for _ in range(3)]
        dc_volts = c.ev_voltage * (0.9 + 0.15 * c.soc / 100) if dc else 0.0
        for m in measurands:
            if m == ENERGY:
                values.append(_sv(str(int(c.meter_wh)), context, m, "Wh"))
            elif m == POWER:
                values.append(_sv(str(round(power)), context, m, "W"))
            elif m == CURRENT:
                if dc:
                    values.append(_sv(f"{power / dc_volts:.1f}", context, m, "A"))
                else:
                    phases = c.ev_phases if c.transaction else 3
                    for n, phase in enumerate(("L1", "L2", "L3")):
                        amps = power / phases / volts[n] if n < phases else 0.0
                        values.append(_sv(f"{amps:.1f}", context, m, "A", phase))
            elif m == VOLTAGE:
                if dc:
                    values.append(_sv(f"{dc_volts:.1f}", context, m, "V"))
                else:
                    for n, phase in enumerate(("L1-N", "L2-N", "L3-N")):
                        values.append(_sv(f"{volts[n]:.1f}", context, m, "V", phase))
            elif m == SOC:
                if dc:
                    values.append(_sv(str(int(c.soc)), context, m, "Percent", location="EV"))
            elif m == POWER_OFFERED:
                limit = self._limit_w(c)
                offered = c.max_power_w if limit is None else min(limit, c.max_power_w)
                values.append(_sv(str(round(offered)), context, m, "W"))
            elif m == CURRENT_OFFERED:
                limit = self._limit_w(c)
                offered = c.max_power_w if limit is None else min(limit, c.max_power_w)
                values.append(_sv(f"{self._watts_to_amps(offered):.1f}", context, m, "A"))
            elif m == TEMPERATURE:
                heat = 25 + 15 * power / c.max_power_w
                values.append(_sv(f"{heat:.1f}", context, m, "Celsius", location="Body"))
            elif m == FREQUENCY and not dc:
                values.append(
                    {"value": f"{50 + self.rng.gauss(0, 0.02):.2f}", "context": context, "measurand": m}
                )
        if not values:
            values.append(_sv(str(int(c.meter_wh)), context, ENERGY, "Wh"))
        return {"timestamp": iso(), "sampledValue": values}

    async def _meter_loop(self, c: Connector, tx: Transaction) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not tx.ended:
            interval = self.meter_interval
            if interval <= 0:  # MeterValueSampleInterval 0: no sampled values
                await self._sleep_unless_changed(None)
                last = loop.time()
                continue
            remaining = last + interval - loop.time()
            if remaining > 0 and await self._sleep_unless_changed(remaining):
                continue
            if tx.ended:
                break
            last = loop.time()
            before = c.charging_status
            self._tick(c)
            sample = self._sample(c, "Sample.Periodic", self._measurands("MeterValuesSampledData"))
            self._enqueue(
                call.MeterValues(
                    connector_id=c.connector_id, meter_value=[sample], transaction_id=tx.transaction_id
                ),
                tx,
            )
            tx.meter_flushing = True
            try:
                if c.charging_status != before and not (c.fault or self.fault_state):
                    await self._update_status(c.connector_id)
                await self._flush_outbox()
            finally:
                tx.meter_flushing = False

    async def send_meter_values(self, connector_id: int, context: str = "Trigger") -> None:
        """MeterValues of one connector now (with its transactionId if charging), not queued."""
        c = self._connector(connector_id)
        if c.transaction is not None:
            self._tick(c)
        sample = self._sample(c, context, self._measurands("MeterValuesSampledData"))
        tx_id = c.transaction.transaction_id if c.transaction is not None else None
        await self.call(
            call.MeterValues(connector_id=connector_id, meter_value=[sample], transaction_id=tx_id)
        )

    # --- Smart charging --------------------------------------------------------------------

    def _watts_to_amps(self, watts: float, phases: int = 3) -> float:
        return watts / (400.0 if self.config.dc else AC_VOLTAGE * phases)

    def _to_watts(self, c: Connector, unit: str, limit: float, phases: int | None) -> float:
        if unit == "W":
            return limit
        if self.config.dc:
            return limit * (c.ev_voltage if c.transaction else 400.0)
        used = min(phases or 3, c.ev_phases if c.transaction else 3)
        return limit * AC_VOLTAGE * used

    def _schedule_start(self, p: InstalledProfile, c: Connector | None, at: datetime) -> datetime:
        if p.kind == "Relative":
            tx = p.transaction or (c.transaction if c is not None else None)
            return tx.started_at if tx is not None else at
        base = p.start_schedule or p.valid_from or p.installed_at
        if p.kind == "Recurring":
            period = 86_400 if p.recurrency == "Daily" else 604_800
            elapsed = (at - base).total_seconds() % period
            return at - timedelta(seconds=elapsed)
        return base

    def _profile_limit(
        self, p: InstalledProfile, c: Connector | None, at: datetime
    ) -> tuple[float, int | None] | None:
        if (p.valid_from and at < p.valid_from) or (p.valid_to and at >= p.valid_to):
            return None
        elapsed = (at - self._schedule_start(p, c, at)).total_seconds()
        if elapsed < 0 or (p.duration is not None and elapsed >= p.duration):
            return None
        found = None
        for start, limit, phases in p.periods:
            if start > elapsed:
                break
            found = (limit, phases)
        return found

    def _best(self, profiles: list[InstalledProfile], c: Connector, at: datetime) -> float | None:
        """The limit (W) of the highest stack level that has one now."""
        for p in sorted(profiles, key=lambda p: -p.stack_level):
            found = self._profile_limit(p, c, at)
            if found is not None:
                return self._to_watts(c, p.unit, found[0], found[1])
        return None

    def _limit_w(self, c: Connector, at: datetime | None = None) -> float | None:
        """The smart-charging limit (W) on connector `c` now, or None if no profile limits it."""
        if not self.charging_profiles:
            return None
        at = at or now_utc()
        tx = c.transaction
        limit = None
        if tx is not None:
            limit = self._best(
                [p for p in self.charging_profiles if p.purpose == "TxProfile" and p.transaction is tx], c, at
            )
        if limit is None:
            for connector_id in (c.connector_id, 0):
                limit = self._best(
                    [
                        p
                        for p in self.charging_profiles
                        if p.purpose == "TxDefaultProfile" and p.connector_id == connector_id
                    ],
                    c,
                    at,
                )
                if limit is not None:
                    break
        station = self._best(
            [p for p in self.charging_profiles if p.purpose == "ChargePointMaxProfile"], c, at
        )
        if station is not None:
            sharing = max(1, sum(1 for other in self.connectors.values() if other.transaction is not None))
            station /= sharing
            limit = station if limit is None else min(limit, station)
        return limit

    def _install_profile(self, connector_id: int, raw: dict, tx: Transaction | None = None) -> str:
        raw = _plain(raw)
        try:
            purpose = raw["charging_profile_purpose"]
            stack_level = int(raw["stack_level"])
            schedule = raw["charging_schedule"]
            periods = sorted(
                (int(p["start_period"]), float(p["limit"]), p.get("number_phases"))
                for p in schedule["charging_schedule_period"]
            )
        except (KeyError, TypeError, ValueError):
            return "Rejected"
        if not 0 <= connector_id <= len(self.connectors):
            return "Rejected"
        if stack_level > self._int("ChargeProfileMaxStackLevel") or not periods:
            return "Rejected"
        if len(periods) > self._int("ChargingScheduleMaxPeriods"):
            return "Rejected"
        if purpose == "ChargePointMaxProfile" and connector_id != 0:
            return "Rejected"
        if raw.get("charging_profile_kind") == "Recurring" and not raw.get("recurrency_kind"):
            return "Rejected"
        if purpose == "TxProfile":
            if connector_id == 0:
                return "Rejected"
            tx = tx or self.connectors[connector_id].transaction
            if tx is None:
                return "Rejected"
            wanted = raw.get("transaction_id")
            if wanted is not None and tx.transaction_id is not None and wanted != tx.transaction_id:
                return "Rejected"
        else:
            tx = None

        def when(key: str, source: dict = raw) -> datetime | None:
            return parse_iso(source[key]) if source.get(key) else None

        try:
            profile = InstalledProfile(
                connector_id=connector_id,
                profile_id=int(raw["charging_profile_id"]),
                stack_level=stack_level,
                purpose=purpose,
                kind=raw.get("charging_profile_kind", "Absolute"),
                unit=schedule.get("charging_rate_unit", "W"),
                periods=periods,
                duration=schedule.get("duration"),
                start_schedule=when("start_schedule", schedule),
                recurrency=raw.get("recurrency_kind"),
                valid_from=when("valid_from"),
                valid_to=when("valid_to"),
                transaction_id=tx.transaction_id if tx is not None else raw.get("transaction_id"),
                transaction=tx,
                installed_at=now_utc(),
                raw=raw,
            )
        except (KeyError, TypeError, ValueError):
            return "Rejected"
        kept = [
            p
            for p in self.charging_profiles
            if p.profile_id != profile.profile_id
            and not (p.connector_id == connector_id and p.purpose == purpose and p.stack_level == stack_level)
        ]
        if len(kept) >= self._int("MaxChargingProfilesInstalled"):
            return "Rejected"
        kept.append(profile)
        self.charging_profiles = kept
        self._log_event(f"charging profile {profile.profile_id} ({purpose}) on connector {connector_id}")
        return "Accepted"

    def composite_schedule(self, connector_id: int, duration: int, unit: str | None = None) -> dict:
        """The limits that will apply on `connector_id` (0: the charge point) from now."""
        start = now_utc().replace(microsecond=0)
        unit = unit or "W"
        if connector_id == 0:
            c = None
            hardware = sum(x.max_power_w for x in self.connectors.values())
        else:
            c = self.connectors[connector_id]
            hardware = c.max_power_w
        points = {0}
        probe = c or next(iter(self.connectors.values()))
        for p in self.charging_profiles:
            begin = self._schedule_start(p, probe, start)
            offsets = [period[0] for period in p.periods]
            if p.duration is not None:
                offsets.append(p.duration)
            if p.kind == "Recurring":
                period = 86_400 if p.recurrency == "Daily" else 604_800
                offsets += [o + period for o in offsets]
            for offset in offsets:
                t = int((begin - start).total_seconds()) + int(offset)
                if 0 < t < duration:
                    points.add(t)
            for moment in (p.valid_from, p.valid_to):
                if moment is not None and 0 < (t := int((moment - start).total_seconds())) < duration:
                    points.add(t)
        periods: list[dict] = []
        for t in sorted(points):
            at = start + timedelta(seconds=t)
            if c is None:
                limit = self._best(
                    [p for p in self.charging_profiles if p.purpose == "ChargePointMaxProfile"], probe, at
                )
                watts = hardware if limit is None else min(hardware, limit)
            else:
                limit = self._limit_w(c, at)
                watts = hardware if limit is None else min(hardware, limit)
            value = round(watts if unit == "W" else self._watts_to_amps(watts), 1)
            if periods and periods[-1]["limit"] == value:
                continue
            entry = {"start_period": t, "limit": value}
            if unit == "A" and not self.config.dc:
                entry["number_phases"] = 3
            periods.append(entry)
        return {
            "duration": duration,
            "start_schedule": iso(start),
            "charging_rate_unit": unit,
            "charging_schedule_period": periods,
        }

    # --- Reservations ----------------------------------------------------------------------

    def _drop_reservation(self, reservation: Reservation) -> None:
        if reservation.timer is not None:
            reservation.timer.cancel()
        self.reservations.pop(reservation.reservation_id, None)
        c = self.connectors.get(reservation.connector_id)
        if c is not None and c.reservation is reservation:
            c.reservation = None

    def _expire_reservation(self, reservation_id: int) -> None:
        reservation = self.reservations.get(reservation_id)
        if reservation is None:
            return
        self._drop_reservation(reservation)
        self._log_event(f"reservation {reservation_id} expired")
        self._spawn(self._update_status(reservation.connector_id), "reservation expiry")

    # --- Handlers of the 19 central-system commands ---------------------------------------

    async def _handle_call(self, msg):
        self.received.append((msg.action, msg.payload))
        self.stats.commands_received += 1
        self._log_event(f"received {msg.action}")
        self._followups = []
        response = await super()._handle_call(msg)
        followups, self._followups = self._followups, []
        # The answer is out; now do what it promised.
        for fn, args in followups:
            self._spawn(fn(*args), f"after {msg.action}")
        self._notify()
        return response

    def _after(self, fn: Callable[..., Awaitable], *args: Any) -> None:
        self._followups.append((fn, args))

    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(self, id_tag, connector_id=None, charging_profile=None, **_):
        if charging_profile and charging_profile.get("charging_profile_purpose") != "TxProfile":
            return call_result.RemoteStartTransaction(status="Rejected")
        candidates = (
            [self.connectors.get(connector_id)] if connector_id is not None else self._free_connectors()
        )
        for c in candidates:
            if c is not None and self._can_start(c, id_tag):
                c.remote_pending = id_tag
                self._after(self._remote_start, c, id_tag, charging_profile)
                return call_result.RemoteStartTransaction(status="Accepted")
        return call_result.RemoteStartTransaction(status="Rejected")

    def _free_connectors(self) -> list[Connector]:
        # A car already plugged in (Preparing) is the likeliest target of a remote start.
        return sorted(self.connectors.values(), key=lambda c: (not c.plugged, c.connector_id))

    def _can_start(self, c: Connector, id_tag: str) -> bool:
        if c.transaction is not None or c.remote_pending or c.fault or self.fault_state or c.finished:
            return False
        if not (c.operative and self.operative):
            return False
        return c.reservation is None or id_tag in (c.reservation.id_tag, c.reservation.parent_id_tag)

    async def _remote_start(self, c: Connector, id_tag: str, charging_profile: dict | None) -> None:
        try:
            if not c.plugged:
                await self.plug_in(c.connector_id)  # the driver plugs in after tapping "start"
            result = await self.start_session(
                c.connector_id,
                id_tag,
                authorize=self._flag("AuthorizeRemoteTxRequests"),
                charging_profile=charging_profile,
            )
            if not result.accepted and c.transaction is None:
                await self.unplug(c.connector_id)
        finally:
            c.remote_pending = None

    @on(Action.remote_stop_transaction)
    def on_remote_stop_transaction(self, transaction_id, **_):
        for c in self.connectors.values():
            tx = c.transaction
            if tx is not None and tx.transaction_id == transaction_id and not tx.stop_requested:
                tx.stop_requested = True
                self._after(self.stop_session, c.connector_id, "Remote")
                return call_result.RemoteStopTransaction(status="Accepted")
        return call_result.RemoteStopTransaction(status="Rejected")

    @on(Action.reset)
    def on_reset(self, type, **_):
        self._after(self._reset, type)
        return call_result.Reset(status="Accepted")

    async def _reset(self, kind: str) -> None:
        reason = "HardReset" if kind == "Hard" else "SoftReset"
        self._set_state("rebooting")
        if kind == "Hard":
            # Power is cut at once: the StopTransactions go out after the reboot.
            self._allow_online.clear()
            self._booted = False
            if self._ws is not None:
                await self._close(self._ws, abrupt=True)
        for c in self.connectors.values():
            if c.transaction is not None and not c.transaction.ended:
                await self.stop_session(c.connector_id, reason=reason)
        await self._restart()

    @on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id, **_):
        c = self.connectors.get(connector_id)
        if c is None or self.tethered:
            return call_result.UnlockConnector(status="NotSupported")
        if c.fault and c.fault[0] == "ConnectorLockFailure":
            return call_result.UnlockConnector(status="UnlockFailed")
        self._after(self._unlock, c)
        return call_result.UnlockConnector(status="Unlocked")

    async def _unlock(self, c: Connector) -> None:
        if c.transaction is not None and not c.transaction.ended:
            await self.stop_session(c.connector_id, reason="UnlockCommand")
        else:
            c.plugged = c.finished = False
            self._apply_scheduled_availability(c)
            await self._update_status(c.connector_id)

    @on(Action.change_availability)
    def on_change_availability(self, connector_id, type, **_):
        if connector_id != 0 and connector_id not in self.connectors:
            return call_result.ChangeAvailability(status="Rejected")
        targets = list(self.connectors.values()) if connector_id == 0 else [self.connectors[connector_id]]
        operative = type == "Operative"
        scheduled = False
        for c in targets:
            if operative:
                c.operative, c.inoperative_scheduled = True, False
            elif c.transaction is not None:
                c.inoperative_scheduled = scheduled = True
            else:
                c.operative = False
        if connector_id == 0:
            if operative:
                self.operative, self.inoperative_scheduled = True, False
            elif scheduled:
                self.inoperative_scheduled = True
            else:
                self.operative = False
        self._log_event(
            f"availability of connector {connector_id}: {type}{' (scheduled)' if scheduled else ''}"
        )
        self._after(
            self._report_statuses, [0] if connector_id == 0 else [], [c.connector_id for c in targets]
        )
        return call_result.ChangeAvailability(status="Scheduled" if scheduled else "Accepted")

    def _apply_scheduled_availability(self, c: Connector) -> None:
        if c.inoperative_scheduled:
            c.operative, c.inoperative_scheduled = False, False
        if self.inoperative_scheduled and not any(x.transaction for x in self.connectors.values()):
            self.operative, self.inoperative_scheduled = False, False
            self._spawn(self._update_status(0), "availability")

    async def _report_statuses(self, station: list[int], connector_ids: list[int]) -> None:
        for connector_id in station + connector_ids:
            await self._update_status(connector_id)

    @on(Action.change_configuration)
    def on_change_configuration(self, key, value, **_):
        status = self.set_configuration(key, value)
        return call_result.ChangeConfiguration(status=status)

    def set_configuration(self, key: str, value: str) -> str:
        """ChangeConfiguration's rules: Accepted, Rejected (readonly or a bad value) or NotSupported."""
        if key not in CONFIG_KEYS:
            return "NotSupported"
        _default, readonly, kind = CONFIG_KEYS[key]
        if readonly:
            return "Rejected"
        value = value.strip()
        if kind == "int":
            try:
                number = float(value)
            except ValueError:
                return "Rejected"
            if number < 0 or (
                number != int(number) and key not in ("HeartbeatInterval", "MeterValueSampleInterval")
            ):
                return "Rejected"
            value = _num(number)
        elif kind == "bool":
            if value.lower() not in ("true", "false"):
                return "Rejected"
            value = value.lower()
        elif kind == "measurands":
            items = [m.strip() for m in value.split(",") if m.strip()]
            limit = self._int(f"{key}MaxLength") if f"{key}MaxLength" in CONFIG_KEYS else 8
            if any(m not in SUPPORTED_MEASURANDS for m in items) or len(items) > limit:
                return "Rejected"
            value = ",".join(items)
        self._config_values[key] = value
        self._log_event(f"configuration {key} = {value}")
        if key == "HeartbeatInterval":
            self._set_heartbeat_interval(float(value))
        elif key == "MeterValueSampleInterval":
            self.meter_interval = float(value)
            self._wake_loops()
        return "Accepted"

    def _set_heartbeat_interval(self, seconds: float) -> None:
        self.heartbeat_interval = seconds
        self._config_values["HeartbeatInterval"] = _num(seconds)
        self._wake_loops()

    @on(Action.get_configuration)
    def on_get_configuration(self, key=None, **_):
        names = key or list(CONFIG_KEYS)
        known = [
            {"key": name, "readonly": CONFIG_KEYS[name][1], "value": self.get_configuration(name)}
            for name in names
            if name in CONFIG_KEYS
        ]
        unknown = [name for name in names if name not in CONFIG_KEYS]
        return call_result.GetConfiguration(configuration_key=known or None, unknown_key=unknown or None)

    @on(Action.clear_cache)
    def on_clear_cache(self, **_):
        self.auth_cache.clear()
        self._log_event("authorization cache cleared")
        return call_result.ClearCache(status="Accepted")

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message, connector_id=None, **_):
        if connector_id is not None and connector_id != 0 and connector_id not in self.connectors:
            return call_result.TriggerMessage(status="Rejected")
        known = {
            "BootNotification",
            "Heartbeat",
            "StatusNotification",
            "MeterValues",
            "DiagnosticsStatusNotification",
            "FirmwareStatusNotification",
        }
        if requested_message not in known:
            return call_result.TriggerMessage(status="NotImplemented")
        self._after(self._triggered, requested_message, connector_id)
        return call_result.TriggerMessage(status="Accepted")

    async def _triggered(self, message: str, connector_id: int | None) -> None:
        if message == "BootNotification":
            await self._boot_notification()
        elif message == "Heartbeat":
            await self.heartbeat()
        elif message == "StatusNotification":
            ids = [connector_id] if connector_id is not None else [0, *self.connectors]
            for n in ids:
                self._refresh(n)
                await self._send_status(n)
        elif message == "MeterValues":
            ids = [connector_id] if connector_id else list(self.connectors)
            for n in ids:
                await self.send_meter_values(n, "Trigger")
        elif message == "DiagnosticsStatusNotification":
            await self.call(call.DiagnosticsStatusNotification(status=self.diagnostics_status))
        elif message == "FirmwareStatusNotification":
            await self.call(call.FirmwareStatusNotification(status=self.firmware_status))

    @on(Action.get_diagnostics)
    def on_get_diagnostics(
        self, location, retries=None, retry_interval=None, start_time=None, stop_time=None, **_
    ):
        stamp = now_utc().strftime("%Y%m%dT%H%M%SZ")
        file_name = f"{self.id}-diagnostics-{stamp}.log"
        self._after(
            self._diagnostics, location, file_name, retries or 0, retry_interval, start_time, stop_time
        )
        return call_result.GetDiagnostics(file_name=file_name)

    async def _diagnostics(self, location, file_name, retries, retry_interval, start_time, stop_time) -> None:
        await self._diagnostics_status("Uploading")
        body = self.diagnostics_file(start_time, stop_time).encode()
        error = None
        if urlsplit(location).scheme.lower() in ("http", "https"):
            for attempt in range(retries + 1):
                try:
                    await asyncio.to_thread(
                        http_upload,
                        location,
                        file_name,
                        body,
                        self.config.diagnostics_upload_method,
                        self.config.response_timeout,
                    )
                except (OSError, ValueError) as exc:
                    error = exc
                    log.info("%s: diagnostics upload to %s failed: %s", self.id, location, exc)
                    if attempt < retries:
                        await asyncio.sleep(retry_interval or self.config.step_delay)
                else:
                    error = None
                    break
        else:
            await asyncio.sleep(self.config.step_delay)  # ftp and others are only pretended
        self.uploads.append(
            {"location": location, "file_name": file_name, "ok": error is None, "error": str(error or "")}
        )
        await self._diagnostics_status("Uploaded" if error is None else "UploadFailed")
        self.diagnostics_status = "Idle"

    async def _diagnostics_status(self, status: str) -> None:
        self.diagnostics_status = status
        self._log_event(f"diagnostics {status}")
        with contextlib.suppress(NotConnected, TimeoutError, OCPPError):
            await self.call(call.DiagnosticsStatusNotification(status=status))

    def diagnostics_file(self, start_time: str | None = None, stop_time: str | None = None) -> str:
        cfg = self.config
        lines = [
            "ChargeDesk simulator diagnostics",
            f"identity: {cfg.identity}",
            f"vendor: {cfg.vendor}  model: {cfg.model}  serial: {cfg.serial_number or 'SIM-' + cfg.identity}",
            f"firmware: {self.firmware_version}",
            f"generated: {iso()}  period: {start_time or '-'} .. {stop_time or '-'}",
            f"charge point: {self.cp_status} {self.cp_error_code}",
        ]
        for c in self.connectors.values():
            tx = c.transaction
            lines.append(
                f"connector {c.connector_id}: {c.status} {c.error_code} meter {int(c.meter_wh)} Wh"
                + (f" transaction {tx.transaction_id} ({tx.id_tag})" if tx else "")
            )
        lines.append("configuration:")
        lines += [f"  {key}={self.get_configuration(key)}" for key in CONFIG_KEYS]
        lines.append("events:")
        lines += [f"  {at} {text}" for at, text in self.events]
        return "\n".join(lines) + "\n"

    @on(Action.update_firmware)
    def on_update_firmware(self, location, retrieve_date, retries=None, retry_interval=None, **_):
        self._after(self._update_firmware, location, retrieve_date)
        return call_result.UpdateFirmware()

    async def _update_firmware(self, location: str, retrieve_date: str) -> None:
        with contextlib.suppress(ValueError):
            wait = (parse_iso(retrieve_date) - now_utc()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
        await self._firmware_status("Downloading")
        await asyncio.sleep(self.config.step_delay)
        await self._firmware_status("Downloaded")
        # Installing waits for running sessions to end, as real chargers do.
        await self.wait_until(lambda: all(c.transaction is None for c in self.connectors.values()), None)
        await self._firmware_status("Installing")
        await asyncio.sleep(self.config.step_delay)
        self.firmware_version = _firmware_version_from(location, self.firmware_version)
        await self._firmware_status("Installed")
        self.firmware_status = "Idle"
        await self._restart()

    async def _firmware_status(self, status: str) -> None:
        self.firmware_status = status
        self._log_event(f"firmware {status}")
        with contextlib.suppress(NotConnected, TimeoutError, OCPPError):
            await self.call(call.FirmwareStatusNotification(status=status))

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, connector_id, cs_charging_profiles, **_):
        return call_result.SetChargingProfile(
            status=self._install_profile(connector_id, cs_charging_profiles)
        )

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self, id=None, connector_id=None, charging_profile_purpose=None, stack_level=None, **_
    ):
        def matches(p: InstalledProfile) -> bool:
            if id is not None:
                return p.profile_id == id
            return (
                (connector_id is None or p.connector_id == connector_id)
                and (charging_profile_purpose is None or p.purpose == charging_profile_purpose)
                and (stack_level is None or p.stack_level == stack_level)
            )

        kept = [p for p in self.charging_profiles if not matches(p)]
        cleared = len(kept) != len(self.charging_profiles)
        self.charging_profiles = kept
        return call_result.ClearChargingProfile(status="Accepted" if cleared else "Unknown")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(self, connector_id, duration, charging_rate_unit=None, **_):
        if connector_id != 0 and connector_id not in self.connectors:
            return call_result.GetCompositeSchedule(status="Rejected")
        schedule = self.composite_schedule(connector_id, duration, charging_rate_unit)
        return call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=schedule["start_schedule"],
            charging_schedule=schedule,
        )

    @on(Action.reserve_now)
    def on_reserve_now(self, connector_id, expiry_date, id_tag, reservation_id, parent_id_tag=None, **_):
        if connector_id == 0 and not self._flag("ReserveConnectorZeroSupported"):
            return call_result.ReserveNow(status="Rejected")
        c = self.connectors.get(connector_id)
        if c is None:
            return call_result.ReserveNow(status="Rejected")
        if c.fault or self.fault_state:
            return call_result.ReserveNow(status="Faulted")
        if not (c.operative and self.operative):
            return call_result.ReserveNow(status="Unavailable")
        existing = self.reservations.get(reservation_id)
        if c.transaction is not None or c.plugged or c.remote_pending:
            return call_result.ReserveNow(status="Occupied")
        if c.reservation is not None and c.reservation is not existing:
            return call_result.ReserveNow(status="Occupied")
        try:
            expiry = parse_iso(expiry_date)
        except ValueError:
            return call_result.ReserveNow(status="Rejected")
        if existing is not None:
            self._drop_reservation(existing)
        reservation = Reservation(reservation_id, connector_id, id_tag, parent_id_tag, expiry)
        delay = max(0.0, (expiry - now_utc()).total_seconds())
        reservation.timer = asyncio.get_running_loop().call_later(
            delay, self._expire_reservation, reservation_id
        )
        self.reservations[reservation_id] = reservation
        c.reservation = reservation
        self._log_event(f"reservation {reservation_id} on connector {connector_id} for {id_tag}")
        self._after(self._update_status, connector_id)
        return call_result.ReserveNow(status="Accepted")

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id, **_):
        reservation = self.reservations.get(reservation_id)
        if reservation is None:
            return call_result.CancelReservation(status="Rejected")
        self._drop_reservation(reservation)
        self._after(self._update_status, reservation.connector_id)
        return call_result.CancelReservation(status="Accepted")

    @on(Action.send_local_list)
    def on_send_local_list(self, list_version, update_type, local_authorization_list=None, **_):
        entries = local_authorization_list or []
        if len(entries) > self._int("SendLocalListMaxLength"):
            return call_result.SendLocalList(status="Failed")
        if update_type == "Differential" and list_version <= self.local_list_version:
            return call_result.SendLocalList(status="VersionMismatch")
        new = {} if update_type == "Full" else dict(self.local_list)
        for entry in entries:
            info = entry.get("id_tag_info")
            if info is None:
                new.pop(entry["id_tag"], None)
            else:
                new[entry["id_tag"]] = dict(info)
        if len(new) > self._int("LocalAuthListMaxLength"):
            return call_result.SendLocalList(status="Failed")
        self.local_list, self.local_list_version = new, list_version
        self._log_event(f"local list {update_type} version {list_version}: {len(new)} entries")
        return call_result.SendLocalList(status="Accepted")

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_):
        return call_result.GetLocalListVersion(list_version=self.local_list_version)

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id, message_id=None, data=None, **_):
        if vendor_id not in (self.config.vendor, *self.config.data_transfer_vendors):
            return call_result.DataTransfer(status="UnknownVendorId")
        return call_result.DataTransfer(status="Accepted", data=data)

    # --- Helpers ---------------------------------------------------------------------------

    def _flag(self, key: str) -> bool:
        return self.get_configuration(key) == "true"

    def _int(self, key: str) -> int:
        try:
            return int(float(self.get_configuration(key) or 0))
        except ValueError:
            return 0

    def _spawn(self, coro: Awaitable, name: str) -> asyncio.Task | None:
        tg = self._tg
        if tg is None:
            coro.close()  # the charger is not running
            return None
        guarded = self._guard(coro, name)
        try:
            task = tg.create_task(guarded)
        except RuntimeError:  # the task group is shutting down
            guarded.close()
            coro.close()
            return None
        # A task cancelled before its first step never starts `coro`: close it quietly.
        task.add_done_callback(lambda _task: coro.close())
        return task

    async def _guard(self, coro: Awaitable, name: str) -> None:
        try:
            await coro
        except (NotConnected, ConnectionClosed):
            pass
        except SimulatorError as exc:
            log.info("%s: %s: %s", self.id, name, exc)
        except Exception:
            log.exception("%s: %s failed", self.id, name)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._notify()

    def _notify(self) -> None:
        event, self._changed = self._changed, None
        if event is not None:
            event.set()

    def _log_event(self, text: str) -> None:
        self.events.append((iso(), text))


_CAMEL_KEYS: dict[str, str] = {}


def _camel_payload(payload: Any) -> dict:
    """A call dataclass as its OCPP payload: camelCase top-level keys, Nones left out."""
    body = {}
    for key, value in vars(payload).items():
        if value is None:
            continue
        name = _CAMEL_KEYS.get(key)
        if name is None:
            name = _CAMEL_KEYS[key] = next(iter(snake_to_camel_case({key: None})))
        body[name] = value
    return body


def _sv(
    value: str, context: str, measurand: str, unit: str, phase: str | None = None, location: str = "Outlet"
) -> dict:
    sampled = {"value": value, "context": context, "measurand": measurand, "location": location, "unit": unit}
    if phase:
        sampled["phase"] = phase
    return sampled


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _firmware_version_from(location: str, current: str) -> str:
    """The version in the firmware file's name (fw-2.1.0.bin → 2.1.0), else `current` + 1."""
    name = urlsplit(location).path.rsplit("/", 1)[-1]
    found = re.search(r"\d+(?:\.\d+)+", name)
    if found:
        return found.group(0)[:50]
    parts = current.split(".")
    if parts[-1].isdigit():
        parts[-1] = str(int(parts[-1]) + 1)
        return ".".join(parts)
    return f"{current}.1"


__all__ = [
    "CONFIG_KEYS",
    "CallStats",
    "ChargerConfig",
    "ConnectionLost",
    "ConnectionRefusedByServer",
    "Connector",
    "NotConnected",
    "QueuedMessage",
    "SimulatedChargePoint",
    "SimulatorError",
    "StartResult",
    "StopResult",
    "Transaction",
    "http_upload",
    "iso",
    "parse_iso",
]
