"""Run many simulated chargers in one process, and the command line shared by
``python -m stations.simulator`` and ``manage.py simulate_chargers``.

Chargers connect staggered (`rate` a second), each as one task (its task group) of the
fleet; a behaviour profile gives them something to do:

- ``idle``: boot, report, beat. Enough for a demo network or a connection-count load test.
- ``busy``: random sessions (plug in, authorize, start, meter values, stop) on free connectors.
- ``faults``: as busy, plus now and then a fault on a connector that clears after a while.

One `CallStats` counts what the whole fleet sent and the round trip of every CALL, so a
benchmark can print p50/p99. SIGINT/SIGTERM stop it gracefully (close frames, then exit).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .charger import CallStats, ChargerConfig, SimulatedChargePoint, SimulatorError

log = logging.getLogger("stations.simulator")

PROFILES = ("idle", "busy", "faults")
FAULT_CODES = (
    "GroundFailure",
    "OverCurrentFailure",
    "HighTemperature",
    "PowerSwitchFailure",
    "EVCommunicationError",
    "UnderVoltage",
    "ConnectorLockFailure",
)
STOP_REASONS = ("Local", "Local", "Local", "EVDisconnected")

Behaviour = Callable[[SimulatedChargePoint], Awaitable[None]]


@dataclass(slots=True)
class BehaviourSettings:
    """Mean times in seconds (exponentially distributed, from the charger's seeded RNG)."""

    session_gap: float = 120.0  # between the end of one session and the next, per charger
    session_duration: float = 600.0
    fault_gap: float = 1800.0
    fault_duration: float = 120.0


def behaviour_for(profile: str, settings: BehaviourSettings | None = None) -> Behaviour | None:
    settings = settings or BehaviourSettings()
    if profile == "idle":
        return None
    if profile == "busy":
        return lambda cp: busy(cp, settings)
    if profile == "faults":
        return lambda cp: busy(cp, settings, faults=True)
    raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")


def _draw(cp: SimulatedChargePoint, mean: float) -> float:
    # Bounded so that one unlucky draw does not park a charger for hours.
    return min(cp.rng.expovariate(1 / mean), 5 * mean) if mean > 0 else 0.0


async def busy(cp: SimulatedChargePoint, settings: BehaviourSettings, faults: bool = False) -> None:
    """Random sessions on free connectors; sessions end by timer callbacks, not tasks."""
    loop = asyncio.get_running_loop()
    if faults:
        loop.call_later(_draw(cp, settings.fault_gap), _fault_timer, cp, settings)
    while True:
        await asyncio.sleep(_draw(cp, settings.session_gap))
        if not cp.booted:
            await cp.wait_until(lambda: cp.booted, None)
        free = [c for c in cp.connectors.values() if c.status == "Available" and c.transaction is None]
        if not free:
            continue
        connector = cp.rng.choice(free)
        try:
            result = await cp.start_session(connector.connector_id)
        except SimulatorError:
            continue
        if not result.accepted:
            with contextlib.suppress(SimulatorError):
                await cp.unplug(connector.connector_id)
            continue
        tx = connector.transaction
        loop.call_later(_draw(cp, settings.session_duration), _end_session, cp, connector.connector_id, tx)


def _end_session(cp: SimulatedChargePoint, connector_id: int, tx: Any) -> None:
    c = cp.connectors[connector_id]
    if tx is None or c.transaction is not tx or tx.stop_requested:
        return  # stopped meanwhile (remotely, by a fault or a reset)
    tx.stop_requested = True
    cp.spawn(cp.stop_session(connector_id, reason=cp.rng.choice(STOP_REASONS)), "end session")


def _fault_timer(cp: SimulatedChargePoint, settings: BehaviourSettings) -> None:
    if not cp.running:
        return
    cp.spawn(_fault_episode(cp, settings), "fault")


async def _fault_episode(cp: SimulatedChargePoint, settings: BehaviourSettings) -> None:
    loop = asyncio.get_running_loop()
    try:
        if cp.booted:
            connector_id = cp.rng.choice(list(cp.connectors))
            await cp.fault(
                connector_id, cp.rng.choice(FAULT_CODES), vendor_error_code=f"E{cp.rng.randint(1, 999)}"
            )
            await asyncio.sleep(_draw(cp, settings.fault_duration))
            await cp.recover(connector_id)
            if cp.connectors[connector_id].plugged and cp.connectors[connector_id].transaction is None:
                await cp.unplug(connector_id)
    finally:
        loop.call_later(_draw(cp, settings.fault_gap), _fault_timer, cp, settings)


class Fleet:
    """N simulated chargers sharing one `CallStats`."""

    def __init__(
        self,
        configs: Iterable[ChargerConfig],
        *,
        rate: float = 50.0,
        profile: str = "idle",
        settings: BehaviourSettings | None = None,
        stats: CallStats | None = None,
    ):
        self.stats = stats or CallStats()
        self.chargers = [SimulatedChargePoint(config, stats=self.stats) for config in configs]
        self.rate = rate
        self.profile = profile
        self.behaviour = behaviour_for(profile, settings)
        self.started = 0
        self._stop: asyncio.Event | None = None
        self._stop_requested = False

    @property
    def booted(self) -> int:
        return sum(1 for cp in self.chargers if cp.booted)

    @property
    def refused(self) -> int:
        return sum(1 for cp in self.chargers if cp.state == "refused")

    def request_stop(self) -> None:
        self._stop_requested = True
        if self._stop is not None:
            self._stop.set()

    async def wait_booted(self, count: int | None = None, timeout: float = 60.0) -> None:
        """Wait until `count` (default: all) chargers are booted."""
        wanted = len(self.chargers) if count is None else count
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.booted < wanted:
            if loop.time() > deadline:
                raise TimeoutError(f"{self.booted} of {wanted} chargers booted within {timeout} s")
            await asyncio.sleep(0.02)

    async def run(
        self,
        *,
        duration: float | None = None,
        handle_signals: bool = False,
        report_every: float | None = None,
        report: Callable[[str], None] | None = None,
    ) -> dict:
        """Start the chargers (staggered) and run until `duration` passes, `request_stop()`
        is called or (with `handle_signals`) SIGINT/SIGTERM arrives. Returns the stats summary."""
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        loop = asyncio.get_running_loop()
        handled = []
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self.request_stop)
                    handled.append(sig)
        began = time.perf_counter()
        try:
            async with asyncio.TaskGroup() as tg:
                tasks: list[asyncio.Task] = []
                helpers = [tg.create_task(self._start_all(tg, tasks))]
                if report_every:
                    helpers.append(tg.create_task(self._report_loop(report_every, report or log.info)))
                try:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(duration):
                            await self._stop.wait()
                finally:
                    booted_at_stop = self.booted
                    for task in helpers + tasks:
                        task.cancel()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
        summary = self.stats.summary()
        summary.update(
            chargers=len(self.chargers),
            started=self.started,
            booted_at_stop=booted_at_stop,
            seconds=round(time.perf_counter() - began, 3),
        )
        return summary

    async def _start_all(self, tg: asyncio.TaskGroup, tasks: list[asyncio.Task]) -> None:
        loop = asyncio.get_running_loop()
        first = loop.time()
        for n, cp in enumerate(self.chargers):
            if self.rate > 0:
                delay = first + n / self.rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            tasks.append(tg.create_task(cp.run(self.behaviour), name=f"charger {cp.id}"))
            self.started += 1

    async def _report_loop(self, every: float, report: Callable[[str], None]) -> None:
        last_calls, last_time = self.stats.calls_sent, time.perf_counter()
        while True:
            await asyncio.sleep(every)
            now = time.perf_counter()
            stats = self.stats
            window = stats.take_window()
            p50, p99 = CallStats.percentile(window, 50), CallStats.percentile(window, 99)
            rate = (stats.calls_sent - last_calls) / (now - last_time)
            last_calls, last_time = stats.calls_sent, now
            report(
                f"chargers {self.booted}/{len(self.chargers)} booted ({self.started} started, "
                f"{self.refused} refused) · {stats.calls_sent} calls ({rate:.0f}/s) · "
                f"p50 {_ms(p50)} p99 {_ms(p99)} · errors {stats.call_errors} · timeouts {stats.timeouts} "
                f"· disconnects {stats.disconnects}"
            )


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


