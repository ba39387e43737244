"""Operators' energy and revenue report pages: filters, a chart, a table, CSV and PDF exports,
and long reports as jobs with a progress bar. Thin: the reads are ``billing.reports``."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from stations import selectors
from stations.models import User
from stations.permissions import OperatorStaffRequiredMixin

from . import report_export, reports
from .models import ReportJob, ReportStatus

PRESETS = [
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("last_30_days", "Last 30 days"),
    ("custom", "Custom"),
]
JOBS_SHOWN = 20
# The chart of a report grouped by site, charge point or tariff shows the same period by day,
# or by week once days would be too many bars to read.
CHART_MAX_DAYS = 45


class DateInput(forms.DateInput):
    input_type = "date"


class ReportForm(forms.Form):
    """The period (a preset or custom days, both ends included, in the time zone), the
    grouping, optionally one site, and the time zone (default: the zone of the sites)."""

    period = forms.ChoiceField(choices=PRESETS, initial="this_month")
    start = forms.DateField(label="From", required=False, widget=DateInput)
    end = forms.DateField(label="To", required=False, widget=DateInput)
    group_by = forms.ChoiceField(label="Group by", choices=reports.GROUP_BY_CHOICES, initial="day")
    site = forms.ModelChoiceField(queryset=None, required=False, empty_label="All sites")
    time_zone = forms.ChoiceField(label="Time zone", required=False)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.operator_ids = reports.operator_ids_for(user)
        sites = selectors.sites_for(user).order_by("name")
        self.fields["site"].queryset = sites
        zones = Counter(sites.values_list("time_zone", flat=True))
        self.zone_default = zones.most_common(1)[0][0] if zones else "UTC"
        choices = sorted(set(zones) | {"UTC"})
        self.fields["time_zone"].choices = [("", f"The sites' ({self.zone_default})")] + [
            (z, z) for z in choices
        ]

    def clean(self):
        data = super().clean()
        site = data.get("site")
        tz = data.get("time_zone") or (site.time_zone if site else self.zone_default)
        today = timezone.localtime(timezone.now(), reports.zone(tz)).date()
        if data.get("period") == "custom":
            first, last = data.get("start"), data.get("end")
            if not first or not last:
                raise ValidationError("A custom period needs a first and a last day.")
            if last < first:
                raise ValidationError({"end": "The last day must not be before the first."})
        elif data.get("period"):
            first, last = reports.preset_days(data["period"], today=today)
        else:
            return data
        start, end = reports.local_day_bounds(first, last, tz)
        if end - start > dt.timedelta(days=reports.JOB_MAX_DAYS):
            raise ValidationError({"start": f"Choose a period of at most {reports.JOB_MAX_DAYS} days."})
        data.update(first=first, last=last, tz=tz, bounds=(start, end))
        return data

    def params(self) -> dict:
        d = self.cleaned_data
        start, end = d["bounds"]
        return {
            "operator_ids": self.operator_ids,
            "start": start,
            "end": end,
            "group_by": d["group_by"],
            "time_zone": d["tz"],
            "site_ids": [d["site"].pk] if d.get("site") else None,
        }

    def query(self) -> str:
        """The same report as a query string (what the job form and the export links carry)."""
        d = self.cleaned_data
        q = {
            "period": "custom",
            "start": d["first"].isoformat(),
            "end": d["last"].isoformat(),
            "group_by": d["group_by"],
            "time_zone": d["tz"],
        }
        if d.get("site"):
            q["site"] = str(d["site"].pk)
        from django.utils.http import urlencode

        return urlencode(q)


def _chart(params: dict, rows: list[reports.Row], group_by: str) -> dict:
    """Energy (bars) and revenue per currency (lines) per period, empty periods included."""
    if group_by not in reports.PERIOD_GROUPS:
        days = (params["end"] - params["start"]).days
        group_by = "day" if days <= CHART_MAX_DAYS else "week"
        rows = reports.summary(**{**params, "group_by": group_by})
    starts = reports.period_starts(params["start"], params["end"], group_by, params["time_zone"])
    index = {day.isoformat(): i for i, day in enumerate(starts)}
    energy = [Decimal(0)] * len(starts)
    revenue: dict[str, list[Decimal]] = {}
    for row in rows:
        i = index.get(row["key"])
        if i is None:
            continue
        energy[i] += row["energy_kwh"]
        revenue.setdefault(row["currency"], [Decimal(0)] * len(starts))[i] += row["revenue_total"]
    return {
        "kind": "report",
        "per": group_by,
        "labels": [reports.period_label(group_by, day) for day in starts],
        "energy_kwh": [float(v) for v in energy],
        "revenue": [
            {"currency": c, "values": [float(v) for v in vals]} for c, vals in sorted(revenue.items())
        ],
    }


def _filename(params: dict, ext: str) -> str:
    tz = reports.zone(params["time_zone"])
    first = timezone.localtime(params["start"], tz).date()
    last = timezone.localtime(params["end"] - dt.timedelta(microseconds=1), tz).date()
    return f"report-{params['group_by']}-{first:%Y%m%d}-{last:%Y%m%d}.{ext}"


class ReportView(OperatorStaffRequiredMixin, View):
    """The report of a period: chart, table and exports; a long period is offered as a job."""

    def get(self, request):
        data = request.GET.copy()
        data.setdefault("period", "this_month")
        data.setdefault("group_by", "day")
        form = ReportForm(data, user=request.user)
        jobs = list(reports.jobs_for(request.user)[:JOBS_SHOWN])
        context = {"form": form, "jobs": jobs, "current_job": _current_job(request, jobs)}
        fmt = request.GET.get("format")
        if not form.is_valid():
            if fmt:
                return HttpResponse(
                    "The report's filters are not valid.", status=400, content_type="text/plain"
                )
            return render(request, "billing/reports/index.html", context)
        params = form.params()
        title = reports.describe(
            group_by=params["group_by"],
            start=params["start"],
            end=params["end"],
            time_zone=params["time_zone"],
        )
        context.update(title=title, query=form.query(), params=params)
        if reports.is_long(params["start"], params["end"]):
            if fmt:
                return HttpResponse(
                    f"A report of more than {reports.INLINE_MAX_DAYS} days runs as a job.",
                    status=400,
                    content_type="text/plain",
                )
            context["long"] = True
            return render(request, "billing/reports/index.html", context)
        rows = reports.summary(**params)
        totals = reports.totals_of(rows)
        if fmt == "csv":
            return report_export.stream_csv(
                rows, totals, group_by=params["group_by"], filename=_filename(params, "csv")
            )
        if fmt == "pdf":
            pdf = report_export.pdf_bytes(title=title, group_by=params["group_by"], rows=rows, totals=totals)
            response = HttpResponse(pdf, content_type="application/pdf")
            response["Content-Disposition"] = f'attachment; filename="{_filename(params, "pdf")}"'
            return response
        context.update(
            rows=rows,
            totals=totals,
            chart=_chart(params, rows, params["group_by"]),
            group_label=dict(reports.GROUP_BY_CHOICES)[params["group_by"]],
        )
        return render(request, "billing/reports/index.html", context)


def _current_job(request, jobs: list[ReportJob]) -> ReportJob | None:
    wanted = request.GET.get("job")
    if not wanted or not wanted.isdigit():
        return None
    for job in jobs:
        if job.pk == int(wanted):
            return job
    return reports.jobs_for(request.user).filter(pk=int(wanted)).first()


class JobCreateView(OperatorStaffRequiredMixin, View):
    """Run the report of the posted filters as a job; back to the page, which shows its progress."""

    def post(self, request):
        form = ReportForm(request.POST, user=request.user)
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
            return redirect("billing-reports:index")
        params = form.params()
        try:
            job = reports.request_job(
                user=request.user,
                start=params["start"],
                end=params["end"],
                group_by=params["group_by"],
                time_zone=params["time_zone"],
                site_ids=params["site_ids"],
                label=str(form.cleaned_data["site"] or "All sites"),
            )
        except reports.ReportError as error:
            messages.error(request, str(error))
            return redirect("billing-reports:index")
        return redirect(f"{reverse('billing-reports:index')}?{form.query()}&job={job.pk}")


def job_json(job: ReportJob) -> dict:
    """What the progress bar polls."""
    done = job.status == ReportStatus.DONE
    return {
        "id": job.pk,
        "status": job.status,
        "progress": job.progress,
        "error": job.error,
        "title": (job.result or {}).get("title", ""),
        "csv_url": reverse("billing-reports:job-file", args=[job.pk, "csv"])
        if done and job.csv_file
        else None,
        "pdf_url": reverse("billing-reports:job-file", args=[job.pk, "pdf"])
        if done and job.pdf_file
        else None,
    }


class JobStatusView(OperatorStaffRequiredMixin, View):
    def get(self, request, pk: int):
        job = get_object_or_404(reports.jobs_for(request.user), pk=pk)
        response = JsonResponse(job_json(job))
        response["Cache-Control"] = "no-store"
        return response


class JobFileView(OperatorStaffRequiredMixin, View):
    """A finished job's CSV or PDF, for its operator's staff only."""

    def get(self, request, pk: int, kind: str):
        job = get_object_or_404(reports.jobs_for(request.user), pk=pk)
        field = {"csv": job.csv_file, "pdf": job.pdf_file}.get(kind)
        if not field:
            raise Http404("This job has no such file (yet).")
        try:
            handle = field.open("rb")
        except FileNotFoundError as error:
            raise Http404("The file is gone from storage.") from error
        return FileResponse(
            handle,
            as_attachment=True,
            filename=field.name.rsplit("/", 1)[-1],
            content_type="text/csv" if kind == "csv" else "application/pdf",
        )
