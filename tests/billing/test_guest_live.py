"""A guest's payment starts a real charger: over the real stack (the ASGI server process, the
Redis channel layer, PostgreSQL) and a Stripe-protocol server (localstripe). The charger takes
the remote start, so the hold stays on the card and the session it reports is the payment's.
(A start that fails releases the hold: tests/billing/test_guest.py.)"""

import asyncio
import base64
import datetime as dt
import json
from decimal import Decimal

import pytest
import websockets
from django.db import connection

from billing.models import Payment, PaymentStatus
from billing.services import payments
from billing.stripe_client import client as stripe_client
from sessions.models import IdToken, IdTokenStatus, Transaction
from stations.models import CommandStatus
from tests.billing.payment_helpers import energy_tariff
from tests.factories import CHARGER_PASSWORD, ChargePointFactory, ConnectorFactory

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.live]

IDENTITY = "E2E-GUEST-1"
BOOT = {"chargePointVendor": "ABB", "chargePointModel": "Terra AC"}


@pytest.fixture
def charge_point(transactional_db):
    cp = ChargePointFactory(identity=IDENTITY, is_connected=False)
    ConnectorFactory(charge_point=cp, connector_id=1)
    return cp


def _start_in_thread(payment: Payment):
    try:
        return payments.guest_start(payment)
    finally:
        connection.close()  # this thread's own connection: not left open on the test database


def test_guest_payment_starts_the_charger_and_the_session_is_the_payments(
    localstripe, asgi_process, charge_point
):
    base, _ = asgi_process
    energy_tariff(charge_point.operator)
    checkout = payments.guest_checkout(
        charge_point=charge_point, connector_number=1, email="guest@example.net"
    )
    payment = Payment.objects.get(pk=checkout["payment_id"])
    api = stripe_client().v1
    card = api.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }
    )
    api.payment_intents.update(payment.intent_id, {"payment_method": card.id})
    assert api.payment_intents.confirm(payment.intent_id).status == "requires_capture"
    tag = f"GUEST-{payment.pk}"
    auth = base64.b64encode(f"{IDENTITY}:{CHARGER_PASSWORD}".encode()).decode()

    async def scenario():
        async with websockets.connect(
            base.replace("http://", "ws://") + f"/ocpp/{IDENTITY}",
            subprotocols=["ocpp1.6"],
            additional_headers={"Authorization": f"Basic {auth}"},
        ) as ws:
            await ws.send(json.dumps([2, "b1", "BootNotification", BOOT]))
            boot = json.loads(await asyncio.wait_for(ws.recv(), 30))
            starting = asyncio.create_task(asyncio.to_thread(_start_in_thread, payment))
            remote = json.loads(await asyncio.wait_for(ws.recv(), 60))
            await ws.send(json.dumps([3, remote[1], {"status": "Accepted"}]))
            command = await asyncio.wait_for(starting, 60)
            start = {
                "connectorId": 1,
                "idTag": tag,
                "meterStart": 0,
                "timestamp": dt.datetime.now(dt.UTC).isoformat(),
            }
            await ws.send(json.dumps([2, "s1", "StartTransaction", start]))
            started = json.loads(await asyncio.wait_for(ws.recv(), 30))
            return boot, remote, command, started

    boot, remote, command, started = asyncio.run(scenario())

    assert boot[2]["status"] == "Accepted"
    assert remote[2:] == ["RemoteStartTransaction", {"connectorId": 1, "idTag": tag}]
    assert command.status == CommandStatus.ACCEPTED
    assert started[2]["idTagInfo"]["status"] == "Accepted"
    # The charger started: the hold stays on the card until the session is priced.
    payment.refresh_from_db()
    assert (payment.status, payment.amount_authorized) == (PaymentStatus.AUTHORIZED, Decimal("50.00"))
    assert api.payment_intents.retrieve(payment.intent_id).status == "requires_capture"
    assert IdToken.objects.get(token=tag).status == IdTokenStatus.ACCEPTED
    tx = Transaction.objects.get(pk=started[2]["transactionId"])
    assert payments.authorize_session(tx) == payment
    payment.refresh_from_db()
    assert payment.transaction == tx
