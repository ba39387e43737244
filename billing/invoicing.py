"""Issuing invoices, receipts and credit notes (after pretix's invoices).

An issued document is frozen: the seller's and the buyer's details and every line are copied
onto it, never referenced, so a later change of the operator's address or of a tariff leaves
it as it was sent. A mistake is corrected by a credit note pointing at it, never by an edit.

Numbers come from one gap-free sequence per operator (credit notes share it). A number is
taken with the sequence row locked, inside the transaction that saves the document: a
rollback gives it back, and two workers issuing at once wait for each other.

A monthly invoice carries one line per session and line kind (energy, time, idle, fees,
adjustment), each copied from the session's priced lines with its own tax: the PDF shows
energy, time, idle and tax per session, and the totals are exactly the sum of the lines.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction as db
from django.db.models import Exists, OuterRef, Sum
from django.template.loader import render_to_string
from django.utils import timezone

from billing.models import (
    AccountToken,
    BillingAccount,
    ChargeLine,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceSequence,
    Payment,
    PaymentProvider,
    PaymentStatus,
    SessionCharge,
)
from config.events import publish
from stations.models import Operator

logger = logging.getLogger("chargedesk.billing")

ZERO = Decimal("0.00")
LINE_FIELDS = ("kind", "description", "quantity", "unit", "unit_price", "net", "tax_rate", "tax", "total")
DESCRIPTION_MAX = InvoiceLine._meta.get_field("description").max_length


class InvoicingError(Exception):
    """A document cannot be issued as asked (nothing captured, over-crediting, …)."""


# --- Numbers ----------------------------------------------------------------------------------


def next_number(operator: Operator) -> tuple[int, str]:
    """The operator's next invoice number and its text, e.g. ``(7, "VOLTWAY-2026-000007")``.

    Must run inside the transaction that saves the invoice: the sequence row stays locked
    until it commits (others wait), and a rollback returns the number, so the numbers that
    exist are 1, 2, 3, … without gaps."""
    if not db.get_connection().in_atomic_block:
        raise InvoicingError("next_number() must run inside the transaction that saves the invoice.")
    # get_or_create is race-safe here: a concurrent first insert fails on the one-to-one key
    # and the second lookup then waits for (and locks) the row the other worker created.
    sequence, _ = InvoiceSequence.objects.select_for_update().get_or_create(operator=operator)
    number = sequence.next_number
    InvoiceSequence.objects.filter(pk=sequence.pk).update(next_number=number + 1)
    prefix = sequence.prefix or operator.slug.upper()
    return number, f"{prefix}-{timezone.localdate().year}-{number:06d}"


# --- Frozen parties ---------------------------------------------------------------------------


def seller_details(operator: Operator) -> dict:
    return {
        "name": operator.name,
        "legal_name": operator.legal_name or operator.name,
        "address": operator.address,
        "country": operator.country,
        "vat_number": operator.vat_number,
        "email": operator.email,
        "phone": operator.phone,
    }


def _person(user) -> dict:
    return {
        "name": user.get_full_name() or user.email,
        "email": user.email,
        "address": "",
        "vat_number": "",
    }


def _account_details(account: BillingAccount) -> dict:
    return {
        "name": account.name,
        "email": account.email,
        "address": account.address,
        "vat_number": account.vat_number,
        "account_id": account.pk,
    }


# --- Issuing ----------------------------------------------------------------------------------


def _totals(lines: Iterable[dict]) -> tuple[Decimal, Decimal, Decimal]:
    net = tax = total = ZERO
    for line in lines:
        net += line["net"]
        tax += line["tax"]
        total += line["total"]
    return net, tax, total


def _issue(*, operator: Operator, kind: str, lines: list[dict], currency: str, **fields) -> Invoice:
    """Number and save a document with its lines; the caller holds the transaction."""
    sequence_number, number = next_number(operator)
    net, tax, total = _totals(lines)
    invoice = Invoice.objects.create(
        operator=operator,
        kind=kind,
        number=number,
        sequence_number=sequence_number,
        issued_at=fields.pop("issued_at", None) or timezone.now(),
        currency=currency,
        net=net,
        tax=tax,
        total=total,
        **fields,
    )
    InvoiceLine.objects.bulk_create(InvoiceLine(invoice=invoice, **line) for line in lines)
    publish(
        "billing.invoice_issued",
        invoice_id=invoice.pk,
        operator_id=operator.pk,
        kind=kind,
        user_id=invoice.user_id,
        account_id=invoice.account_id,
    )
    return invoice


def _copied(line: ChargeLine, *, transaction_id: int, prefix: str = "") -> dict:
    data = {name: getattr(line, name) for name in LINE_FIELDS}
    data["description"] = f"{prefix}{line.description}"[:DESCRIPTION_MAX]
    data["transaction_id"] = transaction_id
    return data


def issue_receipt(payment: Payment) -> Invoice:
    """The receipt of a captured card payment for one session (a driver's or a guest's).

    Once per payment: asked again (a re-delivered event, a retried task), it returns the
    receipt already issued. The lines are copies of the session's priced lines."""
    with db.atomic():
        # The payment row's lock makes "is there a receipt yet?" and the issue one step.
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("operator", "user")
            .get(pk=payment.pk)
        )
        existing = Invoice.objects.filter(payment=payment, kind=InvoiceKind.RECEIPT).first()
        if existing is not None:
            return existing
        if payment.provider != PaymentProvider.STRIPE or payment.amount_captured <= 0:
            raise InvoicingError(f"Payment {payment.pk} has nothing captured to give a receipt for.")
        if payment.status not in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED):
            raise InvoicingError(f"Payment {payment.pk} is {payment.status}, not captured.")
        charge = (
            SessionCharge.objects.filter(transaction_id=payment.transaction_id)
            .prefetch_related("lines")
            .first()
            if payment.transaction_id
            else None
        )
        if charge is None:
            raise InvoicingError(f"Payment {payment.pk} has no priced session to put on a receipt.")
        if payment.user is not None:
            buyer = _person(payment.user)
        else:
            buyer = {"name": "", "email": payment.guest_email, "address": "", "vat_number": ""}
        lines = [_copied(line, transaction_id=charge.transaction_id) for line in charge.lines.all()]
        return _issue(
            operator=payment.operator,
            kind=InvoiceKind.RECEIPT,
            lines=lines,
            currency=charge.currency,
            user=payment.user,
            payment=payment,
            seller=seller_details(payment.operator),
            buyer=buyer,
            # The capture is the payment's last change (Payment keeps no capture time of its own).
            paid_at=payment.updated_at,
        )


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def uninvoiced_charges(account: BillingAccount, *, period_start: dt.date, period_end: dt.date):
    """Priced sessions of the account's cards at its operator's stations, started within the
    period (both days included), not on any receipt or invoice yet and not paid by card."""
    # Correlated (NOT EXISTS on the indexed transaction column), not NOT IN over every line
    # ever invoiced: that grew with each invoice and made a month's run quadratic.
    on_documents = InvoiceLine.objects.filter(
        transaction_id=OuterRef("transaction_id"),
        invoice__kind__in=(InvoiceKind.RECEIPT, InvoiceKind.INVOICE),
    )
    # The account's cards first (a handful): the sessions are then found through the index on
    # their ID token, not by walking every session of the operator.
    cards = list(AccountToken.objects.filter(account=account).values_list("id_token_id", flat=True))
    return (
        SessionCharge.objects.filter(
            transaction__id_token_id__in=cards,
            transaction__charge_point__operator_id=account.operator_id,
            transaction__started_at__gte=_day_start(period_start),
            transaction__started_at__lt=_day_start(period_end + dt.timedelta(days=1)),
        )
        .exclude(Exists(on_documents))
        .exclude(transaction__payment__provider=PaymentProvider.STRIPE)
        .select_related("transaction__charge_point", "transaction__id_token")
        .prefetch_related("lines")
        .order_by("transaction__started_at", "transaction_id")
    )


