"""Paying for charging: which provider pays a session, the pre-authorisation at its start,
collecting the actual cost at its end (with retries, then a block on the driver until paid),
refunds, saving cards, and the guest's ad-hoc payment that starts a charger.

Providers do the talking to Stripe (``billing.payments``); this module decides what happens
to sessions, drivers and ID tokens, and announces it (``billing.payment_captured``,
``billing.payment_failed``) after commit.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import stripe as stripe_lib
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import stripe_client
from billing.blocking import block_tokens, unblock_tokens
from billing.models import (
    AccountStatus,
    AccountToken,
    BillingProfile,
    BlockKind,
    Payment,
    PaymentMethod,
    PaymentProvider,
    PaymentStatus,
    Refund,
    StripeEvent,
)
from billing.payments import PaymentError, StripeProvider, from_minor, provider_for, to_minor
from billing.pricing import format_money
from config.events import publish
from sessions.models import AuthorizationStatus, IdToken, IdTokenStatus, IdTokenType, Transaction
from stations.models import ChargePoint, CommandStatus

logger = logging.getLogger(__name__)

GUEST_PREFIX = "GUEST-"
# Outcomes of a guest's remote start after which no session will come: the hold is released.
START_FAILED = (CommandStatus.REJECTED, CommandStatus.ERROR, CommandStatus.OFFLINE, CommandStatus.TIMEOUT)
SETTLED = (
    PaymentStatus.CAPTURED,
    PaymentStatus.CANCELED,
    PaymentStatus.REFUNDED,
    PaymentStatus.ON_ACCOUNT,
    PaymentStatus.FAILED,
)
# After the first failure: 1 h, 6 h, 24 h, then daily.
RETRY_DELAYS = (3600, 6 * 3600, 24 * 3600)


def preauth_amount() -> Decimal:
    return Decimal(str(settings.BILLING_PREAUTH_AMOUNT))


def _profile(user) -> BillingProfile:
    profile, _ = BillingProfile.objects.get_or_create(user=user)
    return profile


def _default_card(user) -> PaymentMethod | None:
    methods = PaymentMethod.objects.filter(user=user)
    return methods.filter(is_default=True).order_by("-pk").first() or methods.order_by("-pk").first()


def _has_account_token(user) -> bool:
    return AccountToken.objects.filter(
        id_token__driver=user, id_token__status=IdTokenStatus.ACCEPTED, account__status=AccountStatus.ACTIVE
    ).exists()


# --- Starting ---------------------------------------------------------------------------------


def can_start(user, *, charge_point=None, connector_number: int = 0) -> tuple[bool, str]:
    """Whether a driver may start charging: not while a payment is owed, and — where charging
    costs something (a tariff applies at ``charge_point``, or anywhere when none is named) —
    only with a way to pay (a saved card, or an ID token on a postpaid account). The reason is
    for the driver."""
    profile = BillingProfile.objects.filter(user=user).first()
    if profile is not None and profile.blocked_at is not None:
        return (
            False,
            profile.blocked_reason or "A payment failed; pay it on your account page before charging.",
        )
    if charge_point is not None:
        from billing.tariffs import tariff_for

        if (
            tariff_for(
                charge_point=charge_point, connector_number=connector_number, user=user, at=timezone.now()
            )
            is None
        ):
            return True, ""  # free to charge here
    if _default_card(user) is not None or _has_account_token(user):
        return True, ""
    return False, "Add a card on your account page (or use a card on a billing account) before charging."


def _tariff(tx: Transaction):
    from billing.tariffs import tariff_for

    return tariff_for(
        charge_point=tx.charge_point, connector_number=tx.connector_number, user=tx.driver, at=tx.started_at
    )


def _guest_payment_id(id_tag: str) -> int | None:
    if not id_tag.upper().startswith(GUEST_PREFIX):
        return None
    rest = id_tag[len(GUEST_PREFIX) :]
    return int(rest) if rest.isdigit() else None


def _link_guest(tx: Transaction, payment_id: int) -> Payment | None:
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(pk=payment_id, transaction__isnull=True).first()
        if payment is None:
            return Payment.objects.filter(transaction=tx).first()
        payment.transaction = tx
        payment.save(update_fields=["transaction", "updated_at"])
        return payment


def authorize_session(tx: Transaction) -> Payment | None:
    """Decide at the start of a session how it is paid and, for a card, hold the
    pre-authorisation. None when there is nothing to pay (no tariff, or nobody to bill).
    A declined hold does not stop the session: the payment stays pending and the whole cost
    is charged at the end (where a decline is retried and then blocks the driver)."""
    existing = Payment.objects.filter(transaction=tx).first()
    if existing is not None:
        return existing
    if tx.start_auth_status != AuthorizationStatus.ACCEPTED:
        return None  # the charger was told to stop at once: nothing to hold
    guest = _guest_payment_id(tx.id_tag)
    if guest is not None:
        return _link_guest(tx, guest)
    link = AccountToken.objects.select_related("account").filter(id_token_id=tx.id_token_id).first()
    tariff = _tariff(tx)
    if tariff is None:
        return None
    if link is not None:
        fields = {"provider": PaymentProvider.ACCOUNT, "account": link.account, "user": tx.driver}
    elif tx.driver_id is not None:
        fields = {"provider": PaymentProvider.STRIPE, "user": tx.driver}
    else:
        return None
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                operator_id=tx.charge_point.operator_id, transaction=tx, currency=tariff.currency, **fields
            )
    except IntegrityError:  # the same start handled twice at once
        return Payment.objects.get(transaction=tx)
    try:
        provider_for(payment).authorize(payment, preauth_amount())
    except PaymentError as error:
        payment.failure_message = error.message[:300]
        payment.save(update_fields=["failure_message", "updated_at"])
    return payment


# --- Settling ---------------------------------------------------------------------------------


def _price(tx: Transaction):
    from billing.services.charges import price_session

    return price_session(tx)


def settle_session(tx: Transaction) -> Payment | None:
    """Collect what a finished session cost: capture it (cancel the hold when it cost
    nothing), or leave it for the postpaid account's monthly invoice. Safe to run twice: a
    settled payment is returned as it is. A failed charge is retried later (Celery), and after
    ``BILLING_CAPTURE_RETRIES`` failures the payment is failed and the driver blocked."""
    charge = _price(tx)
    if _guest_payment_id(tx.id_tag) is not None:
        # A guest's tag starts one session; it must not start another.
        IdToken.objects.filter(token__iexact=tx.id_tag).update(status=IdTokenStatus.EXPIRED)
    payment = Payment.objects.filter(transaction=tx).first()
    if payment is None:
        if charge is None or charge.total <= 0:
            return None
        payment = authorize_session(tx)
        if payment is None:
            return None
    if charge is None or charge.total <= 0:
        with transaction.atomic():
            payment = Payment.objects.select_for_update().get(pk=payment.pk)
            if payment.status not in SETTLED:
                provider_for(payment).cancel(payment)
        return payment
    return _collect(payment.pk, charge.total, charge.currency)


def _collect(payment_id: int, total: Decimal, currency: str) -> Payment:
    # The row stays locked during the call to Stripe: a second worker settling the same
    # session waits, then finds it settled (the idempotency key covers a crash in between).
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        # A postpaid payment is On account from the start; its amount is set once, here.
        unpriced = payment.status == PaymentStatus.ON_ACCOUNT and not payment.amount_captured
        if payment.status in SETTLED and not unpriced:
            return payment
        payment.currency = currency
        provider = provider_for(payment)
        try:
            provider.capture(payment, total)
        except PaymentError as error:
            payment.refresh_from_db()
            payment.attempts += 1
            payment.failure_message = error.message[:300]
            payment.save(update_fields=["attempts", "failure_message", "updated_at"])
            if payment.attempts > settings.BILLING_CAPTURE_RETRIES:
                _fail(payment, total)
            else:
                _schedule_retry(payment)
            return payment
        if payment.provider == PaymentProvider.STRIPE:
            publish(
                "billing.payment_captured",
                payment_id=payment.pk,
                transaction_id=payment.transaction_id,
                operator_id=payment.operator_id,
            )
        return payment


def _schedule_retry(payment: Payment) -> None:
    from billing import tasks

    delay = RETRY_DELAYS[min(payment.attempts, len(RETRY_DELAYS)) - 1]
    transaction.on_commit(lambda: tasks.capture_retry.apply_async((payment.pk,), countdown=delay))


def capture_retry(payment_id: int) -> Payment:
    """Try again to collect a session's cost (the Celery retry of ``settle_session``)."""
    payment = Payment.objects.select_related("transaction").get(pk=payment_id)
    if payment.status in SETTLED or payment.transaction is None:
        return payment
    charge = _price(payment.transaction)
    if charge is None or charge.total <= 0:
        return settle_session(payment.transaction)
    return _collect(payment.pk, charge.total, charge.currency)


