"""The delivery engine: sends one ``Delivery`` through its channel and records the outcome
(the delivery log operators audit), retries with backoff, disables webhook endpoints that keep
failing, and sends the email digests.

Celery tasks (``alerts/tasks.py``) call these; every function is safe to run twice and from
several workers at once. A delivery being sent is *claimed*: its row is locked just long enough
to push ``next_attempt_at`` a lease ahead, so no other worker or sweep picks it up while the
network call runs outside any transaction (a slow receiver must not hold a database lock).
A worker that dies mid-send leaves the lease to expire, and the delivery is tried again.
"""

from __future__ import annotations

import datetime as dt
import logging

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from alerts.channels import TRANSPORTS
from alerts.channels.base import TransportError
from alerts.channels.content import format_local, message, zone_of
from alerts.channels.email import send_email
from alerts.channels.webhook import EndpointGone, outcome, post
from alerts.links import absolute
from alerts.models import Channel, Delivery, DeliveryStatus, Digest, WebhookEndpoint
from alerts.unsubscribe import make_url

__all__ = ["absolute", "due", "retry_now", "send", "send_digests", "send_many", "test_send"]

logger = logging.getLogger("chargedesk.alerts")

# Longer than any transport may take (SMTP, a push service, a webhook receiver).
LEASE = dt.timedelta(minutes=5)
WAITING = (DeliveryStatus.PENDING, DeliveryStatus.HELD)
DIGEST_PERIODS = {
    Digest.HOURLY: dt.timedelta(hours=1),
    Digest.DAILY: dt.timedelta(hours=24),
    # Immediate, but over the hourly limit: what waits goes out within the hour.
    Digest.IMMEDIATE: dt.timedelta(hours=1),
}
_RELATED = (
    "alert",
    "alert__charge_point__site",
    "notification",
    "user",
    "endpoint",
    "endpoint__operator",
    "operator",
)


def _due(now: dt.datetime) -> Q:
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)


def _claim(delivery_ids: list[int], now: dt.datetime) -> list[Delivery]:
    """The due ones among these deliveries, locked and leased to this caller (those another
    worker holds are left to it). Deliveries to a disabled endpoint come back SKIPPED."""
    with transaction.atomic():
        deliveries = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related(*_RELATED)
            .filter(pk__in=delivery_ids, status__in=WAITING)
            .filter(_due(now))
            .order_by("pk")
        )
        skipped = [d for d in deliveries if d.endpoint_id and not d.endpoint.is_active]
        for d in skipped:
            d.status, d.last_error, d.next_attempt_at = DeliveryStatus.SKIPPED, "endpoint disabled", None
        if skipped:
            Delivery.objects.filter(pk__in=[d.pk for d in skipped]).update(
                status=DeliveryStatus.SKIPPED,
                last_error="endpoint disabled",
                next_attempt_at=None,
                updated_at=timezone.now(),
            )
        leased = [d.pk for d in deliveries if d.status != DeliveryStatus.SKIPPED]
        if leased:
            Delivery.objects.filter(pk__in=leased).update(next_attempt_at=now + LEASE)
        return deliveries


def _attempt(delivery: Delivery) -> TransportError | None:
    transport = TRANSPORTS.get(delivery.channel)
    if transport is None:
        return TransportError(f"no transport for channel {delivery.channel!r}", permanent=True)
    try:
        transport.send(delivery)
    except TransportError as error:
        return error
    except Exception as error:
        # A bug or an unforeseen library error: logged in full, and retried like any
        # passing trouble so that a fix deployed meanwhile still delivers.
        logger.exception("delivery %s (%s) raised", delivery.pk, delivery.channel)
        return TransportError(f"{type(error).__name__}: {error}")
    return None


def send(delivery_id: int, *, now: dt.datetime | None = None) -> str | None:
    """Send one delivery if it is due (pending, or held and its time has come) and nobody else
    is sending it. Returns its new status, or None when there was nothing to do. Transport
    failures are recorded, never raised."""
    return send_many([delivery_id], now=now).get(delivery_id)


