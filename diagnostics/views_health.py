"""Diagnostics pages: the health dashboard, the uptime report (HTML and CSV) and outage
exclusions. Thin: the reads are ``diagnostics.health`` and ``diagnostics.uptime``."""

from __future__ import annotations

import csv
import datetime as dt

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views import View

from stations import selectors
from stations.permissions import OperatorStaffRequiredMixin

from . import health, uptime
from .forms_health import DEFAULT_REPORT_DAYS, OutageExclusionForm, SiteFilterForm, UptimePeriodForm

ATTENTION_LIMIT = 50
INCIDENT_LIMIT = 20
WORST_SITES = 5
DASHBOARD_UPTIME_DAYS = 7
CHART_MAX_BARS = 60


def _scoped(request, site):
    charge_points = selectors.charge_points_for(request.user)
    sites = selectors.sites_for(request.user)
    if site is not None:
        charge_points = charge_points.filter(site=site)
        sites = sites.filter(pk=site.pk)
    return charge_points, sites


class DashboardView(OperatorStaffRequiredMixin, View):
    """Units online/offline/faulted/charging, the worst sites, units needing attention and the
    open incidents; optionally for one site."""

    def get(self, request):
        form = SiteFilterForm(request.GET or None, user=request.user)
        site = form.cleaned_data.get("site") if form.is_valid() else None
        now = timezone.now()
        charge_points, sites = _scoped(request, site)
        worst = health.worst_sites(sites, charge_points, now=now, limit=None)
        # The last week's uptime of each site: shown beside the counts, and it ranks the sites
        # with as many units down (the lower uptime first).
        week = uptime.uptime_report(
            charge_points, start=now - dt.timedelta(days=DASHBOARD_UPTIME_DAYS), end=now, now=now
        )
        by_site = {row.site.pk if row.site else None: row.figures for row in week.sites}
        for s in worst:
            s.uptime = by_site.get(s.pk)
        worst.sort(key=lambda s: (-s.down_count, _exact_or_top(s.uptime)))
        worst = worst[:WORST_SITES]
        lowest = sorted(
            (row for row in week.sites if row.figures.has_data),
            key=lambda row: row.figures.exact_percent,
        )[:WORST_SITES]
        rows = health.charge_point_health(health.attention_candidates(charge_points, now=now), now=now)
        attention = [row for row in rows if row.needs_attention][:ATTENTION_LIMIT]
        operator_ids = list(selectors.operators_for(request.user).values_list("pk", flat=True))
        return render(
            request,
            "diagnostics/health/dashboard.html",
            {
                "form": form,
                "site": site,
                "summary": health.summary(charge_points, now=now),
                "worst_sites": worst,
                "lowest_uptime_sites": lowest,
                "week": week,
                "uptime_days": DASHBOARD_UPTIME_DAYS,
                "attention": attention,
                "incidents": list(health.open_incidents(operator_ids, site=site, limit=INCIDENT_LIMIT)),
                "now": now,
            },
        )


def _exact_or_top(figures) -> float:
    exact = figures.exact_percent if figures is not None else None
    return 101.0 if exact is None else float(exact)


def _report_rows(report: uptime.UptimeReport):
    """Flat rows for the table and the CSV: each site, then its charge points and connectors."""
    for site_row in report.sites:
        yield "site", site_row.name, "", "", site_row.figures
        for cp_row in site_row.charge_points:
            cp = cp_row.charge_point
            yield "charge_point", site_row.name, cp.identity, "", cp_row.figures
            for c in cp_row.connectors:
                yield "connector", site_row.name, cp.identity, str(c.connector.connector_id), c.figures


