"""The delivery engine's rules, whatever the channel: what is due, held deliveries, failures
final or retried, a delivery being sent is nobody else's, the Retry button; and the signed
pieces it relies on (webhook signatures, unsubscribe tokens, absolute links)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time

import pytest
from django.core import signing as django_signing
from django.db import connections
from django.utils import timezone

from alerts import delivery as engine
from alerts import signing, unsubscribe
from alerts.channels import TRANSPORTS, Transport, get
from alerts.links import absolute
from alerts.models import Alert, Channel, Delivery, DeliveryStatus, Notification, WebhookEndpoint
from tests.alerts.receivers import Receiver


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.SITE_URL = "https://chargedesk.example/"
    settings.ALERTS_RETRY_BACKOFF = [30, 120]


def inapp_delivery(user, key: str = "k", **fields) -> Delivery:
    alert = Alert.objects.create(event_type="session_started", dedup_key=key, title="Charging started")
    notification = Notification.objects.create(
        alert=alert, user=user, event_type=alert.event_type, title=alert.title
    )
    return Delivery.objects.create(
        alert=alert, notification=notification, user=user, channel=Channel.INAPP, **fields
    )


def test_every_channel_has_a_transport():
    assert set(TRANSPORTS) == set(Channel.values)
    assert all(get(name).name == name for name in Channel.values)


def test_due_lists_waiting_deliveries_whose_time_has_come_oldest_first(driver):
    now = timezone.now()
    first = inapp_delivery(driver, "a")
    held_done = inapp_delivery(driver, "b", status=DeliveryStatus.HELD, next_attempt_at=now)
    inapp_delivery(driver, "c", status=DeliveryStatus.HELD, next_attempt_at=now + dt.timedelta(minutes=5))
    retry_due = inapp_delivery(driver, "d", next_attempt_at=now - dt.timedelta(seconds=1))
    for status in (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED, DeliveryStatus.DIGEST):
        inapp_delivery(driver, status, status=status)

    assert engine.due(now) == [first.pk, held_done.pk, retry_due.pk]
    assert engine.due(now, limit=2) == [first.pk, held_done.pk]


def test_held_delivery_goes_out_when_quiet_hours_end(driver):
    end = timezone.now() + dt.timedelta(hours=7)
    d = inapp_delivery(driver, status=DeliveryStatus.HELD, next_attempt_at=end)
    assert engine.send(d.pk, now=end - dt.timedelta(seconds=1)) is None
    assert engine.send(d.pk, now=end) == DeliveryStatus.SENT
    d.refresh_from_db()
    assert (d.status, d.sent_at, d.attempts) == ("sent", end, 1)


def test_sent_failed_or_missing_deliveries_are_left_alone(driver):
    for status in (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED, DeliveryStatus.DIGEST):
        d = inapp_delivery(driver, status, status=status)
        assert engine.send(d.pk) is None
        d.refresh_from_db()
        assert d.status == status and d.attempts == 0
    assert engine.send(10**9) is None


class Exploding(Transport):
    name = Channel.SMS

    def send(self, delivery):
        raise RuntimeError("provider SDK broke")


def test_an_unexpected_error_in_a_transport_is_retried(driver, monkeypatch, caplog):
    monkeypatch.setitem(TRANSPORTS, Channel.SMS, Exploding())
    alert = Alert.objects.create(event_type="session_started", dedup_key="x", title="Charging started")
    d = Delivery.objects.create(alert=alert, user=driver, channel=Channel.SMS)
    now = timezone.now()

    assert engine.send(d.pk, now=now) == DeliveryStatus.PENDING

    d.refresh_from_db()
    assert (d.attempts, d.last_error) == (1, "RuntimeError: provider SDK broke")
    assert d.next_attempt_at == now + dt.timedelta(seconds=30)
    assert "provider SDK broke" in caplog.text


def test_permanent_failure_is_final_at_once(driver):
    alert = Alert.objects.create(event_type="session_started", dedup_key="x", title="Charging started")
    d = Delivery.objects.create(alert=alert, user=driver, channel=Channel.INAPP)  # no notification row
    assert engine.send(d.pk) == DeliveryStatus.FAILED
    d.refresh_from_db()
    assert (d.attempts, d.last_error, d.next_attempt_at) == (1, "no notification to show", None)
    assert engine.due() == []


def test_retry_now_puts_a_failed_delivery_back_in_line(driver):
    failed = inapp_delivery(driver, "a", status=DeliveryStatus.FAILED, attempts=3, last_error="boom")
    sent = inapp_delivery(driver, "b", status=DeliveryStatus.SENT)
    assert engine.retry_now(failed.pk)
    assert not engine.retry_now(sent.pk)
    assert not engine.retry_now(10**9)
    failed.refresh_from_db()
    assert (failed.status, failed.next_attempt_at) == ("pending", None)
    assert engine.due() == [failed.pk]
    assert engine.send(failed.pk) == DeliveryStatus.SENT


def test_a_delivery_being_sent_is_not_due_for_anyone_else(transactional_db, operator):
    """While the receiver holds the request, a sweep (in another thread, as another worker
    would) neither lists the delivery nor sends it again."""
    endpoint = WebhookEndpoint.objects.create(operator=operator, url="http://127.0.0.1:9/")
    alert = Alert.objects.create(event_type="fault", dedup_key="f", operator=operator, title="Fault")
    d = Delivery.objects.create(alert=alert, endpoint=endpoint, operator=operator, channel=Channel.WEBHOOK)
    seen = {}

    def respond(request):
        try:
            seen["due"] = engine.due()
            seen["send"] = engine.send(d.pk)
        finally:
            connections.close_all()
        return 200

    with Receiver(respond=respond) as receiver:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=receiver.url)
        assert engine.send(d.pk) == DeliveryStatus.SENT
    assert seen == {"due": [], "send": None}
    assert len(receiver.requests) == 1
    d.refresh_from_db()
    assert (d.status, d.attempts) == ("sent", 1)


def test_a_claim_left_by_a_dead_worker_expires(driver):
    now = timezone.now()
    d = inapp_delivery(driver, next_attempt_at=now + engine.LEASE)  # as a claim leaves it
    assert engine.due(now) == []
    assert engine.due(now + engine.LEASE) == [d.pk]


# --- Webhook signatures -------------------------------------------------------------------------


def test_signature_is_hmac_sha256_over_timestamp_and_body():
    body = b'{"type":"fault"}'
    header = signing.sign("s3cret", body, 1700000000)
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert signing.verify("s3cret", header, body, now=1700000000 + 10)
    assert signing.verify("s3cret", header, body, now=dt.datetime.fromtimestamp(1700000010, tz=dt.UTC))
    assert not signing.verify("s3cret", header, body, now=dt.datetime.fromtimestamp(1700000301, tz=dt.UTC))


def test_verify_rejects_old_altered_or_malformed(settings):
    settings.ALERTS_WEBHOOK_TOLERANCE = 300
    body, now = b"{}", int(time.time())
    header = signing.sign("s3cret", body, now - 301)
    assert not signing.verify("s3cret", header, body, now=now)
    assert signing.verify("s3cret", header, body, now=now, tolerance=400)
    fresh = signing.sign("s3cret", body, now)
    assert signing.verify("s3cret", fresh, body)
    assert not signing.verify("s3cret", fresh, b"{ }")
    assert not signing.verify("other", fresh, body)
    for bad in ("", "t=abc,v1=00", f"t={now}", "v1=00", "garbage"):
        assert not signing.verify("s3cret", bad, body)


def test_verify_accepts_any_of_several_signatures():
    body, now = b"{}", int(time.time())
    good = signing.sign("s3cret", body, now).split(",")[1]
    assert signing.verify("s3cret", f"t={now},v1={'0' * 64},{good}", body)


# --- Unsubscribe tokens and links ---------------------------------------------------------------


def test_unsubscribe_token_round_trip():
    token = unsubscribe.make_token(42, "fault", "email")
    assert unsubscribe.read_token(token) == (42, "fault", "email")
    assert unsubscribe.read_token(unsubscribe.make_token(42, None, "sms")) == (42, None, "sms")


def test_unsubscribe_token_cannot_be_forged():
    token = unsubscribe.make_token(42, "fault", "email")
    forged = unsubscribe.make_token(43, "fault", "email").split(":")[0] + ":" + token.split(":")[1]
    with pytest.raises(django_signing.BadSignature):
        unsubscribe.read_token(forged)
    other_salt = django_signing.Signer(salt="something.else").sign_object([42, "fault", "email"])
    with pytest.raises(django_signing.BadSignature):
        unsubscribe.read_token(other_salt)


def test_unsubscribe_url_is_absolute():
    url = unsubscribe.make_url(42, "fault")
    token = url.removeprefix("https://chargedesk.example/alerts/unsubscribe/").removesuffix("/")
    assert unsubscribe.read_token(token) == (42, "fault", "email")


def test_absolute_links(settings):
    assert absolute("/sessions/1/") == "https://chargedesk.example/sessions/1/"
    assert absolute("sessions/1/") == "https://chargedesk.example/sessions/1/"
    assert absolute("https://elsewhere.example/x") == "https://elsewhere.example/x"
    settings.SITE_URL = ""
    assert absolute("/x") == "http://localhost:8000/x"


def test_a_batch_of_in_app_deliveries_costs_the_same_few_queries_however_large(
    db, django_assert_max_num_queries
):
    from alerts.services.notify import raise_alert
    from tests.factories import DriverFactory

    drivers = [DriverFactory() for _ in range(30)]
    raise_alert(
        event_type="station_back_in_service",
        dedup_key="batch",
        title="Back",
        recipients=[d.pk for d in drivers],
    )
    ids = list(Delivery.objects.filter(channel=Channel.INAPP).values_list("pk", flat=True))
    assert len(ids) == 30
    with django_assert_max_num_queries(10):
        statuses = engine.send_many(ids)
    assert set(statuses.values()) == {"sent"}
