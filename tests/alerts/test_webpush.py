"""Web push against a local push service: the message is encrypted for the browser's keys
(decrypted here as the browser would), signed with our VAPID key, and a subscription the
push service says is gone (404/410) is forgotten."""

from __future__ import annotations

import base64
import json
import os

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from alerts import delivery as engine
from alerts import vapid
from alerts.models import Alert, Channel, Delivery, Notification, PushKind, PushSubscription
from tests.alerts.receivers import Receiver


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Browser:
    """A browser's side of a push subscription: its ECDH key pair and auth secret."""

    def __init__(self):
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.p256dh = b64url(public)

    def subscribe(self, user, endpoint: str) -> PushSubscription:
        return PushSubscription.objects.create(
            user=user, kind=PushKind.WEB, endpoint=endpoint, p256dh=self.p256dh, auth=b64url(self.auth)
        )

    def decrypt(self, body: bytes) -> dict:
        plain = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)


@pytest.fixture(autouse=True)
def vapid_keys(settings):
    settings.SITE_URL = "https://chargedesk.example"
    settings.ALERTS_RETRY_BACKOFF = [60]
    settings.ALERTS_VAPID_SUBJECT = "mailto:ops@chargedesk.example"
    settings.ALERTS_VAPID_PRIVATE_KEY, settings.ALERTS_VAPID_PUBLIC_KEY = vapid.generate()
    return settings.ALERTS_VAPID_PUBLIC_KEY


def push_delivery(user, event_type: str = "session_interrupted") -> Delivery:
    alert = Alert.objects.create(
        event_type=event_type,
        dedup_key=f"{event_type}:{user.pk}",
        title="Charging interrupted at VW-0001",
        body="The charger lost power.",
        url="/sessions/42/",
    )
    notification = Notification.objects.create(
        alert=alert, user=user, event_type=alert.event_type, title=alert.title, body=alert.body, url=alert.url
    )
    return Delivery.objects.create(alert=alert, notification=notification, user=user, channel=Channel.PUSH)


def test_push_is_encrypted_for_the_browser_and_signed_with_vapid(driver, vapid_keys):
    browser = Browser()
    with Receiver((201,)) as push_service:
        subscription = browser.subscribe(driver, f"{push_service.url}/wpush/v2/abc123")
        d = push_delivery(driver)
        assert engine.send(d.pk) == "sent"

    (request,) = push_service.requests
    assert request["path"] == "/wpush/v2/abc123"
    assert browser.decrypt(request["body"]) == {
        "title": "Charging interrupted at VW-0001",
        "body": "The charger lost power.",
        "url": "https://chargedesk.example/sessions/42/",
        "tag": f"session_interrupted:{driver.pk}",
    }
    headers = request["headers"]
    assert headers["Content-Encoding"] == "aes128gcm"
    assert headers["Urgency"] == "high"
    assert int(headers["TTL"]) > 0
    authorization = headers["Authorization"]
    assert authorization.startswith("vapid t=") and f"k={vapid_keys}" in authorization
    assert Vapid02.verify(authorization)
    subscription.refresh_from_db()
    assert subscription.last_used_at is not None
    d.refresh_from_db()
    assert d.target == "1 browser"


def test_a_gone_subscription_is_forgotten_and_the_others_still_get_it(driver):
    old, current = Browser(), Browser()

    def respond(request):
        return 410 if request["path"] == "/old" else 201

    with Receiver(respond=respond) as push_service:
        gone = old.subscribe(driver, f"{push_service.url}/old")
        kept = current.subscribe(driver, f"{push_service.url}/current")
        d = push_delivery(driver, "session_finished")
        assert engine.send(d.pk) == "sent"

    assert not PushSubscription.objects.filter(pk=gone.pk).exists()
    assert PushSubscription.objects.filter(pk=kept.pk).exists()
    (delivered,) = [r for r in push_service.requests if r["path"] == "/current"]
    assert delivered["headers"]["Urgency"] == "normal"
    assert current.decrypt(delivered["body"])["title"] == "Charging interrupted at VW-0001"


