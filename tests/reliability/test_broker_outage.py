"""The Celery broker (Redis) down while chargers charge: the work their sessions hand to the
workers (pricing, payment, alerts) is kept in the database and done once the broker is back,
each session priced and paid exactly once. Real uvicorn, a real worker with Celery beat
embedded, a private Redis, simulated chargers over TCP."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.chargers import Chargers
from tests.live import start_celery_worker, stop_process
from tests.reliability.conftest import assert_nothing_answered_lost, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.live]

IDENTITIES = ("OUTAGE-B1", "OUTAGE-B2")
TRAFFIC = {"meter_interval": 0.2, "energy_speedup": 50, "record_answers": True, "response_timeout": 10}


def _tag(identity: str) -> str:
    return f"04{identity.encode().hex().upper()[-12:]}"


def _provision():
    from billing.models import AccountToken, BillingAccount
    from tests.billing.payment_helpers import energy_tariff
    from tests.factories import ChargePointFactory, ConnectorFactory, IdTokenFactory, OperatorFactory

    operator = OperatorFactory()
    energy_tariff(operator, "0.40")
    account = BillingAccount.objects.create(operator=operator, name="Fleet", email="")
    for identity in IDENTITIES:
        cp = ChargePointFactory(identity=identity, is_connected=False, site__operator=operator)
        ConnectorFactory(charge_point=cp, connector_id=1)
        AccountToken.objects.create(account=account, id_token=IdTokenFactory(token=_tag(identity)))


def test_sessions_during_a_broker_outage_are_priced_and_paid_once_when_it_is_back(redis_stack, tmp_path):
    from billing.models import Payment, PaymentProvider, SessionCharge
    from config.models import DeferredTask
    from sessions.models import Transaction

    base, env, redis_server = redis_stack
    _provision()
    chargers = Chargers(base)
    redis_server.stop()
    try:
        cps = [chargers.start(identity, **TRAFFIC) for identity in IDENTITIES]
        for cp in cps:
            started = chargers.do(cp.start_session(1, _tag(cp.id)))
            assert started.accepted and started.transaction_id, started
        wait_until(
            lambda: all(sum(a == "MeterValues" for a, _ in cp.answered) >= 3 for cp in cps),
            20,
            "meter values while the broker is down",
        )
        for cp in cps:
            chargers.do(cp.stop_session(1, reason="Local"))
            assert any(action == "StopTransaction" for action, _ in cp.answered), "StopTransaction unanswered"
    finally:
        chargers.close()
    assert_nothing_answered_lost(cps)

    sessions = list(
        Transaction.objects.filter(charge_point__identity__in=IDENTITIES, stopped_at__isnull=False)
    )
    assert len(sessions) == len(IDENTITIES)
    # The broker refused every hand-over; each is kept, none is done yet.
    kept = wait_until(
        lambda: (
            (names := list(DeferredTask.objects.values_list("task", flat=True)))
            and names.count("billing.tasks.settle_session") == len(sessions)
            and names
        ),
        20,
        "the settlements kept in the database",
    )
    assert kept.count("billing.tasks.authorize_session") == len(sessions)
    assert "alerts.tasks.handle_event" in kept
    assert not SessionCharge.objects.exists()
    print(f"\nkept during the outage: {len(kept)} task calls ({sorted(set(kept))})")

    # The broker comes back; a worker with Celery beat relays the backlog and does the work.
    redis_server.start()
    back = time.monotonic()
    worker = start_celery_worker(
        {**env, "CELERY_RELAY_SECONDS": "1", "EMAIL_URL": "dummymail://"},
        "celery",
        f"outage-{tmp_path.name}",
        extra=("-B", "--scheduler", "celery.beat:PersistentScheduler", "-s", str(tmp_path / "beat")),
        ping=False,
    )
    try:
        wait_until(
            lambda: (
                not DeferredTask.objects.exists()
                and Payment.objects.filter(transaction__in=sessions, amount_captured__gt=0).count()
                == len(sessions)
            ),
            60,
            "the backlog relayed and every session paid",
            interval=0.5,
        )
        relayed_in = time.monotonic() - back
        time.sleep(2)  # nothing more arrives (a second relay, a duplicate)
    finally:
        stop_process(worker, timeout=20)

    for tx in sessions:
        (charge,) = SessionCharge.objects.filter(transaction=tx)
        (payment,) = Payment.objects.filter(transaction=tx)
        assert charge.total > Decimal("0")
        assert payment.provider == PaymentProvider.ACCOUNT
        assert payment.amount_captured == charge.total
    assert not DeferredTask.objects.exists()
    print(f"backlog done {relayed_in:.1f} s after the broker came back (worker start included)")