# --- Command line ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `python -m stations.simulator` and `manage.py simulate_chargers`."""
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ocpp", help="Central system base URL.")
    parser.add_argument("--identities", nargs="+", default=[], metavar="ID", help="Charge point identities.")
    parser.add_argument("--prefix", help="Generate identities <prefix>00001 … (with --count).")
    parser.add_argument("--count", type=int, help="How many identities to generate with --prefix.")
    parser.add_argument("--first", type=int, default=1, help="First number of --prefix/--count (default 1).")
    parser.add_argument(
        "--password",
        default=os.environ.get("CHARGEDESK_CHARGER_PASSWORD"),
        help="OCPP Basic auth password, 16-40 characters (default: $CHARGEDESK_CHARGER_PASSWORD).",
    )
    parser.add_argument("--connectors", type=int, default=2, help="Connectors per charger (default 2).")
    parser.add_argument("--dc", action="store_true", help="DC chargers (reports SoC; tethered cables).")
    parser.add_argument("--power-kw", type=float, help="Maximum power per connector (22 AC, 150 DC).")
    parser.add_argument("--vendor", default="ChargeDesk")
    parser.add_argument("--model", default="SimCharger")
    parser.add_argument("--firmware", default="1.0.0")
    parser.add_argument("--meter-interval", type=float, default=60.0, help="MeterValues every N s.")
    parser.add_argument(
        "--heartbeat-interval", type=float, help="Heartbeat every N s (default: as BootNotification says)."
    )
    parser.add_argument("--id-tags", nargs="+", metavar="TAG", help="idTags the chargers' drivers use.")
    parser.add_argument("--seed", help="Random seed, for reproducible runs.")
    parser.add_argument("--rate", type=float, default=50.0, help="Chargers connecting a second (default 50).")
    parser.add_argument("--profile", choices=PROFILES, default="idle", help="What the chargers do.")
    parser.add_argument("--session-gap", type=float, default=120.0, help="Mean s between sessions.")
    parser.add_argument("--session-duration", type=float, default=600.0, help="Mean s a session lasts.")
    parser.add_argument("--fault-gap", type=float, default=1800.0, help="Mean s between faults (faults).")
    parser.add_argument("--fault-duration", type=float, default=120.0, help="Mean s a fault lasts.")
    parser.add_argument(
        "--energy-speedup", type=float, default=1.0, help="Simulated energy runs N times faster."
    )
    parser.add_argument(
        "--step-delay", type=float, default=2.0, help="Seconds per firmware/diagnostics step."
    )
    parser.add_argument("--duration", type=float, help="Stop after N seconds (default: until Ctrl-C).")
    parser.add_argument("--report-every", type=float, default=10.0, help="Progress line every N s (0: none).")
    parser.add_argument(
        "--no-validate",
        action="store_true",
        help="Skip schema checks of our own messages (cheaper for thousands of chargers).",
    )
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def identities_from(options: dict) -> list[str]:
    """--identities plus --prefix/--count (numbered as provision_chargepoint numbers them)."""
    identities = list(options.get("identities") or [])
    prefix, count = options.get("prefix"), options.get("count")
    if (prefix is None) != (count is None):
        raise ValueError("--prefix and --count go together.")
    if count is not None:
        if count < 1:
            raise ValueError("--count must be at least 1.")
        first = options.get("first") or 1
        identities += [f"{prefix}{n:05d}" for n in range(first, first + count)]
    return list(dict.fromkeys(identities))