def _chart_data(report: uptime.UptimeReport) -> dict:
    """A bar per charge point; per site when there are too many charge points to read."""
    units = [(cp.charge_point.identity, cp.figures) for cp in report.charge_points]
    per = "charge point"
    if len(units) > CHART_MAX_BARS:
        units, per = [(s.name, s.figures) for s in report.sites], "site"
    bars = [{"label": label, "value": float(f.percent)} for label, f in units if f.has_data]
    return {
        "kind": "uptime",
        "per": per,
        "labels": [b["label"] for b in bars],
        "values": [b["value"] for b in bars],
        "target": float(report.target_percent),
    }


class UptimeReportView(OperatorStaffRequiredMixin, View):
    def get(self, request):
        data = request.GET.copy()
        # Without dates: the last 30 days, shown in the picker.
        today = timezone.now().date()
        data.setdefault("end", today.isoformat())
        if not data.get("start"):
            try:
                end = parse_date(data.get("end") or "") or today
            except ValueError:  # well-formed but no such day: the form says so
                end = today
            data["start"] = (end - dt.timedelta(days=DEFAULT_REPORT_DAYS - 1)).isoformat()
        form = UptimePeriodForm(data, user=request.user)
        context = {"form": form, "report": None, "can_exclude": request.user.is_operator_admin}
        if form.is_valid():
            start, end = form.period()
            charge_points, _sites = _scoped(request, form.cleaned_data.get("site"))
            report = uptime.uptime_report(charge_points, start=start, end=end)
            if request.GET.get("format") == "csv":
                return self.csv(report, form)
            for x in report.exclusions:
                x.scope = uptime.exclusion_scope(x)
            context.update(
                report=report,
                rows=list(_report_rows(report)),
                chart=_chart_data(report),
                csv_query=_with_format(request, "csv"),
                last_day=end - dt.timedelta(days=1),
            )
        return render(request, "diagnostics/health/uptime.html", context)

    def csv(self, report: uptime.UptimeReport, form: UptimePeriodForm) -> HttpResponse:
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="uptime-{start:%Y%m%d}-{end:%Y%m%d}.csv"'
        writer = csv.writer(response)
        writer.writerow(
            [
                "level",
                "site",
                "charge_point",
                "connector",
                "counted_hours",
                "outage_hours",
                "excluded_hours",
                "uptime_percent",
                "meets_97_percent",
            ]
        )
        for level, site, cp, connector, f in _report_rows(report):
            percent = f.percent
            writer.writerow(
                [
                    level,
                    site,
                    cp,
                    connector,
                    f.total_hours,
                    f.outage_hours,
                    f.excluded_hours,
                    "" if percent is None else percent,
                    "" if f.meets_target is None else ("yes" if f.meets_target else "no"),
                ]
            )
        writer.writerow(
            [
                "network",
                "",
                "",
                "",
                report.figures.total_hours,
                report.figures.outage_hours,
                report.figures.excluded_hours,
                "" if report.figures.percent is None else report.figures.percent,
                ""
                if report.figures.meets_target is None
                else ("yes" if report.figures.meets_target else "no"),
            ]
        )
        return response


def _with_format(request, fmt: str) -> str:
    query = request.GET.copy()
    query["format"] = fmt
    return query.urlencode()


class OutageExclusionCreateView(OperatorStaffRequiredMixin, View):
    """Operator admins record an outage window that uptime leaves out."""

    admin_only = True
    template_name = "diagnostics/health/exclusion_form.html"

    def get(self, request):
        return render(request, self.template_name, {"form": OutageExclusionForm(user=request.user)})

    def post(self, request):
        form = OutageExclusionForm(request.POST, user=request.user)
        with timezone.override(dt.UTC):
            if form.is_valid():
                exclusion = form.save()
                messages.success(request, f"Outage exclusion saved: {exclusion}.")
                start = exclusion.starts_at.date()
                end = min(exclusion.ends_at, timezone.now()).date()
                query = f"start={start:%Y-%m-%d}&end={max(start, end):%Y-%m-%d}"
                return redirect(f"{reverse('diagnostics:uptime')}?{query}")
        return render(request, self.template_name, {"form": form}, status=400)