def _blocked_reason(amount: Decimal, currency: str) -> str:
    return (
        f"Your last payment of {format_money(amount, currency)} failed; "
        "pay it on your account page before charging again."
    )


def _fail(payment: Payment, total: Decimal) -> None:
    """The last retry failed: the payment is failed, any hold released, and the driver may
    not start again (their ID tokens blocked too, so a charger's own Authorize refuses them)."""
    if payment.intent_id and payment.status == PaymentStatus.AUTHORIZED:
        try:
            provider_for(payment).cancel(payment)
        except PaymentError:
            logger.warning("could not release the hold of payment %s", payment.pk)
    payment.status = PaymentStatus.FAILED
    payment.save(update_fields=["status", "updated_at"])
    if payment.user_id is not None:
        block(payment.user, reason=_blocked_reason(total - payment.amount_captured, payment.currency))
    publish(
        "billing.payment_failed",
        payment_id=payment.pk,
        operator_id=payment.operator_id,
        driver_id=payment.user_id,
        amount=str(total),
        currency=payment.currency,
        reason=payment.failure_message,
    )


def block(user, *, reason: str) -> None:
    """Refuse a driver's starts until they pay: the profile says why; their accepted ID tokens
    become Blocked for chargers that authorise locally."""
    profile = _profile(user)
    profile.blocked_at = timezone.now()
    profile.blocked_reason = reason[:300]
    profile.save(update_fields=["blocked_at", "blocked_reason"])
    block_tokens(IdToken.objects.filter(driver=user), kind=BlockKind.PAYMENT)


