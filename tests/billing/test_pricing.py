"""The pricing engine, one behaviour at a time: each component type, time of use in the site's
zone (across a DST change), idle grace and cap, minimum and maximum price, tax in or out."""

import datetime as dt
from decimal import Decimal as D

import pytest

from billing.models import Tariff
from billing.pricing import format_money, price
from billing.tariffs import elements_prefetch, tariff_create

pytestmark = pytest.mark.django_db

UTC = dt.UTC
T0 = dt.datetime(2026, 6, 3, 10, 0, tzinfo=UTC)  # a Wednesday


def make_tariff(operator, elements, **fields) -> Tariff:
    """A tariff written as the API writes it, read back as the services read it."""
    fields.setdefault("name", "Test tariff")
    fields.setdefault("tax_rate", D("0"))
    tariff = tariff_create(operator=operator, elements=elements, **fields)
    return Tariff.objects.prefetch_related(elements_prefetch()).get(pk=tariff.pk)


def comp(type_, price_, step=1):
    return {"type": type_, "price": D(price_), "step_size": step}


def hours(n):
    return dt.timedelta(hours=n)


def kinds(priced):
    return [line.kind for line in priced.lines]


def test_energy_is_priced_per_kwh_with_tax_included(operator):
    tariff = make_tariff(operator, [{"components": [comp("ENERGY", "0.35")]}], tax_rate=D("21"))
    priced = price(tariff, started_at=T0, stopped_at=T0 + hours(1), energy_wh=D("10000"))
    (line,) = priced.lines
    assert line.kind == "energy"
    assert line.description == "Energy 10.000 kWh × €0.35"
    assert (line.quantity, line.unit) == (D("10.0000"), "kWh")
    assert (line.net, line.tax, line.total) == (D("2.89"), D("0.61"), D("3.50"))
    assert line.unit_price == D("0.28926")  # net of tax
    assert (priced.net, priced.tax, priced.total, priced.currency) == (D("2.89"), D("0.61"), D("3.50"), "EUR")


def test_prices_without_tax_add_it_per_line(operator):
    tariff = make_tariff(
        operator, [{"components": [comp("ENERGY", "0.30")]}], tax_rate=D("21"), prices_include_tax=False
    )
    priced = price(tariff, started_at=T0, stopped_at=T0 + hours(1), energy_wh=D("10000"))
    assert (priced.net, priced.tax, priced.total) == (D("3.00"), D("0.63"), D("3.63"))
    assert priced.lines[0].unit_price == D("0.30000")


def test_half_a_cent_rounds_up(operator):
    tariff = make_tariff(operator, [{"components": [comp("ENERGY", "0.125")]}], prices_include_tax=False)
    priced = price(tariff, started_at=T0, stopped_at=T0 + hours(1), energy_wh=D("1000"))
    assert priced.total == D("0.13")


def test_time_is_priced_per_hour_of_charging(operator):
    tariff = make_tariff(operator, [{"components": [comp("TIME", "2.00")]}])
    priced = price(tariff, started_at=T0, stopped_at=T0 + dt.timedelta(minutes=90), energy_wh=D("5000"))
    (line,) = priced.lines
    assert (line.kind, line.quantity, line.unit, line.total) == ("time", D("1.5000"), "h", D("3.00"))


def test_time_step_size_bills_whole_steps(operator):
    tariff = make_tariff(operator, [{"components": [comp("TIME", "6.00", step=900)]}])
    priced = price(tariff, started_at=T0, stopped_at=T0 + dt.timedelta(minutes=20), energy_wh=D("1000"))
    assert priced.lines[0].quantity == D("0.5000")  # 20 minutes billed as two quarters
    assert priced.total == D("3.00")


def test_energy_step_size_rounds_the_session_up(operator):
    tariff = make_tariff(operator, [{"components": [comp("ENERGY", "1.00", step=1000)]}])
    priced = price(tariff, started_at=T0, stopped_at=T0 + hours(1), energy_wh=D("2001"))
    assert priced.lines[0].quantity == D("3.0000")


def test_parking_time_after_charging_ended(operator):
    tariff = make_tariff(operator, [{"components": [comp("ENERGY", "0.30"), comp("PARKING_TIME", "10")]}])
    priced = price(
        tariff,
        started_at=T0,
        stopped_at=T0 + hours(3),
        energy_wh=D("10000"),
        charging_ended_at=T0 + hours(1),
    )
    assert kinds(priced) == ["energy", "parking"]
    assert priced.lines[1].quantity == D("2.0000")
    assert priced.total == D("23.00")


def test_power_samples_show_when_the_car_stopped_charging(operator):
    tariff = make_tariff(operator, [{"components": [comp("TIME", "1.00"), comp("PARKING_TIME", "4.00")]}])
    samples = [
        (T0, D("0"), D("7000")),
        (T0 + hours(1), D("7000"), D("0")),
        (T0 + hours(2), D("7000"), D("0")),
    ]
    priced = price(tariff, started_at=T0, stopped_at=T0 + hours(2), energy_wh=D("7000"), samples=samples)
    assert [(line.kind, line.quantity) for line in priced.lines] == [
        ("time", D("1.0000")),
        ("parking", D("1.0000")),
    ]
    assert priced.total == D("5.00")


