"""Energy and revenue reports for operators: what their network earns, by site, charge point,
tariff or period.

A session counts in the period it *started* in (in the report's time zone), once it has
stopped: a report of a past period does not change while sessions run. Its energy is the
charger's figure (``Transaction.energy_wh``), left out when the figure is doubtful
(``energy_anomaly``); its revenue is its ``SessionCharge``. A session nobody priced still
counts, with its energy and no revenue, in its operator's currency. Amounts of different
currencies are never added: each currency is a row of its own.

The reads are set-based: one aggregate query a report, whatever the number of sessions.
Long reports run as a ``ReportJob`` in Celery (``billing.tasks_reports``), chunk by chunk,
and chunks merge exactly because every figure is a sum.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Literal, TypedDict

from django.db import transaction
from django.db.models import Count, DecimalField, F, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncDay, TruncMonth, TruncWeek
from django.utils import timezone

from sessions.models import EnergyAnomaly, Transaction, TransactionStatus
from stations.models import Operator, Site, User

from .models import ReportJob, ReportStatus

GroupBy = Literal["site", "charge_point", "tariff", "day", "week", "month"]
GROUP_BY_CHOICES: list[tuple[str, str]] = [
    ("day", "Day"),
    ("week", "Week"),
    ("month", "Month"),
    ("site", "Site"),
    ("charge_point", "Charge point"),
    ("tariff", "Tariff"),
]
PERIOD_GROUPS = ("day", "week", "month")
# Longer than this, a report runs as a job (the page and the API refuse to compute it inline).
INLINE_MAX_DAYS = 92
# A job covers at most this much (ten years of sessions is a data export, not a report).
JOB_MAX_DAYS = 3660

CENT = Decimal("0.01")
WH = Decimal("0.001")
ZERO = Decimal("0")
MONEY_OUT = DecimalField(max_digits=18, decimal_places=2)
ENERGY_OUT = DecimalField(max_digits=21, decimal_places=3)

NO_SITE = "No site"
NO_TARIFF = "Not priced by a tariff"


class Row(TypedDict):
    key: int | str | None
    label: str
    sessions: int
    energy_kwh: Decimal
    revenue_net: Decimal
    revenue_tax: Decimal
    revenue_total: Decimal
    currency: str


class ReportError(ValueError):
    """The report cannot be made as asked (a bad grouping, time zone or period)."""


# --- Scope -----------------------------------------------------------------------------------


def operator_ids_for(user: User) -> list[int]:
    """The operators whose figures ``user`` may see: their own, all for a superuser, none else."""
    if not (user.is_authenticated and user.is_active):
        return []
    if user.is_superuser:
        return list(Operator.objects.order_by("pk").values_list("pk", flat=True))
    if user.is_operator_staff:
        return [user.operator_id]
    return []


def default_time_zone(operator_ids: Sequence[int], *, site_ids: Sequence[int] | None = None) -> str:
    """The zone most of the sites in scope are in (reports read in local days); UTC without sites."""
    sites = Site.objects.filter(operator_id__in=operator_ids)
    if site_ids:
        sites = sites.filter(pk__in=site_ids)
    top = sites.values("time_zone").annotate(n=Count("pk")).order_by("-n", "time_zone").first()
    return top["time_zone"] if top else "UTC"


def zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise ReportError(f"“{name}” is not a known time zone.") from error


# --- The reads -------------------------------------------------------------------------------


def _sessions(
    operator_ids: Sequence[int], start: dt.datetime, end: dt.datetime, site_ids: Sequence[int] | None
):
    if timezone.is_naive(start) or timezone.is_naive(end):
        raise ReportError("The period's start and end must be aware datetimes.")
    if end <= start:
        raise ReportError("The end of the period must be after its start.")
    qs = Transaction.objects.filter(
        charge_point__operator_id__in=list(operator_ids),
        status=TransactionStatus.COMPLETED,
        started_at__gte=start,
        started_at__lt=end,
    )
    if site_ids:
        qs = qs.filter(charge_point__site_id__in=list(site_ids))
    # A priced session is in its tariff's currency; an unpriced one in its operator's.
    return qs.order_by().annotate(
        report_currency=Coalesce("charge__currency", "charge_point__operator__currency")
    )


_MEASURES = {
    "sessions": Count("pk"),
    "energy": Coalesce(
        Sum("energy_wh", filter=Q(energy_anomaly=EnergyAnomaly.NONE) & Q(energy_wh__isnull=False)),
        Value(ZERO),
        output_field=ENERGY_OUT,
    ),
    "net": Coalesce(Sum("charge__net"), Value(ZERO), output_field=MONEY_OUT),
    "tax": Coalesce(Sum("charge__tax"), Value(ZERO), output_field=MONEY_OUT),
    "total": Coalesce(Sum("charge__total"), Value(ZERO), output_field=MONEY_OUT),
}

_TRUNC = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}


def _grouping(group_by: str, tz: zoneinfo.ZoneInfo) -> tuple[dict, list[str]]:
    """The annotations to group on, and the names of the values to read back."""
    if group_by in _TRUNC:
        return {"bucket": _TRUNC[group_by]("started_at", tzinfo=tz)}, ["bucket"]
    if group_by == "site":
        return {"k": F("charge_point__site_id"), "name": F("charge_point__site__name")}, ["k", "name"]
    if group_by == "charge_point":
        return (
            {
                "k": F("charge_point_id"),
                "name": F("charge_point__identity"),
                "alias": F("charge_point__name"),
            },
            ["k", "name", "alias"],
        )
    if group_by == "tariff":
        return {"k": F("charge__tariff_id"), "name": F("charge__tariff__name")}, ["k", "name"]
    raise ReportError(
        f"Cannot group by “{group_by}”; choose one of {', '.join(k for k, _ in GROUP_BY_CHOICES)}."
    )


def period_label(group_by: str, day: dt.date) -> str:
    if group_by == "month":
        return day.strftime("%B %Y")
    if group_by == "week":
        return f"Week of {day.isoformat()}"
    return day.isoformat()


def _key_and_label(group_by: str, values: dict, tz: zoneinfo.ZoneInfo) -> tuple[int | str | None, str]:
    if group_by in _TRUNC:
        bucket = values["bucket"]
        if isinstance(bucket, dt.datetime):
            bucket = (timezone.localtime(bucket, tz) if timezone.is_aware(bucket) else bucket).date()
        return bucket.isoformat(), period_label(group_by, bucket)
    key = values["k"]
    if group_by == "site":
        return key, values["name"] or NO_SITE
    if group_by == "charge_point":
        alias = values["alias"]
        return key, f"{values['name']} ({alias})" if alias else values["name"]
    return key, values["name"] or NO_TARIFF


def _row(key, label: str, currency: str, values: dict) -> Row:
    return Row(
        key=key,
        label=label,
        sessions=int(values["sessions"]),
        energy_kwh=(Decimal(values["energy"]) / 1000).quantize(WH),
        revenue_net=Decimal(values["net"]).quantize(CENT),
        revenue_tax=Decimal(values["tax"]).quantize(CENT),
        revenue_total=Decimal(values["total"]).quantize(CENT),
        currency=currency,
    )


def _sort_key(group_by: str):
    if group_by in PERIOD_GROUPS:
        return lambda r: (r["key"], r["currency"])
    # Named things alphabetically, the unnamed ("No site", "Not priced…") last.
    return lambda r: (r["key"] is None, r["label"].lower(), r["key"] or 0, r["currency"])


def summary(
    *,
    operator_ids: Sequence[int],
    start: dt.datetime,
    end: dt.datetime,
    group_by: GroupBy,
    time_zone: str = "UTC",
    site_ids: Sequence[int] | None = None,
) -> list[Row]:
    """Sessions, energy and revenue of the operators' sessions that started in [start, end),
    one row per group and currency, in one query. Periods (day, week, month) are the local
    ones of ``time_zone``."""
    tz = zone(time_zone)
    annotations, names = _grouping(group_by, tz)
    values = (
        _sessions(operator_ids, start, end, site_ids)
        .annotate(**annotations)
        .values(*names, "report_currency")
        .annotate(**_MEASURES)
    )
    rows = []
    for v in values:
        key, label = _key_and_label(group_by, v, tz)
        rows.append(_row(key, label, v["report_currency"], v))
    rows = merge(rows)  # periods truncated to the same day by the database arrive as one row
    rows.sort(key=_sort_key(group_by))
    return rows


def totals(
    *,
    operator_ids: Sequence[int],
    start: dt.datetime,
    end: dt.datetime,
    time_zone: str = "UTC",
    site_ids: Sequence[int] | None = None,
) -> list[Row]:
    """The whole period, one row per currency (key ``None``, label "Total"), in one query.
    ``time_zone`` is accepted for symmetry with ``summary``: totals do not depend on it."""
    zone(time_zone)
    values = (
        _sessions(operator_ids, start, end, site_ids)
        .values("report_currency")
        .annotate(**_MEASURES)
        .order_by("report_currency")
    )
    return [_row(None, "Total", v["report_currency"], v) for v in values]


def merge(rows: Iterable[Row]) -> list[Row]:
    """Rows of the same group and currency added together (chunks of a job, or the database's
    separate truncations of one local day); first-seen order is kept."""
    merged: dict[tuple, Row] = {}
    for row in rows:
        at = (row["key"], row["currency"])
        if at not in merged:
            merged[at] = Row(**row)
            continue
        into = merged[at]
        for field in ("sessions", "energy_kwh", "revenue_net", "revenue_tax", "revenue_total"):
            into[field] += row[field]
    return list(merged.values())


def totals_of(rows: Iterable[Row]) -> list[Row]:
    """The per-currency totals of a report's rows (what ``totals`` reads, without a query)."""
    out = merge(Row(**{**row, "key": None, "label": "Total"}) for row in rows)
    return sorted(out, key=lambda r: r["currency"])


