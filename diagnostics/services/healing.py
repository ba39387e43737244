"""Safe self-healing: a soft reset, then (if the fault outlives it) a hard one.

Only for open fault incidents whose ``FaultRule.self_heal`` is set, and only where the
operator's ``HealingPolicy`` is enabled (no policy row: the defaults, enabled). At most
``max_attempts_per_day`` resets per charge point in any 24 hours, soft and hard together.
Each reset is a ``HealingAttempt`` row with its outcome: refused (the charger said no, or
was offline, or did not answer), sent (waiting ``wait_minutes`` for the fault to clear),
recovered, or not recovered. Runs from the sweep task (Celery), never in the OCPP consumer:
the commands go through the command gateway and wait for the charger's answer.

Safe to run twice: the plan is made under a lock and written as pending attempts before any
command goes out, so a second run at once sees them and waits.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from diagnostics.models import (
    FindingKind,
    HealingAttempt,
    HealingOutcome,
    HealingPolicy,
    Incident,
    IncidentStatus,
    ResetKind,
)
from stations.commands import send_command_many
from stations.models import ChargePoint, CommandStatus

logger = logging.getLogger(__name__)

LOCK_ID = 0x43444845  # "CDHE"
HEALABLE_KINDS = (FindingKind.FAULTED,)


@dataclass(frozen=True)
class Plan:
    incident_id: int
    charge_point_id: int
    kind: str


def _policy_defaults(operator_id: int) -> HealingPolicy:
    return HealingPolicy(operator_id=operator_id)


def _lock() -> bool:
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK_ID])
        return bool(cursor.fetchone()[0])


def _close_finished(now: dt.datetime) -> int:
    """Resets whose incident resolved worked; say so."""
    return HealingAttempt.objects.filter(
        outcome=HealingOutcome.SENT, incident__status=IncidentStatus.RESOLVED
    ).update(outcome=HealingOutcome.RECOVERED, finished_at=now, detail="The fault cleared after the reset.")


def plan(*, now: dt.datetime) -> list[Plan]:
    """What to send now; marks resets that did not help as not recovered."""
    incidents = list(
        Incident.objects.filter(
            status=IncidentStatus.OPEN,
            kind__in=HEALABLE_KINDS,
            rule__self_heal=True,
            rule__is_active=True,
            charge_point__isnull=False,
        )
        .order_by("opened_at", "pk")
        .values("pk", "operator_id", "charge_point_id")
    )
    if not incidents:
        return []
    operators = {i["operator_id"] for i in incidents}
    policies = {p.operator_id: p for p in HealingPolicy.objects.filter(operator_id__in=operators)}
    cp_ids = sorted({i["charge_point_id"] for i in incidents})
    day_ago = now - dt.timedelta(hours=24)
    per_cp: dict[int, int] = defaultdict(int)
    per_incident: dict[int, list[HealingAttempt]] = defaultdict(list)
    for attempt in HealingAttempt.objects.filter(charge_point_id__in=cp_ids).order_by("created_at", "pk"):
        if attempt.created_at >= day_ago:
            per_cp[attempt.charge_point_id] += 1
        if attempt.incident_id is not None:
            per_incident[attempt.incident_id].append(attempt)

    plans: list[Plan] = []
    planned_cps: set[int] = set()
    gave_up: list[HealingAttempt] = []
    for inc in incidents:
        cp_id = inc["charge_point_id"]
        policy = policies.get(inc["operator_id"]) or _policy_defaults(inc["operator_id"])
        if not policy.enabled or cp_id in planned_cps:
            continue
        wait = dt.timedelta(minutes=policy.wait_minutes)
        history = per_incident.get(inc["pk"], [])
        last = history[-1] if history else None
        if last is None:
            next_kind = ResetKind.SOFT
        elif last.outcome == HealingOutcome.PENDING:
            continue  # another run is sending it
        elif last.outcome in (HealingOutcome.SENT, HealingOutcome.REFUSED) and now - last.created_at < wait:
            continue  # give the reset its time
        else:
            if last.outcome == HealingOutcome.SENT:
                last.outcome, last.finished_at = HealingOutcome.NOT_RECOVERED, now
                last.detail = f"The fault outlived the {last.kind.lower()} reset ({policy.wait_minutes} min)."
                gave_up.append(last)
            tried_hard = any(a.kind == ResetKind.HARD for a in history)
            if last.kind == ResetKind.SOFT and policy.hard_after_soft and not tried_hard:
                next_kind = ResetKind.HARD
            else:
                continue  # soft and hard both tried: a technician's turn
        if per_cp[cp_id] >= policy.max_attempts_per_day:
            continue
        per_cp[cp_id] += 1
        planned_cps.add(cp_id)
        plans.append(Plan(inc["pk"], cp_id, next_kind))
    if gave_up:
        HealingAttempt.objects.bulk_update(gave_up, ["outcome", "finished_at", "detail"])
    return plans


def _outcome(command) -> tuple[str, str]:
    if command.status == CommandStatus.ACCEPTED:
        return HealingOutcome.SENT, "Accepted by the charger; waiting for the fault to clear."
    return HealingOutcome.REFUSED, f"{command.get_status_display()}: {command.outcome}"[:255]


def run(*, now: dt.datetime | None = None) -> dict:
    """One healing pass: close finished resets, plan, send, record. Returns counts."""
    now = now or timezone.now()
    with transaction.atomic():
        if not _lock():
            return {"skipped": True}
        recovered = _close_finished(now)
        plans = plan(now=now)
        attempts = HealingAttempt.objects.bulk_create(
            [
                HealingAttempt(charge_point_id=p.charge_point_id, incident_id=p.incident_id, kind=p.kind)
                for p in plans
            ]
        )
    counts = {"recovered": recovered, "sent": 0, "refused": 0}
    if not attempts:
        return counts
    charge_points = ChargePoint.objects.in_bulk([a.charge_point_id for a in attempts])
    timeout = getattr(settings, "DIAGNOSTICS_RESET_TIMEOUT", 30)
    for kind in (ResetKind.SOFT, ResetKind.HARD):
        group = [a for a in attempts if a.kind == kind]
        if not group:
            continue
        try:
            commands = send_command_many(
                [charge_points[a.charge_point_id] for a in group], "Reset", {"type": kind}, timeout=timeout
            )
        except Exception as error:  # the channel layer down, say: record it, never crash the worker
            logger.exception("self-healing %s resets failed", kind)
            HealingAttempt.objects.filter(pk__in=[a.pk for a in group]).update(
                outcome=HealingOutcome.REFUSED, finished_at=timezone.now(), detail=str(error)[:255]
            )
            counts["refused"] += len(group)
            continue
        for attempt, command in zip(group, commands, strict=True):
            attempt.command = command
            attempt.outcome, attempt.detail = _outcome(command)
            if attempt.outcome == HealingOutcome.REFUSED:
                attempt.finished_at = timezone.now()
            counts["sent" if attempt.outcome == HealingOutcome.SENT else "refused"] += 1
        HealingAttempt.objects.bulk_update(group, ["command", "outcome", "detail", "finished_at"])
    return counts