def test_flat_fee_once_per_session(operator):
    tariff = make_tariff(operator, [{"components": [comp("FLAT", "1.00"), comp("ENERGY", "0.30")]}])
    priced = price(tariff, started_at=T0, stopped_at=T0 + hours(5), energy_wh=D("1000"))
    assert [(line.kind, line.description, line.total) for line in priced.lines] == [
        ("energy", "Energy 1.000 kWh × €0.30", D("0.30")),
        ("flat", "Session fee", D("1.00")),
    ]


def test_time_of_use_in_the_site_time_zone(operator):
    peak = {"start_time": dt.time(8), "end_time": dt.time(20), "components": [comp("ENERGY", "0.50")]}
    tariff = make_tariff(operator, [peak, {"components": [comp("ENERGY", "0.30")]}])
    # 05:00–07:00 UTC is 07:00–09:00 in Amsterdam (summer time): one hour off-peak, one peak.
    start = dt.datetime(2026, 6, 3, 5, 0, tzinfo=UTC)
    priced = price(
        tariff,
        started_at=start,
        stopped_at=start + hours(2),
        energy_wh=D("20000"),
        time_zone="Europe/Amsterdam",
    )
    assert [(line.quantity, line.total) for line in priced.lines] == [
        (D("10.0000"), D("3.00")),
        (D("10.0000"), D("5.00")),
    ]
    in_utc = price(tariff, started_at=start, stopped_at=start + hours(2), energy_wh=D("20000"))
    assert in_utc.total == D("6.00")  # all before 08:00 UTC


def test_time_of_use_across_the_spring_dst_change(operator):
    day = {"start_time": dt.time(6), "end_time": dt.time(22), "components": [comp("TIME", "2.00")]}
    tariff = make_tariff(operator, [day, {"components": [comp("TIME", "1.00")]}])
    # 20:00 CET on 28 March to 08:00 CEST on 29 March 2026: eleven real hours, of which
    # 2 (20–22 CET) + 2 (06–08 CEST) by day and 7 at night (the night lost an hour).
    start = dt.datetime(2026, 3, 28, 19, 0, tzinfo=UTC)
    stop = dt.datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    priced = price(
        tariff, started_at=start, stopped_at=stop, energy_wh=D("30000"), time_zone="Europe/Amsterdam"
    )
    assert sorted((line.quantity, line.total) for line in priced.lines) == [
        (D("4.0000"), D("8.00")),
        (D("7.0000"), D("7.00")),
    ]


def test_the_hour_that_happens_twice_in_autumn_is_priced_twice(operator):
    repeated = {"start_time": dt.time(2), "end_time": dt.time(3), "components": [comp("TIME", "5.00")]}
    tariff = make_tariff(operator, [repeated, {"components": [comp("TIME", "1.00")]}])
    # 01:00 CEST to 04:00 CET on 25 October 2026: four real hours, two of them 02:00–03:00.
    start = dt.datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    priced = price(
        tariff, started_at=start, stopped_at=start + hours(4), energy_wh=D("0"), time_zone="Europe/Amsterdam"
    )
    assert sorted((line.unit_price, line.quantity) for line in priced.lines) == [
        (D("1.00000"), D("2.0000")),
        (D("5.00000"), D("2.0000")),
    ]
    assert priced.total == D("12.00")


def test_time_of_use_across_midnight_and_weekdays(operator):
    night = {"start_time": dt.time(22), "end_time": dt.time(6), "components": [comp("ENERGY", "0.20")]}
    weekend = {"day_of_week": ["SATURDAY", "SUNDAY"], "components": [comp("ENERGY", "0.25")]}
    tariff = make_tariff(operator, [night, weekend, {"components": [comp("ENERGY", "0.40")]}])
    friday_evening = dt.datetime(2026, 6, 5, 21, 0, tzinfo=UTC)  # Friday 21:00–Saturday 09:00 UTC
    priced = price(
        tariff, started_at=friday_evening, stopped_at=friday_evening + hours(12), energy_wh=D("12000")
    )
    assert sorted((line.unit_price, line.quantity) for line in priced.lines) == [
        (D("0.20000"), D("8.0000")),  # 22:00–06:00
        (D("0.25000"), D("3.0000")),  # Saturday 06:00–09:00
        (D("0.40000"), D("1.0000")),  # Friday 21:00–22:00
    ]


def test_register_samples_decide_where_the_energy_went(operator):
    peak = {"start_time": dt.time(11), "components": [comp("ENERGY", "0.50")]}
    tariff = make_tariff(operator, [peak, {"components": [comp("ENERGY", "0.30")]}])
    samples = [
        (T0, D("100000"), None),
        (T0 + hours(1), D("108000"), None),
        (T0 + hours(2), D("110000"), None),
    ]
    priced = price(tariff, started_at=T0, stopped_at=T0 + hours(2), energy_wh=D("10000"), samples=samples)
    assert [(line.unit_price, line.quantity) for line in priced.lines] == [
        (D("0.30000"), D("8.0000")),
        (D("0.50000"), D("2.0000")),
    ]


