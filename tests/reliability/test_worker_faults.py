"""Worker faults around money: a crash between the call to Stripe and our commit must not
capture twice when the settlement runs again."""

import datetime as dt
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import stripe_client, tasks_invoicing
from billing.models import (
    AccountToken,
    BillingAccount,
    BillingProfile,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    Payment,
    PaymentStatus,
    SessionCharge,
)
from billing.payments.stripe import StripeProvider, _key
from billing.services import payments
from tests.billing.conftest import (  # noqa: F401  (fixtures)
    _billing_tasks_run_inline,
    _localstripe_server,
    localstripe,
)
from tests.billing.payment_helpers import energy_tariff, save_card, session, stop
from tests.billing.test_invoicing import priced_session
from tests.factories import IdTokenFactory
from tests.reliability.worker_stack import Workers, wait_for

pytestmark = pytest.mark.live


def _intents(customer: str) -> list:
    # localstripe lists every PaymentIntent (no customer filter).
    listed = stripe_client.client().v1.payment_intents.list({"limit": 100}).data
    return [i for i in listed if i.customer == customer]


@pytest.mark.django_db
@pytest.mark.usefixtures("localstripe")
def test_a_capture_whose_write_was_lost_is_reconciled_not_captured_twice(operator, charge_point, driver):
    energy_tariff(operator, "0.40")
    save_card(driver)
    tx, energy = session(charge_point, driver, energy_wh="7400")
    payment = payments.authorize_session(tx)
    stop(tx, energy)
    # The worker captured at Stripe, then died before our transaction committed.
    stripe_client.client().v1.payment_intents.capture(
        payment.intent_id, {"amount_to_capture": 296}, _key(payment, "capture-0")
    )
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.AUTHORIZED

    settled = payments.settle_session(tx)  # the task rerun
    again = payments.settle_session(tx)  # and once more

    assert settled.status == again.status == PaymentStatus.CAPTURED
    assert settled.amount_captured == Decimal("2.96")
    assert settled.intent_id == payment.intent_id
    customer = BillingProfile.objects.get(user=driver).stripe_customer_id
    intents = _intents(customer)
    assert [(i.id, i.status) for i in intents] == [(payment.intent_id, "succeeded")]
    assert StripeProvider()._captured(payment.intent_id) == 296
    assert SessionCharge.objects.filter(transaction=tx).count() == 1


@pytest.fixture
def workers(transactional_db, settings):
    """Worker processes of the test's own; the test process sends to their queue."""
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL (a Celery broker)")
    from config.celery import app

    stack = Workers(visibility_timeout=2)
    old = app.conf.task_default_queue, app.conf.task_always_eager
    app.conf.task_default_queue, app.conf.task_always_eager = stack.queue, False
    try:
        yield stack
    finally:
        app.conf.task_default_queue, app.conf.task_always_eager = old
        stack.stop()


@pytest.mark.postgres
@pytest.mark.redis
def test_monthly_invoicing_killed_midway_and_redelivered_invoices_each_account_once(
    workers, operator, charge_point
):
    accounts = 150
    march = timezone.make_aware(dt.datetime(2026, 3, 10, 18, 0))
    sessions = []
    for n in range(accounts):
        account = BillingAccount.objects.create(operator=operator, name=f"Fleet {n}", email="")
        token = IdTokenFactory()
        AccountToken.objects.create(account=account, id_token=token)
        for _ in range(2):
            sessions.append(priced_session(charge_point=charge_point, id_token=token, started_at=march).pk)

    first = workers.start()
    tasks_invoicing.issue_monthly_invoices.delay("2026-04-02")
    wait_for(lambda: Invoice.objects.filter(account__isnull=False).count() >= 10, timeout=30)
    workers.kill(first)
    killed_at = Invoice.objects.filter(account__isnull=False).count()
    assert killed_at < accounts, "the run ended before the worker was killed"

    workers.start()  # the unacknowledged task comes back after the visibility timeout
    wait_for(lambda: Invoice.objects.filter(account__isnull=False).count() >= accounts, timeout=40)
    time.sleep(1)  # nothing more arrives

    invoices = Invoice.objects.filter(account__isnull=False)
    assert invoices.count() == accounts
    assert sorted(invoices.values_list("account_id", flat=True)) == sorted(
        BillingAccount.objects.values_list("pk", flat=True)
    )
    numbers = sorted(Invoice.objects.filter(operator=operator).values_list("sequence_number", flat=True))
    assert numbers == list(range(1, len(numbers) + 1))
    per_session = Counter(
        InvoiceLine.objects.filter(invoice__in=invoices)
        .values_list("transaction_id", "invoice_id")
        .distinct()
    )
    assert sorted(t for t, _ in per_session) == sorted(sessions)  # each session on one invoice


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.usefixtures("localstripe")
def test_card_settlements_killed_midway_then_rerun_capture_each_payment_once(
    workers, operator, charge_point, driver, settings
):
    from billing import tasks as billing_tasks

    energy_tariff(operator, "0.40")
    save_card(driver)
    txs = []
    for _ in range(30):
        tx, energy = session(charge_point, driver, energy_wh="7400")
        payments.authorize_session(tx)
        txs.append(stop(tx, energy))
    workers.env.update(
        STRIPE_API_BASE=settings.STRIPE_API_BASE,
        STRIPE_SECRET_KEY="sk_test_12345",
        STRIPE_WEBHOOK_SECRET="whsec_test",
        EMAIL_URL="consolemail://",
    )
    captured = Payment.objects.filter(status=PaymentStatus.CAPTURED)

    first = workers.start()
    for tx in txs:
        billing_tasks.settle_session.delay(tx.pk)
    wait_for(lambda: captured.count() >= 5, timeout=30)
    workers.kill(first)
    assert captured.count() < len(txs), "every session was settled before the worker was killed"

    workers.start()
    for tx in txs:  # the rerun of every settlement, settled or not
        billing_tasks.settle_session.delay(tx.pk)
    wait_for(lambda: captured.count() == len(txs), timeout=40)
    receipts = Invoice.objects.filter(kind=InvoiceKind.RECEIPT)
    wait_for(lambda: receipts.count() >= len(txs), timeout=20)
    time.sleep(1)  # nothing more arrives

    assert receipts.count() == len(txs)
    assert Counter(receipts.values_list("payment_id", flat=True)) == Counter(
        dict.fromkeys(captured.values_list("pk", flat=True), 1)
    )
    assert SessionCharge.objects.filter(transaction__in=txs).count() == len(txs)
    customer = BillingProfile.objects.get(user=driver).stripe_customer_id
    intents = _intents(customer)
    assert len(intents) == len(txs)  # no card charged anew
    assert sorted(i.id for i in intents) == sorted(captured.values_list("intent_id", flat=True))
    provider = StripeProvider()
    assert {provider._captured(i.id) for i in intents} == {296}
    assert set(captured.values_list("amount_captured", flat=True)) == {Decimal("2.96")}
