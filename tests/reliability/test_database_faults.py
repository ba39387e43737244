"""Fault test on the database: PostgreSQL crashes (an immediate stop) in the middle of charger
traffic and comes back. ChargeDesk runs on a private cluster of the test's own (never the shared
server) and a private Redis, in a real uvicorn process; the chargers talk to it over real
sockets. What a charger was answered is then checked against the private database itself."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import pytest

from tests.chargers import Chargers
from tests.reliability.conftest import ROOT, answered_by_kind, stack_env, start_asgi, stop_process, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.live]

IDENTITIES = ("FAULT-P1", "FAULT-P2", "FAULT-P3", "FAULT-P4")
TRAFFIC = {"meter_interval": 0.2, "energy_speedup": 50, "record_answers": True, "response_timeout": 5}
SESSION_SECONDS = 1.5  # each charger charges this long, stops, and starts again
OUTAGE_SECONDS = 3.0

SEED = """
from tests.factories import ChargePointFactory, ConnectorFactory, IdTokenFactory, SiteFactory
site = SiteFactory(operator__name="Voltway", operator__slug="voltway", name="Depot")
for identity, tag in {pairs!r}:
    cp = ChargePointFactory(site=site, identity=identity, is_connected=False)
    ConnectorFactory(charge_point=cp, connector_id=1)
    IdTokenFactory(token=tag)
