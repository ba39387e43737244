"""Billing on the pages that were there before it: the price at the connectors a driver charged
at and why they cannot start (account page), each connector's price with its QR code and guest
page (operator's charge point page), the Revenue link in the operators' menu; and forgetting a
saved card through the service."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import BillingProfile, PaymentMethod, TariffAssignment
from billing.tariffs import describe, tariff_create
from tests.factories import ChargePointFactory, ConnectorFactory, IdTokenFactory, SiteFactory
from tests.sessions.factories import TransactionFactory

pytestmark = pytest.mark.django_db

ACCOUNT = "/account/"


def make_tariff(operator, name: str, price: str, **assigned):
    tariff = tariff_create(
        operator=operator,
        name=name,
        currency="EUR",
        tax_rate=Decimal("21"),
        elements=[{"components": [{"type": "ENERGY", "price": Decimal(price)}]}],
    )
    TariffAssignment.objects.create(tariff=tariff, operator=operator, **assigned)
    return tariff


@pytest.fixture
def tariffs(operator, charge_point):
    """The operator's tariff everywhere, and a dearer one of connector 2's own."""
    standard = make_tariff(operator, "Standard", "0.39")
    fast = make_tariff(
        operator, "Connector two", "0.59", connector=charge_point.connectors.get(connector_id=2)
    )
    return standard, fast


def charged_at(driver, charge_point, connector_number: int):
    token = IdTokenFactory(driver=driver)
    return TransactionFactory(
        charge_point=charge_point, connector_number=connector_number, id_token=token, driver=driver
    )


# --- Driver's account page ----------------------------------------------------------------------


def test_account_page_shows_the_price_at_each_connector_the_driver_charged_at(
    login, driver, charge_point, tariffs
):
    standard, fast = tariffs
    charged_at(driver, charge_point, 1)
    charged_at(driver, charge_point, 2)

    response = login(driver).get(ACCOUNT)

    html = response.content.decode()
    assert "Prices where you charge" in html
    assert 'data-price-at="VW-0001:1"' in html and 'data-price-at="VW-0001:2"' in html
    assert describe(standard) in html and describe(fast) in html
    place = response.context["prices"][0]
    assert place["charge_point"] == charge_point
    assert [(c["number"], c["tariff_info"]["name"]) for c in place["connectors"]] == [
        (1, "Standard"),
        (2, "Connector two"),
    ]


def test_account_page_says_when_no_price_is_published(login, driver, charge_point):
    charged_at(driver, charge_point, 1)

    html = login(driver).get(ACCOUNT).content.decode()

    assert 'data-price-at="VW-0001:1"' in html
    assert "No price is published for this connector." in html


def test_account_page_without_sessions_lists_no_prices(login, driver, tariffs):
    html = login(driver).get(ACCOUNT).content.decode()

    assert "Prices where you charge" not in html


def test_account_page_links_to_payment_and_invoices(login, driver):
    html = login(driver).get(ACCOUNT).content.decode()

    assert 'href="/billing/"' in html and "Payment &amp; invoices" in html


def test_account_page_says_why_the_driver_cannot_start(login, driver):
    # No card and no billing account: charging that costs something cannot be paid.
    html = login(driver).get(ACCOUNT).content.decode()

    assert "data-start-blocked" in html
    assert "You cannot start charging now: Add a card" in html


def test_blocked_driver_is_told_the_reason(login, driver):
    BillingProfile.objects.create(
        user=driver, blocked_at=timezone.now(), blocked_reason="A payment of €12.40 failed; pay it first."
    )

    html = login(driver).get(ACCOUNT).content.decode()

    assert "You cannot start charging now: A payment of €12.40 failed; pay it first." in html


def test_driver_with_a_card_sees_no_banner(login, driver):
    PaymentMethod.objects.create(
        user=driver, stripe_id="pm_test_1", brand="visa", last4="4242", is_default=True
    )

    assert "data-start-blocked" not in login(driver).get(ACCOUNT).content.decode()


def test_account_page_queries_do_not_grow_with_the_places_charged_at(
    login, driver, operator, charge_point, tariffs, django_assert_max_num_queries
):
    client = login(driver)
    for _ in range(3):
        charged_at(driver, charge_point, 1)
        charged_at(driver, charge_point, 2)
    with CaptureQueriesContext(connection) as few:
        assert client.get(ACCOUNT).status_code == 200
    for n in range(2, 12):
        cp = ChargePointFactory(site=SiteFactory(operator=operator), identity=f"VW-{n:04d}")
        ConnectorFactory(charge_point=cp, connector_id=1)
        ConnectorFactory(charge_point=cp, connector_id=2)
        charged_at(driver, cp, 1)
        charged_at(driver, cp, 2)
    # The few newest charge points are priced (a lookup each), however many there were.
    with django_assert_max_num_queries(len(few) + 2 * 4):
        response = client.get(ACCOUNT)
    assert len(response.context["prices"]) == 3


# --- Operator's charge point page ---------------------------------------------------------------


def test_charge_point_page_shows_each_connectors_tariff_with_its_qr_code_and_guest_page(
    login, operator_admin, charge_point, tariffs
):
    standard, fast = tariffs

    response = login(operator_admin).get(charge_point.get_absolute_url())

    html = response.content.decode()
    assert "data-tariff-panel" in html and '<h2 id="tariff-heading">Tariff</h2>' in html
    assert describe(standard) in html and describe(fast) in html
    connectors = {c.connector_id: c.tariff_info["name"] for c in response.context["connectors"]}
    assert connectors == {1: "Standard", 2: "Connector two"}
    for number in (1, 2):
        assert f'href="/billing/qr/VW-0001/{number}.svg"' in html
        assert f'href="/billing/pay/VW-0001/{number}/"' in html


def test_charge_point_page_qr_link_gives_a_printable_svg(login, technician, charge_point, tariffs):
    client = login(technician)
    html = client.get(charge_point.get_absolute_url()).content.decode()
    assert 'href="/billing/qr/VW-0001/1.svg"' in html

    response = client.get("/billing/qr/VW-0001/1.svg")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"


def test_charge_point_page_without_a_tariff_says_no_price_is_published(login, operator_admin, charge_point):
    html = login(operator_admin).get(charge_point.get_absolute_url()).content.decode()

    assert html.count("No price is published for this connector.") == 2


def test_charge_point_page_tariff_queries_do_not_grow_with_connectors(
    login, operator_admin, charge_point, tariffs, django_assert_max_num_queries
):
    client = login(operator_admin)
    with CaptureQueriesContext(connection) as before:
        client.get(charge_point.get_absolute_url())
    for n in range(3, 9):
        ConnectorFactory(charge_point=charge_point, connector_id=n)

    with django_assert_max_num_queries(len(before)):
        response = client.get(charge_point.get_absolute_url())

    assert [c.tariff_info["name"] for c in response.context["connectors"]] == [
        "Standard",
        "Connector two",
    ] + ["Standard"] * 6


# --- Operators' menu ------------------------------------------------------------------------------


@pytest.mark.parametrize("staff", ["operator_admin", "technician"])
def test_operator_staff_have_a_revenue_link_in_the_menu(request, login, staff):
    html = login(request.getfixturevalue(staff)).get(reverse("stations:dashboard")).content.decode()

    assert '<a href="/billing/reports/">Revenue</a>' in html


def test_revenue_link_is_current_on_the_reports_page(login, operator_admin):
    html = login(operator_admin).get("/billing/reports/").content.decode()

    assert '<a href="/billing/reports/" aria-current="page">Revenue</a>' in html


def test_drivers_have_no_revenue_link(login, driver):
    assert "Revenue</a>" not in login(driver).get(ACCOUNT).content.decode()


# --- Forgetting a saved card ----------------------------------------------------------------------


def test_remove_payment_method_detaches_the_card_and_the_newest_left_becomes_default(localstripe, driver):
    from billing.services.payments import remove_payment_method
    from tests.billing.payment_helpers import save_card

    first = save_card(driver)
    second = save_card(driver, "5555555555554444")
    first.refresh_from_db()
    assert first.is_default and not second.is_default

    remove_payment_method(user=driver, method=first)

    assert not PaymentMethod.objects.filter(pk=first.pk).exists()
    second.refresh_from_db()
    assert second.is_default
    from billing.stripe_client import client

    assert client().v1.payment_methods.retrieve(first.stripe_id).customer is None


def test_remove_payment_method_takes_keyword_arguments_only(driver):
    from billing.services.payments import remove_payment_method

    with pytest.raises(TypeError):
        remove_payment_method(driver, None)
