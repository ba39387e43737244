"""Invariants of the pricing engine, checked with hypothesis over many tariffs and sessions:
more energy never costs less, a session split at a time-of-use boundary costs the sum of its
parts, totals are the sums of the lines, and nothing but a maximum-price adjustment is negative."""

import datetime as dt
import zoneinfo
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.pricing import price
from tests.billing.test_pricing import comp, make_tariff

pytestmark = pytest.mark.django_db

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ZONES = ["UTC", "Europe/Amsterdam", "America/New_York", "Australia/Sydney"]
# Around both DST changes in Europe and America, and a plain summer week.
DAYS = [
    dt.date(2026, 3, 8),
    dt.date(2026, 3, 29),
    dt.date(2026, 6, 10),
    dt.date(2026, 10, 25),
    dt.date(2026, 11, 1),
]

prices = st.decimals(min_value=D("0"), max_value=D("5"), places=3)
tax_rates = st.sampled_from([D("0"), D("9"), D("19"), D("21"), D("25.5")])


def at_local(day: dt.date, minute: int, zone: str) -> dt.datetime:
    local = dt.datetime.combine(day, dt.time(0), tzinfo=zoneinfo.ZoneInfo(zone)) + dt.timedelta(
        minutes=minute
    )
    return local.astimezone(dt.UTC)


@st.composite
def tariffs(draw, *, with_limits: bool):
    """Elements with time-of-use and weekday restrictions, and (``with_limits``) the rest:
    flat fee, parking, idle grace and cap, minimum and maximum price."""
    peak_start = draw(st.integers(0, 23))
    peak_end = draw(st.integers(0, 23).filter(lambda h: h != peak_start))
    peak = {"start_time": dt.time(peak_start), "end_time": dt.time(peak_end)}
    base: dict = {}
    for element in (peak, base):
        components = [comp("ENERGY", draw(prices)), comp("TIME", draw(prices))]
        if with_limits:
            components += [comp("PARKING_TIME", draw(prices)), comp("FLAT", draw(prices))]
        element["components"] = components
    elements = [peak]
    if draw(st.booleans()):
        elements.append({"day_of_week": ["SATURDAY", "SUNDAY"], "components": [comp("ENERGY", draw(prices))]})
    elements.append(base)
    fields = {"tax_rate": draw(tax_rates), "prices_include_tax": draw(st.booleans())}
    if with_limits:
        low = draw(st.none() | st.decimals(min_value=D("0"), max_value=D("20"), places=2))
        high = draw(st.none() | st.decimals(min_value=D("0"), max_value=D("60"), places=2))
        if low is not None and high is not None and high < low:
            low, high = high, low
        fields |= {
            "min_price": low,
            "max_price": high,
            "idle_grace_minutes": draw(st.integers(0, 90)),
            "idle_fee_cap": draw(st.none() | st.decimals(min_value=D("0"), max_value=D("30"), places=2)),
        }
    return elements, fields


@st.composite
def sessions(draw):
    zone = draw(st.sampled_from(ZONES))
    start = at_local(draw(st.sampled_from(DAYS)), draw(st.integers(0, 24 * 60 - 1)), zone)
    duration = dt.timedelta(seconds=draw(st.integers(60, 20 * 3600)))
    energy = D(draw(st.integers(0, 150_000)))
    return {"started_at": start, "stopped_at": start + duration, "energy_wh": energy, "time_zone": zone}


@PROPERTY
@given(tariff=tariffs(with_limits=True), session=sessions(), more=st.integers(1, 50_000))
def test_more_energy_never_costs_less(operator, tariff, session, more):
    tariff = make_tariff(operator, tariff[0], **tariff[1])
    less = price(tariff, **session)
    bigger = price(tariff, **{**session, "energy_wh": session["energy_wh"] + more})
    assert bigger.total >= less.total


