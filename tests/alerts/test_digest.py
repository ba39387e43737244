"""Email digests: what waits for a user goes out as one email once the oldest has waited the
user's period; each is then sent, and nothing goes twice."""

from __future__ import annotations

import datetime as dt
import socket

import pytest

from alerts import delivery as engine
from alerts.models import Alert, AlertProfile, Channel, Delivery, DeliveryStatus, Digest, Notification
from alerts.unsubscribe import read_token

NOW = dt.datetime(2026, 11, 25, 18, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.SITE_URL = "https://chargedesk.example"
    settings.ALERTS_RETRY_BACKOFF = [60, 600]


def waiting(user, title: str, *, minutes_ago: int, charge_point=None, eta=None) -> Delivery:
    alert = Alert.objects.create(
        event_type="fault",
        dedup_key=f"{user.pk}:{title}",
        operator=charge_point.operator if charge_point else None,
        charge_point=charge_point,
        title=title,
        body=f"{title}: details.",
        url=f"/incidents/{title.split()[0]}/",
        eta=eta,
    )
    notification = Notification.objects.create(
        alert=alert, user=user, event_type="fault", title=title, body=alert.body, url=alert.url
    )
    d = Delivery.objects.create(
        alert=alert,
        notification=notification,
        user=user,
        operator=alert.operator,
        channel=Channel.EMAIL,
        status=DeliveryStatus.DIGEST,
    )
    Delivery.objects.filter(pk=d.pk).update(created_at=NOW - dt.timedelta(minutes=minutes_ago))
    return d


def profile(user, digest: str, **fields) -> AlertProfile:
    p, _ = AlertProfile.objects.get_or_create(user=user)
    p.digest = digest
    for name, value in fields.items():
        setattr(p, name, value)
    p.save()
    return p


def test_hourly_digest_waits_an_hour_then_sends_everything_once(smtp_server, operator_admin, charge_point):
    profile(operator_admin, Digest.HOURLY, time_zone="Europe/Amsterdam")
    eta = NOW + dt.timedelta(hours=3)
    batch = [
        waiting(operator_admin, "VW-0001 faulted", minutes_ago=50, charge_point=charge_point, eta=eta),
        waiting(operator_admin, "VW-0002 offline", minutes_ago=20),
        waiting(operator_admin, "VW-0003 under-performing", minutes_ago=5),
    ]

    assert engine.send_digests(NOW) == 0
    assert smtp_server == []

    later = NOW + dt.timedelta(minutes=10)
    assert engine.send_digests(later) == 1
    assert engine.send_digests(later) == 0

    (mail,) = smtp_server
    assert mail["To"] == "admin@voltway.example"
    assert mail["Subject"] == "ChargeDesk: 3 alerts"
    token = str(mail["List-Unsubscribe"]).strip()[1:-1].rstrip("/").rsplit("/", 1)[1]
    assert read_token(token) == (operator_admin.pk, None, "email")
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for part in (text, html):
        assert (
            part.index("VW-0001 faulted")
            < part.index("VW-0002 offline")
            < part.index("VW-0003 under-performing")
        )
        assert "https://chargedesk.example/incidents/VW-0002/" in part
        assert "Service expected back around Wed 25 Nov, 22:00 CET" in part
        assert "Wed 25 Nov, 18:10 CET" in part  # when the first one happened, in the user's zone
        assert "You chose an hourly digest" in part
    for d in batch:
        d.refresh_from_db()
        assert (d.status, d.sent_at, d.attempts, d.target) == ("sent", later, 1, "admin@voltway.example")


def test_each_user_on_their_own_period(smtp_server, operator_admin, technician, driver):
    profile(operator_admin, Digest.DAILY)
    waiting(operator_admin, "A daily one", minutes_ago=23 * 60)
    profile(technician, Digest.IMMEDIATE, max_per_hour=5)  # throttled: within the hour
    waiting(technician, "Over the limit", minutes_ago=61)
    waiting(driver, "No profile yet", minutes_ago=59)  # the default: immediate, throttled

    assert engine.send_digests(NOW) == 1
    (mail,) = smtp_server
    assert mail["To"] == "tech@voltway.example"
    assert "beyond your limit of 5 emails an hour" in mail.get_body(("plain",)).get_content()

    assert engine.send_digests(NOW + dt.timedelta(hours=1)) == 2
    assert {m["To"] for m in smtp_server[1:]} == {"admin@voltway.example", "alice@example.com"}
    assert not Delivery.objects.filter(status=DeliveryStatus.DIGEST).exists()


def test_digest_queries_do_not_grow_with_deliveries(
    smtp_server, operator_admin, technician, django_assert_max_num_queries
):
    for user in (operator_admin, technician):
        profile(user, Digest.HOURLY)
        for n in range(8):
            waiting(user, f"Alert {n}", minutes_ago=70 + n)
    # The users; then for each: claim (savepoint, select, lease, release) and mark sent.
    with django_assert_max_num_queries(1 + 2 * 5):
        assert engine.send_digests(NOW) == 2
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 16


def test_only_email_digests_are_sent(smtp_server, operator_admin):
    d = waiting(operator_admin, "In-app", minutes_ago=120)
    Delivery.objects.filter(pk=d.pk).update(channel=Channel.INAPP)
    assert engine.send_digests(NOW) == 0


def test_mail_server_down_keeps_the_digest_waiting(settings, operator_admin):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", s.getsockname()[1]
    settings.EMAIL_USE_TLS = False
    d = waiting(operator_admin, "Fault", minutes_ago=90)

    assert engine.send_digests(NOW) == 0

    d.refresh_from_db()
    assert (d.status, d.attempts) == ("digest", 1)
    assert d.last_error.startswith("SMTP: ConnectionRefusedError")
    assert d.next_attempt_at == NOW + dt.timedelta(seconds=60)
    assert engine.send_digests(NOW + dt.timedelta(seconds=30)) == 0  # not before its retry time
    d.refresh_from_db()
    assert d.attempts == 1


def test_digest_to_a_user_without_email_fails(operator_admin):
    operator_admin.email = ""
    operator_admin.save(update_fields=["email"])
    d = waiting(operator_admin, "Fault", minutes_ago=90)
    assert engine.send_digests(NOW) == 0
    d.refresh_from_db()
    assert (d.status, d.last_error) == ("failed", "no email address")
