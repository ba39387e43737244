"""Cards and wallets through Stripe: a PaymentIntent with manual capture holds the
pre-authorisation at the start of a session; the actual cost is captured at the end.

Every call carries an idempotency key made of the payment and the step (and the attempt for
steps that may be tried again), so a task that runs twice never charges twice.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal

import stripe as stripe_lib

from billing import stripe_client
from billing.models import BillingProfile, Payment, PaymentMethod, PaymentStatus

from .base import PaymentError, PaymentProvider, from_minor, to_minor


def _key(payment: Payment, step: str) -> dict:
    return {"idempotency_key": f"chargedesk-payment-{payment.pk}-{step}"}


def _error(error: stripe_lib.StripeError) -> PaymentError:
    if isinstance(error, stripe_lib.CardError):
        return PaymentError(
            error.user_message or "Your card was declined.", code=error.code or "card_declined"
        )
    message = error.user_message or str(error) or "The payment provider could not be reached."
    return PaymentError(message, code=getattr(error, "code", "") or error.__class__.__name__)


def card_of(payment: Payment) -> tuple[str, str]:
    """(Stripe customer id, default PaymentMethod id) of the payment's driver."""
    if payment.user_id is None:
        raise PaymentError("Nobody to charge: the session has no driver.", code="no_driver")
    profile = BillingProfile.objects.filter(user_id=payment.user_id).first()
    method = (
        PaymentMethod.objects.filter(user_id=payment.user_id, is_default=True).order_by("-pk").first()
        or PaymentMethod.objects.filter(user_id=payment.user_id).order_by("-pk").first()
    )
    if profile is None or not profile.stripe_customer_id or method is None:
        raise PaymentError("No card saved: add one on your account page.", code="no_card")
    return profile.stripe_customer_id, method.stripe_id


