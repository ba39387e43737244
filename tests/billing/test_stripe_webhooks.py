"""The Stripe webhook: verified by signature (400 otherwise, never 500), handled once per event
id (a replay answers 200 and changes nothing)."""

import hashlib
import hmac
import json
import time
import urllib.parse
import urllib.request
from decimal import Decimal

import pytest
from django.urls import include, path

from billing.models import BillingProfile, Payment, PaymentMethod, PaymentStatus, StripeEvent
from billing.services import payments

from .payment_helpers import energy_tariff, new_card, save_card, session, stop

urlpatterns = [path("", include("billing.urls_payments"))]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

URL = "/billing/stripe/webhook/"


def signed(payload: bytes, secret: str = "whsec_test", timestamp: int | None = None) -> str:
    timestamp = timestamp or int(time.time())
    signature = hmac.new(secret.encode(), b"%d.%s" % (timestamp, payload), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def post(client, event: dict, *, signature: str | None = None):
    payload = json.dumps(event).encode()
    headers = {} if signature == "" else {"HTTP_STRIPE_SIGNATURE": signature or signed(payload)}
    return client.post(URL, data=payload, content_type="application/json", **headers)


def event(kind: str, obj: dict, event_id: str = "evt_1") -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": obj},
    }


@pytest.fixture
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"


@pytest.fixture
def guest_payment(operator):
    return Payment.objects.create(
        operator=operator,
        provider="stripe",
        guest_email="guest@example.com",
        currency="EUR",
        intent_id="pi_guest1",
    )


def test_a_valid_event_is_handled_once_and_a_replay_changes_nothing(client, webhook_secret, guest_payment):
    succeeded = event(
        "payment_intent.succeeded",
        {
            "id": "pi_guest1",
            "object": "payment_intent",
            "amount": 1234,
            "amount_received": 1234,
            "status": "succeeded",
        },
    )

    response = post(client, succeeded)

    assert response.status_code == 200
    assert response.json() == {"received": True, "replay": False}
    guest_payment.refresh_from_db()
    assert (guest_payment.status, guest_payment.amount_captured) == (PaymentStatus.CAPTURED, Decimal("12.34"))
    assert StripeEvent.objects.get().event_id == "evt_1"

    # Someone refunds meanwhile; the replayed event must not put the old state back.
    Payment.objects.filter(pk=guest_payment.pk).update(status=PaymentStatus.REFUNDED)
    replay = post(client, succeeded)

    assert replay.status_code == 200
    assert replay.json() == {"received": True, "replay": True}
    guest_payment.refresh_from_db()
    assert guest_payment.status == PaymentStatus.REFUNDED
    assert StripeEvent.objects.count() == 1


@pytest.mark.parametrize(
    "signature",
    ["", "t=1,v1=deadbeef", "garbage"],
    ids=["missing", "wrong", "malformed"],
)
def test_a_bad_signature_is_refused_with_400(client, webhook_secret, guest_payment, signature):
    response = post(client, event("payment_intent.succeeded", {"id": "pi_guest1"}), signature=signature)
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()
    guest_payment.refresh_from_db()
    assert guest_payment.status == PaymentStatus.PENDING


def test_a_signature_made_with_another_secret_or_too_old_is_refused(client, webhook_secret):
    payload = json.dumps(event("payment_intent.succeeded", {"id": "pi_x"})).encode()
    for signature in (
        signed(payload, secret="whsec_other"),
        signed(payload, timestamp=int(time.time()) - 3600),
    ):
        response = client.post(
            URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
        )
        assert response.status_code == 400


def test_a_signed_body_that_is_not_an_event_is_400(client, webhook_secret):
    payload = b"[1, 2, 3]"
    response = client.post(
        URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signed(payload)
    )
    assert response.status_code == 400


def test_only_post(client, webhook_secret):
    assert client.get(URL).status_code == 405


def test_setup_intent_succeeded_saves_the_card(client, localstripe, driver):
    payments.save_card_setup_intent(driver)
    customer = BillingProfile.objects.get(user=driver).stripe_customer_id
    method = new_card()

    response = post(
        client,
        event(
            "setup_intent.succeeded",
            {"id": "seti_1", "object": "setup_intent", "customer": customer, "payment_method": method.id},
        ),
    )

    assert response.status_code == 200
    saved = PaymentMethod.objects.get(user=driver)
    assert (saved.stripe_id, saved.last4, saved.is_default) == (method.id, "4242", True)


def test_a_refund_made_in_stripe_is_recorded(client, localstripe, operator, charge_point, driver):
    energy_tariff(operator)
    save_card(driver)
    tx, energy = session(charge_point, driver)
    payments.authorize_session(tx)
    payment = payments.settle_session(stop(tx, energy))  # 2.96 captured of a 50.00 hold
    charge = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": payment.intent_id,
        "amount": 5000,
        "amount_captured": 296,
        "amount_refunded": 100,
    }

    assert post(client, event("charge.refunded", charge, "evt_r1")).status_code == 200
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.CAPTURED, Decimal("1.00"))

    charge["amount_refunded"] = 296
    assert post(client, event("charge.refunded", charge, "evt_r2")).status_code == 200
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.REFUNDED, Decimal("2.96"))
    assert payment.refunds.count() == 2


def test_a_hold_that_lapsed_at_stripe_is_charged_anew_at_the_end(
    client, localstripe, operator, charge_point, driver
):
    energy_tariff(operator)
    save_card(driver)
    tx, energy = session(charge_point, driver)
    payment = payments.authorize_session(tx)

    canceled = {"id": payment.intent_id, "object": "payment_intent", "status": "canceled"}
    assert post(client, event("payment_intent.canceled", canceled, "evt_c1")).status_code == 200
    payment.refresh_from_db()
    assert (payment.status, payment.amount_authorized) == (PaymentStatus.PENDING, Decimal("0"))

    settled = payments.settle_session(stop(tx, energy))
    assert (settled.status, settled.amount_captured) == (PaymentStatus.CAPTURED, Decimal("2.96"))
    assert settled.intent_id != payment.intent_id


@pytest.mark.postgres  # a live server thread beside the test: SQLite's shared in-memory database refuses
@pytest.mark.django_db(transaction=True)
def test_localstripe_delivers_a_signed_event_that_is_handled_once(
    localstripe, live_server, operator, charge_point, driver
):
    """The whole way: localstripe signs and posts ``payment_intent.succeeded`` after a capture."""
    request = urllib.request.Request(
        f"{localstripe}/_config/webhooks/chargedesk",
        data=urllib.parse.urlencode({"url": f"{live_server.url}{URL}", "secret": "whsec_test"}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).close()
    energy_tariff(operator)
    save_card(driver)
    tx, energy = session(charge_point, driver)
    payments.authorize_session(tx)
    payment = payments.settle_session(stop(tx, energy))

    deadline = time.monotonic() + 15
    # Deliveries of earlier tests' events may arrive too: wait for this payment's.
    mine = StripeEvent.objects.filter(
        type="payment_intent.succeeded", payload__data__object__id=payment.intent_id
    )
    while not mine.exists():
        assert time.monotonic() < deadline, "localstripe's webhook did not arrive"
        time.sleep(0.2)
    assert mine.count() == 1
    assert mine.get().event_id.startswith("evt_")
    payment.refresh_from_db()
    assert (payment.status, payment.amount_captured) == (PaymentStatus.CAPTURED, Decimal("2.96"))