def unblock(user) -> None:
    profile = _profile(user)
    profile.blocked_at = None
    profile.blocked_reason = ""
    profile.save(update_fields=["blocked_at", "blocked_reason"])
    unblock_tokens(IdToken.objects.filter(driver=user), kind=BlockKind.PAYMENT)


def pay_debt(user) -> bool:
    """Charge a blocked driver's failed payments again with their current default card;
    unblock them once nothing is owed. True when the driver is clear."""
    failed = Payment.objects.filter(user=user, status=PaymentStatus.FAILED).select_related("transaction")
    for payment in failed:
        charge = _price(payment.transaction) if payment.transaction_id else None
        owed = (charge.total if charge else payment.amount_authorized) - payment.amount_captured
        with transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            if locked.status != PaymentStatus.FAILED:
                continue
            if owed <= 0:  # collected meanwhile (a late webhook): nothing left to charge
                locked.status = PaymentStatus.CAPTURED
                locked.save(update_fields=["status", "updated_at"])
                continue
            locked.attempts += 1
            locked.status = PaymentStatus.PENDING  # charge anew, not from a released hold
            try:
                StripeProvider().capture(locked, owed)
            except PaymentError as error:
                Payment.objects.filter(pk=locked.pk).update(
                    status=PaymentStatus.FAILED, attempts=locked.attempts, failure_message=error.message[:300]
                )
                continue
            publish(
                "billing.payment_captured",
                payment_id=locked.pk,
                transaction_id=locked.transaction_id,
                operator_id=locked.operator_id,
            )
    if Payment.objects.filter(user=user, status=PaymentStatus.FAILED).exists():
        return False
    unblock(user)
    return True


