"""SMS and mobile push through the gateways: the HTTP provider against a real local server
(JSON, bearer token, its answers mapped to retry or not) and the console provider's log."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from alerts import delivery as engine
from alerts.models import Alert, Channel, Delivery, Notification, PushKind, PushSubscription
from tests.alerts.receivers import Receiver

ETA = dt.datetime(2026, 11, 25, 13, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.SITE_URL = "https://chargedesk.example"
    settings.ALERTS_RETRY_BACKOFF = [60]


def user_delivery(user, channel: str, charge_point=None, *, eta=ETA) -> Delivery:
    alert = Alert.objects.create(
        event_type="session_interrupted",
        dedup_key=f"interrupted:{user.pk}:{channel}",
        charge_point=charge_point,
        title="Charging interrupted at VW-0001",
        body="The charger lost power. 12.3 kWh were delivered.",
        url="/sessions/42/",
        eta=eta,
    )
    notification = Notification.objects.create(
        alert=alert, user=user, event_type=alert.event_type, title=alert.title, body=alert.body, url=alert.url
    )
    return Delivery.objects.create(alert=alert, notification=notification, user=user, channel=channel)


@pytest.fixture
def phone(driver):
    driver.phone = "+31612345678"
    driver.save(update_fields=["phone"])
    return driver.phone


def http_sms(settings, receiver):
    settings.ALERTS_SMS_PROVIDER = "http"
    settings.ALERTS_SMS_HTTP_URL = f"{receiver.url}/sms"
    settings.ALERTS_SMS_HTTP_TOKEN = "sms-token-1"


def test_sms_goes_to_the_http_gateway(settings, driver, phone, charge_point):
    with Receiver((200,)) as receiver:
        http_sms(settings, receiver)
        d = user_delivery(driver, Channel.SMS, charge_point)
        assert engine.send(d.pk) == "sent"
    (request,) = receiver.requests
    assert request["path"] == "/sms"
    assert request["headers"]["Authorization"] == "Bearer sms-token-1"
    assert json.loads(request["body"]) == {
        "to": "+31612345678",
        "text": "Charging interrupted at VW-0001. Back around Wed 25 Nov, 14:30 CET.",
    }
    d.refresh_from_db()
    assert d.target == "+31612345678"


@pytest.mark.parametrize(("status", "outcome"), [(503, "pending"), (429, "pending"), (400, "failed")])
def test_sms_gateway_errors_are_retried_unless_refused(settings, driver, phone, status, outcome):
    with Receiver((status,)) as receiver:
        http_sms(settings, receiver)
        d = user_delivery(driver, Channel.SMS)
        assert engine.send(d.pk) == outcome
    d.refresh_from_db()
    assert d.last_error == f"gateway answered HTTP {status}: status {status} from receiver"


def test_sms_without_a_phone_number_fails_for_good(driver):
    d = user_delivery(driver, Channel.SMS)
    assert engine.send(d.pk) == "failed"
    d.refresh_from_db()
    assert d.last_error == "no phone number"


def test_sms_http_gateway_not_configured_fails_for_good(settings, driver, phone):
    settings.ALERTS_SMS_PROVIDER, settings.ALERTS_SMS_HTTP_URL = "http", ""
    d = user_delivery(driver, Channel.SMS)
    assert engine.send(d.pk) == "failed"
    d.refresh_from_db()
    assert d.last_error == "ALERTS_SMS_HTTP_URL is not set"


def test_sms_console_provider_logs_it(settings, driver, phone, caplog):
    settings.ALERTS_SMS_PROVIDER = "console"
    d = user_delivery(driver, Channel.SMS, eta=None)
    with caplog.at_level(logging.INFO, logger="chargedesk.alerts"):
        assert engine.send(d.pk) == "sent"
    assert "SMS to +31612345678: Charging interrupted at VW-0001." in caplog.text


def device(user, token: str, platform: str = "android") -> PushSubscription:
    return PushSubscription.objects.create(user=user, kind=PushKind.MOBILE, endpoint=token, platform=platform)


def test_mobile_push_to_every_device_forgetting_unknown_tokens(settings, driver):
    kept, gone = device(driver, "token-kept", "ios"), device(driver, "token-gone")
    PushSubscription.objects.create(user=driver, kind=PushKind.WEB, endpoint="https://push.example/x")

    def respond(request):
        return 410 if json.loads(request["body"])["token"] == "token-gone" else 200

    with Receiver(respond=respond) as receiver:
        settings.ALERTS_MOBILE_PUSH_PROVIDER = "http"
        settings.ALERTS_MOBILE_PUSH_HTTP_URL = f"{receiver.url}/push"
        settings.ALERTS_MOBILE_PUSH_HTTP_TOKEN = "push-token-1"
        d = user_delivery(driver, Channel.MOBILE)
        assert engine.send(d.pk) == "sent"

    assert len(receiver.requests) == 2
    sent = {json.loads(r["body"])["token"]: json.loads(r["body"]) for r in receiver.requests}
    assert receiver.requests[0]["headers"]["Authorization"] == "Bearer push-token-1"
    assert sent["token-kept"] == {
        "token": "token-kept",
        "platform": "ios",
        "title": "Charging interrupted at VW-0001",
        "body": "The charger lost power. 12.3 kWh were delivered.",
        "data": {
            "url": "https://chargedesk.example/sessions/42/",
            "event_type": "session_interrupted",
            "tag": f"interrupted:{driver.pk}:mobile",
            "notification_id": d.notification_id,
            "eta": ETA.isoformat(),
        },
    }
    assert not PushSubscription.objects.filter(pk=gone.pk).exists()
    kept.refresh_from_db()
    assert kept.last_used_at is not None
    d.refresh_from_db()
    assert d.target == "2 devices"


def test_mobile_push_gateway_down_is_retried(settings, driver):
    device(driver, "token-1")
    with Receiver((502,)) as receiver:
        settings.ALERTS_MOBILE_PUSH_PROVIDER = "http"
        settings.ALERTS_MOBILE_PUSH_HTTP_URL = receiver.url
        d = user_delivery(driver, Channel.MOBILE)
        assert engine.send(d.pk) == "pending"
    assert "Authorization" not in receiver.requests[0]["headers"]  # no token configured


def test_mobile_push_without_a_device_fails_for_good(driver):
    d = user_delivery(driver, Channel.MOBILE)
    assert engine.send(d.pk) == "failed"
    d.refresh_from_db()
    assert d.last_error == "no mobile device registered"


def test_mobile_push_console_provider_logs_it(settings, driver, caplog):
    device(driver, "token-1")
    settings.ALERTS_MOBILE_PUSH_PROVIDER = "console"
    d = user_delivery(driver, Channel.MOBILE)
    with caplog.at_level(logging.INFO, logger="chargedesk.alerts"):
        assert engine.send(d.pk) == "sent"
    assert "Mobile push to token-1 (android): Charging interrupted at VW-0001" in caplog.text


def test_unknown_provider_setting_fails_for_good(settings, driver, phone):
    settings.ALERTS_SMS_PROVIDER = "carrier-pigeon"
    d = user_delivery(driver, Channel.SMS)
    assert engine.send(d.pk) == "failed"
    d.refresh_from_db()
    assert "expected 'console' or 'http'" in d.last_error
