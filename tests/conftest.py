import os
import shutil
import sqlite3
import time

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.factories import (
    PASSWORD,
    ChargePointFactory,
    ConnectorFactory,
    DriverFactory,
    OperatorAdminFactory,
    OperatorFactory,
    SiteFactory,
    TechnicianFactory,
)
from tests.live import STOP_GRACE_SECONDS
from tests.live import free_port as _free_port

# CI sets this: a test that would be skipped for want of a service fails instead.
REQUIRE_SERVICES = os.environ.get("CHARGEDESK_REQUIRE_SERVICES") == "1"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


def _need(condition: bool, reason: str, who: str = ""):
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required but missing: {reason}")
    # With the test's name in the reason, the summary lists each skipped test, not a count.
    pytest.skip(f"{who}: {reason}" if who else reason)


def pytest_runtest_setup(item):
    """Tests marked for a real service or Chromium skip (naming what is missing) where it is absent."""
    if item.get_closest_marker("browser"):
        _need(bool(CHROMIUM), "needs Chromium (apt-get install chromium)", item.nodeid)
    if item.get_closest_marker("postgres"):
        _need(settings.USING_POSTGRES, "needs PostgreSQL (set DATABASE_URL=postgres://…)", item.nodeid)
    if item.get_closest_marker("redis"):
        _need(bool(settings.REDIS_URL), "needs Redis (set REDIS_URL=redis://…)", item.nodeid)


@pytest.fixture
def operator(db):
    return OperatorFactory(name="Voltway", slug="voltway")


@pytest.fixture
def other_operator(db):
    return OperatorFactory(name="Northgrid", slug="northgrid")


@pytest.fixture
def operator_admin(operator):
    return OperatorAdminFactory(operator=operator, email="admin@voltway.example")


@pytest.fixture
def technician(operator):
    return TechnicianFactory(operator=operator, email="tech@voltway.example")


@pytest.fixture
def other_operator_admin(other_operator):
    return OperatorAdminFactory(operator=other_operator, email="admin@northgrid.example")


@pytest.fixture
def driver(db):
    return DriverFactory(email="alice@example.com")


@pytest.fixture
def other_driver(db):
    return DriverFactory(email="bob@example.com")


@pytest.fixture
def site(operator):
    return SiteFactory(operator=operator, name="Central Station")


@pytest.fixture
def charge_point(site):
    cp = ChargePointFactory(site=site, identity="VW-0001")
    ConnectorFactory(charge_point=cp, connector_id=1)
    ConnectorFactory(charge_point=cp, connector_id=2)
    return cp


@pytest.fixture
def other_charge_point(other_operator):
    site = SiteFactory(operator=other_operator, name="Harbour")
    cp = ChargePointFactory(site=site, identity="NG-0001")
    ConnectorFactory(charge_point=cp, connector_id=1)
    return cp


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def login(client):
    def _login(user):
        assert client.login(email=user.email, password=PASSWORD)
        return client

    return _login


@pytest.fixture
def api_as(api_client):
    def _as(user):
        api_client.force_authenticate(user)
        return api_client

    return _as


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Users' passwords: the production hasher costs ~0.3 s a call, far too slow for fixtures.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Rate-limit counters live in the cache (Redis on the real stack): each test starts clean.
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def asgi_server(transactional_db):
    """The real ASGI application on a real uvicorn server, in a thread of this process
    (so it shares the test database). Yields the base URL."""
    import threading
    import time

    import uvicorn

    port = _free_port()
    config = uvicorn.Config(
        "config.asgi:application",
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=STOP_GRACE_SECONDS,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser_page():
    """A page in headless Chromium (Debian's), driven by Playwright."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # around it are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()
        # While Playwright's loop runs, the ORM keeps this thread's connections in a slot of
        # their own (asgiref's Local is per context); close them here, where they are seen.
        from django.db import connections

        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def csp_violations(browser_page):
    """What the pages of ``browser_page`` broke of the Content-Security-Policy: each violation
    the browser reports (its 'securitypolicyviolation' event, and a console message that
    names the policy), as text. Registered before any page loads."""
    seen = []
    browser_page.add_init_script(
        "document.addEventListener('securitypolicyviolation', (e) => console.error("
        "'CSP violation: ' + e.effectiveDirective + ' blocked ' + (e.blockedURI || 'inline') +"
        " ' at ' + e.sourceFile + ':' + e.lineNumber));"
    )
    browser_page.on(
        "console",
        lambda msg: (
            seen.append(msg.text)
            if "CSP violation" in msg.text or "Content Security Policy" in msg.text
            else None
        ),
    )
    return seen


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server (aiosmtpd) on a free port, with Django's SMTP backend pointed at it.
    Yields the list of received ``email.message.EmailMessage`` objects."""
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    yield received
    controller.stop()


@pytest.fixture
def asgi_process(transactional_db, settings):
    """ChargeDesk's ASGI application served by a real uvicorn process on the test database and
    the Redis channel layer (PostgreSQL and Redis required). Yields (base_url, env)."""
    from tests.live import stack_env, start_asgi, stop_process

    _need(settings.USING_POSTGRES and bool(settings.REDIS_URL), "needs PostgreSQL and Redis")
    env = stack_env()
    base, proc = start_asgi(env)
    yield base, env
    stop_process(proc)


LOCK_WAIT = 5.0  # seconds, as SQLite's own busy timeout


@pytest.fixture(autouse=True)
def _sqlite_waits_for_locks(monkeypatch):
    """The in-memory SQLite test database is one shared cache for all threads, and there a
    statement meeting another thread's table lock fails at once ("database table is locked"):
    the busy timeout of a database file does not apply. These tests run a view in one thread
    and the consumer's database work in others, as production does, so wait for the lock as a
    file database would."""
    from django.db import connection
    from django.db.backends.sqlite3.base import SQLiteCursorWrapper

    if connection.vendor != "sqlite":
        return

    def patient(method):
        def call(self, *args, **kwargs):
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    return method(self, *args, **kwargs)
                except sqlite3.OperationalError as error:
                    if "locked" not in str(error) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.002)

        return call

    monkeypatch.setattr(SQLiteCursorWrapper, "execute", patient(SQLiteCursorWrapper.execute))
    monkeypatch.setattr(SQLiteCursorWrapper, "executemany", patient(SQLiteCursorWrapper.executemany))


@pytest.fixture(autouse=True)
def _fresh_channel_layer(settings):
    """Each test gets a new channel layer (its pools belong to one event loop) and, on Redis,
    no groups left over from the connections of earlier tests."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    if settings.REDIS_URL:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()
    yield
    channel_layers.backends.clear()
