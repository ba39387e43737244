"""Celery work of invoicing: the monthly invoices of postpaid accounts, the overdue check, and
the receipt of a captured payment. Every task is safe to run twice: documents are issued once
per payment or session, and an email goes out once per document (``emailed_at``)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

logger = logging.getLogger("chargedesk.billing")

RETRY = {"acks_late": True, "autoretry_for": (Exception,), "retry_backoff": True, "max_retries": 5}


@shared_task(**RETRY)
def send_invoice(invoice_id: int) -> bool:
    """Email a document to its buyer unless it went out already; False when it had."""
    from billing.invoicing import email_invoice
    from billing.models import Invoice

    invoice = Invoice.objects.select_related("operator", "corrects").get(pk=invoice_id)
    if invoice.emailed_at is not None or not (invoice.buyer or {}).get("email"):
        return False
    email_invoice(invoice)
    return True


@shared_task(**RETRY)
def issue_receipt_for_payment(payment_id: int) -> int:
    """The receipt of a captured payment, then its email; the receipt's id."""
    from billing.invoicing import issue_receipt
    from billing.models import Payment

    receipt = issue_receipt(Payment.objects.get(pk=payment_id))
    send_invoice.delay(receipt.pk)
    return receipt.pk


@shared_task(**RETRY)
def issue_monthly_invoices(today: str | None = None) -> int:
    """Daily (beat); issues the previous month's invoices (on the 1st, and afterwards only for
    sessions priced late), then emails every monthly invoice not sent yet."""
    import datetime as dt

    from billing.accounts import run_monthly
    from billing.models import Invoice, InvoiceKind

    day = dt.date.fromisoformat(today) if today else timezone.localdate()
    issued = run_monthly(day)
    unsent = Invoice.objects.filter(
        kind=InvoiceKind.INVOICE,
        account__isnull=False,
        emailed_at__isnull=True,
    ).values_list("pk", flat=True)
    for invoice_id in unsent:
        send_invoice.delay(invoice_id)
    return issued


@shared_task(**RETRY)
def block_overdue_accounts() -> int:
    """Daily (beat): block the cards of accounts with an invoice overdue past the grace days."""
    from billing.accounts import block_overdue

    return block_overdue(timezone.now())
