"""Ad-hoc payment at a charger without an account (EU AFIR): the public page from the
connector's QR code shows the price in words and numbers; the checkout creates a hold at
Stripe (localstripe); the status page says when charging started."""

from decimal import Decimal

import pytest

from billing.models import Payment, PaymentProvider, PaymentStatus, TariffAssignment
from billing.tariffs import describe, tariff_create
from billing.views import guest_status_url
from tests.sessions.factories import TransactionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tariff(operator, charge_point):
    tariff = tariff_create(
        operator=operator,
        name="Public AC",
        currency="EUR",
        tax_rate=Decimal("21"),
        elements=[
            {
                "components": [
                    {"type": "ENERGY", "price": Decimal("0.39")},
                    {"type": "FLAT", "price": Decimal("0.50")},
                ]
            }
        ],
    )
    TariffAssignment.objects.create(tariff=tariff, operator=operator)
    return tariff


def checkout(client, email="guest@example.net", url="/billing/pay/VW-0001/1/checkout/", **extra):
    return client.post(url, {"email": email}, content_type="application/json", **extra)


def test_guest_page_shows_the_station_and_the_tariff_in_words_and_numbers(client, tariff, settings):
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_12345"

    response = client.get("/billing/pay/VW-0001/1/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "VW-0001" in html and "connector 1" in html and "Central Station" in html
    words = describe(tariff)
    assert words and words in html
    assert "0.39" in html and "0.50" in html
    assert "include 21% tax" in html
    assert 'name="email"' in html and "data-card-element" in html
    assert settings.STRIPE_JS_URL in html and "billing/guest.js" in html


def test_guest_page_without_a_tariff_offers_no_payment(client, charge_point):
    html = client.get("/billing/pay/VW-0001/1/").content.decode()

    assert "no published price" in html
    assert "data-guest-pay" not in html


def test_guest_page_of_an_unknown_charger_or_connector_is_404(client, charge_point):
    assert client.get("/billing/pay/NOPE-1/1/").status_code == 404
    assert client.get("/billing/pay/VW-0001/7/").status_code == 404


def test_guest_checkout_places_a_hold_at_stripe(localstripe, client, tariff):
    from billing.stripe_client import client as stripe_client

    response = checkout(client)

    assert response.status_code == 201
    body = response.json()
    assert body["client_secret"].startswith("pi_")
    payment = Payment.objects.get(pk=body["payment_id"])
    assert payment.guest_email == "guest@example.net"
    assert body["status_url"] == guest_status_url(payment.pk)
    intent = stripe_client().v1.payment_intents.retrieve(payment.intent_id)
    assert intent.capture_method == "manual"


def test_guest_checkout_needs_an_email(client, tariff):
    response = checkout(client, email="not-an-address")

    assert response.status_code == 400
    assert "email" in response.json()["error"]


def test_guest_checkouts_are_rate_limited_per_address(localstripe, client, tariff, settings):
    settings.BILLING_GUEST_CHECKOUTS_PER_HOUR = 2

    assert checkout(client).status_code == 201
    assert checkout(client).status_code == 201
    third = checkout(client)
    assert third.status_code == 429
    assert "Too many" in third.json()["error"]
    # Another address is not held back by this one.
    assert checkout(client, REMOTE_ADDR="203.0.113.9").status_code == 201
    assert Payment.objects.count() == 3


def _guest_payment(operator, **fields):
    return Payment.objects.create(
        operator=operator,
        provider=PaymentProvider.STRIPE,
        guest_email="guest@example.net",
        currency="EUR",
        **fields,
    )


def test_status_says_charging_started_once_the_session_exists(client, operator, charge_point):
    payment = _guest_payment(operator, status=PaymentStatus.AUTHORIZED)
    url = guest_status_url(payment.pk)
    payment.transaction = TransactionFactory(charge_point=charge_point, driver=None, id_token=None)
    payment.save()

    state = client.get(url, HTTP_ACCEPT="application/json").json()
    page = client.get(url).content.decode()

    assert state["state"] == "started" and state["message"] == "Charging started."
    assert "Charging started." in page


def test_status_needs_the_signed_token(client, operator):
    payment = _guest_payment(operator)
    other = _guest_payment(operator)
    token = guest_status_url(other.pk).rstrip("/").rsplit("/", 1)[1]

    assert client.get(f"/billing/pay/status/{payment.pk}/{token}/").status_code == 404
    assert client.get(f"/billing/pay/status/{payment.pk}/forged/").status_code == 404


def test_status_waits_while_the_card_is_not_confirmed(localstripe, client, tariff):
    body = checkout(client).json()

    state = client.get(body["status_url"], HTTP_ACCEPT="application/json").json()

    assert state["state"] == "waiting"


def test_status_starts_the_charger_once_the_money_is_held(localstripe, client, tariff, charge_point):
    """The webhook may be late: once Stripe holds the money, the status poll sends the remote
    start (here to a charger that is offline, which the guest is told): the start failed, so
    the hold on the card is released at Stripe and nothing is charged."""
    from billing.stripe_client import client as stripe_client
    from sessions.models import IdToken, IdTokenStatus
    from stations.models import Command

    charge_point.is_connected = False
    charge_point.save(update_fields=["is_connected"])

    body = checkout(client).json()
    payment = Payment.objects.get(pk=body["payment_id"])
    api = stripe_client().v1
    card = api.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }
    )
    api.payment_intents.update(payment.intent_id, {"payment_method": card.id})
    assert api.payment_intents.confirm(payment.intent_id).status == "requires_capture"

    state = client.get(body["status_url"], HTTP_ACCEPT="application/json").json()

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELED
    assert api.payment_intents.retrieve(payment.intent_id).status == "canceled"
    command = Command.objects.get(action="RemoteStartTransaction")
    assert command.payload == {"connectorId": 1, "idTag": f"GUEST-{payment.pk}"}
    assert state == {"state": "failed", "message": "The charger could not start; your card was not charged."}
    # A charger that got the start after all is refused when it reports the session.
    assert IdToken.objects.get(token=f"GUEST-{payment.pk}").status == IdTokenStatus.BLOCKED
    # Polling again sends no second start and says the same.
    again = client.get(body["status_url"], HTTP_ACCEPT="application/json").json()
    assert again == state
    assert "your card was not charged" in client.get(body["status_url"]).content.decode()
    assert Command.objects.filter(action="RemoteStartTransaction").count() == 1
