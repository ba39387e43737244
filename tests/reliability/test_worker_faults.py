"""Worker faults around money: a crash between the call to Stripe and our commit must not
capture twice when the settlement runs again."""

from decimal import Decimal

import pytest

from billing import stripe_client
from billing.models import BillingProfile, Payment, PaymentStatus, SessionCharge
from billing.payments.stripe import StripeProvider, _key
from billing.services import payments
from tests.billing.conftest import (  # noqa: F401  (fixtures)
    _billing_tasks_run_inline,
    _localstripe_server,
    localstripe,
)
from tests.billing.payment_helpers import energy_tariff, save_card, session, stop

pytestmark = [pytest.mark.django_db, pytest.mark.live]


def _intents(customer: str) -> list:
    # localstripe lists every PaymentIntent (no customer filter).
    listed = stripe_client.client().v1.payment_intents.list({"limit": 100}).data
    return [i for i in listed if i.customer == customer]


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
