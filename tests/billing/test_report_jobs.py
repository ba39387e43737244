"""Long reports as Celery jobs (eager in tests): progress through the period month by month up
to 100, the result and the CSV and PDF files, downloadable by the operator's staff only; the
page's job form and the API's."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from pypdf import PdfReader

from billing import reports
from billing.models import ReportJob, ReportStatus
from billing.tasks_reports import run_report
from config.urls import urlpatterns as _root
from tests.billing.test_reports import AMS, build_network
from tests.factories import OperatorAdminFactory

if any(getattr(p, "namespace", None) == "billing-reports" for p in _root):
    urlpatterns = list(_root)
else:
    urlpatterns = [path("billing/reports/", include("billing.urls_reports")), *_root]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def network(operator, other_operator):
    return build_network(operator, other_operator)


def year(time_zone=AMS):
    return reports.local_day_bounds(dt.date(2025, 4, 1), dt.date(2026, 3, 31), time_zone)


def test_a_job_works_month_by_month_and_stores_the_result_and_files(
    operator_admin, network, django_capture_on_commit_callbacks
):
    start, end = year()
    with django_capture_on_commit_callbacks(execute=True):
        job = reports.request_job(user=operator_admin, start=start, end=end, group_by="month", time_zone=AMS)
    job.refresh_from_db()
    assert job.status == ReportStatus.DONE
    assert job.progress == 100
    assert job.operator_id == operator_admin.operator_id
    assert job.finished_at is not None
    assert [(r["key"], r["currency"], r["sessions"], r["revenue_total"]) for r in job.result["rows"]] == [
        ("2026-02-01", "EUR", 1, "3.63"),
        ("2026-03-01", "EUR", 4, "9.08"),
        ("2026-03-01", "GBP", 1, "2.40"),
    ]
    assert [(t["currency"], t["revenue_total"]) for t in job.result["totals"]] == [
        ("EUR", "12.71"),
        ("GBP", "2.40"),
    ]
    lines = list(csv.reader(io.StringIO(job.csv_file.read().decode())))
    assert lines[-2] == ["total", "", "Total", "EUR", "5", "42.500", "10.50", "2.21", "12.71"]
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(job.pdf_file.open("rb")).pages).split())
    assert "Energy and revenue by month, 2025-04-01 – 2026-03-31 (Europe/Amsterdam)" in text
    assert "March 2026 EUR 4 32.500 7.50 1.58 9.08" in text


def test_progress_is_saved_after_each_month(operator_admin, network):
    start, end = year()
    job = ReportJob.objects.create(
        operator=operator_admin.operator,
        requested_by=operator_admin,
        params={"start": start.isoformat(), "end": end.isoformat(), "group_by": "site", "time_zone": AMS},
    )
    with CaptureQueriesContext(connection) as queries:
        run_report.delay(job.pk)
    progress_updates = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE") and "progress" in q["sql"]
    ]
    # "running", one per month (twelve), and the final save.
    assert len(progress_updates) == 14
    job.refresh_from_db()
    assert job.status == ReportStatus.DONE and job.progress == 100
    # Months merge exactly: the same as the report made in one go.
    one_go = reports.summary(
        operator_ids=[operator_admin.operator_id], start=start, end=end, group_by="site", time_zone=AMS
    )
    assert job.result["rows"] == reports.to_json(one_go)


def test_running_a_finished_job_again_changes_nothing(
    operator_admin, network, django_capture_on_commit_callbacks
):
    start, end = year()
    with django_capture_on_commit_callbacks(execute=True):
        job = reports.request_job(user=operator_admin, start=start, end=end, group_by="tariff", time_zone=AMS)
    job.refresh_from_db()
    files = (job.csv_file.name, job.pdf_file.name)
    assert run_report.delay(job.pk).get() == {"job": job.pk, "status": "done"}
    job.refresh_from_db()
    assert (job.csv_file.name, job.pdf_file.name) == files


def test_a_job_that_fails_says_why(operator_admin):
    job = ReportJob.objects.create(
        operator=operator_admin.operator,
        params={
            "start": "2026-01-01T00:00:00+00:00",
            "end": "2026-02-01T00:00:00+00:00",
            "group_by": "colour",
            "time_zone": "UTC",
        },
    )
    run_report.delay(job.pk)
    job.refresh_from_db()
    assert job.status == ReportStatus.FAILED
    assert "colour" in job.error


def test_page_runs_a_job_and_shows_its_progress_and_files(
    client, login, operator_admin, network, django_capture_on_commit_callbacks
):
    login(operator_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/billing/reports/jobs/",
            {
                "period": "custom",
                "start": "2025-04-01",
                "end": "2026-03-31",
                "group_by": "month",
                "time_zone": AMS,
            },
        )
    assert response.status_code == 302
    job = ReportJob.objects.get()
    assert response["Location"].endswith(f"&job={job.pk}")
    page = client.get(response["Location"])
    html = page.content.decode()
    assert f'data-job-poll="/billing/reports/jobs/{job.pk}/"' in html
    status = client.get(f"/billing/reports/jobs/{job.pk}/").json()
    assert status["status"] == "done" and status["progress"] == 100
    assert status["csv_url"] == f"/billing/reports/jobs/{job.pk}/csv/"
    csv_response = client.get(status["csv_url"])
    assert csv_response.status_code == 200
    assert b"12.71" in b"".join(csv_response.streaming_content)
    pdf_response = client.get(status["pdf_url"])
    assert pdf_response["Content-Type"] == "application/pdf"
    assert b"".join(pdf_response.streaming_content).startswith(b"%PDF")
    # Listed for download on the page.
    assert f"/billing/reports/jobs/{job.pk}/pdf/" in html


def test_technicians_may_run_jobs_drivers_may_not(client, login, technician, driver, network):
    form = {"period": "last_month", "group_by": "site"}
    login(technician)
    assert client.post("/billing/reports/jobs/", form).status_code == 302
    assert ReportJob.objects.filter(requested_by=technician).exists()
    client.logout()
    login(driver)
    assert client.post("/billing/reports/jobs/", form).status_code == 403


def test_another_operators_jobs_are_not_found(client, login, operator_admin, other_operator, network):
    login(operator_admin)
    client.post("/billing/reports/jobs/", {"period": "last_month", "group_by": "site"})
    job = ReportJob.objects.get()
    client.logout()
    login(OperatorAdminFactory(operator=other_operator))
    assert client.get(f"/billing/reports/jobs/{job.pk}/").status_code == 404
    assert client.get(f"/billing/reports/jobs/{job.pk}/csv/").status_code == 404
    assert "No report jobs yet" in client.get("/billing/reports/").content.decode()


def test_api_jobs(api_as, operator_admin, other_operator, network, django_capture_on_commit_callbacks):
    client = api_as(operator_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/operator/reports/jobs/",
            {"start": "2025-04-01", "end": "2026-03-31", "group_by": "site", "time_zone": AMS},
            format="json",
        )
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    body = client.get(f"/api/v1/operator/reports/jobs/{job_id}/").json()
    assert body["status"] == "done" and body["progress"] == 100
    assert body["csv_url"].endswith(f"/api/v1/operator/reports/jobs/{job_id}/csv/")
    assert [(r["label"], r["revenue_total"]) for r in body["result"]["rows"]] == [
        ("Amsterdam Zuid", "9.68"),
        ("Berlin Mitte", "3.03"),
        ("Berlin Mitte", "2.40"),
    ]
    csv_response = client.get(body["csv_url"], HTTP_ACCEPT="text/csv")
    assert csv_response.status_code == 200
    assert b"Amsterdam Zuid" in b"".join(csv_response.streaming_content)
    pdf = client.get(body["pdf_url"])
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert [j["id"] for j in client.get("/api/v1/operator/reports/jobs/").json()["results"]] == [job_id]
    other = api_as(OperatorAdminFactory(operator=other_operator))
    assert other.get(f"/api/v1/operator/reports/jobs/{job_id}/").status_code == 404
    assert other.get("/api/v1/operator/reports/jobs/").json()["results"] == []


def test_api_job_refuses_too_long_a_period(api_as, operator_admin):
    response = api_as(operator_admin).post(
        "/api/v1/operator/reports/jobs/", {"start": "2000-01-01", "end": "2026-03-31"}, format="json"
    )
    assert response.status_code == 400
    assert not ReportJob.objects.exists()