class StripeProvider(PaymentProvider):
    name = "stripe"

    def _off_session_intent(self, payment: Payment, amount: Decimal, *, manual: bool, step: str):
        customer, method = card_of(payment)
        params = {
            "amount": to_minor(amount, payment.currency),
            "currency": payment.currency.lower(),
            "customer": customer,
            "payment_method": method,
            "payment_method_types": ["card"],
            "capture_method": "manual" if manual else "automatic",
            "confirm": True,
            "off_session": True,
            "metadata": {
                "payment_id": str(payment.pk),
                "transaction_id": str(payment.transaction_id or ""),
            },
        }
        try:
            return stripe_client.client().v1.payment_intents.create(params, _key(payment, step))
        except stripe_lib.StripeError as error:
            raise _error(error) from error

    def authorize(self, payment: Payment, amount: Decimal) -> None:
        intent = self._off_session_intent(payment, amount, manual=True, step="authorize")
        if intent.status != "requires_capture":
            raise PaymentError(f"The card was not pre-authorised ({intent.status}).", code=intent.status)
        payment.intent_id = intent.id
        payment.amount_authorized = amount
        payment.status = PaymentStatus.AUTHORIZED
        payment.failure_message = ""
        payment.save(
            update_fields=["intent_id", "amount_authorized", "status", "failure_message", "updated_at"]
        )

    def capture(self, payment: Payment, amount: Decimal) -> None:
        """Capture from the hold when it covers the amount; else charge the whole amount
        anew off-session (and release the hold once that succeeded), so one PaymentIntent
        holds everything a payment collected and a refund has one place to go."""
        if (
            payment.status == PaymentStatus.AUTHORIZED
            and payment.intent_id
            and amount <= payment.amount_authorized
        ):
            try:
                # A run killed after Stripe captured but before our commit left the payment
                # Authorized: take what Stripe holds as the truth instead of capturing again
                # (or, the capture refused, charging the card anew).
                captured = self._captured(payment.intent_id)
                if captured is not None:
                    amount = from_minor(captured, payment.currency)
                else:
                    stripe_client.client().v1.payment_intents.capture(
                        payment.intent_id,
                        {"amount_to_capture": to_minor(amount, payment.currency)},
                        _key(payment, f"capture-{payment.attempts}"),
                    )
            except stripe_lib.StripeError as error:
                if isinstance(error, stripe_lib.InvalidRequestError | stripe_lib.CardError):
                    # The hold is gone (expired or cancelled at Stripe): charge anew next time.
                    payment.status = PaymentStatus.PENDING
                    payment.amount_authorized = Decimal(0)
                    payment.save(update_fields=["status", "amount_authorized", "updated_at"])
                raise _error(error) from error
        else:
            intent = self._off_session_intent(
                payment, amount, manual=False, step=f"charge-{payment.attempts}"
            )
            if intent.status != "succeeded":
                raise PaymentError(f"The card was not charged ({intent.status}).", code=intent.status)
            if payment.status == PaymentStatus.AUTHORIZED and payment.intent_id:
                self._release(payment.intent_id)
            payment.intent_id = intent.id
        payment.amount_captured = amount
        payment.status = PaymentStatus.CAPTURED
        payment.failure_message = ""
        payment.save(
            update_fields=["intent_id", "amount_captured", "status", "failure_message", "updated_at"]
        )

    def _captured(self, intent_id: str) -> int | None:
        """What the PaymentIntent collected (minor units) when Stripe already captured it."""
        client = stripe_client.client()
        intent = client.v1.payment_intents.retrieve(intent_id).to_dict()
        if intent.get("status") != "succeeded":
            return None
        if intent.get("amount_received") is not None:
            return intent["amount_received"]
        # localstripe has no amount_received: what its charge kept (a partial capture is
        # recorded as the charge's amount with the rest refunded).
        charge = intent.get("latest_charge")
        if isinstance(charge, str):
            charge = client.v1.charges.retrieve(charge).to_dict()
        if not charge:
            return intent.get("amount") or 0
        captured = charge.get("amount_captured")
        return captured if captured is not None else charge["amount"] - (charge.get("amount_refunded") or 0)

    def _release(self, intent_id: str) -> None:
        # Already captured, cancelled or expired: nothing is held.
        with contextlib.suppress(stripe_lib.InvalidRequestError):
            stripe_client.client().v1.payment_intents.cancel(intent_id)

    def cancel(self, payment: Payment) -> None:
        if payment.intent_id and payment.status in (PaymentStatus.AUTHORIZED, PaymentStatus.PENDING):
            try:
                self._release(payment.intent_id)
            except stripe_lib.StripeError as error:
                raise _error(error) from error
        payment.status = PaymentStatus.CANCELED
        payment.save(update_fields=["status", "updated_at"])

    def refund(self, payment: Payment, amount: Decimal, reason: str) -> str:
        already = to_minor(payment.amount_refunded, payment.currency)
        minor = to_minor(amount, payment.currency)
        try:
            refund = stripe_client.client().v1.refunds.create(
                {
                    "payment_intent": payment.intent_id,
                    "amount": minor,
                    "metadata": {"payment_id": str(payment.pk), "reason": reason[:450]},
                },
                # Keyed by what was refunded before: the same refund retried is one refund.
                _key(payment, f"refund-{already}-{minor}"),
            )
        except stripe_lib.StripeError as error:
            raise _error(error) from error
        return refund.id

    def handle_webhook(self, event: dict) -> None:
        """Bring the payment in line with what Stripe reports about its PaymentIntent or
        charge; our own steps have usually recorded it already, then this changes nothing."""
        kind = event["type"]
        obj = event["data"]["object"]
        intent_id = obj.get("payment_intent") if kind.startswith("charge.") else obj.get("id")
        payment = (
            Payment.objects.select_for_update().filter(intent_id=intent_id).first() if intent_id else None
        )
        if payment is None:
            return
        if kind == "payment_intent.succeeded" and payment.status in (
            PaymentStatus.PENDING,
            PaymentStatus.AUTHORIZED,
            PaymentStatus.FAILED,
        ):
            received = obj.get("amount_received") or obj.get("amount") or 0
            payment.amount_captured = from_minor(received, payment.currency)
            payment.status = PaymentStatus.CAPTURED
            payment.failure_message = ""
            payment.save(update_fields=["amount_captured", "status", "failure_message", "updated_at"])
        elif kind == "payment_intent.amount_capturable_updated" and payment.status == PaymentStatus.PENDING:
            capturable = obj.get("amount_capturable") or obj.get("amount") or 0
            payment.amount_authorized = from_minor(capturable, payment.currency)
            payment.status = PaymentStatus.AUTHORIZED
            payment.save(update_fields=["amount_authorized", "status", "updated_at"])
        elif kind == "payment_intent.payment_failed":
            error = obj.get("last_payment_error") or {}
            payment.failure_message = (error.get("message") or "The card was declined.")[:300]
            fields = ["failure_message", "updated_at"]
            if payment.guest_email and payment.status == PaymentStatus.PENDING:
                payment.status = PaymentStatus.FAILED
                fields.append("status")
            payment.save(update_fields=fields)
        elif kind == "payment_intent.canceled" and payment.status == PaymentStatus.AUTHORIZED:
            # The hold lapsed at Stripe before the session was settled: charge anew at the end.
            payment.status = PaymentStatus.PENDING
            payment.amount_authorized = Decimal(0)
            payment.save(update_fields=["status", "amount_authorized", "updated_at"])
        elif kind == "charge.refunded":
            self._record_outside_refund(payment, obj)

    def _record_outside_refund(self, payment: Payment, charge: dict) -> None:
        """A refund made outside ChargeDesk (in Stripe's dashboard) is recorded too. Some
        Stripe versions (and localstripe) count the part of a hold that was not captured as
        refunded: when the refunded figure is above what was captured, that part is left out."""
        from billing.models import Refund

        amount = charge.get("amount") or 0
        captured = charge.get("amount_captured")
        if captured is None:
            captured = to_minor(payment.amount_captured, payment.currency)
        refunded = charge.get("amount_refunded") or 0
        if refunded > captured:
            refunded -= amount - captured
        refunded = max(0, min(refunded, captured))
        missing = from_minor(refunded, payment.currency) - payment.amount_refunded
        if missing <= 0:
            return
        Refund.objects.create(payment=payment, amount=missing, reason="Refunded in Stripe")
        payment.amount_refunded += missing
        if payment.amount_refunded >= payment.amount_captured:
            payment.status = PaymentStatus.REFUNDED
        payment.save(update_fields=["amount_refunded", "status", "updated_at"])
