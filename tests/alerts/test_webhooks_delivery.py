"""Webhooks delivered to a real HTTP receiver that checks our signature as an operator's would:
retried with backoff, the endpoint disabled after failures in a row, and the test-send button."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from alerts import delivery as engine
from alerts import signing
from alerts.models import Alert, Channel, Delivery, DeliveryStatus, WebhookEndpoint
from tests.alerts.receivers import Receiver, closed_port_url


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.SITE_URL = "https://chargedesk.example"
    settings.ALERTS_RETRY_BACKOFF = [30, 120]
    settings.ALERTS_WEBHOOK_DISABLE_AFTER = 10
    settings.ALERTS_WEBHOOK_TIMEOUT = 5


def make_alert(operator, charge_point=None, key="fault:VW-0001:1", **fields) -> Alert:
    values = {
        "event_type": "fault",
        "title": "VW-0001 connector 1 faulted",
        "body": "GroundFailure reported by connector 1.",
        "url": "/stations/VW-0001/",
        "data": {"error_code": "GroundFailure", "connector": 1},
    }
    values.update(fields)
    return Alert.objects.create(dedup_key=key, operator=operator, charge_point=charge_point, **values)


def webhook_delivery(endpoint: WebhookEndpoint, alert: Alert) -> Delivery:
    return Delivery.objects.create(
        alert=alert, endpoint=endpoint, operator=endpoint.operator, channel=Channel.WEBHOOK
    )


@pytest.fixture
def endpoint(operator):
    return WebhookEndpoint.objects.create(operator=operator, url="http://127.0.0.1:9/unused")


def test_webhook_is_posted_signed_and_recorded(endpoint, operator, charge_point):
    eta = timezone.now().replace(microsecond=0) + dt.timedelta(hours=2)
    alert = make_alert(operator, charge_point, eta=eta)
    endpoint.consecutive_failures = 2
    with Receiver(secret=endpoint.secret) as receiver:
        endpoint.url = f"{receiver.url}/hooks/chargedesk"
        endpoint.save()
        d = webhook_delivery(endpoint, alert)

        assert engine.send(d.pk) == DeliveryStatus.SENT

    (request,) = receiver.requests
    assert request["path"] == "/hooks/chargedesk"
    headers = request["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["ChargeDesk-Event"] == "fault"
    assert headers["ChargeDesk-Delivery"] == str(d.pk)
    assert signing.verify(endpoint.secret, headers["ChargeDesk-Signature"], request["body"])
    assert not signing.verify("another-secret", headers["ChargeDesk-Signature"], request["body"])
    document = json.loads(request["body"])
    assert document == {
        "id": d.pk,
        "type": "fault",
        "created_at": alert.created_at.isoformat(),
        "operator": "voltway",
        "title": "VW-0001 connector 1 faulted",
        "body": "GroundFailure reported by connector 1.",
        "url": "https://chargedesk.example/stations/VW-0001/",
        "eta": eta.isoformat(),
        "data": {"error_code": "GroundFailure", "connector": 1},
    }
    d.refresh_from_db()
    assert (d.status, d.attempts, d.last_error, d.target) == ("sent", 1, "", endpoint.url)
    assert d.sent_at is not None
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0
    assert endpoint.last_success_at == d.sent_at


def test_failing_receiver_is_retried_with_backoff(endpoint, operator):
    now = timezone.now()
    with Receiver((500, 503, 200)) as receiver:
        endpoint.url = receiver.url
        endpoint.save()
        d = webhook_delivery(endpoint, make_alert(operator))

        assert engine.send(d.pk, now=now) == DeliveryStatus.PENDING
        d.refresh_from_db()
        assert d.attempts == 1
        assert d.next_attempt_at == now + dt.timedelta(seconds=30)
        assert d.last_error == "HTTP 500: status 500 from receiver"

        assert engine.send(d.pk, now=now + dt.timedelta(seconds=29)) is None  # not due yet
        assert engine.due(now + dt.timedelta(seconds=29)) == []
        assert engine.due(now + dt.timedelta(seconds=30)) == [d.pk]

        assert engine.send(d.pk, now=now + dt.timedelta(seconds=30)) == DeliveryStatus.PENDING
        d.refresh_from_db()
        assert (d.attempts, d.last_error) == (2, "HTTP 503: status 503 from receiver")
        assert d.next_attempt_at == now + dt.timedelta(seconds=150)

        assert engine.send(d.pk, now=now + dt.timedelta(seconds=150)) == DeliveryStatus.SENT
    assert len(receiver.requests) == 3
    d.refresh_from_db()
    assert (d.status, d.attempts, d.last_error, d.next_attempt_at) == ("sent", 3, "", None)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.is_active


def test_delivery_gives_up_after_the_last_backoff(endpoint, operator, settings):
    settings.ALERTS_RETRY_BACKOFF = [0, 0]
    with Receiver((500,)) as receiver:
        endpoint.url = receiver.url
        endpoint.save()
        d = webhook_delivery(endpoint, make_alert(operator))
        statuses = [engine.send(d.pk) for _ in range(4)]

    assert statuses == ["pending", "pending", "failed", None]
    assert len(receiver.requests) == 3
    d.refresh_from_db()
    assert d.last_error == "HTTP 500: status 500 from receiver (gave up after 3 attempts)"
    assert engine.due() == []


def test_endpoint_is_disabled_after_failures_in_a_row(endpoint, operator, settings):
    settings.ALERTS_RETRY_BACKOFF = [0] * 10
    settings.ALERTS_WEBHOOK_DISABLE_AFTER = 3
    with Receiver((500,)) as receiver:
        endpoint.url = receiver.url
        endpoint.save()
        first = webhook_delivery(endpoint, make_alert(operator, key="a"))
        waiting = webhook_delivery(endpoint, make_alert(operator, key="b"))

        assert engine.send(first.pk) == "pending"
        assert engine.send(first.pk) == "pending"
        endpoint.refresh_from_db()
        assert endpoint.consecutive_failures == 2 and endpoint.is_active
        assert engine.send(first.pk) == "failed"

        later = webhook_delivery(endpoint, make_alert(operator, key="c"))
        assert engine.send(later.pk) == DeliveryStatus.SKIPPED
    assert len(receiver.requests) == 3

    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert endpoint.disabled_at is not None
    assert (
        endpoint.disabled_reason == "3 failed deliveries in a row; last: HTTP 500: status 500 from receiver"
    )
    first.refresh_from_db()
    waiting.refresh_from_db()
    later.refresh_from_db()
    assert (first.status, first.last_error) == (
        "failed",
        "HTTP 500: status 500 from receiver; endpoint disabled",
    )
    assert (waiting.status, waiting.last_error) == ("failed", "endpoint disabled")
    assert (later.status, later.last_error) == ("skipped", "endpoint disabled")
    # Retrying waits for the operator to re-enable the endpoint.
    assert not engine.retry_now(first.pk)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=True, consecutive_failures=0)
    assert engine.retry_now(first.pk)
    first.refresh_from_db()
    assert (first.status, first.next_attempt_at) == ("pending", None)


def test_a_success_between_failures_resets_the_count(endpoint, operator, settings):
    settings.ALERTS_RETRY_BACKOFF = [0] * 10
    settings.ALERTS_WEBHOOK_DISABLE_AFTER = 3
    with Receiver((500, 500, 200, 500, 500)) as receiver:
        endpoint.url = receiver.url
        endpoint.save()
        for key in "abcde":
            engine.send(webhook_delivery(endpoint, make_alert(operator, key=key)).pk)
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.consecutive_failures == 2


def test_410_gone_fails_at_once_and_disables_the_endpoint(endpoint, operator):
    with Receiver((410,)) as receiver:
        endpoint.url = receiver.url
        endpoint.save()
        d = webhook_delivery(endpoint, make_alert(operator))
        assert engine.send(d.pk) == DeliveryStatus.FAILED
    d.refresh_from_db()
    assert d.attempts == 1
    assert d.last_error.startswith("HTTP 410")
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert "410" in endpoint.disabled_reason


def test_unreachable_receiver_is_retried(endpoint, operator):
    endpoint.url = closed_port_url()
    endpoint.save()
    d = webhook_delivery(endpoint, make_alert(operator))
    assert engine.send(d.pk) == DeliveryStatus.PENDING
    d.refresh_from_db()
    assert d.last_error.startswith("ConnectionError")
    assert d.target == endpoint.url


def test_test_send_pings_without_recording(endpoint):
    with Receiver(secret=endpoint.secret) as receiver:
        endpoint.url = receiver.url
        endpoint.save()
        assert engine.test_send(endpoint) == (True, "HTTP 200")
    (request,) = receiver.requests
    assert request["headers"]["ChargeDesk-Event"] == "ping"
    document = json.loads(request["body"])
    assert (document["type"], document["operator"], document["eta"]) == ("ping", "voltway", None)
    assert not Delivery.objects.exists()


def test_test_send_reports_a_failure_without_counting_it(endpoint):
    with Receiver((503,)) as receiver:
        endpoint.url = receiver.url
        endpoint.save()
        assert engine.test_send(endpoint) == (False, "HTTP 503: status 503 from receiver")
    endpoint.url = closed_port_url()
    ok, error = engine.test_send(endpoint)
    assert not ok and error.startswith("ConnectionError")
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.is_active


def test_the_operator_admins_hear_when_their_endpoint_is_disabled(endpoint, operator, settings):
    from alerts.models import Notification
    from tests.factories import OperatorAdminFactory

    admin = OperatorAdminFactory(operator=operator)
    settings.ALERTS_RETRY_BACKOFF = []
    settings.ALERTS_WEBHOOK_DISABLE_AFTER = 1
    with Receiver((500,)) as receiver:
        endpoint.url = receiver.url
        endpoint.save()
        engine.send(webhook_delivery(endpoint, make_alert(operator, key="x")).pk)
    told = Notification.objects.get(user=admin, event_type="webhook_disabled")
    assert receiver.url in told.title and "HTTP 500" in told.body


def test_a_receiver_on_an_internal_address_is_refused_in_production(endpoint, operator, settings):
    settings.ALERTS_WEBHOOK_ALLOW_PRIVATE = False
    with Receiver((200,)) as receiver:
        endpoint.url = receiver.url
        endpoint.save()
        d = webhook_delivery(endpoint, make_alert(operator, key="y"))
        assert engine.send(d.pk) == "failed"
        ok, detail = engine.test_send(endpoint)
    assert receiver.requests == []
    d.refresh_from_db()
    assert "internal address" in d.last_error
    assert not ok and "127.0.0.1" in detail
