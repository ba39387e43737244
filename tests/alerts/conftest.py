"""The real stack for alerts' end-to-end tests: the ASGI server process, a Celery worker
process (both on the test's PostgreSQL and Redis, on a queue of their own), the real SMTP
server, and an HTTP webhook receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.alerts.receivers import Receiver

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def webhook_receiver():
    """A webhook receiver (tests/alerts/receivers.py) answering 200 to everything."""
    with Receiver((200,)) as receiver:
        yield receiver


@pytest.fixture
def alerts_stack(request, transactional_db, settings, smtp_server, monkeypatch):
    """(base URL, received emails): uvicorn and a Celery worker sending mail to ``smtp_server``."""
    from config.celery import app

    queue = f"alerts-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CELERY_TASK_DEFAULT_QUEUE", queue)
    monkeypatch.setenv("CHARGEDESK_SITE_URL", "http://chargedesk.test")
    base, env = request.getfixturevalue("asgi_process")
    worker_env = {
        **env,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "EMAIL_URL": f"smtp://127.0.0.1:{settings.EMAIL_PORT}",
        "LOG_LEVEL": "WARNING",
    }
    name = f"alerts-{os.getpid()}-{queue}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "4",
            "-Q",
            queue,
            "--loglevel",
            "WARNING",
            "--hostname",
            f"{name}@%h",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=worker_env,
    )
    old_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        deadline = time.monotonic() + 40
        while not [r for r in app.control.ping(timeout=1) if f"{name}@" in next(iter(r))]:
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Celery worker did not start")
        yield SimpleNamespace(base=base, emails=smtp_server, queue=queue)
    finally:
        app.conf.task_default_queue = old_queue
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()


def wait_for(fn, *, timeout: float = 30.0, interval: float = 0.2):
    """Poll ``fn`` until it returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {getattr(fn, '__name__', fn)}")
        time.sleep(interval)
