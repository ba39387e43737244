"""The issue's "done when", over the real stack: simulated chargers over TCP to the ASGI server
process; events go through Redis to a real Celery worker, which mails through a real SMTP
server and POSTs signed webhooks to a real HTTP receiver.

A charger faults in the middle of Alice's session: she gets one "interrupted" email naming
the nearest free alternative; the connector flaps and nobody hears twice; Bob, who keeps the
station as a favourite but turned email off for outages, gets it in-app and not by email; the
operator's webhook receives the alerts with signatures it can verify.
"""

import json
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertProfile, Channel, Delivery, Notification, Preference, WebhookEndpoint
from alerts.signing import verify
from sessions.models import Transaction, TransactionStatus
from stations.models import ConnectorStatus
from tests.alerts.conftest import wait_for
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


def _emails_to(emails, address):
    return [m for m in emails if address in m["To"]]


def _text(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def test_a_fault_mid_session_reaches_the_driver_once_by_email_and_the_operator_by_signed_webhook(
    alerts_stack, webhook_receiver
):
    operator = OperatorFactory(slug="voltway")
    home = SiteFactory(operator=operator, name="Central Station")
    market = SiteFactory(
        operator=operator,
        name="Market Square",
        latitude=home.latitude + Decimal("0.009"),
        longitude=home.longitude,
    )
    a = ChargePointFactory(site=home, identity="E2E-A", is_connected=False)
    ConnectorFactory(charge_point=a, connector_id=1)
    b = ChargePointFactory(site=market, identity="E2E-B", is_connected=False)
    ConnectorFactory(charge_point=b, connector_id=1)
    alice = DriverFactory(email="alice@example.com")
    IdTokenFactory(driver=alice, token="ALICE-0001")
    bob = DriverFactory(email="bob@example.com")
    AlertProfile.objects.create(user=bob).favourites.add(a)
    Preference.objects.create(
        user=bob, event_type="station_out_of_service", channel=Channel.EMAIL, enabled=False
    )
    hook = WebhookEndpoint.objects.create(operator=operator, url=webhook_receiver.url)

    chargers = Chargers(alerts_stack.base)
    try:
        chargers.start("E2E-B")
        sim = chargers.start("E2E-A")
        wait_for(lambda: b.connectors.filter(status=ConnectorStatus.AVAILABLE).exists())
        chargers.do(sim.start_session(1, "ALICE-0001"))
        wait_for(lambda: Transaction.objects.filter(charge_point=a, status=TransactionStatus.ACTIVE).exists())

        chargers.do(sim.fault(1, "GroundFailure", stop=False))
        interrupted = wait_for(lambda: _emails_to(alerts_stack.emails, "alice@example.com"))
        assert len(interrupted) == 1
        body = _text(interrupted[0])
        assert "interrupted" in interrupted[0]["Subject"].lower()
        assert "Market Square" in body

        # The connector flaps: back, faulted, back, faulted.
        for _ in range(2):
            chargers.do(sim.recover(1))
            chargers.do(sim.fault(1, "GroundFailure", stop=False))
        wait_for(lambda: a.status_changes.filter(status=ConnectorStatus.FAULTED).count() >= 3)
        # Let the worker finish what the flaps sent it before counting.
        wait_for(lambda: not Delivery.objects.filter(status="pending", channel=Channel.EMAIL).exists())
        time.sleep(2)
        assert Alert.objects.filter(event_type="session_interrupted").count() == 1
        assert Alert.objects.filter(event_type="station_out_of_service").count() == 1
        assert len(_emails_to(alerts_stack.emails, "alice@example.com")) == 1

        # Bob: in the notification centre, not by email (he turned email off for outages).
        wait_for(lambda: Notification.objects.filter(user=bob, event_type="station_out_of_service").exists())
        assert not _emails_to(alerts_stack.emails, "bob@example.com")
        assert not Delivery.objects.filter(user=bob, channel=Channel.EMAIL).exists()

        # The operator's webhook: every alert, each signed so the receiver can check it.
        def hook_events():
            return {json.loads(r["body"])["type"] for r in webhook_receiver.requests}

        wait_for(lambda: {"session_interrupted", "station_out_of_service"} <= hook_events())
        for r in webhook_receiver.requests:
            signature = r["headers"]["ChargeDesk-Signature"]
            assert verify(hook.secret, signature, r["body"], now=timezone.now())
            assert not verify("not-the-secret", signature, r["body"], now=timezone.now())
    finally:
        chargers.close()
