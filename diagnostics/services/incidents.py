"""Incidents from the sweeps' findings: open, update, resolve; and the events they publish.

One open incident per problem and unit (``Incident.key``, unique among open incidents): a
connector that flaps Faulted/Available/Faulted keeps its one incident, because the sweep
holds a fault until the connector stayed clear for a while. A sweep that finds the problem
of an open incident again adds a ``Finding`` only when something changed (the cause, the
error code, the figures that matter: ``Detected.change_key``); otherwise it only moves
``last_seen_at``. An open incident the sweep no longer finds is resolved, with a resolution
text saying so. All writes are set-based: a handful of statements a sweep, however many
incidents there are.

Domain events (``config.events.publish``, delivered after commit). Every payload carries
``operator_id``, ``charge_point_id`` (pk or None), ``connector_id`` (the OCPP connector
number, or None) and ``at`` (ISO 8601, UTC):

- ``diagnostics.incident_opened``: ``incident_id, site_id, kind, cause, severity, title,
  summary``.
- ``diagnostics.incident_resolved``: ``incident_id, site_id, kind, cause, title, resolution,
  opened_at``.
- ``diagnostics.under_performance``: published with the opening of an under-performance
  incident; ``incident_id, cause, title, delivered_kw, expected_kw, transaction_id``.
- ``connector.faulted``: a connector (0: the charge point) reported Faulted after being
  something else; ``error_code, previous_status``. From ``connector.status_changed``.
- ``connector.recovered``: a Faulted connector reported another status; ``status,
  previous_status``. From ``connector.status_changed``.

Diagnostics also listens to ``charge_point.online``/``charge_point.offline`` and keeps them as
``ConnectivityEvent`` rows (a connection that keeps dropping is a connectivity problem).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from config import events
from diagnostics.models import ConnectivityEvent, Finding, FindingKind, Incident, IncidentStatus
from stations.models import ConnectorStatus

RESOLUTIONS = {
    FindingKind.OFFLINE: "Back online: the charger talks again.",
    FindingKind.FAULTED: "Recovered: the connector stayed clear of faults.",
    FindingKind.STUCK_STATUS: "Recovered: the connector left Faulted/Unavailable.",
    FindingKind.STUCK_SESSION: "The session ended or reports meter values again.",
    FindingKind.UNDER_PERFORMANCE: "Power back to what is expected (or the session ended).",
    FindingKind.METER_ANOMALY: "No implausible meter readings in the window any more.",
    FindingKind.REBOOT_LOOP: "The charger stopped rebooting.",
    FindingKind.ERROR_STORM: "The error reports calmed down.",
    FindingKind.SITE_POWER: "The site's chargers are back.",
    FindingKind.FIRMWARE_WIDE: "The units on this firmware no longer report the fault.",
    FindingKind.UNSTABLE_CONNECTION: "The connection stays up again.",
}


@dataclass
class SyncResult:
    opened: int = 0
    updated: int = 0
    resolved: int = 0
    unchanged: int = 0


def _event_base(incident: Incident, connector_number: int | None, now: dt.datetime) -> dict:
    return {
        "incident_id": incident.pk,
        "operator_id": incident.operator_id,
        "site_id": incident.site_id,
        "charge_point_id": incident.charge_point_id,
        "connector_id": connector_number,
        "kind": incident.kind,
        "cause": incident.cause,
        "title": incident.title,
        "at": now.isoformat(),
    }


def sync(*, findings, swept_kinds: set[str], now: dt.datetime) -> SyncResult:
    """Bring the open incidents in line with what a sweep found (``findings``: ``Detected``).
    Only incidents of ``swept_kinds`` are resolved for want of a finding."""
    result = SyncResult()
    open_by_key = {i.key: i for i in Incident.objects.filter(status=IncidentStatus.OPEN)}
    seen: dict[str, object] = {}
    for d in findings:
        seen.setdefault(d.key, d)  # one finding a key per sweep: the first (most specific) wins

    new_incidents: list[tuple[Incident, object]] = []
    changed: list[tuple[Incident, object]] = []
    unchanged_ids: list[int] = []
    for key, d in seen.items():
        evidence = {**d.evidence, "change_key": d.change_key}
        incident = open_by_key.get(key)
        if incident is None:
            incident = Incident(
                operator_id=d.operator_id,
                site_id=d.site_id,
                charge_point_id=d.charge_point_id,
                connector_id=d.connector_pk,
                kind=d.kind,
                key=key,
                cause=d.cause,
                severity=d.severity,
                title=d.title[:200],
                rule_id=d.rule_id,
                evidence=evidence,
                opened_at=now,
                last_seen_at=now,
            )
            new_incidents.append((incident, d))
            continue
        if (
            incident.evidence.get("change_key") != d.change_key
            or incident.cause != d.cause
            or incident.severity != d.severity
        ):
            incident.cause, incident.severity = d.cause, d.severity
            incident.title, incident.rule_id = d.title[:200], d.rule_id
            incident.evidence, incident.last_seen_at = evidence, now
            changed.append((incident, d))
        else:
            unchanged_ids.append(incident.pk)

    if new_incidents:
        Incident.objects.bulk_create([i for i, _ in new_incidents])
    if changed:
        Incident.objects.bulk_update(
            [i for i, _ in changed], ["cause", "severity", "title", "rule", "evidence", "last_seen_at"]
        )
    Finding.objects.bulk_create(
        [
            Finding(
                incident=i,
                kind=d.kind,
                cause=d.cause,
                severity=d.severity,
                summary=d.summary[:255],
                evidence=d.evidence,
                detected_at=now,
            )
            for i, d in new_incidents + changed
        ]
    )

    gone = [i for key, i in open_by_key.items() if key not in seen and i.kind in swept_kinds]
    by_kind: dict[str, list[int]] = {}
    for incident in gone:
        by_kind.setdefault(incident.kind, []).append(incident.pk)
    for kind, ids in by_kind.items():
        Incident.objects.filter(pk__in=ids, status=IncidentStatus.OPEN).update(
            status=IncidentStatus.RESOLVED,
            resolved_at=now,
            resolution=RESOLUTIONS.get(kind, "The sweep no longer finds the problem."),
        )
    if unchanged_ids:
        # Every incident still open was seen now (the resolved ones are closed above): one
        # statement, not a list of ids as long as the open incidents.
        Incident.objects.filter(status=IncidentStatus.OPEN, kind__in=sorted(swept_kinds)).update(
            last_seen_at=now
        )

    for incident, d in new_incidents:
        base = _event_base(incident, d.connector_number, now)
        events.publish("diagnostics.incident_opened", **base, severity=incident.severity, summary=d.summary)
        if d.kind == FindingKind.UNDER_PERFORMANCE:
            events.publish(
                "diagnostics.under_performance",
                **base,
                delivered_kw=d.evidence.get("delivered_kw"),
                expected_kw=d.evidence.get("expected_kw"),
                transaction_id=d.evidence.get("transaction_id"),
            )
    for incident in gone:
        events.publish(
            "diagnostics.incident_resolved",
            **_event_base(incident, incident.evidence.get("connector"), now),
            resolution=RESOLUTIONS.get(incident.kind, "The sweep no longer finds the problem."),
            opened_at=incident.opened_at.isoformat(),
        )
    result.opened, result.updated = len(new_incidents), len(changed)
    result.resolved, result.unchanged = len(gone), len(unchanged_ids)
    return result


def open_incidents(*, operator_id: int | None = None, charge_point_id: int | None = None):
    """The open incidents, newest first (for callers that need no more than that)."""
    q = Q(status=IncidentStatus.OPEN)
    if operator_id is not None:
        q &= Q(operator_id=operator_id)
    if charge_point_id is not None:
        q &= Q(charge_point_id=charge_point_id)
    return Incident.objects.filter(q).select_related("charge_point", "connector")


def on_status_changed(
    *,
    charge_point_id: int,
    operator_id: int,
    connector_id: int,
    status: str,
    previous_status: str = "",
    error_code: str = "",
    at: str = "",
    **_,
) -> None:
    """``connector.status_changed`` → ``connector.faulted`` / ``connector.recovered``."""
    base = {
        "charge_point_id": charge_point_id,
        "operator_id": operator_id,
        "connector_id": connector_id,
        "previous_status": previous_status,
        "at": at,
    }
    if status == ConnectorStatus.FAULTED and previous_status != ConnectorStatus.FAULTED:
        events.publish("connector.faulted", **base, error_code=error_code)
    elif previous_status == ConnectorStatus.FAULTED and status != ConnectorStatus.FAULTED:
        events.publish("connector.recovered", **base, status=status)


def record_connectivity(*, charge_point_id: int, online: bool, at: str | None = None, **_) -> None:
    """``charge_point.online``/``offline`` → a ``ConnectivityEvent`` row (one insert)."""
    when = None
    if at:
        try:
            when = dt.datetime.fromisoformat(at)
        except (TypeError, ValueError):
            when = None
    if when is None or when.tzinfo is None:
        when = timezone.now()
    ConnectivityEvent.objects.create(charge_point_id=charge_point_id, online=online, at=when)


def on_charge_point_online(*, charge_point_id: int, at: str | None = None, **_) -> None:
    record_connectivity(charge_point_id=charge_point_id, online=True, at=at)


def on_charge_point_offline(*, charge_point_id: int, at: str | None = None, **_) -> None:
    record_connectivity(charge_point_id=charge_point_id, online=False, at=at)
