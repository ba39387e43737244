"""Raising an alert: store the happening once, a notification per recipient, and a delivery per
channel each recipient wants — held through quiet hours, gathered into a digest for an
operator who asked for one or had too many this hour — plus a copy to each of the operator's
webhooks. The deliveries are sent by Celery after commit.

A fan-out to thousands of recipients is a handful of queries: recipients' settings and
choices are read in bulk and the rows written with ``bulk_create``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from alerts.catalog import EVENT_TYPES
from alerts.models import (
    INTERRUPTING_CHANNELS,
    USER_CHANNELS,
    Alert,
    AlertProfile,
    Channel,
    Delivery,
    DeliveryStatus,
    Digest,
    Notification,
    Preference,
    PushKind,
    PushSubscription,
    WebhookEndpoint,
)

logger = logging.getLogger("chargedesk.alerts")
User = get_user_model()
BATCH = 1000
TASK_CHUNK = 200  # deliveries per Celery task


@dataclass
class Recipient:
    """One recipient, with what differs for them (their own alternatives, say)."""

    user_id: int
    title: str | None = None
    body: str | None = None
    data: dict = field(default_factory=dict)


def _as_recipient(r: int | Recipient) -> Recipient:
    return r if isinstance(r, Recipient) else Recipient(user_id=int(r))


def raise_alert(
    *,
    event_type: str,
    dedup_key: str,
    title: str,
    body: str = "",
    url: str = "",
    recipients: Iterable[int | Recipient] = (),
    operator_id: int | None = None,
    charge_point_id: int | None = None,
    eta: dt.datetime | None = None,
    data: dict | None = None,
    now: dt.datetime | None = None,
) -> Alert | None:
    """Tell the recipients once. Returns the new alert, or None when ``dedup_key`` was told
    before (a repeated event, a flap, a task run twice)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    now = now or timezone.now()
    data = dict(data or {})
    if eta is not None:
        data.setdefault("eta", eta.isoformat())
    people: dict[int, Recipient] = {}
    for r in map(_as_recipient, recipients):
        people.setdefault(r.user_id, r)
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                event_type=event_type,
                dedup_key=dedup_key[:200],
                operator_id=operator_id,
                charge_point_id=charge_point_id,
                title=title[:200],
                body=body,
                url=url,
                eta=eta,
                data=data,
            )
            delivery_ids = _fan_out(alert, people, now=now)
    except IntegrityError:
        if Alert.objects.filter(dedup_key=dedup_key[:200]).exists():
            return None
        raise
    if delivery_ids:
        transaction.on_commit(lambda: enqueue(delivery_ids), robust=True)
    return alert


def enqueue(delivery_ids: list[int]) -> None:
    from alerts import tasks

    for start in range(0, len(delivery_ids), TASK_CHUNK):
        tasks.deliver.delay(delivery_ids[start : start + TASK_CHUNK])


def _fan_out(alert: Alert, people: dict[int, Recipient], *, now: dt.datetime) -> list[int]:
    event = EVENT_TYPES[alert.event_type]
    users = {
        u["pk"]: u
        for u in User.objects.filter(pk__in=list(people), is_active=True).values("pk", "email", "phone")
    }
    profiles = {p.user_id: p for p in AlertProfile.objects.filter(user_id__in=list(users))}
    overrides: dict[int, dict[str, bool]] = defaultdict(dict)
    for user_id, channel, enabled in Preference.objects.filter(
        user_id__in=list(users), event_type=alert.event_type
    ).values_list("user_id", "channel", "enabled"):
        overrides[user_id][channel] = enabled
    # Push and SMS only where there is somewhere to send them (no log full of "nowhere to go").
    reachable = {Channel.PUSH: set(), Channel.MOBILE: set()}
    for user_id, kind in (
        PushSubscription.objects.filter(user_id__in=list(users)).values_list("user_id", "kind").distinct()
    ):
        reachable[Channel.PUSH if kind == PushKind.WEB else Channel.MOBILE].add(user_id)
    reachable[Channel.SMS] = {uid for uid, u in users.items() if u["phone"]}
    emailed_this_hour = _emails_in_last_hour(
        [uid for uid, p in profiles.items() if p.digest == Digest.IMMEDIATE], now=now
    )

    notifications = []
    for user_id in users:
        r = people[user_id]
        chosen = overrides.get(user_id, {})
        inapp = chosen.get(Channel.INAPP, Channel.INAPP in event.default_channels)
        notifications.append(
            Notification(
                alert=alert,
                user_id=user_id,
                event_type=alert.event_type,
                title=(r.title or alert.title)[:200],
                body=r.body if r.body is not None else alert.body,
                url=alert.url,
                data=r.data,
                # Someone who turned the in-app channel off still has the record, read.
                read_at=None if inapp else now,
            )
        )
    Notification.objects.bulk_create(notifications, batch_size=BATCH)

    deliveries = []
    for n in notifications:
        user = users[n.user_id]
        profile = profiles.get(n.user_id) or AlertProfile(user_id=n.user_id)
        chosen = overrides.get(n.user_id, {})
        quiet_until = profile.quiet_until(now) if profile else None
        for channel in USER_CHANNELS:
            if not chosen.get(channel, channel in event.default_channels):
                continue
            if channel in reachable and n.user_id not in reachable[channel]:
                continue
            status, next_at = DeliveryStatus.PENDING, None
            if channel in INTERRUPTING_CHANNELS and quiet_until is not None:
                status, next_at = DeliveryStatus.HELD, quiet_until
            elif channel == Channel.EMAIL and event.audience == "operator":
                sent = emailed_this_hour.get(n.user_id, 0)
                if profile.digest != Digest.IMMEDIATE or sent >= profile.max_per_hour:
                    status = DeliveryStatus.DIGEST
                else:
                    emailed_this_hour[n.user_id] = emailed_this_hour.get(n.user_id, 0) + 1
            target = {
                Channel.EMAIL: user["email"],
                Channel.SMS: user["phone"],
                Channel.INAPP: f"notification #{n.pk}",
            }.get(channel, "")
            deliveries.append(
                Delivery(
                    alert=alert,
                    notification=n,
                    operator_id=alert.operator_id,
                    user_id=n.user_id,
                    channel=channel,
                    target=target,
                    status=status,
                    next_attempt_at=next_at,
                )
            )
    # An operator's webhooks hear every alert of its network, drivers' ones included.
    if alert.operator_id is not None:
        for endpoint in WebhookEndpoint.objects.filter(operator_id=alert.operator_id, is_active=True):
            if endpoint.wants(alert.event_type):
                deliveries.append(
                    Delivery(
                        alert=alert,
                        endpoint=endpoint,
                        operator_id=alert.operator_id,
                        channel=Channel.WEBHOOK,
                        target=endpoint.url,
                    )
                )
    Delivery.objects.bulk_create(deliveries, batch_size=BATCH)
    return [d.pk for d in deliveries if d.status == DeliveryStatus.PENDING]


def _emails_in_last_hour(user_ids: list[int], *, now: dt.datetime) -> dict[int, int]:
    if not user_ids:
        return {}
    rows = (
        Delivery.objects.filter(
            user_id__in=user_ids,
            channel=Channel.EMAIL,
            created_at__gte=now - dt.timedelta(hours=1),
            alert__event_type__in=[k for k, e in EVENT_TYPES.items() if e.audience == "operator"],
        )
        .exclude(status=DeliveryStatus.DIGEST)
        .values("user_id")
        .annotate(n=Count("pk"))
    )
    return {r["user_id"]: r["n"] for r in rows}