def configs_from(
    options: dict, identities: Sequence[str], overrides: dict[str, dict] | None = None
) -> list[ChargerConfig]:
    """One ChargerConfig per identity from the command-line options; `overrides` (by identity)
    sets fields per charger, e.g. connectors and vendor from the database."""
    base: dict[str, Any] = {
        "password": options.get("password"),
        "url": options["url"],
        "vendor": options.get("vendor") or "ChargeDesk",
        "model": options.get("model") or "SimCharger",
        "firmware_version": options.get("firmware") or "1.0.0",
        "connectors": options.get("connectors") or 2,
        "dc": bool(options.get("dc")),
        "max_power_w": options["power_kw"] * 1000 if options.get("power_kw") else None,
        "meter_interval": options.get("meter_interval") or 60.0,
        "heartbeat_interval": options.get("heartbeat_interval"),
        "seed": options.get("seed"),
        "energy_speedup": options.get("energy_speedup") or 1.0,
        "step_delay": options.get("step_delay") if options.get("step_delay") is not None else 2.0,
        "validate": not options.get("no_validate"),
    }
    if options.get("id_tags"):
        base["id_tags"] = tuple(options["id_tags"])
    overrides = overrides or {}
    return [
        ChargerConfig(identity=identity, **{**base, **overrides.get(identity, {})}) for identity in identities
    ]


