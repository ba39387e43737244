"""Uptime from the status history (23 CFR 680.116(b)): hand-computed expectations."""

import datetime as dt
from decimal import Decimal

import pytest

from diagnostics.models import ConnectivityEvent, ExclusionCategory, OutageExclusion
from diagnostics.uptime import uptime_percent, uptime_report
from stations.models import ChargePoint, StatusChange
from stations.models.network import StatusSource
from tests.factories import ChargePointFactory, ConnectorFactory, SiteFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(hours=100)  # a period of 100 hours: 1 hour = 1 %
NOW = T0 + dt.timedelta(days=30)


def h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def report(charge_point=None, **kwargs):
    qs = ChargePoint.objects.all() if charge_point is None else ChargePoint.objects.filter(pk=charge_point.pk)
    return uptime_report(qs, start=kwargs.get("start", T0), end=kwargs.get("end", T1), now=NOW)


def change(cp, number, status, at, source=StatusSource.CHARGER):
    connector = cp.connectors.filter(connector_id=number).first() if number else None
    return StatusChange.objects.create(
        charge_point=cp,
        connector=connector,
        connector_number=number,
        status=status,
        timestamp=at,
        source=source,
    )


@pytest.fixture
def cp(site):
    cp = ChargePointFactory(site=site, identity="VW-UP-1", is_connected=True, last_seen_at=NOW)
    ConnectorFactory(charge_point=cp, connector_id=1)
    return cp


def figures_of(rep, number=1):
    (row,) = [c for c in rep.connectors if c.connector.connector_id == number]
    return row.figures


def test_formula_is_the_rules_equation():
    # 100 h, 10 h down of which 4 h excluded: (100 - (10 - 4)) / 100 = 94 %.
    assert uptime_percent(total_us=100, outage_us=10, excluded_us=4) == 94
    assert uptime_percent(total_us=0, outage_us=0, excluded_us=0) is None


def test_status_before_the_period_decides_its_start(cp):
    change(cp, 1, "Faulted", h(-5))  # faulted before the period, until hour 3
    change(cp, 1, "Available", h(3))
    f = figures_of(report(cp))
    assert f.total_us == 100 * 3600 * 10**6
    assert f.outage_hours == Decimal("3.00")
    assert f.percent == Decimal("97.00")
    assert f.meets_target is True


def test_changes_in_the_period_and_unavailable_is_down(cp):
    change(cp, 1, "Available", h(-1))
    change(cp, 1, "Charging", h(10))
    change(cp, 1, "Unavailable", h(20))
    change(cp, 1, "Available", h(22.5))
    change(cp, 1, "Faulted", h(99))  # the last hour, until the end of the period
    f = figures_of(report(cp))
    assert f.outage_hours == Decimal("3.50")
    assert f.percent == Decimal("96.50")
    assert f.meets_target is False


def test_no_history_means_no_figure(cp):
    f = figures_of(report(cp))
    assert f.total_us == 0 and f.percent is None and f.meets_target is None
    assert f.unknown_us == 100 * 3600 * 10**6


def test_time_before_the_first_report_is_not_counted(cp):
    change(cp, 1, "Available", h(50))
    change(cp, 1, "Faulted", h(90))
    f = figures_of(report(cp))
    # 50 h counted, 10 h down: (50 - 10) / 50 = 80 %.
    assert f.total_hours == Decimal("50.00")
    assert f.percent == Decimal("80.00")


def test_exclusion_overlapping_an_outage_partly(cp, operator):
    change(cp, 1, "Available", h(-1))
    change(cp, 1, "Faulted", h(10))
    change(cp, 1, "Available", h(20))  # 10 h down
    OutageExclusion.objects.create(
        operator=operator,
        connector=cp.connectors.get(),
        category=ExclusionCategory.GRID_OUTAGE,
        starts_at=h(16),
        ends_at=h(30),  # overlaps the last 4 h of the outage only
    )
    f = figures_of(report(cp))
    assert f.outage_hours == Decimal("10.00")
    assert f.excluded_hours == Decimal("4.00")
    assert f.percent == Decimal("94.00")  # (100 - (10 - 4)) / 100


def test_overlapping_exclusions_count_once_and_only_down_time(cp, operator, site):
    change(cp, 1, "Available", h(-1))
    change(cp, 1, "Faulted", h(40))
    change(cp, 1, "Available", h(45))  # 5 h down
    for scope in ({"site": site}, {"charge_point": cp}):
        OutageExclusion.objects.create(
            operator=operator,
            category=ExclusionCategory.SCHEDULED_MAINTENANCE,
            starts_at=h(30),
            ends_at=h(43),
            **scope,
        )
    f = figures_of(report(cp))
    assert f.excluded_hours == Decimal("3.00")  # 40–43, once, though two windows cover it
    assert f.percent == Decimal("98.00")  # (100 - (5 - 3)) / 100


def test_exclusion_window_partly_outside_the_period(cp, operator):
    change(cp, 1, "Faulted", h(-10))
    change(cp, 1, "Available", h(6))  # down 0–6 in the period
    OutageExclusion.objects.create(
        operator=operator,
        category=ExclusionCategory.VANDALISM,
        starts_at=h(-20),
        ends_at=h(2),  # operator-wide
    )
    f = figures_of(report(cp))
    assert (f.outage_hours, f.excluded_hours, f.percent) == (
        Decimal("6.00"),
        Decimal("2.00"),
        Decimal("96.00"),
    )


