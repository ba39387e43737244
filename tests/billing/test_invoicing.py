"""Invoices, receipts and credit notes: what is issued is a frozen copy of the priced session,
issued once, numbered without gaps, and corrected only by credit notes.

The priced sessions here are built as rows (SessionCharge and its lines), the shape
``billing.services.charges.price_session`` stores, so these tests do not depend on a tariff.
"""

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from pypdf import PdfReader

from billing import invoicing
from billing.invoicing import InvoicingError, credit, issue_monthly, issue_receipt
from billing.models import (
    AccountToken,
    BillingAccount,
    ChargeLine,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    Payment,
    PaymentProvider,
    PaymentStatus,
    SessionCharge,
)
from tests.factories import IdTokenFactory
from tests.sessions.factories import TransactionFactory

pytestmark = pytest.mark.django_db

D = Decimal
# (kind, description, quantity, unit, unit_price, net, tax_rate, tax, total)
LINES = [
    ("energy", "Energy 7.4 kWh", D("7.4"), "kWh", D("0.28926"), D("2.14"), D("21"), D("0.45"), D("2.59")),
    ("time", "Charging time 1 h", D("1"), "h", D("1.00000"), D("1.00"), D("21"), D("0.21"), D("1.21")),
    ("idle", "Idle fee 0.25 h", D("0.25"), "h", D("2.00000"), D("0.50"), D("21"), D("0.11"), D("0.61")),
    ("flat", "Session fee", D("1"), "session", D("0.50000"), D("0.50"), D("21"), D("0.11"), D("0.61")),
]
NET, TAX, TOTAL = D("4.14"), D("0.88"), D("5.02")
_intents = itertools.count(1)


def priced_session(*, charge_point, id_token=None, started_at=None, lines=LINES, currency="EUR"):
    """A completed session and its priced lines, as pricing stores them."""
    extra = {"id_token": id_token} if id_token is not None else {}
    tx = TransactionFactory(
        stopped=True,
        charge_point=charge_point,
        started_at=started_at or timezone.now() - dt.timedelta(hours=3),
        **extra,
    )
    charge = SessionCharge.objects.create(
        transaction=tx,
        currency=currency,
        net=sum((line[5] for line in lines), D("0")),
        tax=sum((line[7] for line in lines), D("0")),
        total=sum((line[8] for line in lines), D("0")),
        energy_kwh=D("7.4"),
    )
    names = ("kind", "description", "quantity", "unit", "unit_price", "net", "tax_rate", "tax", "total")
    ChargeLine.objects.bulk_create(ChargeLine(charge=charge, **dict(zip(names, line))) for line in lines)
    return tx


def captured_payment(tx, *, user=None, guest_email="", amount=TOTAL):
    return Payment.objects.create(
        operator=tx.charge_point.operator,
        transaction=tx,
        user=user,
        guest_email=guest_email,
        provider=PaymentProvider.STRIPE,
        intent_id=f"pi_test_{next(_intents)}",
        status=PaymentStatus.CAPTURED,
        currency="EUR",
        amount_authorized=D("50.00"),
        amount_captured=amount,
    )


def postpaid_account(operator, *, cards=1, **fields):
    account = BillingAccount.objects.create(
        operator=operator, name=fields.pop("name", "Acme Fleet BV"), email="billing@acme.example", **fields
    )
    tokens = [IdTokenFactory() for _ in range(cards)]
    for token in tokens:
        AccountToken.objects.create(account=account, id_token=token)
    return account, tokens


def line_values(invoice):
    return [
        (line.kind, line.quantity, line.unit_price, line.net, line.tax_rate, line.tax, line.total)
        for line in invoice.lines.order_by("pk")
    ]


@pytest.fixture
def paid_session(operator, charge_point, driver):
    operator.legal_name = "Voltway Charging B.V."
    operator.vat_number = "NL123456789B01"
    operator.address = "Stationsplein 1, 1012 AB Amsterdam"
    operator.country = "NL"
    operator.save()
    tx = priced_session(charge_point=charge_point, id_token=IdTokenFactory(driver=driver))
    return tx, captured_payment(tx, user=driver)


