"""Energy and revenue reports: the numbers against hand-built sessions and charges (two sites,
two tariffs and a third in another currency, two months, local-time boundaries), the scope
(another operator's sessions never appear), CSV and PDF, and the summary API.

``build_network`` is shared with the page and job tests.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from billing import report_export, reports
from billing.models import ChargeLine, LineKind, SessionCharge, Tariff
from sessions.models import EnergyAnomaly
from tests.factories import ChargePointFactory, OperatorAdminFactory, SiteFactory, TechnicianFactory
from tests.sessions.factories import TransactionFactory

pytestmark = pytest.mark.django_db

AMS = "Europe/Amsterdam"
UTC = dt.UTC
D = Decimal


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def session(cp, started_at, kwh, charge=None, *, anomaly="", stopped=True):
    """A completed session of ``kwh`` (None: active), priced as ``charge`` = (tariff, net, tax)."""
    energy = D(kwh) * 1000
    if stopped:
        tx = TransactionFactory(
            charge_point=cp,
            started_at=started_at,
            stopped=True,
            stopped_at=started_at + dt.timedelta(hours=1),
            energy_wh=energy,
            meter_start=D(1000),
            meter_stop=D(1000) + energy,
            energy_anomaly=anomaly,
        )
    else:
        tx = TransactionFactory(charge_point=cp, started_at=started_at)
    if charge is not None:
        tariff, net, tax = charge
        sc = SessionCharge.objects.create(
            transaction=tx,
            tariff=tariff,
            currency=tariff.currency,
            net=D(net),
            tax=D(tax),
            total=D(net) + D(tax),
            energy_kwh=D(kwh),
        )
        ChargeLine.objects.create(
            charge=sc,
            kind=LineKind.ENERGY,
            description="Energy",
            quantity=D(kwh),
            unit="kWh",
            unit_price=(D(net) / D(kwh)).quantize(D("0.00001")) if D(kwh) else D(0),
            net=D(net),
            tax_rate=tariff.tax_rate,
            tax=D(tax),
            total=D(net) + D(tax),
        )
    return tx


def build_network(operator, other_operator) -> dict:
    """Two sites (Amsterdam and Berlin), tariffs Standard and Members (EUR) and UK (GBP),
    sessions in February and March 2026, and a session of another operator.

    In Amsterdam time: s2 starts on 1 March (23:30 UTC on 28 February) and s5 on 1 April
    (22:30 UTC on 31 March); in UTC they are in February and March."""
    ams = SiteFactory(operator=operator, name="Amsterdam Zuid", time_zone=AMS)
    ber = SiteFactory(operator=operator, name="Berlin Mitte", time_zone="Europe/Berlin")
    cp_a = ChargePointFactory(site=ams, identity="VW-AMS-1")
    cp_b = ChargePointFactory(site=ber, identity="VW-BER-1", name="Ladepark")
    standard = Tariff.objects.create(operator=operator, name="Standard", currency="EUR", tax_rate=21)
    members = Tariff.objects.create(operator=operator, name="Members", currency="EUR", tax_rate=21)
    uk = Tariff.objects.create(operator=operator, name="UK", currency="GBP", tax_rate=20)
    s = {
        "s1": session(cp_a, at(2026, 2, 10, 10), "10", (standard, "3.00", "0.63")),
        "s2": session(cp_a, at(2026, 2, 28, 23, 30), "20", (members, "5.00", "1.05")),
        "s3": session(cp_b, at(2026, 3, 15, 12), "7.5", (standard, "2.50", "0.53")),
        "s4": session(cp_b, at(2026, 3, 20, 8), "5"),  # nobody priced it
        "s5": session(cp_a, at(2026, 3, 31, 22, 30), "4", (standard, "1.00", "0.21")),
        "s6": session(cp_b, at(2026, 3, 5, 9), "3", (uk, "2.00", "0.40")),
        "s7": session(cp_a, at(2026, 3, 12, 9), "0", stopped=False),  # still charging
        # The charger's figure is doubtful: the session counts, its energy does not.
        "s8": session(
            cp_a, at(2026, 3, 10, 9), "999", (standard, "0.00", "0.00"), anomaly=EnergyAnomaly.IMPLAUSIBLE
        ),
    }
    other_site = SiteFactory(operator=other_operator, name="Harbour", time_zone=AMS)
    other_cp = ChargePointFactory(site=other_site, identity="NG-0001")
    other_tariff = Tariff.objects.create(
        operator=other_operator, name="Harbour rate", currency="EUR", tax_rate=21
    )
    s["s9"] = session(other_cp, at(2026, 3, 3, 10), "50", (other_tariff, "100.00", "21.00"))
    return {
        "ams": ams,
        "ber": ber,
        "cp_a": cp_a,
        "cp_b": cp_b,
        "standard": standard,
        "members": members,
        "uk": uk,
        "other_site": other_site,
        "sessions": s,
    }


# Feb + Mar 2026 in Amsterdam time: [31 Jan 23:00 UTC, 31 Mar 22:00 UTC).
FEB_MAR_AMS = reports.local_day_bounds(dt.date(2026, 2, 1), dt.date(2026, 3, 31), AMS)
FEB_MAR_UTC = reports.local_day_bounds(dt.date(2026, 2, 1), dt.date(2026, 3, 31), "UTC")


def figures(row) -> tuple:
    return (
        row["sessions"],
        row["energy_kwh"],
        row["revenue_net"],
        row["revenue_tax"],
        row["revenue_total"],
    )


def by_key(rows) -> dict:
    return {(r["key"], r["currency"]): r for r in rows}


@pytest.fixture
def network(operator, other_operator):
    return build_network(operator, other_operator)


def run(operator, bounds=FEB_MAR_AMS, group_by="month", time_zone=AMS, **kw):
    start, end = bounds
    return reports.summary(
        operator_ids=[operator.pk], start=start, end=end, group_by=group_by, time_zone=time_zone, **kw
    )


def test_months_in_local_time_put_a_session_after_local_midnight_in_the_next_month(operator, network):
    rows = run(operator, group_by="month")
    assert [(r["key"], r["currency"]) for r in rows] == [
        ("2026-02-01", "EUR"),
        ("2026-03-01", "EUR"),
        ("2026-03-01", "GBP"),
    ]
    got = by_key(rows)
    assert got["2026-02-01", "EUR"]["label"] == "February 2026"
    assert figures(got["2026-02-01", "EUR"]) == (1, D("10.000"), D("3.00"), D("0.63"), D("3.63"))
    # s2 (1 March local), s3, s4 (no charge: energy, no revenue), s8 (no energy, zero revenue)
    assert figures(got["2026-03-01", "EUR"]) == (4, D("32.500"), D("7.50"), D("1.58"), D("9.08"))
    assert figures(got["2026-03-01", "GBP"]) == (1, D("3.000"), D("2.00"), D("0.40"), D("2.40"))


def test_the_same_months_in_utc_move_the_boundary_sessions(operator, network):
    rows = by_key(run(operator, bounds=FEB_MAR_UTC, group_by="month", time_zone="UTC"))
    # s2 is in February in UTC; s5 (22:30 UTC on 31 March) is inside the UTC period.
    assert figures(rows["2026-02-01", "EUR"]) == (2, D("30.000"), D("8.00"), D("1.68"), D("9.68"))
    assert figures(rows["2026-03-01", "EUR"]) == (4, D("16.500"), D("3.50"), D("0.74"), D("4.24"))


def test_days_and_weeks_are_local(operator, network):
    days = by_key(run(operator, group_by="day"))
    assert figures(days["2026-03-01", "EUR"]) == (1, D("20.000"), D("5.00"), D("1.05"), D("6.05"))
    assert ("2026-02-28", "EUR") not in days
    assert len(days) == 6  # s1, s2, s3, s4, s6, s8 on six different days
    weeks = by_key(run(operator, group_by="week"))
    # 1 March 2026 is a Sunday: the week began on Monday 23 February.
    assert weeks["2026-02-23", "EUR"]["label"] == "Week of 2026-02-23"
    assert figures(weeks["2026-02-23", "EUR"]) == (1, D("20.000"), D("5.00"), D("1.05"), D("6.05"))
    assert figures(weeks["2026-02-09", "EUR"]) == (1, D("10.000"), D("3.00"), D("0.63"), D("3.63"))


def test_by_site_keeps_currencies_apart(operator, network):
    rows = run(operator, group_by="site")
    assert [(r["label"], r["currency"]) for r in rows] == [
        ("Amsterdam Zuid", "EUR"),
        ("Berlin Mitte", "EUR"),
        ("Berlin Mitte", "GBP"),
    ]
    got = by_key(rows)
    assert got[network["ams"].pk, "EUR"]["key"] == network["ams"].pk
    assert figures(got[network["ams"].pk, "EUR"]) == (3, D("30.000"), D("8.00"), D("1.68"), D("9.68"))
    assert figures(got[network["ber"].pk, "EUR"]) == (2, D("12.500"), D("2.50"), D("0.53"), D("3.03"))
    assert figures(got[network["ber"].pk, "GBP"]) == (1, D("3.000"), D("2.00"), D("0.40"), D("2.40"))


def test_by_tariff_has_a_row_for_sessions_nobody_priced(operator, network):
    rows = run(operator, group_by="tariff")
    assert [(r["label"], r["currency"]) for r in rows] == [
        ("Members", "EUR"),
        ("Standard", "EUR"),
        ("UK", "GBP"),
        (reports.NO_TARIFF, "EUR"),
    ]
    got = by_key(rows)
    assert figures(got[network["standard"].pk, "EUR"]) == (3, D("17.500"), D("5.50"), D("1.16"), D("6.66"))
    assert figures(got[None, "EUR"]) == (1, D("5.000"), D("0.00"), D("0.00"), D("0.00"))


def test_by_charge_point_and_one_site(operator, network):
    rows = run(operator, group_by="charge_point", site_ids=[network["ber"].pk])
    assert [(r["label"], r["currency"]) for r in rows] == [
        ("VW-BER-1 (Ladepark)", "EUR"),
        ("VW-BER-1 (Ladepark)", "GBP"),
    ]
    assert rows[0]["key"] == network["cp_b"].pk


def test_totals_per_currency_match_the_sum_of_rows(operator, network):
    start, end = FEB_MAR_AMS
    totals = reports.totals(operator_ids=[operator.pk], start=start, end=end, time_zone=AMS)
    assert [(t["currency"], *figures(t)) for t in totals] == [
        ("EUR", 5, D("42.500"), D("10.50"), D("2.21"), D("12.71")),
        ("GBP", 1, D("3.000"), D("2.00"), D("0.40"), D("2.40")),
    ]
    for group_by in ("site", "tariff", "day", "week", "month", "charge_point"):
        assert reports.totals_of(run(operator, group_by=group_by)) == totals


def test_another_operators_sessions_never_appear(operator, other_operator, network):
    for group_by in ("site", "tariff", "charge_point", "month"):
        rows = run(operator, group_by=group_by)
        assert "Harbour" not in {r["label"] for r in rows}
        assert sum(r["revenue_total"] for r in rows) == D("12.71") + D("2.40")
    other = run(other_operator, group_by="site")
    assert [(r["label"], *figures(r)) for r in other] == [
        ("Harbour", 1, D("50.000"), D("100.00"), D("21.00"), D("121.00"))
    ]


def test_scope_of_users(
    operator, other_operator, network, operator_admin, technician, driver, django_user_model
):
    assert reports.operator_ids_for(operator_admin) == [operator.pk]
    assert reports.operator_ids_for(technician) == [operator.pk]
    assert reports.operator_ids_for(driver) == []
    root = django_user_model.objects.create_superuser(email="root@example.com", password="x")
    assert set(reports.operator_ids_for(root)) == {operator.pk, other_operator.pk}


def test_the_query_is_one_whatever_the_number_of_sessions(operator, network, django_assert_num_queries):
    start, end = FEB_MAR_AMS
    with django_assert_num_queries(1):
        reports.summary(operator_ids=[operator.pk], start=start, end=end, group_by="site", time_zone=AMS)


def test_bad_input_is_refused(operator):
    start, end = FEB_MAR_AMS
    with pytest.raises(reports.ReportError):
        reports.summary(operator_ids=[operator.pk], start=start, end=end, group_by="colour", time_zone=AMS)
    with pytest.raises(reports.ReportError):
        reports.summary(
            operator_ids=[operator.pk], start=start, end=end, group_by="day", time_zone="Mars/Olympus"
        )
    with pytest.raises(reports.ReportError):
        reports.summary(operator_ids=[operator.pk], start=end, end=start, group_by="day", time_zone=AMS)


def test_chunks_cover_the_period_at_local_month_starts():
    start, end = FEB_MAR_AMS
    pieces = reports.chunks(start, end, AMS)
    assert pieces == [(start, at(2026, 2, 28, 23)), (at(2026, 2, 28, 23), end)]


def test_csv_has_decimal_strings_and_totals(operator, network):
    rows = run(operator, group_by="site")
    totals = reports.totals_of(rows)
    lines = list(csv.reader(io.StringIO(report_export.csv_bytes(rows, totals, group_by="site").decode())))
    assert lines[0] == report_export.CSV_HEADER
    assert lines[1] == [
        "site",
        str(network["ams"].pk),
        "Amsterdam Zuid",
        "EUR",
        "3",
        "30.000",
        "8.00",
        "1.68",
        "9.68",
    ]
    assert lines[-2] == ["total", "", "Total", "EUR", "5", "42.500", "10.50", "2.21", "12.71"]
    assert lines[-1] == ["total", "", "Total", "GBP", "1", "3.000", "2.00", "0.40", "2.40"]


def test_pdf_shows_the_rows_and_totals(operator, network):
    rows = run(operator, group_by="tariff")
    start, end = FEB_MAR_AMS
    title = reports.describe(group_by="tariff", start=start, end=end, time_zone=AMS)
    pdf = report_export.pdf_bytes(title=title, group_by="tariff", rows=rows, totals=reports.totals_of(rows))
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split())
    assert "Energy and revenue by tariff, 2026-02-01 – 2026-03-31 (Europe/Amsterdam)" in text
    assert "Standard" in text and "Members" in text and reports.NO_TARIFF in text
    assert "17.500" in text and "6.66" in text
    assert "Total EUR 5 42.500 10.50 2.21 12.71" in text
    assert "Total GBP 1 3.000 2.00 0.40 2.40" in text


# --- API ---------------------------------------------------------------------------------------


def test_api_summary(api_as, operator, network, operator_admin):
    response = api_as(operator_admin).get(
        "/api/v1/operator/reports/summary/",
        {"start": "2026-02-01", "end": "2026-03-31", "group_by": "site", "time_zone": AMS},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["time_zone"] == AMS
    assert body["rows"][0] == {
        "key": network["ams"].pk,
        "label": "Amsterdam Zuid",
        "currency": "EUR",
        "sessions": 3,
        "energy_kwh": "30.000",
        "revenue_net": "8.00",
        "revenue_tax": "1.68",
        "revenue_total": "9.68",
    }
    assert [(t["currency"], t["revenue_total"]) for t in body["totals"]] == [
        ("EUR", "12.71"),
        ("GBP", "2.40"),
    ]


def test_api_summary_default_zone_is_the_sites_and_month_keys_are_dates(api_as, operator, network):
    tech = TechnicianFactory(operator=operator)
    body = (
        api_as(tech)
        .get(
            "/api/v1/operator/reports/summary/",
            {"start": "2026-02-01", "end": "2026-03-31", "group_by": "month"},
        )
        .json()
    )
    # Amsterdam and Berlin tie on one site each: the alphabetically first zone wins.
    assert body["time_zone"] == AMS
    assert [(r["key"], r["currency"], r["sessions"]) for r in body["rows"]] == [
        ("2026-02-01", "EUR", 1),
        ("2026-03-01", "EUR", 4),
        ("2026-03-01", "GBP", 1),
    ]


def test_api_summary_is_scoped_and_refuses_others_sites(api_as, other_operator, network):
    admin = OperatorAdminFactory(operator=other_operator)
    client = api_as(admin)
    body = client.get(
        "/api/v1/operator/reports/summary/", {"start": "2026-02-01", "end": "2026-03-31", "group_by": "site"}
    ).json()
    assert [r["label"] for r in body["rows"]] == ["Harbour"]
    response = client.get(
        "/api/v1/operator/reports/summary/",
        {"start": "2026-02-01", "end": "2026-03-31", "site": network["ams"].pk},
    )
    assert response.status_code == 400
    assert "site" in response.json()


def test_api_summary_refuses_drivers_long_periods_and_bad_input(api_as, driver, operator_admin, network):
    assert (
        api_as(driver)
        .get("/api/v1/operator/reports/summary/", {"start": "2026-02-01", "end": "2026-02-02"})
        .status_code
        == 403
    )
    client = api_as(operator_admin)
    long = client.get("/api/v1/operator/reports/summary/", {"start": "2025-01-01", "end": "2026-03-31"})
    assert long.status_code == 400 and "job" in str(long.json())
    assert (
        client.get(
            "/api/v1/operator/reports/summary/", {"start": "2026-03-01", "end": "2026-02-01"}
        ).status_code
        == 400
    )
    assert (
        client.get(
            "/api/v1/operator/reports/summary/",
            {"start": "2026-02-01", "end": "2026-02-02", "group_by": "colour"},
        ).status_code
        == 400
    )
    assert (
        client.get(
            "/api/v1/operator/reports/summary/",
            {"start": "2026-02-01", "end": "2026-02-02", "time_zone": "Nowhere"},
        ).status_code
        == 400
    )
