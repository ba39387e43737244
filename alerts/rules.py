"""Which domain event tells whom: one small function per event, run in a Celery worker
(``alerts.tasks.handle_event``), each ending in ``raise_alert`` with a key that makes a repeat
of the same event harmless."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.utils import timezone

from alerts import selectors
from alerts.models import OutageCause
from alerts.services import outages
from alerts.services.notify import raise_alert
from sessions.models import Transaction, TransactionStatus
from stations.models import ChargePoint, ConnectorStatus
from stations.models.accounts import Role

logger = logging.getLogger("chargedesk.alerts")

RULES: dict[str, Callable[..., None]] = {}


def rule(name: str):
    def register(fn):
        RULES[name] = fn
        return fn

    return register


def handle(name: str, data: dict) -> None:
    fn = RULES.get(name)
    if fn is not None:
        fn(**data)


def _when(at: str | None) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(at) if at else None
    except (TypeError, ValueError):
        when = None
    return when if when is not None and when.tzinfo is not None else timezone.now()


def _charge_point(pk: int | None) -> ChargePoint | None:
    if pk is None:
        return None
    return ChargePoint.objects.select_related("site", "operator").filter(pk=pk).first()


# --- Drivers: their sessions ------------------------------------------------------------------


@rule("session.started")
def session_started(*, transaction_id: int, driver_id: int | None = None, **_) -> None:
    if not driver_id:
        return
    tx = Transaction.objects.select_related("charge_point__site").filter(pk=transaction_id).first()
    if tx is None:
        return
    label = outages.station_label(tx.charge_point)
    raise_alert(
        event_type="session_started",
        dedup_key=f"session:{tx.pk}:started",
        title=f"Charging started at {label}",
        body=f"Your session on connector {tx.connector_number} at {label} has started.",
        url="/account/",
        recipients=[driver_id],
        operator_id=tx.charge_point.operator_id,
        charge_point_id=tx.charge_point_id,
        data={
            "transaction_id": tx.pk,
            "charge_point": tx.charge_point.identity,
            "connector": tx.connector_number,
        },
    )


@rule("session.stopped")
def session_stopped(*, transaction_id: int, driver_id: int | None = None, **_) -> None:
    """Told at once when the session costs nothing we know of; a session a tariff prices is
    told when billing has priced it (``billing.session_priced``), with its cost."""
    if not driver_id:
        return
    tx = Transaction.objects.select_related("charge_point__site").filter(pk=transaction_id).first()
    if tx is None or tx.stopped_at is None:
        return
    if _priced_by_billing(tx):
        return
    _tell_finished(tx, driver_id)


@rule("billing.session_priced")
def session_priced(
    *, transaction_id: int, driver_id: int | None = None, total: str = "", currency: str = "", **_
):
    if not driver_id:
        return
    tx = Transaction.objects.select_related("charge_point__site").filter(pk=transaction_id).first()
    if tx is not None and tx.stopped_at is not None:
        _tell_finished(tx, driver_id, cost=(total, currency))


def _priced_by_billing(tx: Transaction) -> bool:
    try:
        from billing.tariffs import tariff_for
    except ImportError:
        return False
    return (
        tariff_for(
            charge_point=tx.charge_point,
            connector_number=tx.connector_number,
            user=tx.driver,
            at=tx.started_at,
        )
        is not None
    )


def _tell_finished(tx: Transaction, driver_id: int, cost: tuple[str, str] | None = None) -> None:
    label = outages.station_label(tx.charge_point)
    energy = selectors.kwh(tx.energy_wh)
    minutes = max(0, round((tx.stopped_at - tx.started_at).total_seconds() / 60))
    data = {
        "transaction_id": tx.pk,
        "charge_point": tx.charge_point.identity,
        "energy_kwh": str(energy),
        "duration_minutes": minutes,
        "stop_reason": tx.stop_reason,
    }
    body = f"Your session at {label} delivered {energy} kWh in {minutes} minutes."
    if cost is not None:
        total, currency = cost
        data["cost"] = {"amount": total, "currency": currency}
        body += f" It cost {total} {currency}."
    raise_alert(
        event_type="session_finished",
        dedup_key=f"session:{tx.pk}:finished",
        title=f"Charging finished at {label}: {energy} kWh",
        body=body,
        url="/account/",
        recipients=[driver_id],
        operator_id=tx.charge_point.operator_id,
        charge_point_id=tx.charge_point_id,
        data=data,
    )


# --- Stations out of service and back ---------------------------------------------------------


@rule("connector.faulted")
def connector_faulted(*, charge_point_id: int, connector_id: int, at: str = "", **_) -> None:
    outages.open_outage(
        charge_point_id=charge_point_id,
        connector_number=connector_id or 0,
        cause=OutageCause.FAULTED,
        now=_when(at),
    )


@rule("connector.recovered")
def connector_recovered(*, charge_point_id: int, connector_id: int, at: str = "", **_) -> None:
    outages.clear_outage(charge_point_id=charge_point_id, connector_number=connector_id or 0, now=_when(at))


@rule("connector.status_changed")
def connector_status_changed(
    *, charge_point_id: int, connector_id: int, status: str, previous_status: str = "", at: str = "", **_
) -> None:
    """Taken out of service (Unavailable) and put back; faults come as ``connector.faulted``."""
    number = connector_id or 0
    if status == ConnectorStatus.UNAVAILABLE and previous_status != ConnectorStatus.UNAVAILABLE:
        outages.open_outage(
            charge_point_id=charge_point_id,
            connector_number=number,
            cause=OutageCause.UNAVAILABLE,
            now=_when(at),
        )
    elif previous_status == ConnectorStatus.UNAVAILABLE and status not in (
        ConnectorStatus.UNAVAILABLE,
        ConnectorStatus.FAULTED,
    ):
        outages.clear_outage(charge_point_id=charge_point_id, connector_number=number, now=_when(at))


@rule("charge_point.offline")
def charge_point_offline(*, charge_point_id: int, at: str = "", **_) -> None:
    outages.open_outage(
        charge_point_id=charge_point_id, connector_number=0, cause=OutageCause.OFFLINE, now=_when(at)
    )


@rule("charge_point.online")
def charge_point_online(*, charge_point_id: int, at: str = "", **_) -> None:
    outages.clear_outage(charge_point_id=charge_point_id, connector_number=0, now=_when(at))


@rule("charge_point.booted")
def charge_point_booted(*, charge_point_id: int, at: str = "", **_) -> None:
    """A charger that boots while it had sessions under way lost them (a power cut, a reset)."""
    cp = _charge_point(charge_point_id)
    when = _when(at)
    if (
        cp is None
        or not Transaction.objects.filter(
            charge_point_id=cp.pk, status=TransactionStatus.ACTIVE, started_at__lt=when
        ).exists()
    ):
        return
    outages.interrupt_sessions(
        cp,
        connector_number=0,
        reason="the charger restarted (a power cut or a reset)",
        now=when,
        eta=selectors.eta_for(cp, now=when),
    )


# --- Operators --------------------------------------------------------------------------------

OFFLINE_KINDS = {"offline", "site_power", "unstable_connection"}


@rule("diagnostics.incident_opened")
def incident_opened(
    *,
    incident_id: int,
    operator_id: int,
    kind: str,
    title: str,
    charge_point_id=None,
    summary: str = "",
    **data,
) -> None:
    if kind == "under_performance":
        return  # told by diagnostics.under_performance, with its figures
    raise_alert(
        event_type="charger_offline" if kind in OFFLINE_KINDS else "fault",
        dedup_key=f"incident:{incident_id}:opened",
        title=title,
        body=summary or title,
        url=f"/diagnostics/incidents/{incident_id}/",
        recipients=selectors.operator_staff(operator_id),
        operator_id=operator_id,
        charge_point_id=charge_point_id,
        data={
            "incident_id": incident_id,
            "kind": kind,
            "cause": data.get("cause"),
            "severity": data.get("severity"),
        },
    )


@rule("diagnostics.incident_resolved")
def incident_resolved(
    *, incident_id: int, operator_id: int, title: str, charge_point_id=None, resolution: str = "", **data
) -> None:
    raise_alert(
        event_type="incident_resolved",
        dedup_key=f"incident:{incident_id}:resolved",
        title=f"Resolved: {title}",
        body=resolution,
        url=f"/diagnostics/incidents/{incident_id}/",
        recipients=selectors.operator_staff(operator_id),
        operator_id=operator_id,
        charge_point_id=charge_point_id,
        data={"incident_id": incident_id, "kind": data.get("kind")},
    )


@rule("diagnostics.under_performance")
def under_performance(
    *,
    incident_id: int,
    operator_id: int,
    title: str,
    charge_point_id=None,
    delivered_kw=None,
    expected_kw=None,
    **_,
) -> None:
    figures = f"{delivered_kw} kW delivered where {expected_kw} kW was expected." if delivered_kw else title
    raise_alert(
        event_type="under_performance",
        dedup_key=f"incident:{incident_id}:under_performance",
        title=title,
        body=figures,
        url=f"/diagnostics/incidents/{incident_id}/",
        recipients=selectors.operator_staff(operator_id),
        operator_id=operator_id,
        charge_point_id=charge_point_id,
        data={"incident_id": incident_id, "delivered_kw": delivered_kw, "expected_kw": expected_kw},
    )


@rule("diagnostics.ticket_assigned")
def ticket_assigned(*, ticket_id: int, operator_id: int, assignee_id: int, charge_point_id=None, **_) -> None:
    from diagnostics.models import Ticket

    ticket = Ticket.objects.select_related("charge_point").filter(pk=ticket_id).first()
    if ticket is None:
        return
    where = f" at {ticket.charge_point.identity}" if ticket.charge_point_id else ""
    raise_alert(
        event_type="ticket_assigned",
        dedup_key=f"ticket:{ticket_id}:assigned:{assignee_id}",
        title=f"Ticket assigned to you: {ticket.title}",
        body=f"{ticket.get_priority_display()} priority{where}. {ticket.description}".strip(),
        url="/diagnostics/my-tickets/",
        recipients=[assignee_id],
        operator_id=operator_id,
        charge_point_id=charge_point_id,
        data={"ticket_id": ticket_id, "tools": ticket.tools, "spare_parts": ticket.spare_parts},
    )


@rule("billing.payment_failed")
def payment_failed(
    *, payment_id: int, operator_id: int, amount: str = "", currency: str = "", reason: str = "", **data
) -> None:
    raise_alert(
        event_type="payment_failed",
        dedup_key=f"payment:{payment_id}:failed",
        title=f"Payment failed: {amount} {currency}".strip(),
        body=reason or "The driver's payment could not be taken.",
        url="/alerts/deliveries/",
        recipients=selectors.operator_staff(operator_id, roles=(Role.OPERATOR_ADMIN,)),
        operator_id=operator_id,
        data={"payment_id": payment_id, "amount": amount, "currency": currency, **data},
    )
