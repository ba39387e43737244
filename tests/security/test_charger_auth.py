"""Charger admission under attack, through the real consumer: password guessing is limited and
logged, a reconnect skips the slow hash, and one charger cannot act as another."""

import asyncio
import logging
import time

import pytest

from sessions.models import MeterSample, Transaction, TransactionStatus
from stations.models import ChargePoint
from tests.factories import CHARGER_PASSWORD, ChargePointFactory, ConnectorFactory, IdTokenFactory
from tests.ocpp.conftest import Charger, close_thread_connections

pytestmark = pytest.mark.django_db(transaction=True)

WRONG = "not-the-password-0000"


@pytest.fixture
def run():
    from stations.ocpp import consumer

    def _run(coro):
        try:
            return asyncio.run(coro)
        finally:
            close_thread_connections(consumer._executor)

    return _run


@pytest.fixture
def cp(db):
    charge_point = ChargePointFactory(identity="CP-A", is_connected=False)
    ConnectorFactory(charge_point=charge_point, connector_id=1)
    return charge_point


@pytest.fixture
def limits(settings):
    settings.OCPP_AUTH_FAILURES_PER_IDENTITY = 3
    settings.OCPP_AUTH_FAILURES_PER_IP = 5
    settings.OCPP_AUTH_FAILURE_WINDOW = 3
    return settings


@pytest.fixture
def hash_checks(monkeypatch):
    """How often the slow password hash runs (the real check, counted)."""
    calls = []
    real = ChargePoint.check_password

    def counted(self, raw_password):
        calls.append(self.identity)
        return real(self, raw_password)

    monkeypatch.setattr(ChargePoint, "check_password", counted)
    return calls


def attempt(identity, password=CHARGER_PASSWORD, ip="198.51.100.7", path=None):
    """One handshake from ``ip``: True if admitted (the socket is closed again at once)."""

    async def go():
        charger = Charger(identity, password=password, path=path)
        charger.comm.scope["client"] = (ip, 40000)
        connected, _ = await charger.connect()
        if connected:
            await charger.close()
        else:
            # Refused: the failure was counted before the close we saw; don't wait for the
            # consumer's own end (the communicator's one-second default).
            await charger.comm.wait(timeout=0.05)
        return connected

    return go()


def security_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "chargedesk.security"]


def test_wrong_passwords_lock_the_identity_out_even_for_the_right_one(run, cp, limits, caplog):
    caplog.set_level(logging.WARNING, logger="chargedesk.security")

    async def scenario():
        wrong = [await attempt("CP-A", WRONG) for _ in range(3)]
        right_while_locked = await attempt("CP-A")
        await asyncio.sleep(limits.OCPP_AUTH_FAILURE_WINDOW + 0.5)  # the window passes
        right_after = await attempt("CP-A")
        return wrong, right_while_locked, right_after

    wrong, right_while_locked, right_after = run(scenario())
    assert wrong == [False, False, False]
    assert right_while_locked is False
    assert right_after is True
    lines = security_lines(caplog)
    failures = [m for m in lines if m.startswith("charger authentication failed")]
    assert len(failures) == 3
    assert all("identity=CP-A" in m and "ip=198.51.100.7" in m and "wrong password" in m for m in failures)
    assert sum("locked out for 3 s" in m and "identity=CP-A" in m for m in lines) == 1
    assert any("refused unchecked" in m and "identity=CP-A" in m for m in lines)


def test_a_locked_out_handshake_checks_no_hash(run, cp, limits, hash_checks):
    async def scenario():
        for _ in range(3):
            await attempt("CP-A", WRONG)
        checks_before = len(hash_checks)
        await attempt("CP-A", WRONG)
        await attempt("CP-A")
        return checks_before

    checks_before = run(scenario())
    assert checks_before == 3
    assert len(hash_checks) == 3  # the two refused unheard cost nothing