# --- Receipts ---------------------------------------------------------------------------------


def test_receipt_lines_and_totals_equal_the_charge(paid_session, driver):
    tx, payment = paid_session

    receipt = issue_receipt(payment)

    assert receipt.kind == InvoiceKind.RECEIPT
    assert (receipt.net, receipt.tax, receipt.total, receipt.currency) == (NET, TAX, TOTAL, "EUR")
    expected = [
        (c.kind, c.quantity, c.unit_price, c.net, c.tax_rate, c.tax, c.total) for c in tx.charge.lines.all()
    ]
    assert line_values(receipt) == expected
    assert set(receipt.lines.values_list("transaction_id", flat=True)) == {tx.pk}
    assert receipt.seller["legal_name"] == "Voltway Charging B.V."
    assert receipt.seller["vat_number"] == "NL123456789B01"
    assert receipt.buyer["email"] == driver.email
    assert receipt.user == driver and receipt.payment == payment
    assert receipt.paid_at is not None
    assert (receipt.sequence_number, receipt.number) == (1, f"VOLTWAY-{timezone.localdate().year}-000001")


def test_receipt_is_issued_once_per_payment(paid_session):
    _, payment = paid_session

    first = issue_receipt(payment)
    again = issue_receipt(payment)

    assert again.pk == first.pk
    assert Invoice.objects.count() == 1
    assert invoicing.InvoiceSequence.objects.get().next_number == 2


def test_a_guest_gets_a_receipt_at_their_email(charge_point):
    tx = priced_session(charge_point=charge_point)
    payment = captured_payment(tx, guest_email="guest@example.net")

    receipt = issue_receipt(payment)

    assert receipt.buyer["email"] == "guest@example.net"
    assert receipt.user is None
    assert receipt.total == TOTAL


def test_no_receipt_for_a_payment_not_captured(paid_session):
    _, payment = paid_session
    Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.AUTHORIZED, amount_captured=0)

    with pytest.raises(InvoicingError):
        issue_receipt(payment)
    assert not Invoice.objects.exists()


def test_a_later_change_of_the_operator_leaves_the_receipt_as_issued(paid_session, operator):
    _, payment = paid_session
    receipt = issue_receipt(payment)

    operator.legal_name = "Someone Else Ltd"
    operator.address = "Elsewhere 2"
    operator.save()
    ChargeLine.objects.filter(charge__transaction=payment.transaction).update(total=D("99.99"))

    receipt = Invoice.objects.get(pk=receipt.pk)
    assert receipt.seller["legal_name"] == "Voltway Charging B.V."
    assert receipt.total == TOTAL
    assert D("99.99") not in [line.total for line in receipt.lines.all()]


# --- Credit notes -----------------------------------------------------------------------------


def test_an_issued_invoice_is_corrected_by_a_credit_note_not_changed(paid_session):
    _, payment = paid_session
    receipt = issue_receipt(payment)
    before = line_values(receipt)

    note = credit(receipt, reason="Charger fault: session refunded")

    receipt.refresh_from_db()
    assert line_values(receipt) == before
    assert receipt.total == TOTAL
    assert note.kind == InvoiceKind.CREDIT_NOTE
    assert note.corrects == receipt
    assert (note.net, note.tax, note.total) == (-NET, -TAX, -TOTAL)
    assert [line.total for line in note.lines.order_by("pk")] == [-row[8] for row in LINES]
    assert note.sequence_number == receipt.sequence_number + 1
    assert note.seller["note"] == "Charger fault: session refunded"
    assert note.buyer == receipt.buyer


def test_a_credit_note_for_some_lines(paid_session):
    _, payment = paid_session
    receipt = issue_receipt(payment)
    idle = receipt.lines.get(kind="idle")

    note = credit(receipt, reason="Idle fee waived", lines=[idle])

    assert note.total == D("-0.61")
    assert list(note.lines.values_list("kind", flat=True)) == ["idle"]


