"""Uptime of connectors (charging ports) over a period, from the status history, in the manner
of the US NEVI rule (23 CFR 680.116(b)).

How a connector's time is classified, instant by instant:

- **down** (outage): its last reported status is Faulted or Unavailable; or the charge point as
  a whole (connector 0) reported Faulted or Unavailable; or the charge point was offline: from
  its connection going down (a ``ConnectivityEvent``, or a status ChargeDesk itself recorded
  for connector 0, source "system") until it came back or next reported anything, and, for a
  charge point offline now, from when it was last heard from until now.
- **up**: any other known status (Available, Preparing, Charging, SuspendedEV/EVSE, Finishing,
  Reserved, Occupied) while none of the above holds.
- **unknown**: before the connector's first report (or while it reports "Unknown"). This time
  is not counted at all: a port commissioned mid-month is judged on the time it was in service.

The state at the start of the period is the one last reported before it. Time is the
charger's (``StatusChange.timestamp``).

An outage that falls in an ``OutageExclusion`` window (of the connector, its charge point,
its site or the whole operator) is excluded time. The rule's equation, for a period of T:

    uptime % = (T − (T_outage − T_excluded)) / T × 100

with T the counted (known) time, T_outage the down time and T_excluded the part of it in an
exclusion window; the target is 97 %. Percentages are ``Decimal`` rounded half-up to two
places for display; ``meets_target`` compares the exact value.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from stations.models import ChargePoint, Connector, ConnectorStatus, Site, StatusChange
from stations.models.network import StatusSource

from .models import ConnectivityEvent, OutageExclusion

CONNECTIVITY = "connectivity"  # the source of an event made from a ConnectivityEvent

TARGET_PERCENT = Decimal("97")
PERCENT_PLACES = Decimal("0.01")

UP_STATUSES = frozenset(
    {
        ConnectorStatus.AVAILABLE,
        ConnectorStatus.PREPARING,
        ConnectorStatus.CHARGING,
        ConnectorStatus.SUSPENDED_EV,
        ConnectorStatus.SUSPENDED_EVSE,
        ConnectorStatus.FINISHING,
        ConnectorStatus.RESERVED,
        ConnectorStatus.OCCUPIED,
    }
)
DOWN_STATUSES = frozenset({ConnectorStatus.FAULTED, ConnectorStatus.UNAVAILABLE})

# Classes of a stretch of time; "offline" is down too, shown apart on the timeline.
UP, DOWN, OFFLINE, UNKNOWN = "up", "down", "offline", "unknown"

Interval = tuple[dt.datetime, dt.datetime]


def _us(delta: dt.timedelta) -> int:
    return delta // dt.timedelta(microseconds=1)


def uptime_percent(*, total_us: int, outage_us: int, excluded_us: int) -> Fraction | None:
    """23 CFR 680.116(b)(2) for a period of ``total_us``: the exact value, None without data."""
    if total_us <= 0:
        return None
    return Fraction(100 * (total_us - (outage_us - excluded_us)), total_us)


@dataclass
class Figures:
    """Counted time of one unit (or the sum of several), in microseconds."""

    total_us: int = 0
    outage_us: int = 0
    excluded_us: int = 0
    unknown_us: int = 0

    def add(self, other: Figures) -> None:
        self.total_us += other.total_us
        self.outage_us += other.outage_us
        self.excluded_us += other.excluded_us
        self.unknown_us += other.unknown_us

    @property
    def exact_percent(self) -> Fraction | None:
        return uptime_percent(total_us=self.total_us, outage_us=self.outage_us, excluded_us=self.excluded_us)

    @property
    def percent(self) -> Decimal | None:
        exact = self.exact_percent
        if exact is None:
            return None
        return (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
            PERCENT_PLACES, rounding=ROUND_HALF_UP
        )

    @property
    def meets_target(self) -> bool | None:
        exact = self.exact_percent
        return None if exact is None else exact >= TARGET_PERCENT

    @property
    def has_data(self) -> bool:
        return self.total_us > 0

    def hours(self, us: int) -> Decimal:
        return (Decimal(us) / Decimal(3_600_000_000)).quantize(PERCENT_PLACES, rounding=ROUND_HALF_UP)

    @property
    def total_hours(self) -> Decimal:
        return self.hours(self.total_us)

    @property
    def outage_hours(self) -> Decimal:
        return self.hours(self.outage_us)

    @property
    def excluded_hours(self) -> Decimal:
        return self.hours(self.excluded_us)

    @property
    def counted_outage_hours(self) -> Decimal:
        return self.hours(self.outage_us - self.excluded_us)

    def as_dict(self) -> dict:
        percent = self.percent
        return {
            "uptime_percent": None if percent is None else str(percent),
            "meets_target": self.meets_target,
            "total_hours": str(self.total_hours),
            "outage_hours": str(self.outage_hours),
            "excluded_hours": str(self.excluded_hours),
            "unknown_hours": str(self.hours(self.unknown_us)),
        }


@dataclass
class ConnectorUptime:
    connector: Connector
    figures: Figures
    outages: list[Interval] = field(default_factory=list)

    @property
    def charge_point(self) -> ChargePoint:
        return self.connector.charge_point


@dataclass
class ChargePointUptime:
    charge_point: ChargePoint
    connectors: list[ConnectorUptime] = field(default_factory=list)
    figures: Figures = field(default_factory=Figures)


@dataclass
class SiteUptime:
    site: Site | None
    charge_points: list[ChargePointUptime] = field(default_factory=list)
    figures: Figures = field(default_factory=Figures)

    @property
    def name(self) -> str:
        return self.site.name if self.site else "No site"


@dataclass
class UptimeReport:
    start: dt.datetime
    end: dt.datetime
    sites: list[SiteUptime]
    exclusions: list[OutageExclusion]
    figures: Figures
    target_percent: Decimal = TARGET_PERCENT

    @property
    def connectors(self) -> list[ConnectorUptime]:
        return [c for s in self.sites for cp in s.charge_points for c in cp.connectors]

    @property
    def charge_points(self) -> list[ChargePointUptime]:
        return [cp for s in self.sites for cp in s.charge_points]


# --- Reading the history --------------------------------------------------------------------


def status_changes(
    charge_point_ids: Sequence[int], start: dt.datetime, end: dt.datetime
) -> list[StatusChange]:
    """The changes that decide the state of these charge points in [start, end), oldest first:
    every report in the period, and the last one before ``start`` of each connector and of the
    charge point as a whole (connector 0; the charger's and ChargeDesk's own apart).

    Two queries, whatever the number of charge points. The last report before the period is a
    correlated subquery a connector, walking the (connector, timestamp) index backwards from
    ``start``: a year of history costs no more than a day.
    """
    if not charge_point_ids:
        return []
    fields = ("pk", "charge_point_id", "connector_number", "status", "source", "timestamp")
    earlier = StatusChange.objects.filter(timestamp__lt=start).order_by("-timestamp", "-id")
    of_connectors = Connector.objects.filter(charge_point_id__in=charge_point_ids).annotate(
        last=Subquery(earlier.filter(connector=OuterRef("pk")).values("pk")[:1])
    )
    whole = ChargePoint.objects.filter(pk__in=charge_point_ids)
    of_charge_points = [
        whole.annotate(
            last=Subquery(
                earlier.filter(charge_point=OuterRef("pk"), connector_number=0, source=source).values("pk")[
                    :1
                ]
            )
        ).values("last")
        for source in (StatusSource.CHARGER, StatusSource.SYSTEM)
    ]
    before = StatusChange.objects.filter(
        Q(pk__in=of_connectors.values("last")) | Q(pk__in=of_charge_points[0]) | Q(pk__in=of_charge_points[1])
    ).only(*fields)
    during = StatusChange.objects.filter(
        charge_point_id__in=charge_point_ids, timestamp__gte=start, timestamp__lt=end
    ).only(*fields)
    rows = list(before.order_by()) + list(during.order_by())
    rows.sort(key=lambda r: (r.timestamp, r.pk))
    return rows


def connectivity_changes(
    charge_point_ids: Sequence[int], start: dt.datetime, end: dt.datetime
) -> list[ConnectivityEvent]:
    """The connections going down and coming up of these charge points in [start, end), and
    the last one before ``start`` of each: one query, whatever the number of charge points."""
    if not charge_point_ids:
        return []
    earlier = ConnectivityEvent.objects.filter(at__lt=start).order_by("-at", "-id")
    last = ChargePoint.objects.filter(pk__in=charge_point_ids).annotate(
        last=Subquery(earlier.filter(charge_point=OuterRef("pk")).values("pk")[:1])
    )
    rows = list(
        ConnectivityEvent.objects.filter(
            Q(pk__in=last.values("last")) | Q(charge_point_id__in=charge_point_ids, at__gte=start, at__lt=end)
        ).order_by()
    )
    rows.sort(key=lambda r: (r.at, r.pk))
    return rows


def _connectivity_events(rows: Iterable[ConnectivityEvent]) -> list[StatusChange]:
    """ConnectivityEvents in the shape the timelines read (connector 0, source "connectivity")."""
    return [
        StatusChange(
            pk=-row.pk,  # apart from real status rows; ordered by time first anyway
            charge_point_id=row.charge_point_id,
            connector_number=0,
            status="online" if row.online else "offline",
            source=CONNECTIVITY,
            timestamp=row.at,
        )
        for row in rows
    ]


@dataclass
class _Event:
    at: dt.datetime
    order: int
    connector_number: int
    status: str
    source: str


def _timelines(
    charge_point: ChargePoint,
    connector_numbers: Iterable[int],
    changes: Sequence[StatusChange],
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
) -> dict[int, list[tuple[dt.datetime, dt.datetime, str, str]]]:
    """Per connector number: the stretches of [start, end) as (from, to, class, status)."""
    events = [_Event(c.timestamp, c.pk, c.connector_number, c.status, c.source) for c in changes]
    # Offline now: down since it was last heard from (the last stretch of the period).
    if not charge_point.is_connected and charge_point.last_seen_at and charge_point.last_seen_at < end:
        events.append(_Event(charge_point.last_seen_at, 2**62, 0, ConnectorStatus.UNKNOWN, "silence"))
    events.sort(key=lambda e: (e.at, e.order))

    numbers = sorted(set(connector_numbers))
    status: dict[int, str] = {}
    cp_down = False
    offline = False

    def classify(number: int) -> tuple[str, str]:
        own = status.get(number)
        if offline:
            return OFFLINE, own or ConnectorStatus.UNKNOWN
        if own is None or own == ConnectorStatus.UNKNOWN:
            return UNKNOWN, ConnectorStatus.UNKNOWN
        if cp_down or own in DOWN_STATUSES:
            return DOWN, own
        if own in UP_STATUSES:
            return UP, own
        return UNKNOWN, own

    out: dict[int, list[tuple[dt.datetime, dt.datetime, str, str]]] = {n: [] for n in numbers}
    cursor = start
    i = 0
    while True:
        # Apply every event up to the cursor, then run to the next one.
        while i < len(events) and events[i].at <= cursor:
            e = events[i]
            if e.source == "silence":
                offline = True
            elif e.source == CONNECTIVITY:
                offline = e.status == "offline"
            elif e.connector_number == 0:
                if e.source == StatusSource.SYSTEM:
                    offline = e.status not in UP_STATUSES
                else:
                    offline = False
                    cp_down = e.status in DOWN_STATUSES
            else:
                status[e.connector_number] = e.status
                if e.source != StatusSource.SYSTEM:
                    offline = False  # the charger spoke: it is connected
            i += 1
        upto = min(events[i].at, end) if i < len(events) else end
        if upto > cursor:
            for n in numbers:
                kind, st = classify(n)
                stretches = out[n]
                if stretches and stretches[-1][1] == cursor and stretches[-1][2:] == (kind, st):
                    stretches[-1] = (stretches[-1][0], upto, kind, st)
                else:
                    stretches.append((cursor, upto, kind, st))
            cursor = upto
        if cursor >= end:
            return out


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def _overlap_us(xs: list[Interval], ys: list[Interval]) -> int:
    """Total length of the intersection of two merged, sorted interval lists."""
    total, i, j = 0, 0, 0
    while i < len(xs) and j < len(ys):
        a = max(xs[i][0], ys[j][0])
        b = min(xs[i][1], ys[j][1])
        if b > a:
            total += _us(b - a)
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return total


def connector_figures(
    stretches: Sequence[tuple[dt.datetime, dt.datetime, str, str]], exclusions: list[Interval]
) -> tuple[Figures, list[Interval]]:
    figures = Figures()
    outages: list[Interval] = []
    for a, b, kind, _status in stretches:
        length = _us(b - a)
        if kind == UNKNOWN:
            figures.unknown_us += length
            continue
        figures.total_us += length
        if kind in (DOWN, OFFLINE):
            figures.outage_us += length
            outages.append((a, b))
    outages = merge_intervals(outages)
    figures.excluded_us = _overlap_us(outages, exclusions)
    return figures, outages


def exclusions_for(operator_ids: Iterable[int], start: dt.datetime, end: dt.datetime) -> QuerySet:
    return (
        OutageExclusion.objects.filter(
            operator_id__in=list(operator_ids), starts_at__lt=end, ends_at__gt=start
        )
        .select_related("site", "charge_point", "connector__charge_point", "created_by")
        .order_by("starts_at", "pk")
    )


def exclusion_applies(exclusion: OutageExclusion, connector: Connector) -> bool:
    cp = connector.charge_point
    if exclusion.operator_id != cp.operator_id:
        return False
    if exclusion.connector_id:
        return exclusion.connector_id == connector.pk
    if exclusion.charge_point_id:
        return exclusion.charge_point_id == cp.pk
    if exclusion.site_id:
        return exclusion.site_id == cp.site_id
    return True  # operator-wide


def uptime_report(
    charge_points: QuerySet[ChargePoint],
    *,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime | None = None,
) -> UptimeReport:
    """Uptime of every connector of these charge points over [start, end), with the charge
    point, site and overall sums. Five queries (connectors, two for the status history, one
    for the connectivity, exclusions)."""
    now = now or timezone.now()
    end = min(end, now)
    if end < start:
        end = start
    connectors = list(
        Connector.objects.filter(charge_point__in=charge_points.order_by().values("pk"))
        .select_related("charge_point__site", "charge_point__operator")
        .order_by("charge_point__site__name", "charge_point__identity", "connector_id")
    )
    by_cp: dict[int, list[Connector]] = defaultdict(list)
    for c in connectors:
        by_cp[c.charge_point_id].append(c)
    changes_by_cp: dict[int, list[StatusChange]] = defaultdict(list)
    ids = list(by_cp)
    for change in status_changes(ids, start, end) + _connectivity_events(
        connectivity_changes(ids, start, end)
    ):
        changes_by_cp[change.charge_point_id].append(change)
    operator_ids = {c.charge_point.operator_id for c in connectors}
    exclusions = list(exclusions_for(operator_ids, start, end)) if connectors else []

    sites: dict[int | None, SiteUptime] = {}
    overall = Figures()
    for cp_id, cp_connectors in by_cp.items():
        cp = cp_connectors[0].charge_point
        timelines = _timelines(
            cp, [c.connector_id for c in cp_connectors], changes_by_cp.get(cp_id, []), start, end, now
        )
        cp_row = ChargePointUptime(charge_point=cp)
        for connector in cp_connectors:
            windows = merge_intervals(
                (max(x.starts_at, start), min(x.ends_at, end))
                for x in exclusions
                if exclusion_applies(x, connector)
            )
            figures, outages = connector_figures(timelines[connector.connector_id], windows)
            cp_row.connectors.append(ConnectorUptime(connector=connector, figures=figures, outages=outages))
            cp_row.figures.add(figures)
        site_row = sites.get(cp.site_id)
        if site_row is None:
            site_row = sites[cp.site_id] = SiteUptime(site=cp.site)
        site_row.charge_points.append(cp_row)
        site_row.figures.add(cp_row.figures)
        overall.add(cp_row.figures)
    ordered = sorted(sites.values(), key=lambda s: (s.site is None, s.name.lower()))
    return UptimeReport(start=start, end=end, sites=ordered, exclusions=exclusions, figures=overall)


def status_bands(
    charge_point: ChargePoint, *, start: dt.datetime, end: dt.datetime, now: dt.datetime | None = None
) -> dict[int, list[tuple[dt.datetime, dt.datetime, str, str]]]:
    """The status timeline of one charge point's connectors (as for the uptime), for charts."""
    now = now or timezone.now()
    end = min(end, now)
    numbers = [c.connector_id for c in charge_point.connectors.all()]
    if end <= start:
        return {n: [] for n in numbers}
    ids = [charge_point.pk]
    changes = status_changes(ids, start, end) + _connectivity_events(connectivity_changes(ids, start, end))
    return _timelines(charge_point, numbers, changes, start, end, now)


def exclusion_scope(exclusion: OutageExclusion) -> str:
    if exclusion.connector_id:
        return f"Connector {exclusion.connector}"
    if exclusion.charge_point_id:
        return f"Charge point {exclusion.charge_point}"
    if exclusion.site_id:
        return f"Site {exclusion.site}"
    return "Whole network"