def test_another_operators_exclusion_does_not_apply(cp, other_operator):
    change(cp, 1, "Faulted", h(-1))
    change(cp, 1, "Available", h(10))
    OutageExclusion.objects.create(
        operator=other_operator, category=ExclusionCategory.OTHER, starts_at=h(0), ends_at=h(10)
    )
    assert figures_of(report(cp)).percent == Decimal("90.00")


def test_charge_point_wide_fault_downs_every_connector(cp):
    ConnectorFactory(charge_point=cp, connector_id=2)
    change(cp, 1, "Available", h(-1))
    change(cp, 2, "Charging", h(-1))
    change(cp, 0, "Unavailable", h(50))
    change(cp, 0, "Available", h(60))
    rep = report(cp)
    assert figures_of(rep, 1).percent == Decimal("90.00")
    assert figures_of(rep, 2).percent == Decimal("90.00")
    (cp_row,) = rep.charge_points
    assert cp_row.figures.percent == Decimal("90.00")


def test_offline_recorded_by_the_system_until_the_charger_speaks(cp):
    change(cp, 1, "Available", h(-1))
    change(cp, 0, "Unknown", h(30), source=StatusSource.SYSTEM)  # connection lost
    change(cp, 1, "Available", h(38))  # back: the charger reports again
    f = figures_of(report(cp))
    assert f.outage_hours == Decimal("8.00")
    assert f.percent == Decimal("92.00")


def test_time_between_a_connection_going_down_and_coming_back_is_outage(cp):
    change(cp, 1, "Available", h(-1))
    ConnectivityEvent.objects.create(charge_point=cp, online=False, at=h(-2))  # before: back since
    ConnectivityEvent.objects.create(charge_point=cp, online=True, at=h(-1.5))
    ConnectivityEvent.objects.create(charge_point=cp, online=False, at=h(20))
    ConnectivityEvent.objects.create(charge_point=cp, online=True, at=h(26))  # no new status report
    ConnectivityEvent.objects.create(charge_point=cp, online=False, at=h(98))  # still down at the end
    f = figures_of(report(cp))
    assert f.outage_hours == Decimal("8.00")
    assert f.percent == Decimal("92.00")


def test_offline_before_the_period_counts_from_its_start(cp):
    change(cp, 1, "Available", h(-5))
    ConnectivityEvent.objects.create(charge_point=cp, online=False, at=h(-3))
    ConnectivityEvent.objects.create(charge_point=cp, online=True, at=h(4))
    assert figures_of(report(cp)).outage_hours == Decimal("4.00")


def test_charge_point_offline_now_is_down_since_last_seen(site):
    cp = ChargePointFactory(site=site, identity="VW-UP-2", is_connected=False, last_seen_at=h(95))
    ConnectorFactory(charge_point=cp, connector_id=1)
    change(cp, 1, "Available", h(-1))
    f = figures_of(report(cp))
    assert f.outage_hours == Decimal("5.00")
    assert f.percent == Decimal("95.00")


def test_period_ending_in_the_future_stops_now(cp):
    change(cp, 1, "Available", h(-1))
    rep = uptime_report(
        ChargePoint.objects.filter(pk=cp.pk), start=T0, end=T0 + dt.timedelta(days=365), now=h(10)
    )
    assert figures_of(rep).total_hours == Decimal("10.00")


def test_site_and_overall_sums_weight_each_connector_by_its_time(cp, operator):
    other_site = SiteFactory(operator=operator, name="Zuid")
    cp2 = ChargePointFactory(site=other_site, identity="VW-UP-3", is_connected=True, last_seen_at=NOW)
    ConnectorFactory(charge_point=cp2, connector_id=1)
    change(cp, 1, "Available", h(-1))
    change(cp2, 1, "Faulted", h(-1))
    change(cp2, 1, "Available", h(20))
    rep = report()
    assert [s.name for s in rep.sites] == ["Central Station", "Zuid"]
    assert [s.figures.percent for s in rep.sites] == [Decimal("100.00"), Decimal("80.00")]
    assert rep.figures.percent == Decimal("90.00")  # 200 h counted, 20 h down


def test_rounding_never_shows_a_miss_as_met(cp):
    change(cp, 1, "Available", h(-1))
    change(cp, 1, "Faulted", h(50))
    change(cp, 1, "Available", h(53.0018))  # 3.0018 h down: 96.9982 %
    f = figures_of(report(cp))
    assert f.percent == Decimal("97.00")
    assert f.meets_target is False


def test_fixed_number_of_queries(django_assert_num_queries, site):
    for i in range(5):
        cp = ChargePointFactory(site=site, identity=f"VW-Q-{i}")
        for n in (1, 2):
            ConnectorFactory(charge_point=cp, connector_id=n)
            change(cp, n, "Available", h(-1 - i))
            change(cp, n, "Faulted", h(10 + i))
    with django_assert_num_queries(5):
        rep = report()
        assert len(rep.connectors) == 10
