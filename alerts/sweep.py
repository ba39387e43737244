"""The periodic check (every 30 s by beat): what is due now — outages past their grace period,
outages back long enough, cars done charging but still plugged in, reservations ending soon.
A plain loop over "what is due", safe to run twice: every alert it raises has its key."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from alerts.channels.content import zone_of
from alerts.services import outages
from alerts.services.notify import raise_alert
from sessions.models import Reservation, ReservationStatus, Transaction, TransactionStatus
from stations.models import Connector, ConnectorStatus


@dataclass
class SweepResult:
    outages_told: int = 0
    outages_closed: int = 0
    idle_warnings: int = 0
    reservation_reminders: int = 0


def run(*, now: dt.datetime | None = None) -> SweepResult:
    now = now or timezone.now()
    return SweepResult(
        outages_told=outages.confirm_due(now=now),
        outages_closed=outages.close_recovered(now=now),
        idle_warnings=idle_warnings(now=now),
        reservation_reminders=reservation_reminders(now=now),
    )


def idle_warnings(*, now: dt.datetime) -> int:
    """Charging is done but the car still holds the connector: a session whose connector has
    said SuspendedEV (the car is full) or Finishing (stopped, still plugged) for a while."""
    since = now - dt.timedelta(minutes=settings.ALERTS_IDLE_WARNING_MINUTES)
    idle = Connector.objects.filter(
        status__in=[ConnectorStatus.SUSPENDED_EV, ConnectorStatus.FINISHING], status_updated_at__lte=since
    ).values_list("charge_point_id", "connector_id", "status")
    idle = {(cp, n): status for cp, n, status in idle}
    if not idle:
        return 0
    q = Q()
    for cp, n in idle:
        q |= Q(charge_point_id=cp, connector_number=n)
    candidates = (
        Transaction.objects.filter(q, driver__isnull=False)
        .filter(Q(status=TransactionStatus.ACTIVE) | Q(stopped_at__gte=now - dt.timedelta(hours=2)))
        .exclude(alerts_told_idle(now))
        .select_related("charge_point__site")
        .order_by("charge_point_id", "connector_number", "-started_at")
    )
    told, seen = 0, set()
    for tx in candidates:
        key = (tx.charge_point_id, tx.connector_number)
        if key in seen:  # only the connector's newest session holds it now
            continue
        seen.add(key)
        status = idle[key]
        if status == ConnectorStatus.SUSPENDED_EV and tx.status != TransactionStatus.ACTIVE:
            continue
        label = outages.station_label(tx.charge_point)
        alert = raise_alert(
            event_type="idle_fee_warning",
            dedup_key=f"session:{tx.pk}:idle",
            title=f"Charging done at {label}: please move your car",
            body=f"Your car on connector {tx.connector_number} at {label} has stopped charging but is still "
            "plugged in. Idle fees may apply if it stays; please unplug and free the space.",
            url="/account/",
            recipients=[tx.driver_id],
            operator_id=tx.charge_point.operator_id,
            charge_point_id=tx.charge_point_id,
            data={"transaction_id": tx.pk, "charge_point": tx.charge_point.identity},
            now=now,
        )
        told += alert is not None
    return told


def alerts_told_idle(now: dt.datetime) -> Q:
    """Sessions whose idle warning was already raised (no second query per session)."""
    from alerts.models import Alert

    keys = Alert.objects.filter(
        event_type="idle_fee_warning", created_at__gte=now - dt.timedelta(hours=3)
    ).values_list("data__transaction_id", flat=True)
    return Q(pk__in=[k for k in keys if k is not None])


def reservation_reminders(*, now: dt.datetime) -> int:
    soon = now + dt.timedelta(minutes=settings.ALERTS_RESERVATION_REMINDER_MINUTES)
    told = 0
    for r in Reservation.objects.filter(
        status=ReservationStatus.ACCEPTED,
        expires_at__gt=now,
        expires_at__lte=soon,
        id_token__driver__isnull=False,
    ).select_related("charge_point__site", "id_token"):
        minutes = max(1, round((r.expires_at - now).total_seconds() / 60))
        label = outages.station_label(r.charge_point)
        zone = zone_of(r.charge_point.site.time_zone if r.charge_point.site_id else "UTC")
        ends = timezone.localtime(r.expires_at, zone)
        alert = raise_alert(
            event_type="reservation_expiring",
            dedup_key=f"reservation:{r.pk}:expiring",
            title=f"Your reservation at {label} ends in {minutes} minutes",
            body=f"The connector held for you at {label} is released at {ends:%H:%M}.",
            url="/account/",
            recipients=[r.id_token.driver_id],
            operator_id=r.charge_point.operator_id,
            charge_point_id=r.charge_point_id,
            data={"reservation_id": r.pk, "expires_at": r.expires_at.isoformat()},
            now=now,
        )
        told += alert is not None
    return told