def test_credit_notes_never_take_back_more_than_the_invoice(paid_session):
    _, payment = paid_session
    receipt = issue_receipt(payment)
    credit(receipt, reason="Idle fee waived", lines=[receipt.lines.get(kind="idle")])

    with pytest.raises(InvoicingError):
        credit(receipt, reason="Cancel all")
    assert Invoice.objects.filter(kind=InvoiceKind.CREDIT_NOTE).count() == 1


def test_a_credit_note_is_not_credited_again_and_needs_a_reason(paid_session):
    _, payment = paid_session
    receipt = issue_receipt(payment)
    with pytest.raises(InvoicingError):
        credit(receipt, reason="  ")
    note = credit(receipt, reason="Cancel")

    with pytest.raises(InvoicingError):
        credit(note, reason="Undo")


def test_lines_of_another_invoice_cannot_be_credited(paid_session, charge_point, driver):
    _, payment = paid_session
    receipt = issue_receipt(payment)
    other = issue_receipt(captured_payment(priced_session(charge_point=charge_point), user=driver))

    with pytest.raises(InvoicingError):
        credit(receipt, reason="Wrong", lines=[other.lines.first()])


# --- Monthly invoices -------------------------------------------------------------------------


def test_a_postpaid_rfid_session_lands_on_the_monthly_invoice_once(operator, charge_point):
    account, (card,) = postpaid_account(operator, payment_terms_days=30)
    march = timezone.make_aware(dt.datetime(2026, 3, 10, 18, 0))
    tx = priced_session(charge_point=charge_point, id_token=card, started_at=march)

    invoice = issue_monthly(account, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31))

    assert invoice.kind == InvoiceKind.INVOICE
    assert (invoice.net, invoice.tax, invoice.total) == (NET, TAX, TOTAL)
    assert set(invoice.lines.values_list("transaction_id", flat=True)) == {tx.pk}
    assert sorted(invoice.lines.values_list("kind", flat=True)) == sorted(row[0] for row in LINES)
    assert all(f"#{tx.pk}" in line.description for line in invoice.lines.all())
    assert invoice.due_at == invoice.issued_at + dt.timedelta(days=30)
    assert (invoice.period_start, invoice.period_end) == (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    assert invoice.buyer["name"] == "Acme Fleet BV" and invoice.account == account
    assert invoice.paid_at is None

    again = issue_monthly(account, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31))
    assert again is None
    assert InvoiceLine.objects.filter(transaction=tx).count() == len(LINES)


def test_the_monthly_invoice_takes_only_the_accounts_sessions_in_the_period(operator, charge_point, driver):
    account, (card, second_card) = postpaid_account(operator, cards=2)
    _, (other_card,) = postpaid_account(operator, name="Other BV")
    at = timezone.make_aware(dt.datetime(2026, 3, 31, 23, 30))
    mine = [
        priced_session(charge_point=charge_point, id_token=card, started_at=at),
        priced_session(
            charge_point=charge_point, id_token=second_card, started_at=at - dt.timedelta(days=30)
        ),
    ]
    priced_session(charge_point=charge_point, id_token=card, started_at=at + dt.timedelta(hours=1))  # April
    priced_session(charge_point=charge_point, id_token=other_card, started_at=at)  # another account
    by_card = priced_session(charge_point=charge_point, id_token=card, started_at=at - dt.timedelta(days=1))
    captured_payment(by_card, user=driver)  # paid by card: it gets a receipt instead

    invoice = issue_monthly(account, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31))

    assert set(invoice.lines.values_list("transaction_id", flat=True)) == {tx.pk for tx in mine}
    assert invoice.total == 2 * TOTAL
    assert invoice.total == sum(line.total for line in invoice.lines.all())


def test_nothing_to_invoice_gives_none_and_uses_no_number(operator):
    account, _ = postpaid_account(operator)

    assert issue_monthly(account, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31)) is None
    assert not Invoice.objects.exists()


def test_a_session_on_a_credited_invoice_is_not_invoiced_again(operator, charge_point):
    account, (card,) = postpaid_account(operator)
    priced_session(
        charge_point=charge_point, id_token=card, started_at=timezone.make_aware(dt.datetime(2026, 3, 2))
    )
    march = {"period_start": dt.date(2026, 3, 1), "period_end": dt.date(2026, 3, 31)}
    invoice = issue_monthly(account, **march)
    credit(invoice, reason="Disputed")

    assert issue_monthly(account, **march) is None


