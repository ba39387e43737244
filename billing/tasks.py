"""Billing work in Celery: thin wrappers around ``billing.services``; every task is safe to run
twice (a settled payment is left as it is; Stripe calls carry idempotency keys)."""

from __future__ import annotations

from celery import shared_task

from billing.models import Payment
from sessions.models import Transaction

from .services import payments


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def authorize_session(transaction_id: int) -> int | None:
    """The pre-authorisation of a session that just started."""
    tx = Transaction.objects.select_related("charge_point", "driver").get(pk=transaction_id)
    payment = payments.authorize_session(tx)
    return payment.pk if payment else None


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def settle_session(transaction_id: int) -> int | None:
    """Price a finished session and collect its cost (a declined card is retried by
    ``capture_retry``, not by this task's own autoretry, which covers crashes and outages)."""
    tx = Transaction.objects.select_related("charge_point", "driver").get(pk=transaction_id)
    payment = payments.settle_session(tx)
    return payment.pk if payment else None


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def capture_retry(payment_id: int) -> str:
    """Collect a session's cost again after a failure; the service schedules the next try or
    fails the payment and blocks the driver."""
    return payments.capture_retry(payment_id).status


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def guest_start(payment_id: int) -> str | None:
    """Start the charger for a guest whose payment Stripe holds."""
    command = payments.guest_start(Payment.objects.get(pk=payment_id))
    return command.status if command is not None else None


# Celery discovers billing.tasks only: the invoicing and report tasks are registered with it.
from billing import tasks_invoicing, tasks_reports  # noqa: E402, F401
