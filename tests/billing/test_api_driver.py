"""The billing API: a driver's saved cards (against localstripe), invoices and standing, and
the operators' invoices and refunds. Everyone sees only their own."""

from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import (
    BillingProfile,
    Payment,
    PaymentMethod,
    PaymentProvider,
    PaymentStatus,
    Refund,
)
from tests.billing.test_pages import card, make_invoice
from tests.factories import OperatorFactory

pytestmark = pytest.mark.django_db


def _stripe_card(number="4242424242424242"):
    from billing.stripe_client import client

    return client().v1.payment_methods.create(
        {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )


# --- Payment methods ------------------------------------------------------------------------


def test_driver_saves_a_card_through_the_api(localstripe, api_as, driver):
    api = api_as(driver)

    setup = api.post("/api/v1/me/payment-methods/setup-intent/")
    assert setup.status_code == 201
    assert setup.json()["client_secret"].startswith("seti_")

    created = api.post("/api/v1/me/payment-methods/", {"payment_method": _stripe_card().id})
    assert created.status_code == 201
    assert created.json()["brand"] == "visa"
    assert created.json()["last4"] == "4242"
    assert created.json()["is_default"] is True

    listed = api.get("/api/v1/me/payment-methods/").json()
    assert [m["last4"] for m in listed["results"]] == ["4242"]


def test_attach_refuses_what_is_not_a_payment_method_id(api_as, driver):
    response = api_as(driver).post("/api/v1/me/payment-methods/", {"payment_method": "tok_visa"})

    assert response.status_code == 400
    assert "payment_method" in response.json()


def test_driver_removes_a_card(localstripe, api_as, driver):
    from billing.services.payments import attach_payment_method

    saved = attach_payment_method(driver, _stripe_card().id)

    response = api_as(driver).delete(f"/api/v1/me/payment-methods/{saved.pk}/")

    assert response.status_code == 204
    assert not PaymentMethod.objects.filter(pk=saved.pk).exists()


def test_driver_makes_a_card_the_default(api_as, driver):
    card(driver, "4242", default=True)
    second = card(driver, "5555")

    response = api_as(driver).post(f"/api/v1/me/payment-methods/{second.pk}/default/")

    assert response.status_code == 200
    assert response.json()["is_default"] is True
    assert PaymentMethod.objects.get(is_default=True, user=driver) == second


def test_cards_of_others_are_not_seen_or_touched(api_as, driver, other_driver):
    theirs = card(other_driver, "1881")
    api = api_as(driver)

    assert api.get("/api/v1/me/payment-methods/").json()["results"] == []
    assert api.get(f"/api/v1/me/payment-methods/{theirs.pk}/").status_code == 404
    assert api.delete(f"/api/v1/me/payment-methods/{theirs.pk}/").status_code == 404
    assert api.post(f"/api/v1/me/payment-methods/{theirs.pk}/default/").status_code == 404
    assert PaymentMethod.objects.filter(pk=theirs.pk).exists()


def test_operator_staff_have_no_payment_methods(api_as, operator_admin):
    assert api_as(operator_admin).get("/api/v1/me/payment-methods/").status_code == 403


# --- Invoices -------------------------------------------------------------------------------


def test_driver_lists_and_reads_own_invoices_with_lines(api_as, driver, other_driver, operator):
    mine = make_invoice(user=driver, operator=operator)
    make_invoice(user=other_driver, operator=operator, number="VOLTWAY-000002", sequence=2)
    api = api_as(driver)

    listed = api.get("/api/v1/me/invoices/").json()
    assert [i["number"] for i in listed["results"]] == ["VOLTWAY-000001"]

    one = api.get(f"/api/v1/me/invoices/{mine.pk}/").json()
    assert one["kind"] == "receipt"
    assert one["total"] == "5.02" and one["currency"] == "EUR"
    assert one["lines"][0]["description"] == "Energy 7.4 kWh"


def test_driver_downloads_an_invoice_pdf(api_as, driver, operator):
    invoice = make_invoice(user=driver, operator=operator)

    response = api_as(driver).get(f"/api/v1/me/invoices/{invoice.pk}/pdf/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


def test_another_drivers_invoice_is_404_in_the_api(api_as, driver, other_driver, operator):
    theirs = make_invoice(user=other_driver, operator=operator)
    api = api_as(driver)

    assert api.get(f"/api/v1/me/invoices/{theirs.pk}/").status_code == 404
    assert api.get(f"/api/v1/me/invoices/{theirs.pk}/pdf/").status_code == 404


def test_operator_sees_only_its_own_invoices(api_as, operator_admin, driver, operator):
    mine = make_invoice(user=driver, operator=operator)
    other = OperatorFactory(slug="elsewhere")
    theirs = make_invoice(user=driver, operator=other, number="ELSEWHERE-000001")
    api = api_as(operator_admin)

    listed = api.get("/api/v1/operator/invoices/").json()
    assert [i["id"] for i in listed["results"]] == [mine.pk]
    assert api.get(f"/api/v1/operator/invoices/{theirs.pk}/").status_code == 404
    pdf = api.get(f"/api/v1/operator/invoices/{mine.pk}/pdf/")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_drivers_cannot_use_the_operator_invoices(api_as, driver):
    assert api_as(driver).get("/api/v1/operator/invoices/").status_code == 403


# --- Standing -------------------------------------------------------------------------------


def test_billing_standing_of_a_driver_without_a_card(api_as, driver):
    body = api_as(driver).get("/api/v1/me/billing/").json()

    assert body["blocked"] is False and body["reason"] == ""
    assert body["can_start"] is False and "Add a card" in body["can_start_reason"]


def test_billing_standing_of_a_blocked_driver_and_paying_the_debt(api_as, driver):
    card(driver, "4242", default=True)
    BillingProfile.objects.create(user=driver, blocked_at=timezone.now(), blocked_reason="Owed 9.10 EUR.")
    api = api_as(driver)

    body = api.get("/api/v1/me/billing/").json()
    assert body["blocked"] is True and body["reason"] == "Owed 9.10 EUR."
    assert body["can_start"] is False

    paid = api.post("/api/v1/me/billing/pay-debt/")
    assert paid.status_code == 200
    assert paid.json()["blocked"] is False and paid.json()["can_start"] is True


# --- Refunds --------------------------------------------------------------------------------


def _account_payment(operator, captured="10.00"):
    return Payment.objects.create(
        operator=operator,
        provider=PaymentProvider.ACCOUNT,
        status=PaymentStatus.ON_ACCOUNT,
        currency="EUR",
        amount_captured=Decimal(captured),
    )


def test_operator_admin_refunds_part_of_a_payment(api_as, operator_admin, operator):
    payment = _account_payment(operator)

    response = api_as(operator_admin).post(
        f"/api/v1/operator/payments/{payment.pk}/refund/", {"amount": "4.00", "reason": "Charger fault"}
    )

    assert response.status_code == 201
    body = response.json()
    assert body["amount"] == "4.00" and body["reason"] == "Charger fault"
    assert body["payment"]["amount_refunded"] == "4.00"
    assert Refund.objects.get().created_by == operator_admin


def test_refund_above_what_was_paid_is_refused(api_as, operator_admin, operator):
    payment = _account_payment(operator, captured="3.00")

    response = api_as(operator_admin).post(
        f"/api/v1/operator/payments/{payment.pk}/refund/", {"amount": "5.00", "reason": "Too much"}
    )

    assert response.status_code == 400
    assert not Refund.objects.exists()


def test_only_the_operators_admins_refund(api_as, technician, driver, other_operator_admin, operator):
    payment = _account_payment(operator)
    data = {"amount": "1.00", "reason": "Goodwill"}
    url = f"/api/v1/operator/payments/{payment.pk}/refund/"

    assert api_as(technician).post(url, data).status_code == 403
    assert api_as(driver).post(url, data).status_code == 403
    assert api_as(other_operator_admin).post(url, data).status_code == 404
    assert not Refund.objects.exists()


def test_invoice_list_queries_do_not_grow_with_rows(api_as, driver, operator, django_assert_max_num_queries):
    for n in range(5):
        make_invoice(user=driver, operator=operator, number=f"VOLTWAY-{n + 1:06d}", sequence=n + 1)
    api = api_as(driver)

    with django_assert_max_num_queries(3):
        assert len(api.get("/api/v1/me/invoices/").json()["results"]) == 5