def settings_from(options: dict) -> BehaviourSettings:
    return BehaviourSettings(
        session_gap=options.get("session_gap") or 120.0,
        session_duration=options.get("session_duration") or 600.0,
        fault_gap=options.get("fault_gap") or 1800.0,
        fault_duration=options.get("fault_duration") or 120.0,
    )


def check_password(password: str | None) -> str | None:
    """A warning for a password the central system will refuse, or None."""
    if not password:
        return "no --password given: the central system will refuse the chargers."
    if not 16 <= len(password) <= 40:
        return f"the password has {len(password)} characters; OCPP wants 16 to 40."
    return None


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("stations.simulator").setLevel(getattr(logging, level))
    # The ocpp library logs every frame at INFO: only with DEBUG.
    logging.getLogger("ocpp").setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)


async def run_fleet(
    options: dict,
    identities: Sequence[str],
    overrides: dict[str, dict] | None = None,
    *,
    handle_signals: bool = True,
    report: Callable[[str], None] | None = None,
) -> dict:
    fleet = Fleet(
        configs_from(options, identities, overrides),
        rate=options.get("rate") or 50.0,
        profile=options.get("profile") or "idle",
        settings=settings_from(options),
    )
    report = report or log.info
    report(
        f"simulating {len(fleet.chargers)} charger{'s' if len(fleet.chargers) != 1 else ''} against "
        f"{options['url']} ({fleet.profile}, {fleet.rate:g}/s)"
    )
    return await fleet.run(
        duration=options.get("duration"),
        handle_signals=handle_signals,
        report_every=options.get("report_every") or None,
        report=report,
    )


def format_summary(summary: dict) -> str:
    def ms(key: str) -> str:
        return "-" if summary[key] is None else f"{summary[key]} ms"

    chargers = summary["chargers"]
    return (
        f"{chargers} charger{'' if chargers == 1 else 's'}, {summary['booted_at_stop']} booted when stopped, "
        f"{summary['calls_sent']} calls ({summary['messages_sent']} messages) in {summary['seconds']} s; "
        f"latency p50 {ms('p50_ms')}, p99 {ms('p99_ms')}, max {ms('max_ms')}; "
        f"{summary['call_errors']} errors, {summary['timeouts']} timeouts, {summary['refusals']} refusals"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stations.simulator",
        description="Simulate OCPP 1.6J charge points against a central system.",
    )
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    try:
        identities = identities_from(options)
    except ValueError as exc:
        parser.error(str(exc))
    if not identities:
        parser.error("no identities: give --identities or --prefix/--count")
    setup_logging(options["log_level"])
    warning = check_password(options.get("password"))
    if warning:
        log.warning(warning)
    summary = asyncio.run(run_fleet(options, identities))
    print(format_summary(summary))
    return 0
