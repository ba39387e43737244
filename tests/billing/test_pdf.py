"""The PDF of a document, read back as text: parties, number, dates, every line with its tax,
the totals with the currency, the payment status, and a credit note's wording."""

import datetime as dt
import io

import pytest
from django.utils import timezone
from pypdf import PdfReader

from billing import pdf
from billing.accounts import mark_paid
from billing.invoicing import credit, issue_monthly, issue_receipt
from tests.billing.test_invoicing import captured_payment, postpaid_account, priced_session
from tests.factories import IdTokenFactory

pytestmark = pytest.mark.django_db


def text_of(document) -> str:
    """The words of every page, one space apart (pypdf puts each table cell on a line)."""
    reader = PdfReader(io.BytesIO(pdf.render(document)))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


@pytest.fixture
def operator_details(operator):
    operator.legal_name = "Voltway Charging B.V."
    operator.vat_number = "NL123456789B01"
    operator.address = "Stationsplein 1, 1012 AB Amsterdam"
    operator.email = "billing@voltway.example"
    operator.country = "NL"
    operator.save()
    return operator


@pytest.fixture
def receipt(operator_details, charge_point, driver):
    driver.first_name, driver.last_name = "Alice", "Adams"
    driver.save()
    tx = priced_session(charge_point=charge_point, id_token=IdTokenFactory(driver=driver))
    return issue_receipt(captured_payment(tx, user=driver))


def test_the_receipt_pdf_shows_parties_lines_and_totals(receipt):
    text = text_of(receipt)

    assert "Receipt " + receipt.number in text
    for expected in (
        "Voltway Charging B.V.",
        "Stationsplein 1, 1012 AB Amsterdam",
        "VAT number: NL123456789B01",
        "Alice Adams",
        "alice@example.com",
        f"Issued: {timezone.localdate(receipt.issued_at):%Y-%m-%d}",
    ):
        assert expected in text
    assert "Description Qty Unit Unit price Net Tax % Tax Total" in text
    # One row per line: description, quantity, unit, unit price, net, tax rate, tax, total.
    assert "Energy 7.4 kWh 7.40 kWh 0.28926 2.14 21.00 0.45 2.59" in text
    assert "Charging time 1 h 1.00 h 1.00 1.00 21.00 0.21 1.21" in text
    assert "Idle fee 0.25 h 0.25 h 2.00 0.50 21.00 0.11 0.61" in text
    assert "Session fee 1.00 session 0.50 0.50 21.00 0.11 0.61" in text
    assert "Net 4.14 EUR" in text
    assert "Tax 0.88 EUR" in text
    assert "Total 5.02 EUR" in text
    assert f"Paid on {timezone.localdate(receipt.paid_at):%Y-%m-%d}" in text


def test_the_credit_note_pdf_says_what_it_corrects_and_why(receipt):
    note = credit(receipt, reason="Charger fault")

    text = text_of(note)

    assert "Credit note " + note.number in text
    assert f"Corrects: {receipt.number}" in text
    assert "Reason: Charger fault" in text
    assert "Total -5.02 EUR" in text
    assert "-2.59" in text
    assert "credited to you" in text


def test_an_unpaid_monthly_invoice_shows_the_due_date_then_paid(operator_details, charge_point):
    account, (card,) = postpaid_account(operator_details, payment_terms_days=14)
    for day in (3, 4):
        started = timezone.make_aware(dt.datetime(2026, 3, day, 8, 0))
        priced_session(charge_point=charge_point, id_token=card, started_at=started)
    invoice = issue_monthly(account, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31))

    text = text_of(invoice)
    assert "Invoice " + invoice.number in text
    assert "Acme Fleet BV" in text
    assert "Period: 2026-03-01 to 2026-03-31" in text
    due = f"{timezone.localdate(invoice.due_at):%Y-%m-%d}"
    assert f"Due: {due}" in text
    assert f"please pay 10.04 EUR by {due}" in text
    assert text.count("Energy 7.4 kWh") == 2
    assert "Total 10.04 EUR" in text

    paid = mark_paid(invoice)
    assert f"Paid on {timezone.localdate(paid.paid_at):%Y-%m-%d}" in text_of(paid)


def test_a_long_invoice_continues_on_more_pages(operator_details, charge_point):
    account, (card,) = postpaid_account(operator_details)
    for hour in range(40):
        started = timezone.make_aware(dt.datetime(2026, 3, 1, 0, 0)) + dt.timedelta(hours=hour)
        priced_session(charge_point=charge_point, id_token=card, started_at=started)
    invoice = issue_monthly(account, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31))

    reader = PdfReader(io.BytesIO(pdf.render(invoice)))

    assert len(reader.pages) > 1
    assert "Total 200.80 EUR" in " ".join(reader.pages[-1].extract_text().split())
    assert f"{invoice.number}, page 2" in reader.pages[1].extract_text()


def test_the_same_document_renders_the_same(receipt):
    assert pdf.render(receipt) == pdf.render(receipt)


def test_names_beyond_latin_1_print(operator_details, charge_point, driver):
    if pdf.fonts()[0] == "Helvetica":
        pytest.skip("needs DejaVu Sans (apt-get install fonts-dejavu-core); Helvetica is Latin-1 only")
    driver.first_name, driver.last_name = "Łukasz", "Żółć <&>"
    driver.save()
    receipt = issue_receipt(captured_payment(priced_session(charge_point=charge_point), user=driver))

    assert "Łukasz Żółć <&>" in text_of(receipt)