def send_many(delivery_ids: list[int], *, now: dt.datetime | None = None) -> dict[int, str]:
    """Send a batch (a Celery task's share of a fan-out): claimed in one transaction, sent one
    by one outside any, the outcomes recorded in one more — two commits for the batch instead
    of two per delivery. Returns each handled delivery's new status."""
    now = now or timezone.now()
    outcome: dict[int, str] = {}
    sent: list[Delivery] = []
    failed: list[tuple[Delivery, TransportError]] = []
    claimed = _claim(list(delivery_ids), now)
    targets = {d.pk: d.target for d in claimed}
    by_channel: dict[str, list[Delivery]] = {}
    for d in claimed:
        if d.status != DeliveryStatus.SKIPPED:
            by_channel.setdefault(d.channel, []).append(d)
    for channel, batch in by_channel.items():
        transport = TRANSPORTS.get(channel)
        if transport is not None:
            try:
                transport.prepare(batch)
            except Exception:  # only a speed-up: each send can still read what it needs
                logger.exception("preparing %s %s deliveries failed", len(batch), channel)
    for delivery in claimed:
        if delivery.status == DeliveryStatus.SKIPPED:
            outcome[delivery.pk] = delivery.status
            continue
        error = _attempt(delivery)
        if error is None:
            sent.append(delivery)
        else:
            failed.append((delivery, error))
    with transaction.atomic():
        if sent:
            _record_successes(sent, now, targets)
            outcome.update(dict.fromkeys((d.pk for d in sent), DeliveryStatus.SENT))
        for delivery, error in failed:
            outcome[delivery.pk] = _record_failure(delivery, error, now)
    return outcome


def _record_successes(deliveries: list[Delivery], now: dt.datetime, targets: dict[int, str]) -> None:
    """One UPDATE for the batch; a second only for the rows whose transport named a new
    target (``targets``: each row's target as claimed)."""
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
        status=DeliveryStatus.SENT,
        sent_at=now,
        attempts=F("attempts") + 1,
        last_error="",
        next_attempt_at=None,
        updated_at=timezone.now(),
    )
    moved = [d for d in deliveries if d.target != targets.get(d.pk)]
    for d in moved:
        d.target = d.target[:500]
    if moved:
        Delivery.objects.bulk_update(moved, ["target"], batch_size=500)
    endpoints = {d.endpoint_id for d in deliveries if d.endpoint_id}
    if endpoints:
        WebhookEndpoint.objects.filter(pk__in=endpoints).update(consecutive_failures=0, last_success_at=now)
    for d in deliveries:
        logger.info("delivery %s sent by %s to %s", d.pk, d.channel, d.target)


def _record_failure(delivery: Delivery, error: TransportError, now: dt.datetime) -> str:
    attempts = delivery.attempts + 1
    backoff = settings.ALERTS_RETRY_BACKOFF
    last_error, next_attempt_at = error.message, None
    if error.permanent:
        status = DeliveryStatus.FAILED
    elif attempts <= len(backoff):
        status = DeliveryStatus.PENDING
        next_attempt_at = now + dt.timedelta(seconds=backoff[attempts - 1])
    else:
        status = DeliveryStatus.FAILED
        last_error = f"{error.message} (gave up after {attempts} attempts)"
    if delivery.endpoint_id and _count_endpoint_failure(delivery, error, now):
        status, next_attempt_at = DeliveryStatus.FAILED, None
        last_error = f"{last_error}; endpoint disabled"
    # Only if still waiting: the endpoint may have been disabled by another worker meanwhile,
    # and its verdict (failed, "endpoint disabled") stands.
    Delivery.objects.filter(pk=delivery.pk, status__in=WAITING).update(
        status=status,
        attempts=attempts,
        last_error=last_error,
        next_attempt_at=next_attempt_at,
        target=delivery.target[:500],
        updated_at=timezone.now(),
    )
    logger.warning(
        "delivery %s by %s to %s failed (attempt %s, %s): %s",
        delivery.pk,
        delivery.channel,
        delivery.target,
        attempts,
        "will retry" if status == DeliveryStatus.PENDING else "final",
        error.message,
    )
    return status


