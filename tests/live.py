"""Real processes for the tests that are about them: ChargeDesk's ASGI server (uvicorn, run as
`manage.py serve` runs it) and Celery workers, on the test's PostgreSQL and a Redis; polling
with a deadline; stopping a process for sure."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# How long a test's uvicorn waits on a stop for its connections and consumers to finish (a
# cancelled channels_redis receive can hang; see stations/management/commands/serve.py).
STOP_GRACE_SECONDS = 3


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 30.0, what: str | None = None, *, interval: float = 0.1):
    """Poll `predicate` until it is truthy (returned) or `timeout` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            what = what or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def stack_env(redis_url: str | None = None, database_url: str | None = None, **extra: str) -> dict:
    """The environment of a ChargeDesk process on the test's database (or `database_url`)."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": database_url or f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL if redis_url is None else redis_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not gone within `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_asgi(
    env: dict, port: int | None = None, *, extra: tuple[str, ...] = ()
) -> tuple[str, subprocess.Popen]:
    """A uvicorn process serving ChargeDesk with `env`, with the options `manage.py serve` gives
    it (and `extra` ones); returns (base URL, process) once it answers /healthz."""
    from stations.management.commands.serve import uvicorn_command

    port = port or free_port()
    command = uvicorn_command(
        "127.0.0.1",
        port,
        log_level=os.environ.get("TEST_UVICORN_LOG", "warning"),  # "info" shows its connections
        graceful_shutdown=STOP_GRACE_SECONDS,
    )
    proc = subprocess.Popen([*command, *extra], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"

    def up():
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=2).read()
            return True
        except OSError:
            return False

    _await_start(proc, up, "the ASGI server", timeout=30, interval=0.2)
    return base, proc


def _await_start(proc: subprocess.Popen, ready, what: str, *, timeout: float, interval: float) -> None:
    """Wait until `ready()` while `proc` runs; a process that exits or never gets ready is
    stopped and the wait fails."""

    def running_and_ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited")
        return ready()

    try:
        wait_until(running_and_ready, timeout, f"{what} to start", interval=interval)
    except BaseException:
        stop_process(proc)
        raise


def start_celery_worker(
    env: dict,
    queue: str,
    name: str,
    *,
    pool: str = "solo",
    concurrency: int | None = None,
    extra: tuple[str, ...] = (),
    ping: bool = True,
) -> subprocess.Popen:
    """A Celery worker on `queue` (gossip, mingle and heartbeats off: it starts in about a
    second); returned once it answers a ping (through this process's broker: `ping=False` for a
    worker on another one). `extra`: more worker options (`-B`, …)."""
    from config.celery import app

    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", pool,
         *(["--concurrency", str(concurrency)] if concurrency else []),
         "-Q", queue, "--loglevel", "WARNING", "--hostname", f"{name}@%h",
         "--without-heartbeat", "--without-mingle", "--without-gossip", *extra],
        cwd=ROOT,
        env=env,
    )  # fmt: skip

    def answers():
        return [r for r in app.control.ping(timeout=0.5) if f"{name}@" in next(iter(r))]

    if ping:
        _await_start(proc, answers, "the Celery worker", timeout=40, interval=0)
    return proc