# --- Refunds ----------------------------------------------------------------------------------


def refund(*, payment: Payment, amount: Decimal, reason: str, by=None) -> Refund:
    """Give money back, in part or in full; never more than was captured minus what was
    refunded already. A full refund leaves the payment Refunded."""
    amount = Decimal(amount)
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        refundable = payment.amount_captured - payment.amount_refunded
        if payment.status not in (PaymentStatus.CAPTURED, PaymentStatus.ON_ACCOUNT) or refundable <= 0:
            raise ValidationError({"amount": "Nothing of this payment can be refunded."})
        if amount <= 0 or amount > refundable:
            raise ValidationError(
                {"amount": f"At most {format_money(refundable, payment.currency)} can be refunded."}
            )
        try:
            stripe_id = provider_for(payment).refund(payment, amount, reason)
        except PaymentError as error:
            raise ValidationError({"amount": f"The refund failed: {error.message}"}) from error
        made = Refund.objects.create(
            payment=payment, amount=amount, reason=reason[:300], stripe_id=stripe_id, created_by=by
        )
        payment.amount_refunded += amount
        if payment.amount_refunded >= payment.amount_captured:
            payment.status = PaymentStatus.REFUNDED
        payment.save(update_fields=["amount_refunded", "status", "updated_at"])
    return made


# --- Cards ------------------------------------------------------------------------------------


def _stripe_customer(user) -> str:
    """The driver's Stripe customer, created once (the profile row is locked meanwhile)."""
    _profile(user)
    with transaction.atomic():
        profile = BillingProfile.objects.select_for_update().get(user=user)
        if not profile.stripe_customer_id:
            customer = stripe_client.client().v1.customers.create(
                {"email": user.email, "metadata": {"user_id": str(user.pk)}},
                {"idempotency_key": f"chargedesk-customer-{user.pk}"},
            )
            profile.stripe_customer_id = customer.id
            profile.save(update_fields=["stripe_customer_id"])
        return profile.stripe_customer_id


def save_card_setup_intent(user) -> dict:
    """What Stripe Elements (and the Payment Request button) need to save a card for later,
    off-session charges."""
    customer = _stripe_customer(user)
    intent = stripe_client.client().v1.setup_intents.create(
        {"customer": customer, "usage": "off_session", "payment_method_types": ["card"]}
    )
    return {
        "client_secret": intent.client_secret,
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "js_url": settings.STRIPE_JS_URL,
    }


def attach_payment_method(user, payment_method_id: str) -> PaymentMethod:
    """Store a card the driver saved (what to show of it; Stripe keeps the card). The first
    card becomes the default. The same card twice is one row."""
    existing = PaymentMethod.objects.filter(stripe_id=payment_method_id).first()
    if existing is not None:
        if existing.user_id != user.pk:
            raise ValidationError({"payment_method": "This card belongs to someone else."})
        return existing
    customer = _stripe_customer(user)
    api = stripe_client.client().v1.payment_methods
    method = api.retrieve(payment_method_id)
    if getattr(method, "customer", None) != customer:
        try:
            method = api.attach(payment_method_id, {"customer": customer})
        except stripe_lib.CardError as error:
            raise ValidationError(
                {"payment_method": error.user_message or "The card was declined."}
            ) from error
    card = method.to_dict().get("card") or {}
    wallet = card.get("wallet") or {}
    with transaction.atomic():
        first = not PaymentMethod.objects.select_for_update().filter(user=user).exists()
        saved, _ = PaymentMethod.objects.get_or_create(
            stripe_id=payment_method_id,
            defaults={
                "user": user,
                "brand": (card.get("brand") or "")[:20],
                "last4": (card.get("last4") or "")[:4],
                "exp_month": card.get("exp_month"),
                "exp_year": card.get("exp_year"),
                "wallet": (wallet.get("type") or "")[:20],
                "is_default": first,
            },
        )
    return saved