def test_kwh_restriction_prices_the_energy_beyond_it(operator):
    bulk = {"min_kwh": D("20"), "components": [comp("ENERGY", "0.30")]}
    tariff = make_tariff(operator, [bulk, {"components": [comp("ENERGY", "0.50")]}])
    priced = price(tariff, started_at=T0, stopped_at=T0 + hours(3), energy_wh=D("30000"))
    assert [(line.unit_price, line.quantity) for line in priced.lines] == [
        (D("0.30000"), D("10.0000")),
        (D("0.50000"), D("20.0000")),
    ]


def test_power_and_duration_restrictions(operator):
    fast = {"min_power_kw": D("50"), "components": [comp("ENERGY", "0.60")]}
    long = {"min_duration_s": 3600, "components": [comp("TIME", "3.00")]}
    tariff = make_tariff(operator, [fast, long, {"components": [comp("ENERGY", "0.40")]}])
    # 100 kWh in 1 h 30 min: about 67 kW on average, so the fast price; time after the first hour.
    priced = price(tariff, started_at=T0, stopped_at=T0 + dt.timedelta(minutes=90), energy_wh=D("100000"))
    assert [(line.kind, line.unit_price, line.quantity) for line in priced.lines] == [
        ("energy", D("0.60000"), D("100.0000")),
        ("time", D("3.00000"), D("0.5000")),
    ]


def test_idle_fee_after_grace_up_to_the_cap(operator):
    elements = [{"components": [comp("ENERGY", "0.30"), comp("PARKING_TIME", "10.00")]}]
    graceful = make_tariff(operator, elements, idle_grace_minutes=30)
    capped = make_tariff(operator, elements, idle_grace_minutes=30, idle_fee_cap=D("5.00"))
    figures = {
        "started_at": T0,
        "stopped_at": T0 + hours(3),
        "energy_wh": D("10000"),
        "charging_ended_at": T0 + hours(1),
    }
    priced = price(graceful, **figures)
    assert [(line.kind, line.quantity, line.total) for line in priced.lines][1] == (
        "idle",
        D("1.5000"),
        D("15.00"),
    )
    priced = price(capped, **figures)
    idle = priced.lines[1]
    assert (idle.kind, idle.total, idle.quantity) == ("idle", D("5.00"), D("0.5000"))
    assert idle.description == "Idle fee 0.500 h × €10.00 (capped)"
    assert priced.total == D("8.00")
    within_grace = price(capped, **{**figures, "stopped_at": T0 + dt.timedelta(minutes=80)})
    assert kinds(within_grace) == ["energy"]


def test_minimum_price_adds_an_adjustment_line(operator):
    tariff = make_tariff(
        operator, [{"components": [comp("ENERGY", "0.30")]}], min_price=D("2.00"), tax_rate=D("21")
    )
    priced = price(tariff, started_at=T0, stopped_at=T0 + hours(1), energy_wh=D("1000"))
    assert kinds(priced) == ["energy", "adjustment"]
    assert priced.lines[1].total == D("1.70")
    assert priced.total == D("2.00") == sum(line.total for line in priced.lines)
    assert priced.net + priced.tax == priced.total


def test_maximum_price_caps_the_session(operator):
    tariff = make_tariff(
        operator,
        [{"components": [comp("ENERGY", "0.50")]}],
        max_price=D("10.00"),
        tax_rate=D("20"),
        prices_include_tax=False,
    )
    priced = price(tariff, started_at=T0, stopped_at=T0 + hours(2), energy_wh=D("40000"))
    assert kinds(priced) == ["energy", "adjustment"]
    assert priced.net == D("10.00")
    assert priced.lines[1].net == D("-10.00")
    assert priced.total == D("12.00")


def test_nothing_applies_gives_no_lines(operator):
    weekend = {"day_of_week": ["SATURDAY"], "components": [comp("ENERGY", "0.50")]}
    tariff = make_tariff(operator, [weekend])
    priced = price(tariff, started_at=T0, stopped_at=T0 + hours(1), energy_wh=D("5000"))
    assert priced.lines == [] and priced.total == D("0")


def test_a_session_of_no_duration_still_pays_its_energy_and_fee(operator):
    tariff = make_tariff(operator, [{"components": [comp("ENERGY", "0.30"), comp("FLAT", "1")]}])
    priced = price(tariff, started_at=T0, stopped_at=T0 - hours(1), energy_wh=D("1000"))
    assert priced.total == D("1.30")


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (D("0.35"), "EUR", "€0.35"),
        (D("2"), "GBP", "£2.00"),
        (D("0.355"), "USD", "$0.355"),
        (D("1.5"), "CHF", "CHF 1.50"),
        (D("-1.00"), "EUR", "-€1.00"),
    ],
)
def test_money_is_written_with_its_currency(amount, currency, text):
    assert format_money(amount, currency) == text
