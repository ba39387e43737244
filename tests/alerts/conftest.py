"""The real stack for alerts' end-to-end tests: the ASGI server process, a Celery worker
process (both on the test's PostgreSQL and Redis, on a queue of their own), the real SMTP
server, and an HTTP webhook receiver."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.alerts.receivers import Receiver
from tests.live import start_celery_worker, stop_process, wait_until

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
    worker = start_celery_worker(
        worker_env, queue, f"alerts-{os.getpid()}-{queue}", pool="threads", concurrency=4
    )
    old_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        yield SimpleNamespace(base=base, emails=smtp_server, queue=queue)
    finally:
        app.conf.task_default_queue = old_queue
        stop_process(worker, timeout=20)


def wait_for(fn, *, timeout: float = 30.0, interval: float = 0.2):
    """Poll ``fn`` until it returns something true."""
    return wait_until(fn, timeout, interval=interval)
