"""The driver's "Payment & invoices" page: cards, the block banner, invoices (their own only)
and what each session cost; and the QR codes operators print for guest payment."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.utils import timezone
from pypdf import PdfReader

from billing.models import (
    BillingProfile,
    ChargeLine,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    PaymentMethod,
    SessionCharge,
)
from tests.factories import IdTokenFactory
from tests.sessions.factories import TransactionFactory

pytestmark = pytest.mark.django_db

D = Decimal


def make_invoice(*, user, operator, number="VOLTWAY-000001", sequence=1, total=D("5.02")):
    invoice = Invoice.objects.create(
        operator=operator,
        kind=InvoiceKind.RECEIPT,
        number=number,
        sequence_number=sequence,
        issued_at=timezone.now(),
        user=user,
        seller={"name": operator.name, "legal_name": operator.name, "address": "1 Grid Street"},
        buyer={"name": user.get_full_name(), "email": user.email},
        currency="EUR",
        net=D("4.15"),
        tax=D("0.87"),
        total=total,
        paid_at=timezone.now(),
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        kind="energy",
        description="Energy 7.4 kWh",
        quantity=D("7.4"),
        unit="kWh",
        unit_price=D("0.56081"),
        net=D("4.15"),
        tax_rate=D("21"),
        tax=D("0.87"),
        total=total,
    )
    return invoice


def card(user, last4="4242", default=False, brand="visa"):
    return PaymentMethod.objects.create(
        user=user,
        stripe_id=f"pm_test_{user.pk}_{last4}",
        brand=brand,
        last4=last4,
        exp_month=4,
        exp_year=2031,
        is_default=default,
    )


def test_payment_page_shows_cards_invoices_and_what_sessions_cost(login, driver, operator, charge_point):
    card(driver, "4242", default=True)
    card(driver, "5555", brand="mastercard")
    make_invoice(user=driver, operator=operator)
    tx = TransactionFactory(
        stopped=True, charge_point=charge_point, id_token=IdTokenFactory(driver=driver), driver=driver
    )
    charge = SessionCharge.objects.create(
        transaction=tx, currency="EUR", net=D("4.15"), tax=D("0.87"), total=D("5.02"), energy_kwh=D("7.4")
    )
    ChargeLine.objects.create(
        charge=charge,
        kind="energy",
        description="Energy 7.4 kWh at 0.68 EUR",
        quantity=D("7.4"),
        unit="kWh",
        unit_price=D("0.56"),
        net=D("4.15"),
        tax_rate=D("21"),
        tax=D("0.87"),
        total=D("5.02"),
    )

    html = login(driver).get("/billing/").content.decode()

    assert "Payment &amp; invoices" in html
    assert "4242" in html and "5555" in html and "Default" in html
    assert "Make default" in html  # offered for the card that is not the default
    assert "VOLTWAY-000001" in html and "5.02 EUR" in html
    assert "Energy 7.4 kWh at 0.68 EUR" in html
    assert "VW-0001" in html
    assert "You cannot start charging" not in html


def test_other_drivers_cards_and_invoices_are_not_shown(login, driver, other_driver, operator):
    card(other_driver, "1881")
    make_invoice(user=other_driver, operator=operator, number="VOLTWAY-000042", sequence=42)

    html = login(driver).get("/billing/").content.decode()

    assert "1881" not in html and "VOLTWAY-000042" not in html
    assert "No saved card yet" in html and "No invoices yet" in html


def test_invoice_pdf_downloads_for_its_driver(login, driver, operator):
    invoice = make_invoice(user=driver, operator=operator)

    response = login(driver).get(f"/billing/invoices/{invoice.pk}/pdf/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert 'filename="VOLTWAY-000001.pdf"' in response["Content-Disposition"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "VOLTWAY-000001" in text


def test_another_drivers_invoice_is_404(login, driver, other_driver, operator):
    invoice = make_invoice(user=other_driver, operator=operator)

    assert login(driver).get(f"/billing/invoices/{invoice.pk}/pdf/").status_code == 404


def test_pages_need_a_signed_in_driver(client, login, operator_admin):
    assert client.get("/billing/").status_code == 302
    assert login(operator_admin).get("/billing/").status_code == 403


def test_blocked_driver_sees_why_and_pay_now(login, driver):
    BillingProfile.objects.create(
        user=driver, blocked_at=timezone.now(), blocked_reason="Your card was declined for 12.40 EUR."
    )

    html = login(driver).get("/billing/").content.decode()

    assert "You cannot start charging until you pay." in html
    assert "Your card was declined for 12.40 EUR." in html
    assert "Pay now" in html


def test_pay_now_with_nothing_owed_any_more_unblocks(login, driver):
    BillingProfile.objects.create(user=driver, blocked_at=timezone.now(), blocked_reason="Owed 3 EUR.")
    client = login(driver)

    response = client.post("/billing/pay-debt/", follow=True)

    assert "You can charge again" in response.content.decode()
    driver.billing.refresh_from_db()
    assert driver.billing.blocked_at is None
    assert "You cannot start charging" not in client.get("/billing/").content.decode()


def test_make_another_card_the_default(login, driver):
    first = card(driver, "4242", default=True)
    second = card(driver, "5555")

    response = login(driver).post(f"/billing/cards/{second.pk}/default/", follow=True)

    assert "5555 is now your default card" in response.content.decode()
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.is_default and not first.is_default


def test_another_drivers_card_cannot_be_touched(login, driver, other_driver):
    theirs = card(other_driver, "1881", default=False)
    client = login(driver)

    assert client.post(f"/billing/cards/{theirs.pk}/default/").status_code == 404
    assert client.post(f"/billing/cards/{theirs.pk}/remove/").status_code == 404
    theirs.refresh_from_db()
    assert not theirs.is_default


def test_remove_a_saved_card_detaches_it_at_stripe(localstripe, login, driver):
    from billing.services.payments import attach_payment_method
    from billing.stripe_client import client as stripe_client

    api = stripe_client().v1.payment_methods
    kept = attach_payment_method(driver, _stripe_card(api, "4242424242424242").id)
    other = attach_payment_method(driver, _stripe_card(api, "5555555555554444").id)
    assert kept.is_default and not other.is_default

    response = login(driver).post(f"/billing/cards/{kept.pk}/remove/", follow=True)

    assert "removed" in response.content.decode()
    assert not PaymentMethod.objects.filter(pk=kept.pk).exists()
    other.refresh_from_db()
    assert other.is_default  # the card left takes over
    assert api.retrieve(kept.stripe_id).customer is None


def _stripe_card(api, number):
    return api.create(
        {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )


# --- QR codes for operators -----------------------------------------------------------------


def test_operator_gets_a_connectors_qr_code_as_svg(login, operator_admin, charge_point, settings):
    settings.SITE_URL = "https://charge.voltway.example"

    response = login(operator_admin).get("/billing/qr/VW-0001/2.svg")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    svg = response.content.decode()
    assert "<svg" in svg and "VW-0001 #2" in svg


def test_qr_code_is_only_for_the_operators_own_connectors(
    client, login, other_operator_admin, driver, charge_point
):
    assert client.get("/billing/qr/VW-0001/1.svg").status_code == 302
    assert login(other_operator_admin).get("/billing/qr/VW-0001/1.svg").status_code == 404
    assert login(driver).get("/billing/qr/VW-0001/1.svg").status_code == 404


def test_qr_code_of_a_missing_connector_is_404(login, operator_admin, charge_point):
    assert login(operator_admin).get("/billing/qr/VW-0001/9.svg").status_code == 404


def test_invoice_list_keeps_newest_first(login, driver, operator):
    old = make_invoice(user=driver, operator=operator, number="VOLTWAY-000001", sequence=1)
    Invoice.objects.filter(pk=old.pk).update(issued_at=timezone.now() - dt.timedelta(days=40))
    make_invoice(user=driver, operator=operator, number="VOLTWAY-000002", sequence=2)

    html = login(driver).get("/billing/").content.decode()

    assert html.index("VOLTWAY-000002") < html.index("VOLTWAY-000001")


def test_payment_page_queries_do_not_grow_with_rows(
    login, driver, operator, charge_point, django_assert_max_num_queries
):
    client = login(driver)
    for n in range(5):
        card(driver, f"40{n:02d}")
        make_invoice(user=driver, operator=operator, number=f"VOLTWAY-{n + 1:06d}", sequence=n + 1)
        tx = TransactionFactory(stopped=True, charge_point=charge_point, driver=driver)
        charge = SessionCharge.objects.create(
            transaction=tx, currency="EUR", net=D("1"), tax=D("0.21"), total=D("1.21"), energy_kwh=D("2")
        )
        ChargeLine.objects.create(
            charge=charge,
            kind="energy",
            description="Energy",
            quantity=D("2"),
            unit="kWh",
            unit_price=D("0.5"),
            net=D("1"),
            tax_rate=D("21"),
            tax=D("0.21"),
            total=D("1.21"),
        )

    with django_assert_max_num_queries(8):
        assert client.get("/billing/").status_code == 200