def _count_endpoint_failure(delivery: Delivery, error: TransportError, now: dt.datetime) -> bool:
    """One more failure in a row for the delivery's endpoint; disables it at the limit (or at
    once when it answered 410 Gone). Returns whether the endpoint is now disabled."""
    endpoints = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
    endpoints.update(consecutive_failures=F("consecutive_failures") + 1)
    failures = endpoints.values_list("consecutive_failures", flat=True).first() or 0
    if isinstance(error, EndpointGone):
        reason = f"the receiver answered {error.message}"
    elif failures >= settings.ALERTS_WEBHOOK_DISABLE_AFTER:
        reason = f"{failures} failed deliveries in a row; last: {error.message}"
    else:
        return False
    if endpoints.filter(is_active=True).update(
        is_active=False, disabled_at=now, disabled_reason=reason[:300]
    ):
        stranded = Delivery.objects.filter(endpoint_id=delivery.endpoint_id, status__in=WAITING).exclude(
            pk=delivery.pk
        )
        count = stranded.update(
            status=DeliveryStatus.FAILED,
            last_error="endpoint disabled",
            next_attempt_at=None,
            updated_at=timezone.now(),
        )
        logger.warning(
            "webhook endpoint %s disabled (%s); %s waiting deliveries failed",
            delivery.endpoint_id,
            reason,
            count,
        )
        _tell_operator_disabled(delivery.endpoint_id, reason, now)
    return True


def _tell_operator_disabled(endpoint_id: int, reason: str, now: dt.datetime) -> None:
    """The operator's admins hear that their receiver gets nothing more until re-enabled."""
    from alerts import selectors
    from alerts.services.notify import raise_alert
    from stations.models.accounts import Role

    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return
    raise_alert(
        event_type="webhook_disabled",
        dedup_key=f"webhook:{endpoint.pk}:disabled:{now.isoformat()}",
        title=f"Webhook disabled: {endpoint.url}"[:200],
        body=f"Deliveries to {endpoint.url} stopped: {reason}. Fix the receiver, then enable it again "
        "on the Webhooks page (a test send tells you whether it answers).",
        url="/alerts/webhooks/",
        recipients=selectors.operator_staff(endpoint.operator_id, roles=(Role.OPERATOR_ADMIN,)),
        operator_id=endpoint.operator_id,
        data={"endpoint_id": endpoint.pk, "url": endpoint.url, "reason": reason},
        now=now,
    )


def due(now: dt.datetime | None = None, limit: int = 1000) -> list[int]:
    """Ids of the deliveries to send now (pending or held, whose time has come), oldest first."""
    now = now or timezone.now()
    queryset = Delivery.objects.filter(status__in=WAITING).filter(_due(now)).order_by("created_at", "pk")
    return list(queryset.values_list("pk", flat=True)[:limit])


def retry_now(delivery_id: int) -> bool:
    """Put a failed delivery back in line (an operator's Retry button). Not one to a disabled
    endpoint: re-enable the endpoint first. Returns whether it did."""
    retried = (
        Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.FAILED)
        .filter(Q(endpoint__isnull=True) | Q(endpoint__is_active=True))
        .update(status=DeliveryStatus.PENDING, next_attempt_at=None, updated_at=timezone.now())
    )
    return retried == 1


def test_send(endpoint: WebhookEndpoint) -> tuple[bool, str]:
    """POST a signed ``ping`` event to ``endpoint`` now (the settings page's test button).
    Not recorded as a delivery and not counted toward disabling. Returns (ok, what happened)."""
    document = {
        "id": 0,
        "type": "ping",
        "created_at": timezone.now().isoformat(),
        "operator": endpoint.operator.slug,
        "title": "Test event from ChargeDesk",
        "body": "Your webhook endpoint is reachable and can check our signature.",
        "url": absolute("/"),
        "eta": None,
        "data": {},
    }
    try:
        response = post(endpoint, document, delivery_id="ping")
    except requests.RequestException as error:
        return False, f"{type(error).__name__}: {error}"
    except TransportError as error:  # refused before sending (an internal address)
        return False, error.message
    return 200 <= response.status_code < 300, outcome(response)


# --- Digests ----------------------------------------------------------------------------------