"""


def _tag(identity: str) -> str:
    return f"04{identity.encode().hex().upper()[-12:]}"


def _manage(env: dict, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"manage.py {args[0]}: {done.stdout}{done.stderr}"


@pytest.fixture
def postgres_stack(private_postgres, private_redis):
    """ChargeDesk (migrated, one operator, a site and the chargers) on a uvicorn process, on a
    private PostgreSQL and a private Redis. Yields (base_url, the ASGI process, private_postgres)."""
    env = stack_env(private_redis.url, private_postgres.url)
    _manage(env, "migrate", "--verbosity", "0")
    _manage(env, "shell", "--command", SEED.format(pairs=[(i, _tag(i)) for i in IDENTITIES]))
    base, proc = start_asgi(env)
    yield base, proc, private_postgres
    stop_process(proc)


@dataclass
class Call:
    sent: float
    done: float
    action: str
    unique_id: str
    outcome: str  # "result" (a CALLRESULT), "error" (a CALLERROR), "timeout", "lost", "other"


def _observe(cp) -> list[Call]:
    """Every CALL `cp` makes from now on, with when it went and what came back."""
    from ocpp.exceptions import OCPPError

    from stations.simulator.charger import NotConnected

    calls: list[Call] = []
    original = cp.call

    async def call(payload, suppress=False, unique_id=None, skip_schema_validation=None):
        unique_id = unique_id or str(uuid.uuid4())
        sent, outcome = time.monotonic(), "other"
        try:
            result = await original(
                payload, suppress=suppress, unique_id=unique_id, skip_schema_validation=skip_schema_validation
            )
            outcome = "error" if result is None else "result"  # None: a suppressed CALLERROR
            return result
        except OCPPError:
            outcome = "error"
            raise
        except TimeoutError:
            outcome = "timeout"
            raise
        except NotConnected:
            outcome = "lost"
            raise
        finally:
            calls.append(Call(sent, time.monotonic(), type(payload).__name__, unique_id, outcome))

    cp.call = call  # the instance's attribute: the charger's own CALLs go through it too
    return calls


async def _charge_in_a_loop(cp, stop: asyncio.Event, failures: list[str], offset: float) -> None:
    """Start, charge (MeterValues every `meter_interval`), stop, again, until `stop` is set. A
    refused Authorize or StartTransaction (the database down) means no session this round: the
    charger tries again soon. `offset` staggers the chargers, so that some are always charging."""
    await asyncio.sleep(offset)
    while not stop.is_set():
        try:
            if cp.transaction(1) is None:
                await cp.start_session(1, _tag(cp.id))
            if cp.transaction(1) is None:
                await asyncio.sleep(0.2)
                continue
            await asyncio.sleep(SESSION_SECONDS)
            if cp.transaction(1) is not None:
                await cp.stop_session(1, reason="Local")
        except Exception as error:  # the test fails on these, after the traffic has stopped
            failures.append(f"{cp.id}: {error!r}")
        await asyncio.sleep(0.05)


def _count(calls: list[Call], action: str, since: float = 0.0) -> int:
    return sum(1 for c in calls if c.action == action and c.outcome == "result" and c.sent >= since)


class Stored:
    """The private database, read with psycopg: what ChargeDesk actually stored. A connection
    per query: one kept open would not outlive the crash."""

    def __init__(self, dsn: str):
        from sessions.models import MeterSample, Transaction
        from stations.models import ChargePoint, OcppMessage

        self.dsn = dsn
        self.t = {m.__name__: m._meta.db_table for m in (ChargePoint, OcppMessage, MeterSample, Transaction)}

    def rows(self, sql: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(sql.format(**self.t), params).fetchall()

    def charge_point_id(self, identity: str) -> int:
        return self.rows("SELECT id FROM {ChargePoint} WHERE identity = %s", identity)[0][0]

    def connected(self, identities) -> int:
        return self.rows(
            "SELECT count(*) FROM {ChargePoint} WHERE identity = ANY(%s) AND is_connected", list(identities)
        )[0][0]


def _assert_answered_stored_once(stored: Stored, cp, calls: list[Call]) -> dict:
    """Everything `cp` got a CALLRESULT for is stored exactly once: the frame in the message log,
    each meter sample, each StartTransaction; each answered StopTransaction closed its session."""
    from collections import Counter

    from django.utils.dateparse import parse_datetime

    from stations.models import Direction

    cp_id = stored.charge_point_id(cp.id)
    answered_ids = [c.unique_id for c in calls if c.outcome == "result"]
    logged = Counter(
        uid
        for (uid,) in stored.rows(
            "SELECT unique_id FROM {OcppMessage} WHERE charge_point_id = %s AND direction = %s"
            " AND message_type = 2 AND unique_id = ANY(%s)",
            cp_id,
            Direction.IN.value,
            answered_ids,
        )
    )
    not_logged = [uid for uid in answered_ids if logged[uid] != 1]
    assert not not_logged, f"{cp.id}: answered CALLs not logged exactly once: {not_logged[:5]}"

    samples, starts, stops = answered_by_kind(cp)
    assert samples, f"{cp.id}: no MeterValues were answered at all"
    in_db = Counter(
        stored.rows(
            "SELECT connector_number, timestamp, measurand, phase FROM {MeterSample} WHERE charge_point_id = %s",
            cp_id,
        )
    )
    missing = [k for k in samples if in_db[k] == 0]
    doubled = [k for k in samples if in_db[k] > 1]
    assert not missing, f"{cp.id}: {len(missing)} of {len(samples)} answered samples lost, e.g. {missing[:3]}"
    assert not doubled, f"{cp.id}: answered samples stored more than once, e.g. {doubled[:3]}"
    for body in starts:
        (n,) = stored.rows(
            "SELECT count(*) FROM {Transaction} WHERE charge_point_id = %s AND connector_number = %s"
            " AND started_at = %s",
            cp_id,
            body["connectorId"],
            parse_datetime(body["timestamp"]),
        )[0]
        assert n == 1, f"{cp.id}: answered StartTransaction {body} stored {n} times"
    for body in stops:
        found = stored.rows(
            "SELECT stopped_at FROM {Transaction} WHERE charge_point_id = %s AND id = %s",
            cp_id,
            body["transactionId"],
        )
        assert found and found[0][0] is not None, f"{cp.id}: answered StopTransaction {body} not stored"
    return {"calls": len(answered_ids), "samples": len(samples), "starts": len(starts), "stops": len(stops)}


def test_postgres_crash_mid_traffic_answers_only_what_is_stored_and_charging_resumes(postgres_stack):
    base, asgi, postgres = postgres_stack
    chargers = Chargers(base)
    stop = asyncio.Event()
    failures: list[str] = []
    stored = Stored(postgres.dsn())
    try:
        cps = [chargers.start(identity, **TRAFFIC) for identity in IDENTITIES]
        calls = {cp.id: _observe(cp) for cp in cps}
        loops = [
            asyncio.run_coroutine_threadsafe(
                _charge_in_a_loop(cp, stop, failures, offset=i * SESSION_SECONDS / len(cps)), chargers.loop
            )
            for i, cp in enumerate(cps)
        ]
        wait_until(
            lambda: all(_count(calls[cp.id], "StopTransaction") >= 1 for cp in cps),
            15,
            "a whole session on every charger before the crash",
        )

        postgres.crash()
        down = time.monotonic()
        time.sleep(OUTAGE_SECONDS)  # traffic goes on against a server whose database is gone
        up = time.monotonic()
        postgres.start()

        # Charging resumes on every charger: new sessions started and metered after the restart.
        wait_until(
            lambda: all(
                _count(calls[cp.id], "StartTransaction", since=up) >= 1
                and _count(calls[cp.id], "MeterValues", since=up) >= 3
                for cp in cps
            ),
            20,
            "sessions started and metered on every charger after the restart",
        )
        chargers.loop.call_soon_threadsafe(stop.set)
        for done in loops:
            done.result(15)
        assert not failures, failures

        # Neither the server nor a charger's socket died with the database.
        assert asgi.poll() is None, "the ASGI process exited"
        assert [cp.connects for cp in cps] == [1] * len(cps), "a charger's socket was dropped"
        assert all(cp.online and cp.booted for cp in cps)
        assert stored.connected(IDENTITIES) == len(cps), "a charger is not shown connected"

        # While the database was down, nothing was acknowledged: a CALLERROR or no answer.
        during = [c for cp in cps for c in calls[cp.id] if c.sent >= down and c.done <= up]
        assert during, "no charger sent anything while the database was down"
        acknowledged = [c for c in during if c.outcome == "result"]
        assert not acknowledged, f"answered while the database was down: {acknowledged[:3]}"
        refused = sum(1 for c in during if c.outcome == "error")
        assert refused, f"no CALLERROR while the database was down: {during[:5]}"

        # A new session from start to stop, on a charger that went through the crash.
        cp = cps[0]
        started = chargers.do(cp.start_session(1, _tag(cp.id)))
        assert started.accepted and started.transaction_id, started
        metered = _count(calls[cp.id], "MeterValues")
        wait_until(lambda: _count(calls[cp.id], "MeterValues") >= metered + 2, 10, "the new session metered")
        chargers.do(cp.stop_session(1, reason="Local"))
        (stopped_at, samples) = stored.rows(
            "SELECT t.stopped_at, (SELECT count(*) FROM {MeterSample} s WHERE s.transaction_id = t.id)"
            " FROM {Transaction} t WHERE t.id = %s",
            started.transaction_id,
        )[0]
        assert stopped_at is not None and samples >= 2, (stopped_at, samples)

        figures = {cp.id: _assert_answered_stored_once(stored, cp, calls[cp.id]) for cp in cps}
        print(f"\noutage {up - down:.1f} s: {len(during)} CALLs, {refused} CALLERRORs; stored: {figures}")
    finally:
        chargers.loop.call_soon_threadsafe(stop.set)
        chargers.close()
