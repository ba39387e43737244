"""The real stack for alerts' end-to-end tests: the ASGI server process, a Celery worker
process (both on the test's PostgreSQL and Redis, on a queue of their own), the real SMTP
server, and an HTTP webhook receiver that checks signatures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


class Receiver:
    """An HTTP server on a free port keeping every POST (headers and body)."""

    def __init__(self, status: int = 200):
        self.status = status
        self.received: list[SimpleNamespace] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(
                    SimpleNamespace(path=self.path, headers=dict(self.headers), body=body)
                )
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict]:
        return [json.loads(r.body) for r in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


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
