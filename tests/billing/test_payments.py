"""Card payments against a real Stripe-protocol server (localstripe): cards saved with a
SetupIntent, the pre-authorisation at the start, the capture of the actual cost at the end,
cancellation when nothing was consumed, refunds, postpaid accounts and guests."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing import stripe_client
from billing.models import (
    AccountToken,
    BillingAccount,
    BillingProfile,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
)
from billing.services import payments
from config.events import _subscribers
from sessions import services as session_services
from sessions.models import IdToken, IdTokenStatus
from stations.models import Command, CommandStatus
from tests.factories import IdTokenFactory

from .payment_helpers import REFUSED_CARD, energy_tariff, new_card, now, save_card, session, stop

pytestmark = pytest.mark.django_db


@pytest.fixture
def events():
    """The billing events published (after commit), as (name, data)."""
    seen = []
    listeners = {}
    for name in ("billing.payment_captured", "billing.payment_failed"):
        listeners[name] = lambda name=name, **data: seen.append((name, data))
        _subscribers[name].append(listeners[name])
    yield seen
    for name, listener in listeners.items():
        _subscribers[name].remove(listener)


def intent(intent_id):
    return stripe_client.client().v1.payment_intents.retrieve(intent_id)


def test_saving_a_card_creates_the_customer_once_and_makes_the_first_card_default(localstripe, driver):
    setup = payments.save_card_setup_intent(driver)
    assert setup["client_secret"].startswith("seti_")
    assert setup["publishable_key"] == "pk_test_12345"
    assert setup["js_url"] == f"{localstripe}/js.stripe.com/v3/"

    first = save_card(driver)
    second = save_card(driver)

    customer = BillingProfile.objects.get(user=driver).stripe_customer_id
    assert customer.startswith("cus_")
    assert (first.brand, first.last4, first.exp_month, first.exp_year) == ("visa", "4242", 12, 2031)
    assert first.is_default and not second.is_default
    assert stripe_client.client().v1.payment_methods.retrieve(second.stripe_id).customer == customer
    assert payments.attach_payment_method(driver, first.stripe_id) == first  # the same card twice
    assert PaymentMethod.objects.filter(user=driver).count() == 2


def test_a_card_refused_when_saved_is_not_stored(localstripe, driver):
    payments.save_card_setup_intent(driver)
    method = new_card(REFUSED_CARD)
    with pytest.raises(ValidationError, match="declined"):
        payments.attach_payment_method(driver, method.id)
    assert not PaymentMethod.objects.filter(user=driver).exists()


def test_can_start_needs_a_way_to_pay(localstripe, driver):
    allowed, reason = payments.can_start(driver)
    assert not allowed
    assert reason.startswith("Add a card")
    save_card(driver)
    assert payments.can_start(driver) == (True, "")


def test_session_is_preauthorised_at_start_and_the_actual_cost_captured_at_the_end(
    localstripe, operator, charge_point, driver, events, django_capture_on_commit_callbacks
):
    energy_tariff(operator, "0.40")
    save_card(driver)
    tx, energy = session(charge_point, driver, energy_wh="7400")

    payment = payments.authorize_session(tx)

    assert payment.status == PaymentStatus.AUTHORIZED
    assert payment.amount_authorized == Decimal("50.00")
    held = intent(payment.intent_id)
    assert (held.status, held.amount, held.currency, held.capture_method) == (
        "requires_capture",
        5000,
        "eur",
        "manual",
    )
    assert payments.authorize_session(tx) == payment  # the start handled twice holds once

    stop(tx, energy)
    with django_capture_on_commit_callbacks(execute=True):
        settled = payments.settle_session(tx)

    assert settled.pk == payment.pk
    assert settled.status == PaymentStatus.CAPTURED
    assert settled.amount_captured == Decimal("2.96")  # 7.4 kWh at €0.40
    assert intent(payment.intent_id).status == "succeeded"
    assert events == [
        (
            "billing.payment_captured",
            {"payment_id": payment.pk, "transaction_id": tx.pk, "operator_id": operator.pk},
        )
    ]

    with django_capture_on_commit_callbacks(execute=True):
        again = payments.settle_session(tx)  # a task run twice
    assert again.status == PaymentStatus.CAPTURED and again.amount_captured == Decimal("2.96")
    assert len(events) == 1


def test_a_session_that_consumed_nothing_releases_the_hold(localstripe, operator, charge_point, driver):
    energy_tariff(operator)
    save_card(driver)
    tx, _ = session(charge_point, driver)
    payment = payments.authorize_session(tx)
    stop(tx, Decimal("0"))

    settled = payments.settle_session(tx)

    assert settled.status == PaymentStatus.CANCELED
    assert settled.amount_captured == 0
    assert intent(payment.intent_id).status == "canceled"


def test_a_cost_above_the_hold_is_charged_in_full_and_the_hold_released(
    localstripe, settings, operator, charge_point, driver
):
    settings.BILLING_PREAUTH_AMOUNT = "1.00"
    energy_tariff(operator)
    save_card(driver)
    tx, energy = session(charge_point, driver)
    payment = payments.authorize_session(tx)
    hold = payment.intent_id
    stop(tx, energy)

    settled = payments.settle_session(tx)

    assert settled.status == PaymentStatus.CAPTURED
    assert settled.amount_captured == Decimal("2.96")
    assert settled.intent_id != hold
    charged = intent(settled.intent_id)
    assert (charged.status, charged.amount) == ("succeeded", 296)
    assert intent(hold).status == "canceled"


def test_no_tariff_means_nothing_to_pay(localstripe, charge_point, driver):
    save_card(driver)
    tx, energy = session(charge_point, driver)
    assert payments.authorize_session(tx) is None
    stop(tx, energy)
    assert payments.settle_session(tx) is None
    assert not Payment.objects.exists()


def test_refunds_partial_then_full_and_never_more_than_captured(
    localstripe, operator, operator_admin, charge_point, driver
):
    energy_tariff(operator)
    save_card(driver)
    tx, energy = session(charge_point, driver)
    payments.authorize_session(tx)
    payment = payments.settle_session(stop(tx, energy))

    first = payments.refund(
        payment=payment, amount=Decimal("1.00"), reason="Slow charging", by=operator_admin
    )
    assert first.stripe_id.startswith("re_")
    assert (first.amount, first.reason, first.created_by) == (
        Decimal("1.00"),
        "Slow charging",
        operator_admin,
    )
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.CAPTURED, Decimal("1.00"))

    with pytest.raises(ValidationError, match=r"At most €1\.96"):
        payments.refund(payment=payment, amount=Decimal("2.00"), reason="Too much")
    with pytest.raises(ValidationError):
        payments.refund(payment=payment, amount=Decimal("0"), reason="Nothing")

    payments.refund(payment=payment, amount=Decimal("1.96"), reason="Goodwill")
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.REFUNDED, Decimal("2.96"))
    stripe_refunds = stripe_client.client().v1.refunds.list({"payment_intent": payment.intent_id})
    assert sorted(r.amount for r in stripe_refunds.data if r.id in {first.stripe_id}) == [100]
    with pytest.raises(ValidationError, match="Nothing"):
        payments.refund(payment=payment, amount=Decimal("0.01"), reason="Again")
    assert Refund.objects.filter(payment=payment).count() == 2


def test_rfid_session_on_a_postpaid_account_is_left_for_the_monthly_invoice(operator, charge_point, driver):
    energy_tariff(operator)
    account = BillingAccount.objects.create(operator=operator, name="Fleet Ltd", email="fleet@example.com")
    token = IdTokenFactory(driver=driver)
    AccountToken.objects.create(account=account, id_token=token)
    assert payments.can_start(driver) == (True, "")
    tx, energy = session(charge_point, driver, token=token)

    payment = payments.authorize_session(tx)
    assert (payment.provider, payment.status, payment.account) == (
        "account",
        PaymentStatus.ON_ACCOUNT,
        account,
    )

    settled = payments.settle_session(stop(tx, energy))
    assert settled.status == PaymentStatus.ON_ACCOUNT
    assert settled.amount_captured == Decimal("2.96")
    assert settled.intent_id == ""


def _pay_as_guest(client_secret):
    """What Stripe.js does on the guest page: the card, then the confirmation."""
    api = stripe_client.client().v1.payment_intents
    intent_id = client_secret.split("_secret_")[0]
    api.update(intent_id, {"payment_method": new_card().id})
    api.confirm(intent_id)


def test_guest_pays_then_the_charger_is_started_for_that_payment(localstripe, operator, charge_point):
    energy_tariff(operator)
    charge_point.is_connected = False
    charge_point.save(update_fields=["is_connected"])

    checkout = payments.guest_checkout(
        charge_point=charge_point, connector_number=1, email="guest@example.com"
    )
    payment = Payment.objects.get(pk=checkout["payment_id"])
    assert (payment.guest_email, payment.status, payment.user) == (
        "guest@example.com",
        PaymentStatus.PENDING,
        None,
    )
    held = intent(payment.intent_id)
    assert (held.amount, held.capture_method) == (5000, "manual")
    assert held.metadata["connector_number"] == "1"
    assert payments.guest_start(payment) is None  # not paid yet: nothing is started

    _pay_as_guest(checkout["client_secret"])
    command = payments.guest_start(payment)

    tag = f"GUEST-{payment.pk}"
    assert command.action == "RemoteStartTransaction"
    assert command.payload == {"connectorId": 1, "idTag": tag}
    assert command.status == CommandStatus.OFFLINE
    # The charger did not start: the hold is released, nothing is charged.
    payment.refresh_from_db()
    assert (payment.status, payment.amount_authorized) == (PaymentStatus.CANCELED, Decimal("50.00"))
    assert intent(payment.intent_id).status == "canceled"
    token = IdToken.objects.get(token=tag)
    assert (token.status, token.driver) == (IdTokenStatus.BLOCKED, None)
    assert payments.guest_start(payment) is None  # nothing held any more: no second start
    assert Command.objects.filter(action="RemoteStartTransaction").count() == 1

    # A charger that got the start after all is refused when it reports the session.
    tx, info = session_services.transaction_start(
        charge_point=charge_point, connector_id=1, id_tag=tag, meter_start=0, timestamp=now()
    )
    assert info.status == "Blocked"
    assert payments.authorize_session(tx) is None
    payment.refresh_from_db()
    assert (payment.status, payment.transaction) == (PaymentStatus.CANCELED, None)


def test_guest_checkout_refuses_an_unknown_connector(localstripe, charge_point):
    with pytest.raises(ValidationError):
        payments.guest_checkout(charge_point=charge_point, connector_number=9, email="guest@example.com")
