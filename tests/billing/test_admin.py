"""The Django admin of billing: every model's pages load; money records are read-only; an
issued invoice cannot be edited, only marked paid, emailed or credited through the services;
staff download its PDF."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from billing.invoicing import issue_monthly, issue_receipt
from billing.models import (
    AccountStatus,
    AccountToken,
    BillingAccount,
    BillingProfile,
    ChargeLine,
    CustomerGroup,
    Invoice,
    InvoiceKind,
    InvoiceSequence,
    Payment,
    PaymentMethod,
    PriceComponent,
    Refund,
    ReportJob,
    SessionCharge,
    StripeEvent,
    Tariff,
    TariffAssignment,
    TariffElement,
)
from sessions.models import IdTokenStatus
from tests.billing.test_invoicing import captured_payment, postpaid_account, priced_session
from tests.factories import IdTokenFactory

pytestmark = pytest.mark.django_db

MODELS = [
    CustomerGroup,
    Tariff,
    TariffElement,
    TariffAssignment,
    BillingProfile,
    PaymentMethod,
    BillingAccount,
    Payment,
    Refund,
    SessionCharge,
    InvoiceSequence,
    Invoice,
    StripeEvent,
    ReportJob,
]
READ_ONLY = [Payment, Refund, SessionCharge, Invoice, StripeEvent]


@pytest.fixture
def everything(operator, charge_point, driver):
    """A row of every billing model."""
    group = CustomerGroup.objects.create(operator=operator, name="Members")
    group.members.add(driver)
    tariff = Tariff.objects.create(operator=operator, name="Standard", tax_rate=Decimal("21"))
    element = TariffElement.objects.create(tariff=tariff, day_of_week=["MONDAY"])
    PriceComponent.objects.create(element=element, type="ENERGY", price=Decimal("0.35"), step_size=1)
    TariffAssignment.objects.create(tariff=tariff, operator=operator, charge_point=charge_point)
    BillingProfile.objects.create(user=driver, stripe_customer_id="cus_123")
    PaymentMethod.objects.create(user=driver, stripe_id="pm_123", brand="visa", last4="4242")
    tx = priced_session(charge_point=charge_point, id_token=IdTokenFactory(driver=driver))
    payment = captured_payment(tx, user=driver)
    Refund.objects.create(payment=payment, amount=Decimal("1.00"), reason="Goodwill")
    receipt = issue_receipt(payment)
    account, (card,) = postpaid_account(operator)
    priced_session(
        charge_point=charge_point, id_token=card, started_at=timezone.make_aware(dt.datetime(2026, 3, 2))
    )
    invoice = issue_monthly(account, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31))
    StripeEvent.objects.create(event_id="evt_123", type="payment_intent.succeeded", payload={"id": "evt_123"})
    ReportJob.objects.create(operator=operator, params={"period": "2026-03"})
    return {"receipt": receipt, "invoice": invoice, "account": account, "card": card, "tariff": tariff}


def _url(model, view, *args):
    return reverse(f"admin:billing_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_search_and_change_pages_load(admin_client, everything, model):
    assert admin_client.get(_url(model, "changelist")).status_code == 200
    assert admin_client.get(_url(model, "changelist"), {"q": "VW"}).status_code == 200
    obj = model.objects.first()
    assert admin_client.get(_url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m.__name__)
def test_money_records_cannot_be_added_or_changed(admin_client, everything, model):
    obj = model.objects.first()

    assert admin_client.get(_url(model, "add")).status_code == 403
    assert admin_client.post(_url(model, "change", obj.pk), {}).status_code == 403
    assert admin_client.post(_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()


def test_the_invoice_page_shows_its_lines_and_a_pdf_link(admin_client, everything):
    receipt = everything["receipt"]

    page = admin_client.get(_url(Invoice, "change", receipt.pk)).content.decode()

    assert "Energy 7.4 kWh" in page
    assert reverse("admin:billing_invoice_pdf", args=[receipt.pk]) in page
    assert f"{receipt.number}.pdf" in admin_client.get(_url(Invoice, "changelist")).content.decode()


def test_staff_download_the_pdf(admin_client, everything):
    receipt = everything["receipt"]

    response = admin_client.get(reverse("admin:billing_invoice_pdf", args=[receipt.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="{receipt.number}.pdf"' in response["Content-Disposition"]
    text = PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    assert receipt.number in text


def test_others_cannot_download_the_pdf(client, login, everything, driver):
    url = reverse("admin:billing_invoice_pdf", args=[everything["receipt"].pk])

    assert client.get(url).status_code == 302  # to the admin login
    response = login(driver).get(url)
    assert response.status_code == 302
    assert "application/pdf" not in response.get("Content-Type", "")


def test_mark_paid_action_unblocks_the_account(admin_client, everything):
    invoice, account, card = everything["invoice"], everything["account"], everything["card"]
    from billing.blocking import block_tokens
    from billing.models import BlockKind

    BillingAccount.objects.filter(pk=account.pk).update(status=AccountStatus.OVERDUE)
    block_tokens(type(card).objects.filter(pk=card.pk), kind=BlockKind.OVERDUE)

    admin_client.post(_url(Invoice, "changelist"), {"action": "mark_paid", "_selected_action": [invoice.pk]})

    invoice.refresh_from_db()
    account.refresh_from_db()
    card.refresh_from_db()
    assert invoice.paid_at is not None
    assert account.status == AccountStatus.ACTIVE
    assert card.status == IdTokenStatus.ACCEPTED


def test_credit_action_issues_a_credit_note_and_leaves_the_invoice(admin_client, everything, admin_user):
    receipt = everything["receipt"]

    admin_client.post(
        _url(Invoice, "changelist"), {"action": "credit_in_full", "_selected_action": [receipt.pk]}
    )

    note = Invoice.objects.get(kind=InvoiceKind.CREDIT_NOTE)
    assert note.corrects == receipt and note.total == -receipt.total
    assert admin_user.email in note.seller["note"]
    receipt.refresh_from_db()
    assert (
        receipt.lines.count()
        == ChargeLine.objects.filter(charge__transaction=receipt.payment.transaction).count()
    )


def test_email_action_sends_the_document(admin_client, everything, smtp_server):
    receipt = everything["receipt"]

    admin_client.post(_url(Invoice, "changelist"), {"action": "send_email", "_selected_action": [receipt.pk]})

    assert [message["To"] for message in smtp_server] == [receipt.buyer["email"]]


def test_an_account_gets_cards_in_the_admin(admin_client, operator):
    card = IdTokenFactory()
    form = {
        "operator": operator.pk,
        "name": "Fleet BV",
        "email": "fleet@example.com",
        "address": "",
        "vat_number": "",
        "payment_terms_days": 14,
        "accounttoken_set-TOTAL_FORMS": 1,
        "accounttoken_set-INITIAL_FORMS": 0,
        "accounttoken_set-0-id_token": card.pk,
    }

    response = admin_client.post(_url(BillingAccount, "add"), form)

    assert response.status_code == 302, response.content.decode()[:2000]
    account = BillingAccount.objects.get(name="Fleet BV")
    assert AccountToken.objects.get(account=account).id_token == card
    assert account.status == AccountStatus.ACTIVE


def test_the_sequence_counter_cannot_be_set_by_hand(admin_client, everything, operator):
    sequence = InvoiceSequence.objects.get(operator=operator)

    admin_client.post(_url(InvoiceSequence, "change", sequence.pk), {"prefix": "VW", "next_number": 1})

    sequence.refresh_from_db()
    assert sequence.prefix == "VW"
    assert sequence.next_number == 3