# --- Periods ---------------------------------------------------------------------------------


def local_day_bounds(first: dt.date, last: dt.date, time_zone: str) -> tuple[dt.datetime, dt.datetime]:
    """[first day 00:00, the day after the last 00:00) in the zone, as aware datetimes."""
    tz = zone(time_zone)
    return (
        dt.datetime.combine(first, dt.time.min, tzinfo=tz),
        dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
    )


def preset_days(preset: str, *, today: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of a named period, relative to ``today`` (local)."""
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        last = today.replace(day=1) - dt.timedelta(days=1)
        return last.replace(day=1), last
    if preset == "last_30_days":
        return today - dt.timedelta(days=29), today
    raise ReportError(f"Unknown period “{preset}”.")


def period_starts(start: dt.datetime, end: dt.datetime, group_by: str, time_zone: str) -> list[dt.date]:
    """Every day, week (Monday) or month in [start, end), local: the chart shows empty periods too."""
    tz = zone(time_zone)
    day = timezone.localtime(start, tz).date()
    last = timezone.localtime(end - dt.timedelta(microseconds=1), tz).date()
    if group_by == "week":
        day -= dt.timedelta(days=day.weekday())
    elif group_by == "month":
        day = day.replace(day=1)
    out = []
    while day <= last:
        out.append(day)
        if group_by == "day":
            day += dt.timedelta(days=1)
        elif group_by == "week":
            day += dt.timedelta(days=7)
        else:
            day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return out


def chunks(start: dt.datetime, end: dt.datetime, time_zone: str) -> list[tuple[dt.datetime, dt.datetime]]:
    """[start, end) cut at the local month boundaries: the pieces a job works through."""
    tz = zone(time_zone)
    pieces = []
    at = start
    while at < end:
        local = timezone.localtime(at, tz)
        next_month = (local.date().replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        cut = min(dt.datetime.combine(next_month, dt.time.min, tzinfo=tz), end)
        pieces.append((at, cut))
        at = cut
    return pieces


def is_long(start: dt.datetime, end: dt.datetime) -> bool:
    return (end - start) > dt.timedelta(days=INLINE_MAX_DAYS, hours=1)  # a DST day is 25 h


# --- Jobs ------------------------------------------------------------------------------------


def jobs_for(user: User):
    """The report jobs ``user`` may see: their operator's (a superuser's own jobs over all
    operators have no operator)."""
    qs = ReportJob.objects.select_related("requested_by").order_by("-created_at", "-pk")
    if user.is_superuser:
        return qs
    if user.is_operator_staff:
        return qs.filter(operator_id=user.operator_id)
    return qs.none()


def request_job(
    *,
    user: User,
    start: dt.datetime,
    end: dt.datetime,
    group_by: GroupBy,
    time_zone: str,
    site_ids: Sequence[int] | None = None,
    label: str = "",
) -> ReportJob:
    """Queue a report for a worker (after this transaction commits). The scope is the user's
    operator, fixed now; a superuser's job covers every operator."""
    if not user.is_operator_staff:
        raise ReportError("Only an operator's staff may run reports.")
    zone(time_zone)
    _grouping(group_by, zone(time_zone))
    if end <= start:
        raise ReportError("The end of the period must be after its start.")
    if end - start > dt.timedelta(days=JOB_MAX_DAYS):
        raise ReportError(f"Choose a period of at most {JOB_MAX_DAYS} days.")
    from .tasks_reports import run_report

    job = ReportJob.objects.create(
        operator_id=None if user.is_superuser else user.operator_id,
        requested_by=user,
        params={
            "start": start.isoformat(),
            "end": end.isoformat(),
            "group_by": group_by,
            "time_zone": time_zone,
            "site_ids": sorted(site_ids or []),
            "label": label,
        },
    )
    transaction.on_commit(lambda: run_report.delay(job.pk))
    return job