def set_default_payment_method(user, method: PaymentMethod) -> PaymentMethod:
    with transaction.atomic():
        PaymentMethod.objects.filter(user=user).exclude(pk=method.pk).update(is_default=False)
        PaymentMethod.objects.filter(pk=method.pk, user=user).update(is_default=True)
    method.refresh_from_db()
    return method


def remove_payment_method(*, user, method: PaymentMethod) -> None:
    """Forget a saved card: detached from the driver's Stripe customer (Stripe can no longer
    charge it), the row deleted; the newest card left becomes the default if this one was."""
    try:
        stripe_client.client().v1.payment_methods.detach(method.stripe_id)
    except stripe_lib.InvalidRequestError as error:
        # Already detached (or gone at Stripe): forgetting it here is all that is left to do.
        if error.http_status != 404 and "not attached" not in str(error).lower():
            raise
    with transaction.atomic():
        was_default = method.is_default
        PaymentMethod.objects.filter(pk=method.pk, user=user).delete()
        if was_default:
            newest = (
                PaymentMethod.objects.select_for_update()
                .filter(user=user)
                .order_by("-created_at", "-pk")
                .first()
            )
            if newest is not None:
                PaymentMethod.objects.filter(pk=newest.pk).update(is_default=True)


# --- Guests (ad-hoc payment, EU AFIR) -----------------------------------------------------------


def guest_checkout(*, charge_point: ChargePoint, connector_number: int, email: str) -> dict:
    """A guest without an account pays for one session: a PaymentIntent with manual capture for
    the pre-authorisation, confirmed by the guest's card on the page; the charger starts once
    it is held (``guest_start``)."""
    from billing.tariffs import tariff_for

    if not charge_point.connectors.filter(connector_id=connector_number).exists():
        raise ValidationError({"connector_number": "This charge point has no such connector."})
    tariff = tariff_for(
        charge_point=charge_point, connector_number=connector_number, user=None, at=timezone.now()
    )
    currency = tariff.currency if tariff is not None else charge_point.operator.currency
    amount = preauth_amount()
    payment = Payment.objects.create(
        operator_id=charge_point.operator_id,
        provider=PaymentProvider.STRIPE,
        guest_email=email,
        currency=currency,
    )
    intent = stripe_client.client().v1.payment_intents.create(
        {
            "amount": to_minor(amount, currency),
            "currency": currency.lower(),
            "capture_method": "manual",
            "payment_method_types": ["card"],
            "metadata": {
                "payment_id": str(payment.pk),
                "charge_point_id": str(charge_point.pk),
                "charge_point": charge_point.identity,
                "connector_number": str(connector_number),
                "guest_email": email,
            },
        },
        {"idempotency_key": f"chargedesk-payment-{payment.pk}-guest"},
    )
    payment.intent_id = intent.id
    payment.save(update_fields=["intent_id", "updated_at"])
    return {
        "payment_id": payment.pk,
        "client_secret": intent.client_secret,
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "js_url": settings.STRIPE_JS_URL,
        "amount": amount,
        "currency": currency,
    }


def guest_start(payment: Payment):
    """Once Stripe holds the guest's money, start the charger with an ID token made for this
    payment (``GUEST-<payment id>``, accepted, no driver): the StartTransaction it brings back
    names the payment. Returns the RemoteStartTransaction ``Command``, or None while the payment
    is not held yet (or another caller is sending the start). Safe to call twice: the start is
    sent once. When the charger does not start (offline, rejected, error, no answer) the hold on
    the guest's card is released: the payment is CANCELED."""
    from stations.commands import send_command
    from stations.models import Command

    intent = stripe_client.client().v1.payment_intents.retrieve(payment.intent_id)
    if intent.status != "requires_capture":
        return None
    meta = intent.metadata or {}
    charge_point = ChargePoint.objects.get(pk=int(meta["charge_point_id"]))
    connector_number = int(meta["connector_number"])
    tag = f"{GUEST_PREFIX}{payment.pk}"
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        sent = Command.objects.filter(
            charge_point=charge_point, action="RemoteStartTransaction", payload__idTag=tag
        ).first()
        if sent is not None:
            if sent.status in START_FAILED:
                # The start failed before and releasing the hold did not go through then.
                _release_guest_hold(payment, tag)
            return sent
        if locked.status == PaymentStatus.PENDING:
            locked.status = PaymentStatus.AUTHORIZED
            locked.amount_authorized = from_minor(intent.amount, locked.currency)
            locked.save(update_fields=["status", "amount_authorized", "updated_at"])
        # The token is the claim to send the start: whoever creates it (under the payment's
        # lock) sends; a webhook and the guest's polling page racing send one start.
        _, created = IdToken.objects.get_or_create(
            token=tag,
            defaults={"type": IdTokenType.APP, "status": IdTokenStatus.ACCEPTED, "label": locked.guest_email},
        )
        if not created:
            return None  # being sent by the other caller right now
    command = send_command(
        charge_point, "RemoteStartTransaction", {"connectorId": connector_number, "idTag": tag}
    )
    if command.status in START_FAILED:
        _release_guest_hold(payment, tag)
    payment.refresh_from_db()
    return command


