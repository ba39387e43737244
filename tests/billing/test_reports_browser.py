"""The report page in a real browser: the chart draws energy and revenue, and a report run as
a job shows its progress bar reaching done, with its files to download."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import include, path

from billing import reports
from billing.models import ReportJob
from billing.tasks_reports import run_report
from config.urls import urlpatterns as _root
from tests.billing.test_reports import AMS, build_network
from tests.factories import PASSWORD

if any(getattr(p, "namespace", None) == "billing-reports" for p in _root):
    urlpatterns = list(_root)
else:
    urlpatterns = [path("billing/reports/", include("billing.urls_reports")), *_root]

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.urls(__name__)]


def test_chart_renders_and_a_job_reaches_done(
    asgi_server, browser_page, operator_admin, other_operator, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    build_network(operator_admin.operator, other_operator)
    page = browser_page
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{asgi_server}/accounts/login/")
    page.fill("input[name=username]", operator_admin.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url("**/dashboard/**")

    page.goto(
        f"{asgi_server}/billing/reports/?period=custom&start=2026-02-01&end=2026-03-31&group_by=month&time_zone={AMS}"
    )
    page.wait_for_selector("canvas[data-chart-ready]")
    chart = page.evaluate(
        """(() => {
            const c = Chart.getChart(document.querySelector('canvas[data-report-chart]'));
            return {labels: c.data.labels, sets: c.data.datasets.map(d => [d.label, d.data]),
                    width: c.canvas.width, height: c.canvas.height};
        })()"""
    )
    assert chart["labels"] == ["February 2026", "March 2026"]
    assert chart["sets"] == [
        ["Energy (kWh)", [10, 35.5]],
        ["Revenue (EUR)", [3.63, 9.08]],
        ["Revenue (GBP)", [0, 2.4]],
    ]
    assert chart["width"] > 100 and chart["height"] > 50
    assert page.inner_text(".report-table tbody tr:first-child td:first-child") == "February 2026"
    assert "Harbour" not in page.content()

    page.click("form[data-run-job] button")
    page.wait_for_selector("[data-job-poll][data-job-status=done]")
    assert page.eval_on_selector("progress[data-job-progress]", "p => p.value") == 100
    assert page.inner_text("[data-job-status-text]") == "Done"
    assert page.is_visible("[data-job-links] a[data-job-csv]")
    csv_href = page.get_attribute("[data-job-links] a[data-job-csv]", "href")
    assert csv_href.endswith("/csv/")
    with page.expect_download() as download:
        page.click("[data-job-links] a[data-job-pdf]")
    assert download.value.suggested_filename.endswith(".pdf")

    # A job a worker has not started yet: the page polls until the worker is done.
    start, end = reports.local_day_bounds(dt.date(2025, 4, 1), dt.date(2026, 3, 31), AMS)
    job = ReportJob.objects.create(
        operator=operator_admin.operator,
        requested_by=operator_admin,
        params={"start": start.isoformat(), "end": end.isoformat(), "group_by": "site", "time_zone": AMS},
    )
    page.goto(f"{asgi_server}/billing/reports/?job={job.pk}")
    page.wait_for_selector("[data-job-poll][data-job-status=queued]")
    assert page.eval_on_selector("progress[data-job-progress]", "p => p.value") == 0
    assert not page.is_visible("[data-job-links]")
    run_report(job.pk)  # the worker
    page.wait_for_selector("[data-job-poll][data-job-status=done]")
    assert page.eval_on_selector("progress[data-job-progress]", "p => p.value") == 100
    assert page.inner_text("[data-job-percent]") == "100 %"
    assert (
        page.get_attribute("[data-job-links] a[data-job-csv]", "href")
        == f"/billing/reports/jobs/{job.pk}/csv/"
    )
    assert page.is_visible("[data-job-links]")
    assert problems == []