def job_scope(job: ReportJob) -> list[int]:
    if job.operator_id is not None:
        return [job.operator_id]
    return list(Operator.objects.order_by("pk").values_list("pk", flat=True))


def run_job(job: ReportJob) -> ReportJob:
    """Work through the job's period month by month, saving progress after each; then store
    the rows and totals and write the CSV and PDF. Running it again redoes it from scratch."""
    from django.core.files.base import ContentFile

    from . import report_export

    params = job.params
    start = dt.datetime.fromisoformat(params["start"])
    end = dt.datetime.fromisoformat(params["end"])
    group_by, time_zone = params["group_by"], params["time_zone"]
    site_ids = params.get("site_ids") or None
    operator_ids = job_scope(job)
    ReportJob.objects.filter(pk=job.pk).update(status=ReportStatus.RUNNING, progress=0, error="")
    pieces = chunks(start, end, time_zone)
    rows: list[Row] = []
    for done, (a, b) in enumerate(pieces, start=1):
        rows.extend(
            summary(
                operator_ids=operator_ids,
                start=a,
                end=b,
                group_by=group_by,
                time_zone=time_zone,
                site_ids=site_ids,
            )
        )
        # The last percent waits for the files.
        ReportJob.objects.filter(pk=job.pk).update(progress=min(99, done * 100 // len(pieces)))
    rows = merge(rows)
    rows.sort(key=_sort_key(group_by))
    total = totals_of(rows)
    title = describe(group_by=group_by, start=start, end=end, time_zone=time_zone)
    for field in (job.csv_file, job.pdf_file):
        if field:
            field.delete(save=False)
    stem = f"report-{job.pk}-{group_by}-{timezone.localtime(start, zone(time_zone)):%Y%m%d}"
    job.csv_file.save(
        f"{stem}.csv", ContentFile(report_export.csv_bytes(rows, total, group_by=group_by)), save=False
    )
    job.pdf_file.save(
        f"{stem}.pdf",
        ContentFile(report_export.pdf_bytes(title=title, group_by=group_by, rows=rows, totals=total)),
        save=False,
    )
    job.result = {"title": title, "rows": to_json(rows), "totals": to_json(total)}
    job.status = ReportStatus.DONE
    job.progress = 100
    job.error = ""
    job.finished_at = timezone.now()
    job.save(update_fields=["csv_file", "pdf_file", "result", "status", "progress", "error", "finished_at"])
    return job


def describe(*, group_by: str, start: dt.datetime, end: dt.datetime, time_zone: str) -> str:
    """'Energy and revenue by site, 2026-03-01 – 2026-03-31 (Europe/Amsterdam)'."""
    tz = zone(time_zone)
    first = timezone.localtime(start, tz).date()
    last = timezone.localtime(end - dt.timedelta(microseconds=1), tz).date()
    by = dict(GROUP_BY_CHOICES).get(group_by, group_by).lower()
    return f"Energy and revenue by {by}, {first.isoformat()} – {last.isoformat()} ({time_zone})"


def to_json(rows: Iterable[Row]) -> list[dict]:
    """Rows with the amounts as strings (exact, unlike floats)."""
    return [
        {
            **row,
            "energy_kwh": str(row["energy_kwh"]),
            "revenue_net": str(row["revenue_net"]),
            "revenue_tax": str(row["revenue_tax"]),
            "revenue_total": str(row["revenue_total"]),
        }
        for row in rows
    ]