def _session_prefix(charge: SessionCharge) -> str:
    tx = charge.transaction
    started = timezone.localtime(tx.started_at).strftime("%Y-%m-%d %H:%M")
    card = tx.id_token.token if tx.id_token else tx.id_tag
    return f"{started} {tx.charge_point.identity} #{tx.pk} ({card}): "


def issue_monthly(account: BillingAccount, *, period_start: dt.date, period_end: dt.date) -> Invoice | None:
    """The postpaid account's invoice for a period: every priced session of its cards not yet
    invoiced, one line per session and line kind. None when there is nothing to invoice.

    Safe to run twice or at once for the same account: the account row is locked and a
    session already on an invoice is left out."""
    if period_end < period_start:
        raise InvoicingError("The period ends before it starts.")
    with db.atomic():
        account = BillingAccount.objects.select_for_update().select_related("operator").get(pk=account.pk)
        charges = list(uninvoiced_charges(account, period_start=period_start, period_end=period_end))
        if not charges:
            return None
        currencies = {charge.currency for charge in charges}
        if len(currencies) > 1:
            raise InvoicingError(
                f"Account {account.pk} has sessions in several currencies ({', '.join(sorted(currencies))})."
            )
        lines = [
            _copied(line, transaction_id=charge.transaction_id, prefix=_session_prefix(charge))
            for charge in charges
            for line in charge.lines.all()
        ]
        issued_at = timezone.now()
        return _issue(
            operator=account.operator,
            kind=InvoiceKind.INVOICE,
            lines=lines,
            currency=currencies.pop(),
            issued_at=issued_at,
            due_at=issued_at + dt.timedelta(days=account.payment_terms_days),
            period_start=period_start,
            period_end=period_end,
            user=account.owner,
            account=account,
            seller=seller_details(account.operator),
            buyer=_account_details(account),
        )


