import os
import shutil

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

# CI sets this: a test that would be skipped for want of a service fails instead.
REQUIRE_SERVICES = os.environ.get("CHARGEDESK_REQUIRE_SERVICES") == "1"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


def _need(condition: bool, reason: str):
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required but missing: {reason}")
    pytest.skip(reason)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(pytest.mark.usefixtures("_require_chromium"))
        if "postgres" in item.keywords:
            item.add_marker(pytest.mark.usefixtures("_require_postgres"))
        if "redis" in item.keywords:
            item.add_marker(pytest.mark.usefixtures("_require_redis"))


@pytest.fixture
def _require_chromium():
    _need(bool(CHROMIUM), "needs Chromium (apt-get install chromium)")


@pytest.fixture
def _require_postgres():
    _need(settings.USING_POSTGRES, "needs PostgreSQL (set DATABASE_URL=postgres://…)")


@pytest.fixture
def _require_redis():
    _need(bool(settings.REDIS_URL), "needs Redis (set REDIS_URL=redis://…)")


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
