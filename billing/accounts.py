"""Postpaid accounts (RFID cards on account): their monthly statements, and the block on their
cards while an invoice is overdue.

Blocking is the ID token's own status (Blocked), so every way a charger asks (Authorize,
StartTransaction, the local list) gives the same answer. Payment of the last overdue invoice
lifts the block. Every function here is a sweep that is safe to run twice.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction as db
from django.db.models import DecimalField, F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.blocking import block_tokens, unblock_tokens
from billing.models import AccountStatus, BillingAccount, BlockKind, Invoice, InvoiceKind
from sessions.models import IdToken

logger = logging.getLogger("chargedesk.billing")


def _overdue_invoices(now: dt.datetime) -> QuerySet[Invoice]:
    """Unpaid invoices past their due date and the grace days, not fully credited."""
    cutoff = now - dt.timedelta(days=settings.BILLING_OVERDUE_GRACE_DAYS)
    credited = (
        Invoice.objects.filter(corrects=OuterRef("pk"))
        .order_by()
        .values("corrects")
        .annotate(total=Sum("total"))
        .values("total")
    )
    return (
        Invoice.objects.filter(
            kind=InvoiceKind.INVOICE, account__isnull=False, paid_at__isnull=True, due_at__lt=cutoff
        )
        .annotate(
            credited=Coalesce(
                Subquery(credited, output_field=DecimalField(max_digits=14, decimal_places=2)),
                Value(0, output_field=DecimalField(max_digits=14, decimal_places=2)),
            )
        )
        # Credit notes carry negative totals: what is still owed is total + credited.
        .filter(total__gt=-F("credited"))
    )


def overdue_accounts(now: dt.datetime) -> QuerySet[BillingAccount]:
    """Accounts (not closed) with an invoice unpaid past its due date and the grace days."""
    return BillingAccount.objects.filter(
        pk__in=_overdue_invoices(now).values("account_id"),
    ).exclude(status=AccountStatus.CLOSED)


def _tokens(account: BillingAccount) -> QuerySet[IdToken]:
    return IdToken.objects.filter(account_link__account=account)


def block_overdue(now: dt.datetime | None = None) -> int:
    """Put overdue accounts in OVERDUE and block their cards; the number of accounts newly
    blocked. Cards added to an already overdue account are blocked too."""
    now = now or timezone.now()
    blocked = 0
    for account_id in overdue_accounts(now).values_list("pk", flat=True):
        with db.atomic():
            account = BillingAccount.objects.select_for_update().get(pk=account_id)
            if account.status == AccountStatus.ACTIVE:
                account.status = AccountStatus.OVERDUE
                account.save(update_fields=["status"])
                blocked += 1
                logger.info("account %s overdue: its cards are blocked", account.pk)
            # Only accepted cards, remembered: a card blocked for another reason (lost, stolen)
            # stays so when the account is settled.
            block_tokens(_tokens(account), kind=BlockKind.OVERDUE)
    return blocked


def unblock_if_settled(account: BillingAccount, *, now: dt.datetime | None = None) -> bool:
    """An OVERDUE account with nothing overdue any more: ACTIVE again, its cards accepted."""
    now = now or timezone.now()
    with db.atomic():
        account = BillingAccount.objects.select_for_update().get(pk=account.pk)
        if account.status != AccountStatus.OVERDUE:
            return False
        if _overdue_invoices(now).filter(account=account).exists():
            return False
        account.status = AccountStatus.ACTIVE
        account.save(update_fields=["status"])
        unblock_tokens(_tokens(account), kind=BlockKind.OVERDUE)
    logger.info("account %s settled: its cards are accepted again", account.pk)
    return True


def mark_paid(invoice: Invoice, *, paid_at: dt.datetime | None = None) -> Invoice:
    """Record the payment of an invoice (a bank transfer seen, a card charge made); once the
    account owes nothing overdue, its cards work again. Paying twice keeps the first date."""
    if invoice.kind == InvoiceKind.CREDIT_NOTE:
        raise ValueError("A credit note is not paid; refund it instead.")
    with db.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.paid_at is None:
            # The payment status is not part of the frozen document: only this field changes.
            invoice.paid_at = paid_at or timezone.now()
            Invoice.objects.filter(pk=invoice.pk).update(paid_at=invoice.paid_at)
        if invoice.account_id:
            unblock_if_settled(invoice.account)
    return invoice


def previous_month(today: dt.date) -> tuple[dt.date, dt.date]:
    last = today.replace(day=1) - dt.timedelta(days=1)
    return last.replace(day=1), last


def run_monthly(today: dt.date | None = None) -> int:
    """Issue the previous calendar month's invoice of every account that is not closed; the
    number issued. Run again (the same day or later in the month) it issues only for
    sessions priced since, so a late session still lands on an invoice of its month."""
    from billing.invoicing import issue_monthly

    today = today or timezone.localdate()
    period_start, period_end = previous_month(today)
    issued = 0
    failed = []
    for account in BillingAccount.objects.exclude(status=AccountStatus.CLOSED).order_by("pk"):
        try:
            if issue_monthly(account, period_start=period_start, period_end=period_end) is not None:
                issued += 1
        except Exception:
            logger.exception("monthly invoice of account %s failed", account.pk)
            failed.append(account.pk)
    if failed:
        # The others are issued; a retry of the whole run only adds what is still missing.
        raise RuntimeError(f"monthly invoices failed for accounts {failed} ({issued} issued)")
    return issued