@PROPERTY
@given(
    tariff=tariffs(with_limits=False),
    zone=st.sampled_from(ZONES),
    day=st.sampled_from(DAYS),
    boundary=st.integers(8, 14),
    before_s=st.integers(1, 6 * 3600),
    after_s=st.integers(1, 6 * 3600),
    energy_before=st.integers(0, 60_000),
    energy_after=st.integers(0, 60_000),
    peak_extra=st.decimals(min_value=D("0.01"), max_value=D("1"), places=2),
)
def test_a_session_split_at_a_time_of_use_boundary_costs_the_sum_of_its_parts(
    operator, tariff, zone, day, boundary, before_s, after_s, energy_before, energy_after, peak_extra
):
    elements, fields = tariff
    # Peak from the boundary to midnight; off-peak before it: each part lies in one window.
    # Peak prices differ from off-peak ones so that no line of the whole joins both parts.
    peak, base = elements[0], elements[-1]
    peak.update(start_time=dt.time(boundary), end_time=None)
    for peak_component, base_component in zip(peak["components"], base["components"], strict=True):
        peak_component["price"] = base_component["price"] + peak_extra
    tariff = make_tariff(operator, [peak, base], **fields)
    cut = at_local(day, boundary * 60, zone)
    start, stop = cut - dt.timedelta(seconds=before_s), cut + dt.timedelta(seconds=after_s)
    whole = price(
        tariff,
        started_at=start,
        stopped_at=stop,
        energy_wh=D(energy_before + energy_after),
        samples=[(start, D(0), None), (cut, D(energy_before), None)],
        time_zone=zone,
    )
    first = price(tariff, started_at=start, stopped_at=cut, energy_wh=D(energy_before), time_zone=zone)
    second = price(tariff, started_at=cut, stopped_at=stop, energy_wh=D(energy_after), time_zone=zone)
    assert whole.total == first.total + second.total
    assert whole.net == first.net + second.net
    assert whole.tax == first.tax + second.tax


@PROPERTY
@given(
    tariff=tariffs(with_limits=True),
    session=sessions(),
    idle_s=st.integers(0, 4 * 3600),
    readings=st.lists(st.tuples(st.integers(0, 3600), st.integers(0, 50_000)), max_size=6),
)
def test_totals_are_the_sums_of_the_lines_and_nothing_is_negative(
    operator, tariff, session, idle_s, readings
):
    elements, fields = tariff
    tariff = make_tariff(operator, elements, **fields)
    start = session["started_at"]
    samples, at, power = [], start, None
    for gap_s, power_w in readings:
        at += dt.timedelta(seconds=gap_s)
        power = D(power_w)
        samples.append((at, None, power))
    stop = max(session["stopped_at"], at)
    ended = stop - dt.timedelta(seconds=idle_s)
    priced = price(
        tariff, **{**session, "stopped_at": stop}, samples=samples, charging_ended_at=max(ended, start)
    )
    assert priced.net == sum(line.net for line in priced.lines)
    assert priced.tax == sum(line.tax for line in priced.lines)
    assert priced.total == sum(line.total for line in priced.lines) == priced.net + priced.tax
    for line in priced.lines:
        assert line.total == line.net + line.tax
        assert line.net.as_tuple().exponent == -2 and line.tax.as_tuple().exponent == -2
        assert line.currency == priced.currency == "EUR"
        if line.kind != "adjustment":
            assert line.net >= 0 and line.tax >= 0 and line.quantity >= 0
    assert priced.total >= 0
    rate = 1 + tariff.tax_rate / 100

    def with_tax(limit):
        return limit if tariff.prices_include_tax else (limit * rate).quantize(D("0.01"), "ROUND_HALF_UP")

    if tariff.min_price is not None:
        assert priced.total >= with_tax(tariff.min_price)
    if tariff.max_price is not None:
        assert priced.total <= with_tax(tariff.max_price)
    if tariff.idle_fee_cap is not None:
        idle = sum(
            line.total if tariff.prices_include_tax else line.net
            for line in priced.lines
            if line.kind == "idle"
        )
        assert idle <= tariff.idle_fee_cap
