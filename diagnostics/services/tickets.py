"""Tickets (work orders): made from an incident or by hand, assigned to a technician of the
same operator, worked through open → assigned → in progress → resolved (or cancelled)."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from config import events
from diagnostics.models import Incident, Severity, Ticket, TicketStatus
from stations import selectors
from stations.models import ChargePoint, Operator, Role, User

FINAL = frozenset({TicketStatus.RESOLVED, TicketStatus.CANCELLED})
# Where a ticket may go from each status. Assigning is its own use case (``ticket_assign``),
# which also moves an open ticket to assigned.
TRANSITIONS: dict[str, frozenset[str]] = {
    TicketStatus.OPEN: frozenset({TicketStatus.CANCELLED}),
    TicketStatus.ASSIGNED: frozenset(
        {TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED, TicketStatus.CANCELLED}
    ),
    TicketStatus.IN_PROGRESS: frozenset(
        {TicketStatus.RESOLVED, TicketStatus.CANCELLED, TicketStatus.ASSIGNED}
    ),
    TicketStatus.RESOLVED: frozenset(),
    TicketStatus.CANCELLED: frozenset(),
}
EVIDENCE_FINDINGS = 10


def tickets_for(user: User) -> QuerySet[Ticket]:
    """The tickets a user may see: their operator's (every operator's for a superuser)."""
    return Ticket.objects.filter(operator__in=selectors.operators_for(user)).select_related(
        "operator",
        "incident",
        "incident__site",
        "charge_point",
        "charge_point__site",
        "assignee",
        "created_by",
    )


def incidents_for(user: User) -> QuerySet[Incident]:
    return Incident.objects.filter(operator__in=selectors.operators_for(user)).select_related(
        "operator", "site", "charge_point", "connector", "rule"
    )


def technicians_of(operator: Operator) -> QuerySet[User]:
    """Who may be sent: the operator's active staff (technicians and admins alike)."""
    return User.objects.filter(
        operator=operator, is_active=True, role__in=[Role.TECHNICIAN, Role.OPERATOR_ADMIN]
    ).order_by("email")


def _description(incident: Incident) -> str:
    lines = [incident.title, ""]
    if incident.charge_point_id:
        cp = incident.charge_point
        lines.append(
            f"Charge point: {cp.identity}"
            + (f" (connector {incident.connector.connector_id})" if incident.connector_id else "")
        )
    if incident.site_id:
        lines.append(f"Site: {incident.site.name}, {incident.site.full_address}")
    lines.append(f"Likely cause: {incident.get_cause_display()}; severity: {incident.get_severity_display()}")
    lines.append(
        f"Open since {incident.opened_at:%Y-%m-%d %H:%M} UTC, "
        f"last seen {incident.last_seen_at:%Y-%m-%d %H:%M} UTC"
    )
    if incident.rule_id and incident.rule.recommended_action:
        lines += ["", "Recommended action:", incident.rule.recommended_action]
    findings = list(incident.findings.order_by("-detected_at", "-id")[:EVIDENCE_FINDINGS])
    if findings:
        lines += ["", "Findings (newest first):"]
        lines += [f"- {f.detected_at:%Y-%m-%d %H:%M} UTC {f.summary}" for f in findings]
    if incident.evidence:
        lines += ["", "Evidence:", json.dumps(incident.evidence, indent=1, sort_keys=True, default=str)]
    return "\n".join(lines)


@transaction.atomic
def ticket_create_from_incident(*, incident: Incident, created_by: User | None = None) -> Ticket:
    """A work order for an incident: its title, a priority from its severity, the tools and
    spare parts its fault rule names, and the evidence in the description."""
    if not incident.is_open:
        raise ValidationError({"incident": "This incident is resolved: no ticket for it."})
    if (
        created_by is not None
        and not created_by.is_superuser
        and created_by.operator_id != incident.operator_id
    ):
        raise ValidationError({"incident": "No such incident of yours."})
    rule = incident.rule
    charge_point = incident.charge_point
    return Ticket.objects.create(
        operator_id=incident.operator_id,
        incident=incident,
        charge_point=charge_point,
        title=incident.title[:200],
        description=_description(incident),
        priority=incident.severity,
        tools=list(rule.tools) if rule else [],
        spare_parts=list(rule.spare_parts) if rule else [],
        created_by=created_by,
    )