def test_one_address_guessing_many_identities_is_locked_out(run, cp, limits):
    for n in range(4):
        ChargePointFactory(identity=f"CP-G{n}")

    async def scenario():
        # Five failures from one address, no identity more than twice: the address limit.
        guesses = [await attempt(f"CP-G{n % 4}", WRONG, ip="203.0.113.9") for n in range(5)]
        same_address = await attempt("CP-A", ip="203.0.113.9")
        other_address = await attempt("CP-A", ip="198.51.100.8")
        return guesses, same_address, other_address

    guesses, same_address, other_address = run(scenario())
    assert not any(guesses)
    assert same_address is False
    assert other_address is True


def test_unknown_identities_count_against_the_address(run, cp, limits, caplog):
    caplog.set_level(logging.WARNING, logger="chargedesk.security")

    async def scenario():
        for n in range(5):
            await attempt(f"NOPE-{n}", ip="203.0.113.10")
        return await attempt("CP-A", ip="203.0.113.10")

    assert run(scenario()) is False
    assert any("unknown charge point" in m and "ip=203.0.113.10" in m for m in security_lines(caplog))


def test_the_right_password_clears_nothing_a_guesser_can_use(run, cp, limits):
    """Failures stay counted after a good handshake: a guesser cannot reset his window by
    waiting for the real charger to reconnect."""

    async def scenario():
        await attempt("CP-A", WRONG)
        await attempt("CP-A", WRONG)
        good = await attempt("CP-A")
        third = await attempt("CP-A", WRONG)
        locked = await attempt("CP-A")
        return good, third, locked

    assert run(scenario()) == (True, False, False)


def test_a_reconnect_skips_the_slow_hash(run, cp, hash_checks):
    async def scenario():
        return [await attempt("CP-A") for _ in range(3)]

    assert run(scenario()) == [True, True, True]
    assert hash_checks == ["CP-A"]  # only the first handshake paid for the hash


def test_a_new_password_invalidates_the_remembered_one(run, cp, hash_checks):
    new_password = "a-new-charger-secret-42"

    async def first():
        return await attempt("CP-A")

    assert run(first()) is True
    cp.set_password(new_password)
    cp.save()

    async def after_change():
        return await attempt("CP-A"), await attempt("CP-A", new_password), await attempt("CP-A", new_password)

    assert run(after_change()) == (False, True, True)
    assert hash_checks == ["CP-A", "CP-A", "CP-A"]  # first, the refused old one, the new one once


def test_without_the_fingerprint_cache_every_handshake_checks_the_hash(run, cp, hash_checks, settings):
    settings.OCPP_AUTH_CACHE_SECONDS = 0

    async def scenario():
        return [await attempt("CP-A") for _ in range(2)]

    assert run(scenario()) == [True, True]
    assert hash_checks == ["CP-A", "CP-A"]


def test_the_fingerprint_in_the_cache_is_not_the_password(run, cp):
    from django.core.cache import cache

    assert run(attempt("CP-A")) is True
    remembered = cache.get("ocpp:pwfp:CP-A")
    assert remembered and CHARGER_PASSWORD not in remembered and cp.password_hash not in remembered


# --- One charger cannot act as another ------------------------------------------------------


@pytest.fixture
def cp_b(db):
    charge_point = ChargePointFactory(identity="CP-B", is_connected=False)
    ConnectorFactory(charge_point=charge_point, connector_id=1)
    return charge_point


def test_basic_auth_user_of_another_charger_is_refused_and_counted(run, cp, cp_b, limits, caplog):
    caplog.set_level(logging.WARNING, logger="chargedesk.security")
    # CP-B's URL, with CP-A's identity and (valid) password in the Basic auth header.
    assert run(attempt("CP-A", path="/ocpp/CP-B")) is False
    cp_b.refresh_from_db()
    assert not cp_b.is_connected
    assert any("identity=CP-B" in m and "another one" in m for m in security_lines(caplog))


def test_one_chargers_password_does_not_open_anothers_url(run, cp, cp_b):
    cp_b.set_password("cp-b-has-its-own-secret-1")
    cp_b.save()
    assert run(attempt("CP-B", CHARGER_PASSWORD)) is False  # CP-A's password, CP-B's identity
    assert run(attempt("CP-B", "cp-b-has-its-own-secret-1")) is True


