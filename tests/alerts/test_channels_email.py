"""Email alerts through a real SMTP server: both parts, the ETA in the station's time, the
alternatives, the link and the one-click unsubscribe; refused and unreachable servers."""

from __future__ import annotations

import datetime as dt
import socket

import pytest

from alerts import delivery as engine
from alerts.models import Alert, Channel, Delivery, Notification
from alerts.unsubscribe import read_token

ETA = dt.datetime(2026, 11, 25, 13, 30, tzinfo=dt.UTC)  # 14:30 in Amsterdam


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.SITE_URL = "https://chargedesk.example"
    settings.ALERTS_RETRY_BACKOFF = [60]


def email_delivery(user, charge_point=None, *, data=None, eta=ETA, title="Central Station is out of service"):
    alert = Alert.objects.create(
        event_type="station_out_of_service",
        dedup_key=f"oos:{user.pk}:{title}",
        operator=charge_point.operator if charge_point else None,
        charge_point=charge_point,
        title=title,
        body="Both connectors at VW-0001 stopped working.",
        url="/map/VW-0001/",
        eta=eta,
        data=data or {},
    )
    notification = Notification.objects.create(
        alert=alert,
        user=user,
        event_type=alert.event_type,
        title=alert.title,
        body=alert.body,
        url=alert.url,
        data=data or {},
    )
    return Delivery.objects.create(
        alert=alert, notification=notification, user=user, operator=alert.operator, channel=Channel.EMAIL
    )


ALTERNATIVES = [
    {
        "name": "Harbour & Docks",
        "address": "1 Quay Road, Amsterdam",
        "distance_km": 1.24,
        "available": True,
        "standards": ["Type 2", "CCS"],
        "url": "/map/NG-0001/",
    },
    {"name": "Market Square", "address": "5 Market", "distance_km": 3, "available": False, "url": ""},
]


def test_email_has_both_parts_eta_alternatives_and_one_click_unsubscribe(smtp_server, driver, charge_point):
    d = email_delivery(driver, charge_point, data={"alternatives": ALTERNATIVES})

    assert engine.send(d.pk) == "sent"

    (mail,) = smtp_server
    assert mail["To"] == "alice@example.com"
    assert mail["Subject"] == "Central Station is out of service"
    unsubscribe = str(mail["List-Unsubscribe"]).strip()  # folded: the URL is long
    assert unsubscribe.startswith("<https://chargedesk.example/alerts/unsubscribe/") and unsubscribe.endswith(
        "/>"
    )
    token = unsubscribe[1:-1].rstrip("/").rsplit("/", 1)[1]
    assert read_token(token) == (driver.pk, "station_out_of_service", "email")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for part in (text, html):
        assert "Both connectors at VW-0001 stopped working." in part
        assert "Service expected back around" in part
        assert "Wed 25 Nov, 14:30 CET" in part
        assert "1 Quay Road, Amsterdam" in part
        assert "1.2 km" in part
        assert "https://chargedesk.example/map/VW-0001/" in part
        assert "https://chargedesk.example/map/NG-0001/" in part
        assert unsubscribe[1:-1] in part
    assert "Harbour & Docks, 1.2 km, available now" in text
    assert "Market Square, 3.0 km, busy" in text
    assert "Harbour &amp; Docks" in html

    d.refresh_from_db()
    assert (d.status, d.target, d.attempts) == ("sent", "alice@example.com", 1)


def test_email_without_eta_or_alternatives_says_neither(smtp_server, driver):
    d = email_delivery(
        driver, eta=None, data={"energy_kwh": 21.456, "duration_minutes": 95, "cost": "9.87 EUR"}
    )
    assert engine.send(d.pk) == "sent"
    text = smtp_server[0].get_body(("plain",)).get_content()
    assert "expected back" not in text and "alternatives" not in text
    assert "Energy: 21.46 kWh" in text
    assert "Duration: 1 h 35 min" in text
    assert "Cost: 9.87 EUR" in text


def test_user_without_email_fails_for_good(driver):
    driver.email = ""
    driver.save(update_fields=["email"])
    d = email_delivery(driver)
    assert engine.send(d.pk) == "failed"
    d.refresh_from_db()
    assert (d.last_error, d.attempts) == ("no email address", 1)


@pytest.fixture
def refusing_smtp_server(settings):
    """A real SMTP server that refuses every recipient (as for an address that does not exist)."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            return "550 5.1.1 No such mailbox"

    controller = Controller(Handler(), hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = False, "", ""
    yield
    controller.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_recipient_fails_for_good(refusing_smtp_server, driver):
    d = email_delivery(driver)
    assert engine.send(d.pk) == "failed"
    d.refresh_from_db()
    assert d.last_error == "recipient refused: 550 5.1.1 No such mailbox"
    assert d.next_attempt_at is None


def test_mail_server_down_is_retried(settings, driver):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", _free_port(), False
    d = email_delivery(driver)
    assert engine.send(d.pk) == "pending"
    d.refresh_from_db()
    assert d.last_error.startswith("SMTP: ConnectionRefusedError")
    assert d.attempts == 1 and d.next_attempt_at is not None
