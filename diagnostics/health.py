"""Live health of an operator's charge points and connectors, and the summary of the network.

Set-based: a fixed number of queries for any number of charge points (the charge points with
their connectors, the running sessions, the boots of the last 24 hours, the open incidents).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from sessions.models import Transaction, TransactionStatus
from stations.models import (
    ChargePoint,
    Connector,
    ConnectorStatus,
    Direction,
    OcppMessage,
    Site,
)

from .models import Incident, IncidentStatus

# Connectivity: "late" once a heartbeat is overdue by half an interval; "offline" when the socket
# is gone or the offline sweep's silence limit has passed.
OK, LATE, OFFLINE = "ok", "late", "offline"
LATE_AFTER_HEARTBEATS = 1.5
REBOOT_WINDOW = dt.timedelta(hours=24)
# Below this share of its rated power, a charging connector is "under-delivering".
LOW_POWER_SHARE = Decimal("0.5")
CHARGING_STATUSES = frozenset({ConnectorStatus.CHARGING})


@dataclass
class ConnectorHealth:
    connector: Connector
    online: bool
    session: Transaction | None = None

    @property
    def status(self) -> str:
        return self.connector.status

    @property
    def error_code(self) -> str:
        return self.connector.error_code if self.connector.has_error else ""

    @property
    def faulted(self) -> bool:
        return self.online and self.connector.status == ConnectorStatus.FAULTED

    @property
    def charging(self) -> bool:
        return self.online and self.connector.status in CHARGING_STATUSES

    @property
    def expected_kw(self) -> Decimal:
        return self.connector.max_power_kw

    @property
    def power_kw(self) -> Decimal | None:
        if self.session is None or self.session.last_power_w is None:
            return None
        return (self.session.last_power_w / 1000).quantize(Decimal("0.01"))

    @property
    def power_share(self) -> Decimal | None:
        """Delivered power as a share of the rated one, while charging."""
        if not self.charging or self.power_kw is None or not self.expected_kw:
            return None
        return (self.power_kw / self.expected_kw).quantize(Decimal("0.01"))

    @property
    def under_delivering(self) -> bool:
        share = self.power_share
        return share is not None and share < LOW_POWER_SHARE


@dataclass
class ChargePointHealth:
    charge_point: ChargePoint
    connectivity: str
    seconds_since_seen: int | None
    reboots_24h: int
    open_incidents: int
    connectors: list[ConnectorHealth] = field(default_factory=list)

    @property
    def online(self) -> bool:
        return self.connectivity != OFFLINE

    @property
    def faulted(self) -> bool:
        cp = self.charge_point
        return self.online and (
            cp.status == ConnectorStatus.FAULTED or any(c.faulted for c in self.connectors)
        )

    @property
    def charging(self) -> bool:
        return any(c.charging for c in self.connectors)

    @property
    def down(self) -> bool:
        return not self.online or self.faulted

    @property
    def power_kw(self) -> Decimal:
        return sum((c.power_kw or Decimal("0") for c in self.connectors), Decimal("0"))

    @property
    def expected_kw(self) -> Decimal:
        return sum((c.expected_kw for c in self.connectors), Decimal("0"))

    @property
    def needs_attention(self) -> bool:
        return (
            self.down
            or self.connectivity == LATE
            or self.open_incidents > 0
            or self.reboots_24h > 1
            or any(c.under_delivering for c in self.connectors)
        )

    @property
    def state(self) -> str:
        """One word for the unit: offline, faulted, charging or online."""
        if not self.online:
            return "offline"
        if self.faulted:
            return "faulted"
        if self.charging:
            return "charging"
        return "online"


def connectivity(charge_point: ChargePoint, now: dt.datetime) -> tuple[str, int | None]:
    seen = charge_point.last_seen_at
    since = None if seen is None else max(int((now - seen).total_seconds()), 0)
    if not charge_point.is_connected:
        return OFFLINE, since
    interval = charge_point.heartbeat_interval
    if since is None or since > interval * settings.CHARGEDESK_OFFLINE_AFTER_HEARTBEATS:
        return OFFLINE, since
    if since > interval * LATE_AFTER_HEARTBEATS:
        return LATE, since
    return OK, since


def reboot_counts(charge_point_ids: list[int], *, since: dt.datetime) -> Counter:
    """BootNotifications received per charge point since ``since`` (one grouped query)."""
    if not charge_point_ids:
        return Counter()
    rows = (
        OcppMessage.objects.filter(
            charge_point_id__in=charge_point_ids,
            created_at__gte=since,
            direction=Direction.IN,
            message_type=2,
            action="BootNotification",
        )
        .order_by()
        .values("charge_point_id")
        .annotate(n=Count("pk"))
    )
    return Counter({r["charge_point_id"]: r["n"] for r in rows})


def open_incident_counts(charge_point_ids: list[int]) -> Counter:
    if not charge_point_ids:
        return Counter()
    rows = (
        Incident.objects.filter(charge_point_id__in=charge_point_ids, status=IncidentStatus.OPEN)
        .order_by()
        .values("charge_point_id")
        .annotate(n=Count("pk"))
    )
    return Counter({r["charge_point_id"]: r["n"] for r in rows})


def charge_point_health(
    charge_points: QuerySet[ChargePoint], *, now: dt.datetime | None = None
) -> list[ChargePointHealth]:
    """Health of each charge point of the queryset (its connectors prefetched, as
    ``stations.selectors.charge_points_for`` gives them). Four queries after the list itself."""
    now = now or timezone.now()
    cps = list(charge_points)
    ids = [cp.pk for cp in cps]
    sessions: dict[tuple[int, int], Transaction] = {}
    if ids:
        active = Transaction.objects.filter(charge_point_id__in=ids, status=TransactionStatus.ACTIVE)
        for t in active.order_by("started_at", "pk").only(
            "pk", "charge_point_id", "connector_number", "last_power_w", "started_at", "status"
        ):
            sessions[(t.charge_point_id, t.connector_number)] = t
    reboots = reboot_counts(ids, since=now - REBOOT_WINDOW)
    incidents = open_incident_counts(ids)
    rows = []
    for cp in cps:
        state, since = connectivity(cp, now)
        # A boot recorded on the row but older than the message log's reach still counts.
        boots = reboots[cp.pk]
        if not boots and cp.last_boot_at and cp.last_boot_at >= now - REBOOT_WINDOW:
            boots = 1
        row = ChargePointHealth(
            charge_point=cp,
            connectivity=state,
            seconds_since_seen=since,
            reboots_24h=boots,
            open_incidents=incidents[cp.pk],
        )
        online = state != OFFLINE
        row.connectors = [
            ConnectorHealth(connector=c, online=online, session=sessions.get((cp.pk, c.connector_id)))
            for c in cp.connectors.all()
        ]
        rows.append(row)
    return rows


def offline_q(charge_points: QuerySet[ChargePoint], now: dt.datetime) -> Q:
    """Offline: the socket is gone, or silent for longer than the offline sweep allows."""
    factor = settings.CHARGEDESK_OFFLINE_AFTER_HEARTBEATS
    silent = Q(last_seen_at__isnull=True)
    intervals = charge_points.order_by().values_list("heartbeat_interval", flat=True).distinct()
    for interval in intervals:
        silent |= Q(
            heartbeat_interval=interval, last_seen_at__lt=now - dt.timedelta(seconds=interval * factor)
        )
    return Q(is_connected=False) | silent


def attention_candidates(
    charge_points: QuerySet[ChargePoint], *, now: dt.datetime, limit: int = 200
) -> QuerySet[ChargePoint]:
    """The charge points that may need attention (offline or late, faulted or unavailable,
    an open incident, a recent boot, a running session to check the power of), offline first.
    The exact test is ``ChargePointHealth.needs_attention``; this narrows the rows in SQL."""
    factor = LATE_AFTER_HEARTBEATS
    late = Q(last_seen_at__isnull=True)
    intervals = charge_points.order_by().values_list("heartbeat_interval", flat=True).distinct()
    for interval in intervals:
        late |= Q(heartbeat_interval=interval, last_seen_at__lt=now - dt.timedelta(seconds=interval * factor))
    troubled = (
        Q(is_connected=False)
        | late
        | Q(status__in=[ConnectorStatus.FAULTED, ConnectorStatus.UNAVAILABLE])
        | Q(connectors__status__in=[ConnectorStatus.FAULTED, ConnectorStatus.UNAVAILABLE])
        | Q(incidents__status=IncidentStatus.OPEN)
        | Q(last_boot_at__gte=now - REBOOT_WINDOW)
        | Q(transactions__status=TransactionStatus.ACTIVE)
    )
    ids = charge_points.order_by().filter(troubled).values("pk")
    return charge_points.filter(pk__in=ids).order_by("is_connected", "identity")[:limit]


def summary(charge_points: QuerySet[ChargePoint], *, now: dt.datetime | None = None) -> dict[str, int]:
    """Units (charge points) online, offline, faulted and charging; connectors likewise.
    Three queries, in the database."""
    now = now or timezone.now()
    base = charge_points.order_by()
    offline = offline_q(base, now)
    online = ~offline
    faulted_connector = Q(connectors__status=ConnectorStatus.FAULTED)
    faulted_ids = base.filter(online, Q(status=ConnectorStatus.FAULTED) | faulted_connector).values("pk")
    charging_ids = base.filter(online, connectors__status__in=CHARGING_STATUSES).values("pk")
    units = base.aggregate(
        units=Count("pk"),
        online=Count("pk", filter=online),
        offline=Count("pk", filter=offline),
        faulted=Count("pk", filter=Q(pk__in=faulted_ids)),
        charging=Count("pk", filter=Q(pk__in=charging_ids)),
    )
    units["down"] = units["offline"] + units["faulted"]
    return units


def worst_sites(
    sites: QuerySet[Site],
    charge_points: QuerySet[ChargePoint],
    *,
    now: dt.datetime | None = None,
    limit: int | None = 5,
) -> list[Site]:
    """Sites with the most units down (offline or faulted), then the largest share down, annotated
    with ``unit_count``, ``offline_count``, ``faulted_count`` and ``down_count``. One query."""
    now = now or timezone.now()
    cps = charge_points.order_by()
    offline = offline_q(cps, now)
    prefixed = _prefix(offline, "charge_points__")
    faulted = ~prefixed & (
        Q(charge_points__status=ConnectorStatus.FAULTED)
        | Q(charge_points__in=cps.filter(connectors__status=ConnectorStatus.FAULTED).values("pk"))
    )
    in_scope = Q(charge_points__in=cps.values("pk"))
    rows = (
        sites.annotate(
            unit_count=Count("charge_points", filter=in_scope, distinct=True),
            offline_count=Count("charge_points", filter=in_scope & prefixed, distinct=True),
            faulted_count=Count("charge_points", filter=in_scope & faulted, distinct=True),
        )
        .filter(unit_count__gt=0)
        .order_by()
    )
    result = list(rows)
    for site in result:
        site.down_count = site.offline_count + site.faulted_count
    result.sort(key=lambda s: (-s.down_count, -(s.down_count / s.unit_count), s.name.lower()))
    return result if limit is None else result[:limit]


def _prefix(q: Q, prefix: str) -> Q:
    """The same condition on a related model's fields."""
    children = []
    for child in q.children:
        if isinstance(child, Q):
            children.append(_prefix(child, prefix))
        else:
            key, value = child
            children.append((prefix + key, value))
    return Q(*children, _connector=q.connector, _negated=q.negated)


def open_incidents(operator_ids, *, site: Site | None = None, limit: int = 20) -> QuerySet[Incident]:
    qs = Incident.objects.filter(operator_id__in=operator_ids, status=IncidentStatus.OPEN)
    if site is not None:
        qs = qs.filter(Q(site=site) | Q(charge_point__site=site))
    return qs.select_related("site", "charge_point", "connector").order_by("-opened_at", "-id")[:limit]
