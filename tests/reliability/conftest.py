"""Fixtures for the OCPP fault tests: private servers a test may stop and start (never the shared
PostgreSQL or Redis), a real uvicorn process on them, and the check that nothing a charger got an
answer for was lost."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import _need
from tests.live import ROOT, stack_env, start_asgi, stop_process, wait_until
from tests.live import free_port as _free_port

__all__ = ["ROOT", "stack_env", "start_asgi", "stop_process", "wait_until"]  # for the tests here


class PrivateRedis:
    """A redis-server of the test's own on a free port, with no persistence: a restart loses
    everything, the harshest case for the channel layer."""

    def __init__(self):
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def _ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def start(self):
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self._ping, 10, "the private Redis to answer")

    def stop(self):
        import redis

        # SHUTDOWN NOSAVE: as a crash, nothing written back; the connection drops as it answers.
        with contextlib.suppress(redis.RedisError):
            redis.Redis(port=self.port, socket_timeout=2).shutdown(nosave=True)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    server.start()
    yield server
    if server.proc is not None:
        server.proc.kill()
        server.proc.wait(5)


@pytest.fixture
def redis_stack(transactional_db, settings, private_redis):
    """ChargeDesk on a real uvicorn process, on the test's PostgreSQL database and a private
    Redis. Yields (base_url, env, private_redis)."""
    _need(settings.USING_POSTGRES, "needs PostgreSQL")
    env = stack_env(private_redis.url)
    base, proc = start_asgi(env)
    yield base, env, private_redis
    stop_process(proc)


def answered_by_kind(cp):
    """What `cp` got a CALLRESULT for: (Counter of meter sample keys (connector, timestamp,
    measurand, phase), StartTransaction bodies, StopTransaction bodies)."""
    from collections import Counter

    from django.utils.dateparse import parse_datetime

    samples = Counter()
    starts = []
    stops = []
    for action, body in cp.answered:
        if action == "MeterValues":
            for mv in body["meterValue"]:
                at = parse_datetime(mv["timestamp"])
                for sv in mv["sampledValue"]:
                    key = (
                        body["connectorId"],
                        at,
                        sv.get("measurand", "Energy.Active.Import.Register"),
                        sv.get("phase", ""),
                    )
                    samples[key] += 1
        elif action == "StartTransaction":
            starts.append(body)
        elif action == "StopTransaction":
            stops.append(body)
    return samples, starts, stops


def assert_nothing_answered_lost(chargers):
    """Every MeterValues sample, StartTransaction and StopTransaction a charger got a CALLRESULT
    for is stored exactly once."""
    from collections import Counter

    from django.utils.dateparse import parse_datetime

    from sessions.models import MeterSample, Transaction

    for cp in chargers:
        samples, starts, stops = answered_by_kind(cp)
        assert samples, f"{cp.id}: no MeterValues were answered at all"
        stored = Counter(
            (s.connector_number, s.timestamp, s.measurand, s.phase)
            for s in MeterSample.objects.filter(charge_point__identity=cp.id)
        )
        missing = [k for k in samples if stored[k] == 0]
        doubled = [k for k in samples if stored[k] > 1]
        assert not missing, (
            f"{cp.id}: {len(missing)} of {len(samples)} answered samples lost, e.g. {missing[:3]}"
        )
        assert not doubled, f"{cp.id}: answered samples stored more than once, e.g. {doubled[:3]}"
        for body in starts:
            n = Transaction.objects.filter(
                charge_point__identity=cp.id,
                connector_number=body["connectorId"],
                started_at=parse_datetime(body["timestamp"]),
            ).count()
            assert n == 1, f"{cp.id}: answered StartTransaction {body} stored {n} times"
        for body in stops:
            tx = (
                Transaction.objects.get(charge_point__identity=cp.id, pk=body["transactionId"])
                if str(body["transactionId"]).isdigit()
                else None
            )
            assert tx is not None and tx.stopped_at is not None, (
                f"{cp.id}: answered StopTransaction {body} not stored"
            )


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb into a temporary directory, a free port on
    127.0.0.1, trust auth, fsync off), so a test may crash it: never the shared server."""

    def __init__(self, database: str = "chargedesk"):
        import tempfile

        self.port = _free_port()
        self.database = database
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/{database}"
        # Not pytest's tmp_path: as root that is private to root, and the server runs as postgres.
        self.dir = Path(tempfile.mkdtemp(prefix="chargedesk-pg-"))
        self.data = self.dir / "data"
        self._as_owner = []
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to postgres
            import pwd

            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self._as_owner = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str, timeout: float = 60):
        done = subprocess.run(
            [*self._as_owner, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {done.stdout}{done.stderr}{self._log_tail()}")

    def _log_tail(self) -> str:
        log = self.dir / "server.log"
        return "\n" + log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def init(self):
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        self.start()
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def dsn(self, database: str | None = None) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database or self.database}"

    def start(self):
        # fsync off only skips the flush to disk: a commit still reaches the kernel before it is
        # acknowledged, so a server crash (not the machine's) loses nothing acknowledged.
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        log = str(self.dir / "server.log")
        self._run(
            str(PG_BIN / "pg_ctl"), "start", "-D", str(self.data), "-l", log, "-w", "-t", "30", "-o", options
        )

    def crash(self):
        """Immediate stop: the server processes quit at once, as in a crash; the next start
        runs crash recovery."""
        self._run(str(PG_BIN / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w")

    def cleanup(self):
        import shutil

        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self.crash()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres(settings):
    """A private PostgreSQL cluster, initialised and running, with an empty database."""
    # The suite runs on SQLite without services; this fault test belongs with the real stack.
    _need(settings.USING_POSTGRES, "needs PostgreSQL (set DATABASE_URL=postgres://…)")
    _need(
        all((PG_BIN / name).exists() for name in ("initdb", "pg_ctl", "postgres")),
        f"needs the PostgreSQL 15 server binaries in {PG_BIN} (apt-get install postgresql-15)",
    )
    server = PrivatePostgres()
    try:
        server.init()
        yield server
    finally:
        server.cleanup()