def _release_guest_hold(payment: Payment, tag: str) -> None:
    """The charger did not start for the guest: nothing will be charged, so the hold on their
    card is released now rather than when Stripe lets it lapse days later. The guest's ID token
    is blocked first, so a charger that received the start after all (a timeout) is refused
    when it reports the session, rather than charging against a released hold."""
    IdToken.objects.filter(token=tag).update(status=IdTokenStatus.BLOCKED)
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status != PaymentStatus.AUTHORIZED or locked.transaction_id is not None:
            payment.refresh_from_db()
            return  # a session started after all, or already released
        provider_for(locked).cancel(locked)
    payment.refresh_from_db()


# --- Stripe webhooks ----------------------------------------------------------------------------


def handle_stripe_event(event: dict) -> bool:
    """Handle a verified Stripe event once: the ``StripeEvent`` row is written in the same
    transaction as the handling, so a replay (same event id) changes nothing. False for a
    replay."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                StripeEvent.objects.create(event_id=event["id"], type=event["type"], payload=event)
        except IntegrityError:
            return False
        kind = event["type"]
        obj = event["data"]["object"]
        if kind == "setup_intent.succeeded":
            _attach_from_setup_intent(obj)
        elif kind.startswith("payment_intent.") or kind == "charge.refunded":
            StripeProvider().handle_webhook(event)
            if kind in ("payment_intent.amount_capturable_updated", "payment_intent.succeeded"):
                guest = Payment.objects.filter(intent_id=obj.get("id"), transaction__isnull=True).exclude(
                    guest_email=""
                )
                for payment in guest:
                    from billing import tasks

                    transaction.on_commit(lambda pk=payment.pk: tasks.guest_start.delay(pk))
            if kind == "payment_intent.succeeded":
                paid = Payment.objects.filter(intent_id=obj.get("id")).exclude(user=None).first()
                if (
                    paid is not None
                    and not Payment.objects.filter(user_id=paid.user_id, status=PaymentStatus.FAILED).exists()
                ):
                    profile = BillingProfile.objects.filter(user_id=paid.user_id).first()
                    if profile is not None and profile.blocked_at is not None:
                        unblock(paid.user)
    return True


def _attach_from_setup_intent(obj: dict) -> None:
    method = obj.get("payment_method")
    customer = obj.get("customer")
    if not method or not customer:
        return
    profile = BillingProfile.objects.select_related("user").filter(stripe_customer_id=customer).first()
    if profile is None:
        return
    attach_payment_method(profile.user, method if isinstance(method, str) else method["id"])


# --- Session events -----------------------------------------------------------------------------
# Subscribed in ``BillingConfig.ready``: ``subscribe("session.started")(on_session_started)``
# and ``subscribe("session.stopped")(on_session_stopped)``.


def on_session_started(*, transaction_id: int, **_) -> None:
    from billing import tasks

    tasks.authorize_session.delay(transaction_id)


def on_session_stopped(*, transaction_id: int, **_) -> None:
    from billing import tasks

    tasks.settle_session.delay(transaction_id)
