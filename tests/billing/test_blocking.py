"""A card that keeps declining: the cost is retried, then the payment fails, the driver is
blocked from starting (with a clear message, and their ID tokens refused by chargers) until
the debt is paid with a working card."""

from decimal import Decimal

import pytest
from django.conf import settings as django_settings

from billing.models import BillingProfile, PaymentStatus
from billing.services import payments
from config.events import _subscribers
from sessions import services as session_services
from sessions.models import IdTokenStatus
from tests.factories import IdTokenFactory

from .payment_helpers import DECLINING_CARD, energy_tariff, now, save_card, session, stop

pytestmark = pytest.mark.django_db

BLOCKED = "Your last payment of €2.96 failed; pay it on your account page before charging again."


@pytest.fixture
def failures():
    seen = []

    def listener(**data):
        seen.append(data)

    _subscribers["billing.payment_failed"].append(listener)
    yield seen
    _subscribers["billing.payment_failed"].remove(listener)


@pytest.fixture
def declined_session(localstripe, operator, charge_point, driver):
    energy_tariff(operator)
    save_card(driver, DECLINING_CARD)
    token = IdTokenFactory(driver=driver, token="04DECLINED")
    tx, energy = session(charge_point, driver, token=token)
    payment = payments.authorize_session(tx)
    return stop(tx, energy), payment, token


def test_a_declined_hold_leaves_the_payment_pending_and_the_session_running(declined_session):
    _, payment, _ = declined_session
    assert payment.status == PaymentStatus.PENDING
    assert payment.intent_id == ""
    assert "declined" in payment.failure_message


def test_declined_card_is_retried_then_the_payment_fails_and_the_driver_is_blocked(
    declined_session, operator, charge_point, driver, failures, django_capture_on_commit_callbacks
):
    tx, payment, token = declined_session

    payment = payments.settle_session(tx)  # the first attempt; Celery retries it later
    assert (payment.status, payment.attempts) == (PaymentStatus.PENDING, 1)
    assert payments.can_start(driver)[0] is True  # not blocked while retries are left

    for attempt in range(2, django_settings.BILLING_CAPTURE_RETRIES + 1):
        payment = payments.capture_retry(payment.pk)
        assert (payment.status, payment.attempts) == (PaymentStatus.PENDING, attempt)
    with django_capture_on_commit_callbacks(execute=True):
        payment = payments.capture_retry(payment.pk)

    assert payment.status == PaymentStatus.FAILED
    assert payment.attempts == django_settings.BILLING_CAPTURE_RETRIES + 1
    assert payments.can_start(driver) == (False, BLOCKED)
    assert BillingProfile.objects.get(user=driver).blocked_at is not None
    token.refresh_from_db()
    assert token.status == IdTokenStatus.BLOCKED
    # A charger asking about the card is told it is blocked.
    assert session_services.authorize(charge_point=charge_point, id_tag=token.token).status == "Blocked"
    assert failures == [
        {
            "payment_id": payment.pk,
            "operator_id": operator.pk,
            "driver_id": driver.pk,
            "amount": "2.96",
            "currency": "EUR",
            "reason": payment.failure_message,
        }
    ]
    assert payments.capture_retry(payment.pk).status == PaymentStatus.FAILED  # a late retry: nothing

    # The driver adds a working card and pays: unblocked, the card accepted again.
    card = save_card(driver)
    payments.set_default_payment_method(driver, card)
    assert payments.pay_debt(driver) is True
    payment.refresh_from_db()
    assert (payment.status, payment.amount_captured) == (PaymentStatus.CAPTURED, Decimal("2.96"))
    assert payments.can_start(driver) == (True, "")
    token.refresh_from_db()
    assert token.status == IdTokenStatus.ACCEPTED


def test_a_start_the_charger_was_told_to_stop_holds_nothing(localstripe, operator, charge_point, driver):
    energy_tariff(operator)
    save_card(driver)
    token = IdTokenFactory(driver=driver, status=IdTokenStatus.BLOCKED)
    tx, info = session_services.transaction_start(
        charge_point=charge_point, connector_id=1, id_tag=token.token, meter_start=0, timestamp=now()
    )
    assert info.status == "Blocked"
    assert payments.authorize_session(tx) is None


def test_paying_the_debt_with_the_same_declining_card_keeps_the_block(declined_session, driver):
    tx, payment, _ = declined_session
    payments.settle_session(tx)
    for _ in range(django_settings.BILLING_CAPTURE_RETRIES):
        payments.capture_retry(payment.pk)

    assert payments.pay_debt(driver) is False
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert payments.can_start(driver) == (False, BLOCKED)


def test_retries_run_as_celery_tasks_until_the_payment_fails(
    declined_session, driver, django_capture_on_commit_callbacks
):
    tx, payment, _ = declined_session
    with django_capture_on_commit_callbacks(execute=True):
        payment = payments.settle_session(tx)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert payment.attempts == django_settings.BILLING_CAPTURE_RETRIES + 1
    assert payments.can_start(driver) == (False, BLOCKED)