def credited_total(invoice: Invoice) -> Decimal:
    """How much of the invoice its credit notes took back so far (a positive amount)."""
    credited = invoice.credit_notes.aggregate(total=Sum("total"))["total"] or ZERO
    return -credited


def credit(invoice: Invoice, *, reason: str, lines: Iterable[InvoiceLine | int] | None = None) -> Invoice:
    """A credit note correcting an issued invoice or receipt: all its lines by default, or the
    lines named (objects or ids), with negated quantities and amounts. The original stays as
    it was. The credit notes of one invoice never take back more than it was worth."""
    reason = (reason or "").strip()
    if not reason:
        raise InvoicingError("A credit note needs a reason.")
    with db.atomic():
        invoice = Invoice.objects.select_for_update().select_related("operator").get(pk=invoice.pk)
        if invoice.kind == InvoiceKind.CREDIT_NOTE:
            raise InvoicingError("A credit note cannot be credited; issue a new invoice instead.")
        originals = list(invoice.lines.all())
        if lines is not None:
            wanted = {line if isinstance(line, int) else line.pk for line in lines}
            unknown = wanted - {line.pk for line in originals}
            if unknown or not wanted:
                missing = sorted(unknown) or "(none)"
                raise InvoicingError(f"Lines {missing} are not lines of {invoice.number}.")
            originals = [line for line in originals if line.pk in wanted]
        credit_lines = []
        for line in originals:
            data = {name: getattr(line, name) for name in LINE_FIELDS}
            for name in ("quantity", "net", "tax", "total"):
                data[name] = -data[name]
            data["transaction_id"] = line.transaction_id
            credit_lines.append(data)
        amount = -_totals(credit_lines)[2]
        if credited_total(invoice) + amount > invoice.total:
            raise InvoicingError(f"{invoice.number} is credited already; this would take back too much.")
        seller = {**invoice.seller, "note": reason}
        return _issue(
            operator=invoice.operator,
            kind=InvoiceKind.CREDIT_NOTE,
            lines=credit_lines,
            currency=invoice.currency,
            corrects=invoice,
            user=invoice.user,
            account=invoice.account,
            payment=invoice.payment,
            period_start=invoice.period_start,
            period_end=invoice.period_end,
            seller=seller,
            buyer=invoice.buyer,
        )


# --- Email ------------------------------------------------------------------------------------


def filename(invoice: Invoice) -> str:
    return f"{invoice.number}.pdf"


def email_invoice(invoice: Invoice) -> None:
    """Send the document to the buyer with its PDF attached and note when. Sending again (a
    copy asked for) is allowed; the Celery task sends once (it checks ``emailed_at``)."""
    from billing import pdf

    to = (invoice.buyer or {}).get("email")
    if not to:
        raise InvoicingError(f"{invoice.number} has no buyer email address.")
    context = {
        "invoice": invoice,
        "kind": invoice.get_kind_display(),
        "seller": invoice.seller,
        "buyer": invoice.buyer,
        "lines": list(invoice.lines.all()),
        "corrects": invoice.corrects,
    }
    subject = f"{context['kind']} {invoice.number} from {invoice.seller.get('name') or invoice.operator.name}"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("billing/email/invoice.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        reply_to=[invoice.seller["email"]] if invoice.seller.get("email") else None,
    )
    message.attach_alternative(render_to_string("billing/email/invoice.html", context), "text/html")
    message.attach(filename(invoice), pdf.render(invoice), "application/pdf")
    message.send()
    emailed_at = timezone.now()
    Invoice.objects.filter(pk=invoice.pk).update(emailed_at=emailed_at)
    invoice.emailed_at = emailed_at