@pytest.mark.parametrize("status", [404, 410])
def test_only_gone_subscriptions_fail_for_good(driver, status):
    with Receiver((status,)) as push_service:
        subscription = Browser().subscribe(driver, f"{push_service.url}/x")
        d = push_delivery(driver)
        assert engine.send(d.pk) == "failed"
    assert not PushSubscription.objects.filter(pk=subscription.pk).exists()
    d.refresh_from_db()
    assert d.last_error == "no browser subscribed (all subscriptions expired)"


def test_no_browser_subscribed_fails_for_good(driver):
    PushSubscription.objects.create(user=driver, kind=PushKind.MOBILE, endpoint="device-token")
    d = push_delivery(driver)
    assert engine.send(d.pk) == "failed"
    d.refresh_from_db()
    assert d.last_error == "no browser subscribed"


def test_push_service_trouble_is_retried_and_keeps_the_subscription(driver):
    with Receiver((503,)) as push_service:
        subscription = Browser().subscribe(driver, f"{push_service.url}/x")
        d = push_delivery(driver)
        assert engine.send(d.pk) == "pending"
    assert PushSubscription.objects.filter(pk=subscription.pk).exists()
    d.refresh_from_db()
    assert d.last_error == "push service: HTTP 503"


def test_vapid_keys_from_settings(settings):
    assert vapid.keys() == (settings.ALERTS_VAPID_PRIVATE_KEY, settings.ALERTS_VAPID_PUBLIC_KEY)


def test_vapid_keys_made_once_and_kept(settings, tmp_path):
    settings.ALERTS_VAPID_PRIVATE_KEY = settings.ALERTS_VAPID_PUBLIC_KEY = ""
    settings.BASE_DIR = tmp_path
    private, public = vapid.keys()
    assert vapid.keys() == (private, public)
    stored = json.loads((tmp_path / "var" / "vapid.json").read_text())
    assert stored == {"private_key": private, "public_key": public}
    assert oct((tmp_path / "var" / "vapid.json").stat().st_mode & 0o777) == "0o600"
    # The pair belongs together: the public key browsers get is the private key's.
    signer = Vapid02.from_string(private)
    assert (
        b64url(
            signer.public_key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )
        == public
    )


def test_vapid_keys_required_in_production(settings, tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    settings.ALERTS_VAPID_PRIVATE_KEY = settings.ALERTS_VAPID_PUBLIC_KEY = ""
    settings.PRODUCTION = True
    settings.BASE_DIR = tmp_path
    with pytest.raises(ImproperlyConfigured):
        vapid.keys()
    assert not (tmp_path / "var").exists()


def test_quiet_hours_hold_a_push_back_until_they_end(driver):
    import datetime as dt

    from django.utils import timezone

    from alerts.models import AlertProfile
    from alerts.services.notify import raise_alert

    now = timezone.now()
    AlertProfile.objects.create(
        user=driver,
        quiet_hours_start=(now - dt.timedelta(hours=1)).time(),
        quiet_hours_end=(now + dt.timedelta(hours=1)).time(),
    )
    browser = Browser()
    with Receiver((201,)) as push_service:
        browser.subscribe(driver, f"{push_service.url}/wpush/v2/quiet")
        raise_alert(
            event_type="session_interrupted",
            dedup_key="quiet",
            title="Charging interrupted",
            recipients=[driver.pk],
            now=now,
        )
        push = Delivery.objects.get(user=driver, channel=Channel.PUSH)
        assert push.status == "held"
        for pk in engine.due(now=now):  # the in-app and email deliveries go at once
            engine.send(pk, now=now)
        assert push_service.requests == []
        assert Delivery.objects.get(user=driver, channel=Channel.EMAIL).status == "sent"

        later = push.next_attempt_at + dt.timedelta(seconds=1)
        assert push.pk in engine.due(now=later)
        assert engine.send(push.pk, now=later) == "sent"
    assert browser.decrypt(push_service.requests[0]["body"])["title"] == "Charging interrupted"
