"""Fixtures for billing tests: a real Stripe-protocol server (localstripe) in a subprocess.

One server per test session (starting it takes about a second); each test starts from an empty
store (``DELETE /_config/data``) with the stripe settings pointed at it.
"""

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def _localstripe_server():
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not _answers(f"{base}/js.stripe.com/v3/"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"localstripe did not start on port {port}")
        time.sleep(0.1)
    yield base
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def localstripe(_localstripe_server, settings):
    """The base URL of a running localstripe with an empty store; stripe settings point at it."""
    request = urllib.request.Request(f"{_localstripe_server}/_config/data", method="DELETE")
    with urllib.request.urlopen(request, timeout=5):
        pass
    settings.STRIPE_API_BASE = _localstripe_server
    settings.STRIPE_SECRET_KEY = "sk_test_12345"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_12345"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"
    settings.STRIPE_JS_URL = f"{_localstripe_server}/js.stripe.com/v3/"
    return _localstripe_server


@pytest.fixture(autouse=True)
def _billing_tasks_run_inline(request, monkeypatch):
    """Billing's service tests run their Celery tasks inline, as embedded ChargeDesk does, also
    when REDIS_URL points Celery at a broker (no worker serves the test process; an ASGI
    server in a thread of it runs them inline too). Tests with server and worker processes of
    their own keep the broker."""
    if {"asgi_process", "alerts_stack", "billing_stack"} & set(request.fixturenames):
        return
    from config.celery import app as celery_app

    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", True)
