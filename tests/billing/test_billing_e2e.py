"""The issue's "done when", over the real stack: simulated chargers over TCP to the ASGI server
process; session events go through Redis to a real Celery worker, which pre-authorises and
captures at a real Stripe-protocol server (localstripe), issues the receipt and mails it with
its PDF through a real SMTP server.

One stack for the whole story (starting it is most of the cost), in four acts:

1. Alice saved a card (SetupIntent); she charges: the hold is placed at the start, the priced
   total captured at the end, and her receipt arrives by email with a PDF that shows the energy,
   the session fee, the tax and the total.
2. Stripe re-delivers a webhook: 200 both times, the second changes nothing.
3. Bob's card saves fine but declines every charge: after his session the capture fails for good
   (``BILLING_CAPTURE_RETRIES=0`` in the worker), he is blocked, the API refuses his next start
   with 402 and a clear message, and the charger's Authorize of his card says Blocked.
4. A fleet's RFID card on a postpaid account charges: the session lands on the account's
   monthly invoice, and its PDF shows it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import time
import urllib.error
import urllib.request
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.utils import timezone
from pypdf import PdfReader
from rest_framework.authtoken.models import Token

from billing import pdf, stripe_client
from billing.accounts import run_monthly
from billing.models import (
    AccountToken,
    BillingAccount,
    BillingProfile,
    Invoice,
    InvoiceKind,
    Payment,
    PaymentProvider,
    PaymentStatus,
    SessionCharge,
    StripeEvent,
    TariffAssignment,
)
from billing.tariffs import tariff_create
from sessions.models import IdToken, IdTokenStatus, Transaction, TransactionStatus
from stations.models import ConnectorStatus
from tests.alerts.conftest import alerts_stack, wait_for  # noqa: F401 (alerts_stack: a fixture)
from tests.billing.payment_helpers import DECLINING_CARD, GOOD_CARD, save_card
from tests.chargers import Chargers
from tests.factories import (
    ChargePointFactory,
    ConnectorFactory,
    DriverFactory,
    IdTokenFactory,
    OperatorFactory,
    SiteFactory,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.live]

WEBHOOK_SECRET = "whsec_test"
# Energy flows fast enough that a few seconds of charging make a few kWh.
SPEEDUP = 2000.0


@pytest.fixture
def billing_stack(transactional_db, localstripe, smtp_server, settings, monkeypatch, request):
    """The alerts' stack (uvicorn + a Celery worker on a queue of their own, mail to
    ``smtp_server``) with both processes pointed at ``localstripe``; a failed capture is not
    retried, so the driver is blocked at once."""
    monkeypatch.setenv("STRIPE_API_BASE", localstripe)
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_12345")
    monkeypatch.setenv("STRIPE_PUBLISHABLE_KEY", "pk_test_12345")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("STRIPE_JS_URL", f"{localstripe}/js.stripe.com/v3/")
    monkeypatch.setenv("BILLING_CAPTURE_RETRIES", "0")
    monkeypatch.setenv("EMAIL_URL", f"smtp://127.0.0.1:{settings.EMAIL_PORT}")
    return request.getfixturevalue("alerts_stack")


def _pdf_text(data: bytes) -> str:
    """The words of every page, one space apart (pypdf puts each table cell on a line)."""
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def _signed(payload: bytes, secret: str = WEBHOOK_SECRET) -> str:
    """Stripe's signature scheme: HMAC-SHA256 of "<timestamp>.<payload>"."""
    timestamp = int(time.time())
    signature = hmac.new(secret.encode(), b"%d.%s" % (timestamp, payload), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def _post(url: str, payload: bytes, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=payload, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _charge(chargers: Chargers, sim, tag: str, *, meter_values: int = 2) -> Transaction:
    """Start a session of ``tag`` on connector 1 and send a few meter values (energy flows
    meanwhile); the transaction once the server has it active."""
    result = chargers.do(sim.start_session(1, tag))
    assert result.accepted, result
    tx = wait_for(lambda: Transaction.objects.filter(id_tag=tag, status=TransactionStatus.ACTIVE).first())
    for _ in range(meter_values):
        time.sleep(0.5)
        chargers.do(sim.send_meter_values(1))
    return tx


def _stop(chargers: Chargers, sim, tx: Transaction) -> Transaction:
    """Stop the session on connector 1; the transaction once the server has it completed."""
    chargers.do(sim.stop_session(1))

    def completed():
        tx.refresh_from_db()
        return tx if tx.status == TransactionStatus.COMPLETED else None

    return wait_for(completed)


def test_pay_by_card_replay_a_webhook_a_declined_card_blocks_and_a_postpaid_card_is_invoiced(
    billing_stack,
):
    stack = billing_stack
    api = stripe_client.client().v1
    operator = OperatorFactory(
        slug="voltway",
        name="Voltway",
        legal_name="Voltway B.V.",
        vat_number="NL123456789B01",
        currency="EUR",
    )
    site = SiteFactory(operator=operator, name="Central Station")
    charge_point = ChargePointFactory(site=site, identity="E2E-BILL", is_connected=False)
    ConnectorFactory(charge_point=charge_point, connector_id=1)
    tariff = tariff_create(
        operator=operator,
        name="Standard",
        currency="EUR",
        tax_rate=Decimal("21"),
        prices_include_tax=True,
        elements=[
            {
                "components": [
                    {"type": "ENERGY", "price": Decimal("0.35")},
                    {"type": "FLAT", "price": Decimal("1.00")},
                ]
            }
        ],
    )
    TariffAssignment.objects.create(tariff=tariff, operator=operator)

    alice = DriverFactory(email="alice@example.com", first_name="Alice", last_name="Archer")
    IdTokenFactory(driver=alice, token="ALICE-0001")
    save_card(alice, GOOD_CARD)
    bob = DriverFactory(email="bob@example.com")
    IdTokenFactory(driver=bob, token="BOB-0001")
    save_card(bob, DECLINING_CARD)
    fleet = BillingAccount.objects.create(operator=operator, name="Fleet Ltd", email="fleet@example.com")
    AccountToken.objects.create(account=fleet, id_token=IdTokenFactory(driver=None, token="FLEET-0001"))

    chargers = Chargers(stack.base)
    try:
        sim = chargers.start("E2E-BILL", energy_speedup=SPEEDUP)
        wait_for(lambda: charge_point.connectors.filter(status=ConnectorStatus.AVAILABLE).exists())

        # --- 1. A card session: held at the start, the priced total captured at the end. ---------
        tx = _charge(chargers, sim, "ALICE-0001")
        payment = wait_for(
            lambda: Payment.objects.filter(transaction=tx, status=PaymentStatus.AUTHORIZED).first()
        )
        assert payment.provider == PaymentProvider.STRIPE
        assert payment.amount_authorized == Decimal("50.00")  # BILLING_PREAUTH_AMOUNT
        hold = api.payment_intents.retrieve(payment.intent_id)
        assert hold.capture_method == "manual"
        assert hold.amount == 5000
        assert hold.status == "requires_capture"

        tx = _stop(chargers, sim, tx)
        assert tx.energy_wh > 1000  # a few kWh: the energy line is worth reading

        def captured():
            payment.refresh_from_db()
            return payment.status == PaymentStatus.CAPTURED

        wait_for(captured)
        charge = SessionCharge.objects.get(transaction=tx)
        kwh = (tx.energy_wh / 1000).quantize(Decimal("0.001"))
        assert charge.total == Decimal("1.00") + (Decimal("0.35") * kwh).quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )
        assert payment.amount_captured == charge.total
        intent = api.payment_intents.retrieve(payment.intent_id)
        assert intent.status == "succeeded"
        # Stripe's amount_received; localstripe keeps it as the charge's amount less the part of
        # the hold given back by the partial capture.
        paid = intent.latest_charge
        paid = api.charges.retrieve(paid if isinstance(paid, str) else paid.id)
        assert paid.captured
        assert paid.amount - paid.amount_refunded == int(charge.total * 100)

        receipt = wait_for(lambda: Invoice.objects.filter(payment=payment, kind=InvoiceKind.RECEIPT).first())
        assert receipt.total == charge.total
        # Alice's other mail (the alerts' "charging finished") is not the receipt.
        mail = wait_for(lambda: [m for m in stack.emails if receipt.number in m["Subject"]])
        assert len(mail) == 1
        assert "alice@example.com" in mail[0]["To"]
        (attachment,) = [a for a in mail[0].iter_attachments() if a.get_content_type() == "application/pdf"]
        assert attachment.get_filename() == f"{receipt.number}.pdf"
        text = _pdf_text(attachment.get_content())
        lines = {line.kind: line for line in receipt.lines.all()}
        assert set(lines) == {"energy", "flat"}
        energy, fee = lines["energy"], lines["flat"]
        assert energy.total == (Decimal("0.35") * kwh).quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert energy.total + fee.total == charge.total
        assert receipt.number in text
        assert "Voltway B.V." in text and "NL123456789B01" in text and "Alice Archer" in text
        # Each line: what, how much, then net, tax rate, tax and total (tax included in 0.35/kWh).
        assert f"Energy {kwh} kWh" in text
        assert f"{energy.net} 21.00 {energy.tax} {energy.total}" in text
        assert "Session fee 1.00 session" in text and "0.83 21.00 0.17 1.00" in text
        assert f"Tax {receipt.tax} EUR" in text and receipt.tax == energy.tax + fee.tax
        assert f"Total {charge.total} EUR" in text

        # --- 2. Stripe re-delivers an event: 200 twice, nothing changes the second time. ----------
        event = {
            "id": "evt_e2e_replayed",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "data": {"object": intent.to_dict()},
        }
        body = json.dumps(event).encode()
        url = f"{stack.base}/billing/stripe/webhook/"
        status, answer = _post(url, body, {"Stripe-Signature": _signed(body)})
        assert (status, answer["replay"]) == (200, False)
        events = StripeEvent.objects.count()
        payment.refresh_from_db()
        before = (payment.status, payment.amount_captured, payment.amount_refunded, payment.updated_at)
        status, answer = _post(url, body, {"Stripe-Signature": _signed(body)})
        assert (status, answer["replay"]) == (200, True)
        assert StripeEvent.objects.count() == events
        payment.refresh_from_db()
        assert (
            payment.status,
            payment.amount_captured,
            payment.amount_refunded,
            payment.updated_at,
        ) == before
        assert Invoice.objects.filter(payment=payment).count() == 1
        status, _ = _post(url, body, {"Stripe-Signature": _signed(body, "whsec_not_ours")})
        assert status == 400

        # --- 3. A declining card: the capture fails for good, Bob is blocked. ---------------------
        tx = _charge(chargers, sim, "BOB-0001", meter_values=1)
        wait_for(lambda: Payment.objects.filter(transaction=tx).exists())
        tx = _stop(chargers, sim, tx)
        failed = wait_for(lambda: Payment.objects.filter(transaction=tx, status=PaymentStatus.FAILED).first())
        assert failed.failure_message
        profile = BillingProfile.objects.get(user=bob)
        assert profile.blocked_at is not None
        assert "failed" in profile.blocked_reason and "account page" in profile.blocked_reason
        assert IdToken.objects.get(token="BOB-0001").status == IdTokenStatus.BLOCKED
        # The next start from the app: 402, and why.
        token = Token.objects.create(user=bob)
        start = json.dumps({"charge_point": "E2E-BILL", "connector_id": 1}).encode()
        status, answer = _post(
            f"{stack.base}/api/v1/me/sessions/", start, {"Authorization": f"Token {token.key}"}
        )
        assert status == 402, answer
        assert answer["code"] == "payment_required"
        assert answer["detail"] == profile.blocked_reason
        # The same when he names his (now Blocked) card: the payment is the reason, not the card.
        card = IdToken.objects.get(token="BOB-0001")
        start = json.dumps({"charge_point": "E2E-BILL", "connector_id": 1, "id_token": card.pk}).encode()
        status, answer = _post(
            f"{stack.base}/api/v1/me/sessions/", start, {"Authorization": f"Token {token.key}"}
        )
        assert (status, answer["code"], answer["detail"]) == (402, "payment_required", profile.blocked_reason)
        # The charger asks for his card: Blocked.
        assert chargers.do(sim.authorize("BOB-0001"))["status"] == "Blocked"
        assert chargers.do(sim.authorize("ALICE-0001"))["status"] == "Accepted"

        # --- 4. A postpaid RFID card: its session lands on the account's monthly invoice. ---------
        tx = _charge(chargers, sim, "FLEET-0001", meter_values=1)
        tx = _stop(chargers, sim, tx)
        on_account = wait_for(
            lambda: Payment.objects.filter(
                transaction=tx, provider=PaymentProvider.ACCOUNT, amount_captured__gt=0
            ).first()
        )
        charge = SessionCharge.objects.get(transaction=tx)
        assert on_account.amount_captured == charge.total
        started = timezone.localdate(tx.started_at)  # months are the invoicing time zone's
        next_month = (started.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        assert run_monthly(today=next_month) == 1
        invoice = Invoice.objects.get(account=fleet, kind=InvoiceKind.INVOICE)
        assert {line.transaction_id for line in invoice.lines.all()} == {tx.pk}
        assert invoice.total == charge.total
        text = _pdf_text(pdf.render(invoice))
        assert invoice.number in text
        assert "Fleet Ltd" in text
        kwh = (tx.energy_wh / 1000).quantize(Decimal("0.001"))
        assert f"#{tx.pk} (FLEET-0001): Energy {kwh} kWh" in text
        assert f"#{tx.pk} (FLEET-0001): Session fee" in text
        assert f"Total {invoice.total} EUR" in text
    finally:
        chargers.close()
