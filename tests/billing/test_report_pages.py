"""The energy and revenue report page: who may see it, the numbers in its table, the chart's
data, CSV and PDF exports, long periods offered as jobs, and a bounded number of queries."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import include, path
from pypdf import PdfReader

from billing.models import ReportJob
from config.urls import urlpatterns as _root
from tests.billing.test_reports import AMS, at, build_network, session
from tests.factories import ChargePointFactory, OperatorAdminFactory, SiteFactory

# The lead mounts the reports at /billing/reports/; until then these tests mount them here.
if any(getattr(p, "namespace", None) == "billing-reports" for p in _root):
    urlpatterns = list(_root)
else:
    urlpatterns = [path("billing/reports/", include("billing.urls_reports")), *_root]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

URL = "/billing/reports/"
FEB_MAR = {"period": "custom", "start": "2026-02-01", "end": "2026-03-31", "time_zone": AMS}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def network(operator, other_operator):
    return build_network(operator, other_operator)


def test_staff_see_the_page_drivers_do_not(client, login, operator_admin, technician, driver):
    assert client.get(URL).status_code == 302  # to the login page
    assert login(driver).get(URL).status_code == 403
    client.logout()
    assert login(technician).get(URL).status_code == 200
    client.logout()
    response = login(operator_admin).get(URL)
    assert response.status_code == 200
    assert "Energy and revenue" in response.content.decode()


def test_table_and_totals_by_site(login, operator_admin, network):
    response = login(operator_admin).get(URL, {**FEB_MAR, "group_by": "site"})
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [(r["label"], r["currency"], r["sessions"], str(r["revenue_total"])) for r in rows] == [
        ("Amsterdam Zuid", "EUR", 3, "9.68"),
        ("Berlin Mitte", "EUR", 2, "3.03"),
        ("Berlin Mitte", "GBP", 1, "2.40"),
    ]
    html = response.content.decode()
    assert "Harbour" not in html
    assert "12.71" in html and "42.500" in html
    # The chart of a grouping by site is per period: weeks, as 59 days are too many bars.
    chart = response.context["chart"]
    assert chart["per"] == "week"
    assert chart["labels"][0] == "Week of 2026-01-26" and chart["labels"][-1] == "Week of 2026-03-30"
    assert sum(chart["energy_kwh"]) == 45.5


def test_chart_data_per_month_with_revenue_per_currency(login, operator_admin, network):
    response = login(operator_admin).get(URL, {**FEB_MAR, "group_by": "month"})
    html = response.content.decode()
    assert 'data-report-chart="report-chart-data"' in html
    start = html.index('<script id="report-chart-data" type="application/json">') + len(
        '<script id="report-chart-data" type="application/json">'
    )
    chart = json.loads(html[start : html.index("</script>", start)])
    assert chart["labels"] == ["February 2026", "March 2026"]
    assert chart["energy_kwh"] == [10.0, 35.5]
    assert chart["revenue"] == [
        {"currency": "EUR", "values": [3.63, 9.08]},
        {"currency": "GBP", "values": [0.0, 2.4]},
    ]


def test_chart_of_days_shows_empty_days(login, operator_admin, network):
    response = login(operator_admin).get(
        URL,
        {"period": "custom", "start": "2026-03-01", "end": "2026-03-07", "group_by": "day", "time_zone": AMS},
    )
    chart = response.context["chart"]
    assert chart["labels"] == [f"2026-03-0{d}" for d in range(1, 8)]
    assert chart["energy_kwh"] == [20.0, 0, 0, 0, 3.0, 0, 0]


def test_csv_export_is_streamed_with_decimal_strings(login, operator_admin, network):
    response = login(operator_admin).get(URL, {**FEB_MAR, "group_by": "tariff", "format": "csv"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="report-tariff-20260201-20260331.csv"' in response["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines[0][:4] == ["group_by", "key", "label", "currency"]
    standard = next(line for line in lines if line[2] == "Standard")
    assert standard[3:] == ["EUR", "3", "17.500", "5.50", "1.16", "6.66"]
    assert lines[-2][0] == "total" and lines[-2][3:] == ["EUR", "5", "42.500", "10.50", "2.21", "12.71"]
    assert "Harbour" not in "".join(",".join(line) for line in lines)


def test_pdf_export(login, operator_admin, network):
    response = login(operator_admin).get(URL, {**FEB_MAR, "group_by": "site", "format": "pdf"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages).split())
    assert "Energy and revenue by site, 2026-02-01 – 2026-03-31 (Europe/Amsterdam)" in text
    assert "Amsterdam Zuid EUR 3 30.000 8.00 1.68 9.68" in text
    assert "Total EUR 5 42.500 10.50 2.21 12.71" in text


def test_presets_and_the_site_filter(login, operator_admin, network):
    client = login(operator_admin)
    for preset in ("this_month", "last_month", "last_30_days"):
        response = client.get(URL, {"period": preset, "group_by": "site"})
        assert response.status_code == 200
        assert response.context["params"]["end"] > response.context["params"]["start"]
    response = client.get(URL, {**FEB_MAR, "group_by": "site", "site": network["ber"].pk})
    assert [r["label"] for r in response.context["rows"]] == ["Berlin Mitte", "Berlin Mitte"]
    # The site's own zone is the default when no zone is chosen.
    response = client.get(
        URL, {"period": "custom", "start": "2026-02-01", "end": "2026-03-31", "site": network["ber"].pk}
    )
    assert response.context["params"]["time_zone"] == "Europe/Berlin"


def test_another_operators_site_is_not_a_choice(login, other_operator, network):
    admin = OperatorAdminFactory(operator=other_operator)
    response = login(admin).get(URL, {**FEB_MAR, "group_by": "site", "site": network["ams"].pk})
    assert response.status_code == 200
    assert "site" in response.context["form"].errors
    assert login(admin).get(URL, {**FEB_MAR, "site": network["ams"].pk, "format": "csv"}).status_code == 400


def test_a_long_period_is_offered_as_a_job(login, operator_admin, network):
    client = login(operator_admin)
    long = {"period": "custom", "start": "2025-01-01", "end": "2026-03-31", "group_by": "month"}
    response = client.get(URL, long)
    assert response.status_code == 200
    assert response.context["long"] is True
    html = response.content.decode()
    assert "runs as a job" in html and "data-run-job" in html
    assert "report-chart-data" not in html
    assert client.get(URL, {**long, "format": "csv"}).status_code == 400


def test_custom_period_needs_both_days(login, operator_admin):
    response = login(operator_admin).get(URL, {"period": "custom", "start": "2026-02-01"})
    assert response.status_code == 200
    assert response.context["form"].errors


def test_page_queries_are_bounded(login, operator_admin, network, django_assert_max_num_queries):
    client = login(operator_admin)
    for group_by in ("site", "month", "tariff"):
        with django_assert_max_num_queries(9):
            assert client.get(URL, {**FEB_MAR, "group_by": group_by}).status_code == 200
    # More sessions, sites and jobs cost no more queries.
    for n in range(6):
        cp = ChargePointFactory(site=SiteFactory(operator=operator_admin.operator, name=f"Extra {n}"))
        for day in (2, 9, 16):
            session(cp, at(2026, 3, day, 12), "4", (network["standard"], "1.00", "0.21"))
        ReportJob.objects.create(operator=operator_admin.operator, requested_by=operator_admin, params={})
    for group_by in ("site", "charge_point", "week"):
        with django_assert_max_num_queries(9):
            response = client.get(URL, {**FEB_MAR, "group_by": group_by})
        assert response.context["totals"][0]["sessions"] == 5 + 18


def test_a_superuser_sees_every_operator(
    client, network, django_user_model, django_capture_on_commit_callbacks
):
    root = django_user_model.objects.create_superuser(email="root@example.com", password="pw-root-1")
    client.force_login(root)
    response = client.get(URL, {**FEB_MAR, "group_by": "site"})
    assert [r["label"] for r in response.context["rows"]] == [
        "Amsterdam Zuid",
        "Berlin Mitte",
        "Berlin Mitte",
        "Harbour",
    ]
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/billing/reports/jobs/", {**FEB_MAR, "group_by": "site"})
    job = ReportJob.objects.get()
    assert job.operator_id is None
    job.refresh_from_db()
    assert [t["revenue_total"] for t in job.result["totals"]] == ["133.71", "2.40"]