def _clean_list(value, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.splitlines()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValidationError({name: "A list of names."})
    return [v.strip() for v in value if v.strip()]


@transaction.atomic
def ticket_create(
    *,
    operator: Operator,
    title: str,
    description: str = "",
    priority: str = Severity.MAJOR,
    charge_point: ChargePoint | None = None,
    tools: list[str] | None = None,
    spare_parts: list[str] | None = None,
    created_by: User | None = None,
) -> Ticket:
    """A ticket by hand (no incident behind it)."""
    title = (title or "").strip()
    if not title:
        raise ValidationError({"title": "Give the ticket a title."})
    if priority not in Severity.values:
        raise ValidationError({"priority": f"One of {', '.join(Severity.values)}."})
    if charge_point is not None and charge_point.operator_id != operator.pk:
        raise ValidationError({"charge_point": "That charge point belongs to another operator."})
    return Ticket.objects.create(
        operator=operator,
        charge_point=charge_point,
        title=title[:200],
        description=description,
        priority=priority,
        tools=_clean_list(tools, "tools"),
        spare_parts=_clean_list(spare_parts, "spare_parts"),
        created_by=created_by,
    )


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


@transaction.atomic
def ticket_assign(*, ticket: Ticket, assignee: User, by: User | None = None) -> Ticket:
    """Send a technician of the ticket's operator (``by``: who sends; an operator admin); an
    open ticket becomes assigned."""
    if by is not None and not by.is_operator_admin:
        raise ValidationError({"assignee": "Only an operator admin assigns tickets."})
    locked = _locked(ticket)
    if locked.status in FINAL:
        raise ValidationError(
            {"status": f"A {locked.get_status_display().lower()} ticket cannot be assigned."}
        )
    if not (assignee.is_active and assignee.operator_id == locked.operator_id and assignee.is_operator_staff):
        raise ValidationError({"assignee": "Assign a technician of this ticket's operator."})
    now = timezone.now()
    locked.assignee = assignee
    locked.assigned_at = now
    if locked.status == TicketStatus.OPEN:
        locked.status = TicketStatus.ASSIGNED
    locked.save(update_fields=["assignee", "assigned_at", "status", "updated_at"])
    events.publish(
        "diagnostics.ticket_assigned",
        ticket_id=locked.pk,
        operator_id=locked.operator_id,
        assignee_id=assignee.pk,
        charge_point_id=locked.charge_point_id,
    )
    return locked


@transaction.atomic
def ticket_set_status(
    *, ticket: Ticket, status: str, resolution_notes: str | None = None, by: User | None = None
) -> Ticket:
    """Move a ticket on (``by``: who does it; a technician only changes tickets assigned to
    them). Resolving needs resolution notes; the same status again only saves the notes."""
    locked = _locked(ticket)
    if by is not None and not by.is_operator_admin and locked.assignee_id != by.pk:
        raise ValidationError(
            {"status": "Only the assigned technician or an operator admin may change this ticket."}
        )
    if status not in TicketStatus.values:
        raise ValidationError({"status": f"One of {', '.join(TicketStatus.values)}."})
    notes = locked.resolution_notes if resolution_notes is None else resolution_notes.strip()
    if status != locked.status and status not in TRANSITIONS[locked.status]:
        if locked.status == TicketStatus.OPEN and status != TicketStatus.CANCELLED:
            message = "Assign a technician first."
        else:
            message = (
                f"A ticket cannot go from {locked.get_status_display().lower()} to "
                f"{TicketStatus(status).label.lower()}."
            )
        raise ValidationError({"status": message})
    if status == TicketStatus.RESOLVED and not notes:
        raise ValidationError({"resolution_notes": "Say what was done to resolve it."})
    if status != locked.status:
        locked.status = status
        locked.resolved_at = timezone.now() if status in FINAL else None
    locked.resolution_notes = notes
    locked.save(update_fields=["status", "resolution_notes", "resolved_at", "updated_at"])
    return locked
