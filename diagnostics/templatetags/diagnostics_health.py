"""The health panel of the charge point page (power over time, status timeline).

Bounded queries, a fixed number of them: the power samples of the last 24 hours (or of the
last session when there are none), averaged per time bucket in the database; the status
history of the timeline's span; the outage exclusions of that span.
"""

from __future__ import annotations

import datetime as dt

from django import template
from django.db.models import Avg, IntegerField, Max, Value
from django.db.models.expressions import Func
from django.utils import timezone

from diagnostics import health, uptime
from sessions.models import MeterSample, Transaction

register = template.Library()

POWER_SPAN = dt.timedelta(hours=24)
POWER_POINTS = 144  # buckets across the span: 10 minutes over 24 hours
TIMELINE_SPANS = {"24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7)}
POWER_MEASURAND = "Power.Active.Import"


class EpochSeconds(Func):
    """Seconds since 1970 of a timestamp, in SQL, on SQLite and PostgreSQL."""

    output_field = IntegerField()

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="CAST((julianday(%(expressions)s) - 2440587.5) * 86400 AS INTEGER)"
        )

    def as_sql(self, compiler, connection, **extra):
        extra.setdefault("template", "CAST(EXTRACT(EPOCH FROM %(expressions)s) AS BIGINT)")
        return super().as_sql(compiler, connection, **extra)


def power_series(samples, *, start: dt.datetime, end: dt.datetime) -> dict:
    """Average and peak power per connector and time bucket (one query)."""
    bucket = max(int((end - start).total_seconds()) // POWER_POINTS, 60)
    rows = (
        samples.filter(
            timestamp__gte=start,
            timestamp__lt=end,
            measurand=POWER_MEASURAND,
            phase="",
            power_w__isnull=False,
        )
        .annotate(bucket=EpochSeconds("timestamp") / Value(bucket))
        .values("connector_number", "bucket")
        .annotate(avg_w=Avg("power_w"), peak_w=Max("power_w"))
        .order_by("connector_number", "bucket")
    )
    series: dict[int, list[dict]] = {}
    for row in rows:
        # The middle of the bucket, in milliseconds since 1970, for the chart's time axis.
        at = (row["bucket"] * bucket + bucket // 2) * 1000
        series.setdefault(row["connector_number"], []).append(
            {
                "x": at,
                "y": round(float(row["avg_w"]) / 1000, 2),
                "peak": round(float(row["peak_w"]) / 1000, 2),
            }
        )
    return {"bucket_seconds": bucket, "connectors": [{"number": n, "points": p} for n, p in series.items()]}


def _ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


@register.inclusion_tag("diagnostics/_charge_point_health.html", takes_context=True)
def charge_point_health_panel(context, charge_point):
    request = context.get("request")
    now = timezone.now()
    span_key = request.GET.get("timeline") if request is not None else None
    span_key = span_key if span_key in TIMELINE_SPANS else "24h"
    start = now - TIMELINE_SPANS[span_key]

    # Power: the last 24 hours; when the charge point's last session ended before them, that
    # session. Decided first, so the page always makes the same two queries for it.
    samples = MeterSample.objects.filter(charge_point=charge_point)
    power_start, power_end = now - POWER_SPAN, now
    last = Transaction.objects.filter(charge_point=charge_point).order_by("-started_at", "-pk").first()
    session = None
    if last is not None and last.stopped_at is not None and last.stopped_at < power_start:
        session = last
        power_start, power_end = last.started_at, last.stopped_at + dt.timedelta(seconds=1)
        samples = samples.filter(transaction=last)
    power = power_series(samples, start=power_start, end=power_end)

    connectors = list(charge_point.connectors.all())
    bands = uptime.status_bands(charge_point, start=start, end=now, now=now)
    exclusions = list(uptime.exclusions_for([charge_point.operator_id], start, now))
    rows = []
    for connector in connectors:
        windows = uptime.merge_intervals(
            (max(x.starts_at, start), min(x.ends_at, now))
            for x in exclusions
            if uptime.exclusion_applies(x, connector)
        )
        figures, _outages = uptime.connector_figures(bands.get(connector.connector_id, []), windows)
        rows.append({"connector": connector, "figures": figures})
    timeline = {
        "kind": "timeline",
        "start": _ms(start),
        "end": _ms(now),
        "rows": [f"#{c.connector_id}" for c in connectors],
        "bands": [
            {"row": f"#{number}", "from": _ms(a), "to": _ms(b), "kind": kind, "status": status}
            for number, stretches in bands.items()
            for a, b, kind, status in stretches
        ],
    }
    power_chart = {
        "kind": "power",
        "start": _ms(power_start),
        "end": _ms(power_end),
        "max_kw": float(sum((c.max_power_kw for c in connectors), 0)),
        **power,
    }
    tz = charge_point.site.time_zone if charge_point.site else "UTC"
    timeline["time_zone"] = power_chart["time_zone"] = tz
    return {
        "charge_point": charge_point,
        "request": request,
        "span_key": span_key,
        "spans": list(TIMELINE_SPANS),
        "timeline": timeline,
        "power_chart": power_chart,
        "power_session": session,
        "has_power": bool(power["connectors"]),
        "has_timeline": any(kind != uptime.UNKNOWN for s in bands.values() for _a, _b, kind, _st in s),
        "uptime_rows": rows,
        "reboots_24h": health.reboot_counts([charge_point.pk], since=now - health.REBOOT_WINDOW)[
            charge_point.pk
        ],
    }