START = {"connectorId": 1, "meterStart": 1000, "timestamp": "2026-12-01T10:00:00Z"}
ENERGY = {"measurand": "Energy.Active.Import.Register", "unit": "Wh", "context": "Sample.Periodic"}


def _start_on_b(tag: str) -> int:
    async def go():
        b = Charger("CP-B")
        await b.connect()
        reply = await b.call("StartTransaction", {**START, "idTag": tag})
        await b.close()
        return reply[2]["transactionId"]

    return go()


def test_a_charger_cannot_stop_another_chargers_session(run, cp, cp_b):
    tag = IdTokenFactory().token
    tx_b = run(_start_on_b(tag))

    async def a_stops_b():
        a = Charger("CP-A")
        await a.connect()
        reply = await a.call(
            "StopTransaction",
            {"transactionId": tx_b, "meterStop": 99_000, "timestamp": "2026-12-01T11:00:00Z", "idTag": tag},
        )
        await a.close()
        return reply

    reply = run(a_stops_b())
    assert reply[0] == 3  # answered (the charger must not retry forever), nothing changed
    tx = Transaction.objects.get(pk=tx_b)
    assert tx.charge_point_id == cp_b.pk
    assert tx.status == TransactionStatus.ACTIVE
    assert tx.stopped_at is None and tx.meter_stop is None


def test_a_charger_cannot_add_meter_values_to_another_chargers_session(run, cp, cp_b):
    tag = IdTokenFactory().token
    tx_b = run(_start_on_b(tag))
    before = Transaction.objects.get(pk=tx_b)

    async def a_meters_b():
        a = Charger("CP-A")
        await a.connect()
        reply = await a.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": tx_b,
                "meterValue": [
                    {"timestamp": "2026-12-01T10:30:00Z", "sampledValue": [{"value": "55000", **ENERGY}]}
                ],
            },
        )
        await a.close()
        return reply

    assert run(a_meters_b())[0] == 3
    tx = Transaction.objects.get(pk=tx_b)
    assert (tx.last_meter_wh, tx.last_meter_at) == (before.last_meter_wh, before.last_meter_at)
    assert not MeterSample.objects.filter(transaction_id=tx_b).exists()
    # What A sent is kept as A's, unattached to any session.
    assert list(MeterSample.objects.values_list("charge_point__identity", "transaction_id")) == [
        ("CP-A", None)
    ]


def test_lockout_window_is_fixed_from_the_first_failure(run, cp, limits):
    """A locked-out charger is let in once the window that began with the first failure ends,
    however often it knocked meanwhile."""

    async def scenario():
        for _ in range(3):
            await attempt("CP-A", WRONG)
        started = time.monotonic()
        while not await attempt("CP-A"):
            await asyncio.sleep(0.2)
            if time.monotonic() - started > 10:
                return None
        return time.monotonic() - started

    waited = run(scenario())
    assert waited is not None and waited <= limits.OCPP_AUTH_FAILURE_WINDOW + 1


@pytest.fixture
def cache_down(settings):
    """The cache is a Redis nobody listens on (Redis restarting)."""
    from tests.conftest import _free_port

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    return settings


def test_with_the_cache_down_the_right_password_still_opens_and_a_wrong_one_does_not(
    run, cp, limits, cache_down, hash_checks, caplog
):
    caplog.set_level(logging.WARNING, logger="chargedesk.security")

    async def scenario():
        wrong = [await attempt("CP-A", WRONG) for _ in range(4)]  # past the limit of 3
        return wrong, await attempt("CP-A"), await attempt("CP-A")

    wrong, right, again = run(scenario())
    assert wrong == [False] * 4
    # Nothing could be counted, so nothing is locked out: the right password is let in, each
    # time through the slow hash (no fingerprint could be kept either).
    assert (right, again) == (True, True)
    assert hash_checks == ["CP-A"] * 6
    lines = security_lines(caplog)
    assert any("without the cache (failure counts not checked)" in line for line in lines), lines
    assert any("without the cache (failure not counted)" in line for line in lines), lines
    cp.refresh_from_db()
    assert cp.is_connected is False  # each admitted socket closed again and was recorded so
