"""Stations going out of service and coming back, as drivers hear of it.

A fault (or a connector made unavailable) opens an outage at once; a charger gone offline
opens one that is told only if it stays offline past a grace period (a reconnect is not
news). While an outage is open, a connector that flaps between Faulted and back changes
nothing: drivers are told once, and told it is back once it has stayed back for a while.
Sessions under way when an outage is told are interrupted: their drivers hear that, with the
expected time of return and the nearest alternatives, instead of the general notice.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format

from alerts import selectors
from alerts.channels.content import zone_of
from alerts.models import Notification, Outage, OutageCause
from alerts.services.notify import Recipient, raise_alert
from sessions.models import Transaction, TransactionStatus
from stations.models import ChargePoint

logger = logging.getLogger("chargedesk.alerts")

# OCPP 1.6 stop reasons that mean the session did not end as the driver wanted.
ABNORMAL_STOPS = ["EmergencyStop", "HardReset", "Other", "PowerLoss", "Reboot", "SoftReset"]

REASONS = {
    OutageCause.FAULTED: "the charger reported a fault",
    OutageCause.OFFLINE: "the charger lost its connection",
    OutageCause.UNAVAILABLE: "the charger was taken out of service",
}


def station_label(cp: ChargePoint) -> str:
    name = cp.name or cp.identity
    return f"{cp.site.name} ({name})" if cp.site_id else name


def eta_sentence(eta: dt.datetime | None, time_zone: str = "UTC") -> str:
    if eta is None:
        return "We do not know yet when it will be back."
    local = timezone.localtime(eta, timezone=zone_of(time_zone))
    return f"Service is expected back around {date_format(local, 'D j M, H:i')} ({time_zone})."


def alternatives_text(alternatives: list[dict]) -> str:
    if not alternatives:
        return "No other station nearby has a free connector right now."
    parts = [f"{a['name']}, {a['address']} ({a['distance_km']} km)" for a in alternatives]
    return "Nearest free alternatives: " + "; ".join(parts) + "."


def open_outage(
    *, charge_point_id: int, connector_number: int, cause: str, now: dt.datetime | None = None
) -> Outage | None:
    """Start (or keep) the outage of a connector (0: the whole charger). A fault or an
    unavailable connector is told at once; an offline charger after the grace period."""
    now = now or timezone.now()
    delay = settings.ALERTS_OFFLINE_GRACE_SECONDS if cause == OutageCause.OFFLINE else 0
    try:
        with transaction.atomic():
            outage = (
                Outage.objects.select_for_update()
                .filter(
                    charge_point_id=charge_point_id, connector_number=connector_number, closed_at__isnull=True
                )
                .first()
            )
            if outage is not None:
                if outage.cleared_at is not None:  # a flap: the same outage goes on
                    outage.cleared_at = None
                    outage.save(update_fields=["cleared_at"])
                return None
            outage = Outage.objects.create(
                charge_point_id=charge_point_id,
                connector_number=connector_number,
                cause=cause,
                opened_at=now,
                confirm_at=now + dt.timedelta(seconds=delay),
            )
    except IntegrityError:  # opened meanwhile by another worker
        return None
    if delay == 0:
        confirm(outage, now=now)
    return outage


def clear_outage(*, charge_point_id: int, connector_number: int, now: dt.datetime | None = None) -> None:
    """The connector (or charger) works again: an outage never told closes quietly; a told
    one waits to see it stay back before drivers hear so."""
    now = now or timezone.now()
    with transaction.atomic():
        outage = (
            Outage.objects.select_for_update()
            .filter(
                charge_point_id=charge_point_id, connector_number=connector_number, closed_at__isnull=True
            )
            .first()
        )
        if outage is None:
            return
        if outage.notified_at is None:
            outage.closed_at = now
            outage.save(update_fields=["closed_at"])
        elif outage.cleared_at is None:
            outage.cleared_at = now
            outage.save(update_fields=["cleared_at"])


def confirm(outage: Outage, *, now: dt.datetime) -> int:
    """Tell drivers of an outage (once: guarded by ``notified_at`` and the alerts' keys).
    Returns how many drivers were told."""
    with transaction.atomic():
        locked = Outage.objects.select_for_update().filter(pk=outage.pk, notified_at__isnull=True).first()
        if locked is None:
            return 0
        cp = ChargePoint.objects.select_related("site", "operator").get(pk=locked.charge_point_id)
        if locked.cause == OutageCause.OFFLINE and cp.is_connected:
            locked.closed_at = now  # back before the grace period ended: nobody is told
            locked.save(update_fields=["closed_at"])
            return 0
        locked.notified_at = now
        locked.save(update_fields=["notified_at"])
    standards = selectors.connector_standards(cp, locked.connector_number)
    alternatives = selectors.alternatives(cp, standards=standards)
    eta = selectors.eta_for(cp, connector_number=locked.connector_number, now=now)
    reason = REASONS.get(locked.cause, "it stopped working")
    interrupted = interrupt_sessions(
        cp,
        connector_number=locked.connector_number,
        reason=reason,
        now=now,
        eta=eta,
        alternatives=alternatives,
    )
    drivers = [d for d in selectors.affected_drivers(cp, now=now) if d not in interrupted]
    label = station_label(cp)
    where = f"Connector {locked.connector_number}" if locked.connector_number else "The whole station"
    zone = cp.site.time_zone if cp.site_id else "UTC"
    raise_alert(
        event_type="station_out_of_service",
        dedup_key=f"outage:{locked.pk}:out",
        title=f"{label} is out of service",
        body=f"{where} at {label} is out of service: {reason}. {eta_sentence(eta, zone)} "
        f"{alternatives_text(alternatives)}",
        url="/account/",
        recipients=drivers,
        operator_id=cp.operator_id,
        charge_point_id=cp.pk,
        eta=eta,
        data={
            "charge_point": cp.identity,
            "connector": locked.connector_number,
            "cause": locked.cause,
            "alternatives": alternatives,
        },
        now=now,
    )
    return len(drivers) + len(interrupted)


def interrupt_sessions(
    cp: ChargePoint,
    *,
    connector_number: int,
    reason: str,
    now: dt.datetime,
    eta: dt.datetime | None = None,
    alternatives: list[dict] | None = None,
) -> set[int]:
    """Tell the drivers of the sessions under way on the connector (0: any) that charging
    was interrupted. Returns their user ids."""
    # A charger often ends the session itself as it faults (StopTransaction "PowerLoss",
    # "Other", …), and that may be stored before the fault reaches us: such a session
    # stopped just now was interrupted too.
    cut = Q(status=TransactionStatus.ACTIVE) | Q(
        stopped_at__gte=now - dt.timedelta(minutes=2), stop_reason__in=ABNORMAL_STOPS
    )
    txs = Transaction.objects.filter(cut, charge_point_id=cp.pk, driver__isnull=False)
    if connector_number:
        txs = txs.filter(connector_number=connector_number)
    txs = list(txs.only("pk", "driver_id", "connector_number", "started_at"))
    if not txs:
        return set()
    if alternatives is None:
        alternatives = selectors.alternatives(
            cp, standards=selectors.connector_standards(cp, connector_number)
        )
    label = station_label(cp)
    zone = cp.site.time_zone if cp.site_id else "UTC"
    for tx in txs:
        raise_alert(
            event_type="session_interrupted",
            dedup_key=f"session:{tx.pk}:interrupted",
            title=f"Charging interrupted at {label}",
            body=f"Your session on connector {tx.connector_number} at {label} was interrupted: {reason}. "
            f"{eta_sentence(eta, zone)} {alternatives_text(alternatives)}",
            url="/account/",
            recipients=[Recipient(user_id=tx.driver_id)],
            operator_id=cp.operator_id,
            charge_point_id=cp.pk,
            eta=eta,
            data={
                "transaction_id": tx.pk,
                "charge_point": cp.identity,
                "connector": tx.connector_number,
                "reason": reason,
                "alternatives": alternatives,
            },
            now=now,
        )
    return {tx.driver_id for tx in txs}


def confirm_due(*, now: dt.datetime) -> int:
    """The periodic part: offline outages whose grace period ended are told now."""
    told = 0
    for outage in Outage.objects.filter(
        closed_at__isnull=True, notified_at__isnull=True, cleared_at__isnull=True, confirm_at__lte=now
    ):
        try:
            told += confirm(outage, now=now)
        except Exception:
            logger.exception("telling outage %s failed", outage.pk)
    return told


def close_recovered(*, now: dt.datetime) -> int:
    """Outages back for long enough close; drivers who were told hear it is back."""
    cutoff = now - dt.timedelta(seconds=settings.ALERTS_BACK_AFTER_SECONDS)
    closed = 0
    for outage in Outage.objects.filter(closed_at__isnull=True).filter(
        Q(cleared_at__lte=cutoff) | Q(notified_at__isnull=True, cleared_at__isnull=False)
    ):
        with transaction.atomic():
            locked = Outage.objects.select_for_update().filter(pk=outage.pk, closed_at__isnull=True).first()
            if locked is None or locked.cleared_at is None:
                continue
            locked.closed_at = now
            locked.save(update_fields=["closed_at"])
        closed += 1
        if locked.notified_at is not None:
            _tell_back(locked, now=now)
    return closed


def _tell_back(outage: Outage, *, now: dt.datetime) -> None:
    cp = ChargePoint.objects.select_related("site").get(pk=outage.charge_point_id)
    told = Notification.objects.filter(
        alert__charge_point_id=cp.pk,
        alert__event_type__in=["station_out_of_service", "session_interrupted"],
        alert__created_at__gte=outage.opened_at,
    ).values_list("user_id", flat=True)
    label = station_label(cp)
    raise_alert(
        event_type="station_back_in_service",
        dedup_key=f"outage:{outage.pk}:back",
        title=f"{label} is back in service",
        body=f"{label} works again and is ready to charge.",
        url="/account/",
        recipients=set(told),
        operator_id=cp.operator_id,
        charge_point_id=cp.pk,
        data={"charge_point": cp.identity, "connector": outage.connector_number},
        now=now,
    )
