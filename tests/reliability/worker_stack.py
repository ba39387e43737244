"""Celery worker processes of a test's own (its own queue on the test's Redis, the test's
PostgreSQL) that a test can SIGKILL and replace."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def wait_for(fn, *, timeout: float = 30.0, interval: float = 0.1):
    """Poll ``fn`` until it returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {getattr(fn, '__name__', fn)}")
        time.sleep(interval)


class Workers:
    """Start workers on one queue; ``kill`` one with SIGKILL, ``start`` a fresh one."""

    def __init__(self, *, visibility_timeout: int = 2):
        db = settings.DATABASES["default"]
        self.queue = f"faults-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "CELERY_BROKER_VISIBILITY_TIMEOUT": str(visibility_timeout),
            "CELERY_BROKER_RESTORE_INTERVAL": "1",
            "CELERY_BROKER_RESTORE_THROTTLE": "1",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "LOG_LEVEL": "WARNING",
        }
        self.processes: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        from config.celery import app

        name = f"faults-{os.getpid()}-{self.queue}-{len(self.processes)}"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
             "-Q", self.queue, "--loglevel", "WARNING", "--hostname", f"{name}@%h",
             "--without-heartbeat", "--without-mingle", "--without-gossip"],
            cwd=ROOT,
            env=self.env,
        )  # fmt: skip
        self.processes.append(process)
        deadline = time.monotonic() + 40
        while not [r for r in app.control.ping(timeout=0.5) if f"{name}@" in next(iter(r))]:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Celery worker did not start")
        return process

    def kill(self, process: subprocess.Popen) -> None:
        process.kill()  # SIGKILL: no warm shutdown, nothing acknowledged
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