# --- Numbers ----------------------------------------------------------------------------------


def test_numbers_follow_each_other_per_operator(
    operator, other_operator, charge_point, other_charge_point, driver
):
    ours = [
        issue_receipt(captured_payment(priced_session(charge_point=charge_point), user=driver))
        for _ in range(3)
    ]
    theirs = issue_receipt(captured_payment(priced_session(charge_point=other_charge_point), user=driver))

    assert [invoice.sequence_number for invoice in ours] == [1, 2, 3]
    assert theirs.sequence_number == 1 and theirs.number.startswith("NORTHGRID-")


@pytest.mark.django_db(transaction=True)
def test_next_number_only_inside_a_transaction(operator):
    with pytest.raises(InvoicingError):
        invoicing.next_number(operator)


def test_a_rolled_back_number_is_given_again(operator):
    with pytest.raises(RuntimeError), transaction.atomic():
        assert invoicing.next_number(operator)[0] == 1
        raise RuntimeError("the invoice could not be saved")

    with transaction.atomic():
        assert invoicing.next_number(operator)[0] == 1


def test_the_prefix_of_the_sequence_is_used(operator):
    with transaction.atomic():
        invoicing.next_number(operator)
    invoicing.InvoiceSequence.objects.filter(operator=operator).update(prefix="VW")

    with transaction.atomic():
        assert invoicing.next_number(operator) == (2, f"VW-{timezone.localdate().year}-000002")


# --- Email, events, tasks ---------------------------------------------------------------------


def test_the_receipt_is_emailed_with_its_pdf(smtp_server, paid_session, driver):
    _, payment = paid_session
    receipt = issue_receipt(payment)

    invoicing.email_invoice(receipt)

    (message,) = smtp_server
    assert message["To"] == driver.email
    assert receipt.number in message["Subject"]
    attachments = list(message.iter_attachments())
    assert [part.get_filename() for part in attachments] == [f"{receipt.number}.pdf"]
    assert attachments[0].get_content_type() == "application/pdf"
    import io

    text = PdfReader(io.BytesIO(attachments[0].get_content())).pages[0].extract_text()
    assert receipt.number in text and "5.02 EUR" in text
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "Total: 5.02 EUR" in body
    receipt.refresh_from_db()
    assert receipt.emailed_at is not None


def test_a_captured_payment_event_issues_and_emails_the_receipt_once(
    smtp_server, paid_session, django_capture_on_commit_callbacks
):
    from billing.subscribers_invoicing import register
    from config.events import publish

    register()
    _, payment = paid_session
    for _ in range(2):  # the event delivered twice
        with django_capture_on_commit_callbacks(execute=True):
            publish("billing.payment_captured", payment_id=payment.pk)

    receipt = Invoice.objects.get(payment=payment)
    assert receipt.kind == InvoiceKind.RECEIPT and receipt.emailed_at is not None
    assert len(smtp_server) == 1


def test_email_needs_a_buyer_address(charge_point):
    payment = captured_payment(priced_session(charge_point=charge_point), guest_email="")
    receipt = issue_receipt(payment)

    with pytest.raises(InvoicingError):
        invoicing.email_invoice(receipt)


def test_the_monthly_task_issues_and_emails_last_months_invoices(smtp_server, operator, charge_point):
    from billing.tasks_invoicing import issue_monthly_invoices

    account, (card,) = postpaid_account(operator)
    priced_session(
        charge_point=charge_point, id_token=card, started_at=timezone.make_aware(dt.datetime(2026, 3, 5))
    )

    assert issue_monthly_invoices.delay("2026-04-01").get() == 1
    assert issue_monthly_invoices.delay("2026-04-02").get() == 0

    invoice = Invoice.objects.get(account=account)
    assert invoice.emailed_at is not None
    assert [message["To"] for message in smtp_server] == ["billing@acme.example"]