def send_digests(now: dt.datetime | None = None) -> int:
    """Email each user whose oldest digest-waiting alert is older than their digest period one
    message listing everything waiting. Returns how many emails went out."""
    now = now or timezone.now()
    waiting = Delivery.objects.filter(status=DeliveryStatus.DIGEST, channel=Channel.EMAIL, user__isnull=False)
    users = waiting.values(
        "user",
        "user__alert_profile__digest",
        "user__alert_profile__time_zone",
        "user__alert_profile__max_per_hour",
    ).annotate(oldest=Min("created_at"))
    sent = 0
    for row in users:
        period = row["user__alert_profile__digest"] or Digest.IMMEDIATE
        if row["oldest"] > now - DIGEST_PERIODS.get(period, DIGEST_PERIODS[Digest.IMMEDIATE]):
            continue
        sent += _send_digest(row, period, now)
    return sent


def _claim_digest(user_id: int, now: dt.datetime) -> list[Delivery]:
    with transaction.atomic():
        batch = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("alert", "alert__charge_point__site", "notification", "user")
            .filter(user_id=user_id, status=DeliveryStatus.DIGEST, channel=Channel.EMAIL)
            .filter(_due(now))
            .order_by("created_at", "pk")
        )
        if batch:
            Delivery.objects.filter(pk__in=[d.pk for d in batch]).update(next_attempt_at=now + LEASE)
    return batch


def _digest_reason(period: str, max_per_hour: int | None) -> str:
    if period == Digest.IMMEDIATE:
        return (
            f"These alerts came beyond your limit of {max_per_hour or 'some'} emails an hour, "
            "so they were gathered here."
        )
    return f"You chose an {period} digest of your email alerts."


def _send_digest(row: dict, period: str, now: dt.datetime) -> int:
    batch = _claim_digest(row["user"], now)
    if not batch:
        return 0
    user = batch[0].user
    ids = [d.pk for d in batch]
    zone_name = row["user__alert_profile__time_zone"] or "UTC"
    items = []
    for d in batch:
        m = message(d, user_zone=zone_name)
        items.append({"m": m, "when": format_local(d.created_at, zone_of(zone_name))})
    subject = f"ChargeDesk: {len(items)} alert{'s' if len(items) != 1 else ''}"
    error: TransportError | None = None
    if not user.email:
        error = TransportError("no email address", permanent=True)
    else:
        try:
            send_email(
                to=user.email,
                subject=subject,
                template="alerts/email/digest",
                context={
                    "subject": subject,
                    "items": items,
                    "user": user,
                    "reason": _digest_reason(period, row["user__alert_profile__max_per_hour"]),
                },
                unsubscribe_url=make_url(user.pk, None, "email"),
            )
        except TransportError as caught:
            error = caught
    batch_rows = Delivery.objects.filter(pk__in=ids, status=DeliveryStatus.DIGEST)
    if error is None:
        batch_rows.update(
            status=DeliveryStatus.SENT,
            sent_at=now,
            attempts=F("attempts") + 1,
            last_error="",
            next_attempt_at=None,
            target=user.email,
            updated_at=timezone.now(),
        )
        logger.info("digest of %s alerts sent to %s", len(ids), user.email)
        return 1
    _record_digest_failure(batch, batch_rows, error, now)
    return 0


def _record_digest_failure(batch: list[Delivery], rows, error: TransportError, now: dt.datetime) -> None:
    """A digest that did not go out waits for its next try (the same backoff as single
    deliveries, counted by its most tried delivery) or fails for good."""
    attempts = max(d.attempts for d in batch) + 1
    backoff = settings.ALERTS_RETRY_BACKOFF
    if error.permanent or attempts > len(backoff):
        rows.update(
            status=DeliveryStatus.FAILED,
            attempts=F("attempts") + 1,
            last_error=error.message
            if error.permanent
            else f"{error.message} (gave up after {attempts} attempts)",
            next_attempt_at=None,
            updated_at=timezone.now(),
        )
    else:
        rows.update(
            attempts=F("attempts") + 1,
            last_error=error.message,
            next_attempt_at=now + dt.timedelta(seconds=backoff[attempts - 1]),
            updated_at=timezone.now(),
        )
    logger.warning("digest for user %s failed: %s", batch[0].user_id, error.message)
