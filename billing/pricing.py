"""The pricing engine: from a tariff and a session's figures to priced lines.

Pure functions, no database: the caller passes the tariff with ``elements__components``
prefetched (or any objects of the same shape) and the session's times, energy and meter
samples. The semantics follow OCPI 2.2.1:

- ENERGY is priced per kWh, TIME per hour of charging, PARKING_TIME per hour plugged in but
  not charging, FLAT once per session. ``step_size`` is Wh, seconds, or 1.
- The session is cut into slices at every boundary where a restriction could change its
  answer (times of day and midnights in the site's time zone, sample timestamps, the kWh and
  duration limits, the end of charging). In each slice, the first element (by ``order``)
  whose restrictions hold and that has a component of a dimension prices that dimension.
- Step sizes round the whole volume of a dimension up, in the step of the component used
  last (OCPI: "the step_size of the last TariffElement of the dimension").
- Parking time is free for ``idle_grace_minutes`` and the idle fee is at most
  ``idle_fee_cap``.

Money is rounded in one place, ``_money_line``: a line's net to cents (ROUND_HALF_UP), its
tax per line the same way, total = net + tax. Session totals are sums of lines, and the
minimum and maximum price are an ADJUSTMENT line, so that totals always equal the lines.
Prices and the idle cap are read as the tariff states them: with tax when
``prices_include_tax``, else net; the minimum and maximum price too, compared with the total
the driver pays (a net limit with its tax added).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from itertools import pairwise

CENT = Decimal("0.01")
UNIT_PRICE = Decimal("0.00001")
QUANTITY = Decimal("0.0001")
ZERO = Decimal("0")
HUNDRED = Decimal("100")
# Below this power (W) a connected car is not charging: chargers report a few watts of
# standby draw while a full car sits on the plug.
IDLE_POWER_W = Decimal("50")

ENERGY = "ENERGY"
TIME = "TIME"
PARKING_TIME = "PARKING_TIME"
FLAT = "FLAT"
DIMENSIONS = (ENERGY, TIME, PARKING_TIME, FLAT)

WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")

Sample = tuple[dt.datetime, Decimal | None, Decimal | None]


@dataclass(frozen=True)
class PricedLine:
    """One line of a bill. ``unit_price`` is net of tax; amounts are in ``currency``."""

    kind: str  # a billing.models.LineKind value
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    net: Decimal
    tax_rate: Decimal
    tax: Decimal
    total: Decimal
    currency: str


@dataclass
class Priced:
    """What a session costs: its lines and their sums (always exactly the sums)."""

    currency: str
    lines: list[PricedLine] = field(default_factory=list)
    energy_wh: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return sum((line.net for line in self.lines), ZERO)

    @property
    def tax(self) -> Decimal:
        return sum((line.tax for line in self.lines), ZERO)

    @property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines), ZERO)


# --- Rounding: the one place ---------------------------------------------------------------


def _money_line(
    *,
    kind: str,
    description: str,
    quantity: Decimal,
    unit: str,
    stated_unit_price: Decimal,
    stated_amount: Decimal,
    tax_rate: Decimal,
    prices_include_tax: bool,
    currency: str,
) -> PricedLine:
    """Turn an amount as the tariff states it into a rounded line.

    Tax-inclusive prices: the driver sees ``price × quantity`` rounded, so the total is that,
    the net is total / (1 + rate) rounded and the tax the difference. Net prices: net rounded,
    tax = net × rate rounded, total their sum.
    """
    rate = tax_rate / HUNDRED
    if prices_include_tax:
        total = stated_amount.quantize(CENT, ROUND_HALF_UP)
        net = (stated_amount / (1 + rate)).quantize(CENT, ROUND_HALF_UP)
        tax = total - net
        unit_price = (stated_unit_price / (1 + rate)).quantize(UNIT_PRICE, ROUND_HALF_UP)
    else:
        net = stated_amount.quantize(CENT, ROUND_HALF_UP)
        tax = (net * rate).quantize(CENT, ROUND_HALF_UP)
        total = net + tax
        unit_price = stated_unit_price.quantize(UNIT_PRICE, ROUND_HALF_UP)
    return PricedLine(
        kind=kind,
        description=description,
        quantity=quantity.quantize(QUANTITY, ROUND_HALF_UP),
        unit=unit,
        unit_price=unit_price,
        net=net,
        tax_rate=tax_rate,
        tax=tax,
        total=total,
        currency=currency,
    )


# --- Time and energy ------------------------------------------------------------------------


def _seconds(delta: dt.timedelta) -> Decimal:
    return Decimal(delta // dt.timedelta(microseconds=1)) / Decimal(1_000_000)


class _EnergyCurve:
    """Energy delivered since the start (Wh) as a piecewise-linear function of time."""

    def __init__(self, points: list[tuple[dt.datetime, Decimal]]):
        self.points = points
        self.times = [t for t, _ in points]

    @classmethod
    def build(
        cls,
        *,
        started_at: dt.datetime,
        stopped_at: dt.datetime,
        charging_until: dt.datetime,
        energy_wh: Decimal,
        registers: list[tuple[dt.datetime, Decimal]],
    ) -> _EnergyCurve:
        # Register readings give the shape; the session's energy is the total. The first
        # reading is the baseline (the caller passes meter_start at started_at). Without
        # readings, energy is spread evenly over the charging time.
        if stopped_at == started_at:
            return cls([(started_at, energy_wh)])
        points = [(started_at, ZERO)]
        if registers:
            before = [reading for ts, reading in registers if ts <= started_at]
            base = before[-1] if before else registers[0][1]
            reached = ZERO
            for ts, reading in registers:
                if started_at < ts < stopped_at:
                    reached = min(max(reached, reading - base), energy_wh)
                    points.append((ts, reached))
        elif started_at < charging_until < stopped_at:
            points.append((charging_until, energy_wh))
        points.append((stopped_at, energy_wh))
        return cls(points)

    def at(self, when: dt.datetime) -> Decimal:
        points = self.points
        index = bisect_left(self.times, when)  # the first point at or after ``when``
        if index == 0:
            return points[0][1]
        if index == len(points):
            return points[-1][1]
        (t0, e0), (t1, e1) = points[index - 1], points[index]
        if when == t1:
            return e1
        return e0 + (e1 - e0) * _seconds(when - t0) / _seconds(t1 - t0)

    def crossing(self, wh: Decimal) -> dt.datetime | None:
        """When the delivered energy first reaches ``wh`` (None if it never does)."""
        points = self.points
        for (t0, e0), (t1, e1) in pairwise(points):
            if e0 < wh <= e1 and e1 > e0:
                fraction = (wh - e0) / (e1 - e0)
                micro = int(_seconds(t1 - t0) * fraction * 1_000_000)
                return t0 + dt.timedelta(microseconds=micro)
        return None


def _power_at(powers: list[tuple[dt.datetime, Decimal]], when: dt.datetime) -> Decimal | None:
    """The last power reading at or before ``when``."""
    index = bisect_right(powers, when, key=lambda reading: reading[0])
    return powers[index - 1][1] if index else None


# --- Restrictions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slice:
    start: dt.datetime
    end: dt.datetime
    local: dt.datetime  # start in the site's time zone
    energy_wh: Decimal  # delivered in the slice
    energy_before_wh: Decimal  # delivered before the slice
    elapsed_s: Decimal  # since the session started
    power_w: Decimal | None
    charging: bool

    @property
    def seconds(self) -> Decimal:
        return _seconds(self.end - self.start)


def _time_of_day_holds(element, local_time: dt.time) -> bool:
    start, end = element.start_time, element.end_time
    if start is None and end is None:
        return True
    if start is not None and end is not None:
        if start == end:
            return True
        if start < end:
            return start <= local_time < end
        return local_time >= start or local_time < end  # across midnight, e.g. 22:00–06:00
    if start is not None:
        return local_time >= start
    return local_time < end


def _holds(element, piece: _Slice) -> bool:
    if not _time_of_day_holds(element, piece.local.time()):
        return False
    day = piece.local.date()
    if element.start_date is not None and day < element.start_date:
        return False
    if element.end_date is not None and day >= element.end_date:
        return False
    if element.day_of_week and WEEKDAYS[day.weekday()] not in element.day_of_week:
        return False
    kwh = piece.energy_before_wh / 1000
    if element.min_kwh is not None and kwh < element.min_kwh:
        return False
    if element.max_kwh is not None and kwh >= element.max_kwh:
        return False
    if element.min_duration_s is not None and piece.elapsed_s < element.min_duration_s:
        return False
    if element.max_duration_s is not None and piece.elapsed_s >= element.max_duration_s:
        return False
    if element.min_power_kw is not None or element.max_power_kw is not None:
        power_kw = (piece.power_w if piece.power_w is not None else ZERO) / 1000
        if element.min_power_kw is not None and power_kw < element.min_power_kw:
            return False
        if element.max_power_kw is not None and power_kw >= element.max_power_kw:
            return False
    return True


def _boundaries(
    elements: Sequence, *, started_at: dt.datetime, stopped_at: dt.datetime, zone: zoneinfo.ZoneInfo
) -> set[dt.datetime]:
    """Instants where a time-of-use, date, weekday or duration restriction may change."""
    times = {dt.time(0, 0)}
    for element in elements:
        times.update(t for t in (element.start_time, element.end_time) if t is not None)
    cuts: set[dt.datetime] = set()
    first = started_at.astimezone(zone).date() - dt.timedelta(days=1)
    last = stopped_at.astimezone(zone).date() + dt.timedelta(days=1)
    day = first
    while day <= last:
        for t in times:
            cuts.add(dt.datetime.combine(day, t, tzinfo=zone).astimezone(dt.UTC))
        day += dt.timedelta(days=1)
    for element in elements:
        for seconds in (element.min_duration_s, element.max_duration_s):
            if seconds is not None:
                cuts.add(started_at + dt.timedelta(seconds=seconds))
    return cuts


# --- The engine -----------------------------------------------------------------------------


def _elements(tariff) -> list:
    return sorted(tariff.elements.all(), key=lambda e: (e.order, e.pk or 0))


def _components(element) -> dict[str, object]:
    """The element's component per dimension (the first of a type, as OCPI reads it)."""
    found: dict[str, object] = {}
    for component in element.components.all():
        found.setdefault(component.type, component)
    return found


def _slices(
    *,
    elements: Sequence,
    started_at: dt.datetime,
    stopped_at: dt.datetime,
    charging_ended_at: dt.datetime,
    curve: _EnergyCurve,
    powers: list[tuple[dt.datetime, Decimal]],
    sample_times: Iterable[dt.datetime],
    zone: zoneinfo.ZoneInfo,
) -> list[_Slice]:
    cuts = _boundaries(elements, started_at=started_at, stopped_at=stopped_at, zone=zone)
    cuts.update(sample_times)
    cuts.add(charging_ended_at)
    for element in elements:
        for kwh in (element.min_kwh, element.max_kwh):
            if kwh is not None:
                crossing = curve.crossing(Decimal(kwh) * 1000)
                if crossing is not None:
                    cuts.add(crossing)
    if stopped_at == started_at:  # a session of no duration (a clock anomaly): its energy and fee
        local = started_at.astimezone(zone)
        return [_Slice(started_at, stopped_at, local, curve.at(stopped_at), ZERO, ZERO, None, True)]
    edges = sorted({started_at, stopped_at} | {c for c in cuts if started_at < c < stopped_at})
    pieces = []
    for start, end in pairwise(edges):
        before = curve.at(start)
        energy = curve.at(end) - before
        measured = _power_at(powers, start)
        seconds = _seconds(end - start)
        # Without a reading, the slice's average power stands in (OCPI does the same).
        power = measured if measured is not None else energy * 3600 / seconds
        charging = start < charging_ended_at and (measured is None or measured > IDLE_POWER_W)
        pieces.append(
            _Slice(
                start=start,
                end=end,
                local=start.astimezone(zone),
                energy_wh=energy,
                energy_before_wh=before,
                elapsed_s=_seconds(start - started_at),
                power_w=power,
                charging=charging,
            )
        )
    return pieces


SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$"}


def format_money(amount: Decimal, currency: str) -> str:
    """``€0.35``, ``£2.00``, ``CHF 0.355``: at least cents, more only where a price has them."""
    amount = Decimal(amount)
    text = f"{amount.quantize(CENT, ROUND_HALF_UP):.2f}"
    if amount != amount.quantize(CENT):
        text = f"{amount.normalize():f}"
    sign = "-" if text.startswith("-") else ""
    text = text.lstrip("-")
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{currency} {text}"


_money = format_money


def _three(quantity: Decimal) -> str:
    return str(quantity.quantize(Decimal("0.001"), ROUND_HALF_UP))


def price(
    tariff,
    *,
    started_at: dt.datetime,
    stopped_at: dt.datetime,
    energy_wh: Decimal,
    samples: Sequence[Sample] = (),
    charging_ended_at: dt.datetime | None = None,
    time_zone: str = "UTC",
) -> Priced:
    """Price a session under ``tariff``.

    ``samples`` are ``(timestamp, energy register Wh, power W)``; either figure may be None.
    Register readings shape how the energy spreads over time (the first reading is the
    baseline); power readings tell charging from parked (and feed power restrictions).
    ``charging_ended_at``: after it the car only occupies the connector (parking time).
    """
    zone = zoneinfo.ZoneInfo(time_zone or "UTC")
    currency = tariff.currency
    energy_wh = max(Decimal(energy_wh or 0), ZERO)
    stopped_at = max(stopped_at, started_at)
    charging_end = (
        stopped_at if charging_ended_at is None else min(max(charging_ended_at, started_at), stopped_at)
    )
    ordered = sorted(samples, key=lambda s: s[0])
    registers = [(ts, Decimal(e)) for ts, e, _ in ordered if e is not None]
    powers = [(ts, Decimal(p)) for ts, _, p in ordered if p is not None]
    curve = _EnergyCurve.build(
        started_at=started_at,
        stopped_at=stopped_at,
        charging_until=charging_end,
        energy_wh=energy_wh,
        registers=registers,
    )
    elements = _elements(tariff)
    components = [_components(e) for e in elements]
    pieces = _slices(
        elements=elements,
        started_at=started_at,
        stopped_at=stopped_at,
        charging_ended_at=charging_end,
        curve=curve,
        powers=powers,
        sample_times=[s[0] for s in ordered],
        zone=zone,
    )

    # Volume per component, in the component's own unit (Wh, seconds, sessions).
    volumes: dict[int, Decimal] = {}
    used: dict[int, object] = {}
    last_used: dict[str, object] = {}
    grace_left = Decimal(tariff.idle_grace_minutes or 0) * 60
    flat_done = False

    def first_component(piece: _Slice, dimension: str):
        for element, by_type in zip(elements, components, strict=True):
            if dimension in by_type and _holds(element, piece):
                return by_type[dimension]
        return None

    def add(component, volume: Decimal) -> None:
        key = id(component)
        volumes[key] = volumes.get(key, ZERO) + volume
        used[key] = component
        last_used[component.type] = component

    for piece in pieces:
        if piece.energy_wh > 0 and (component := first_component(piece, ENERGY)) is not None:
            add(component, piece.energy_wh)
        if piece.charging:
            if piece.seconds > 0 and (component := first_component(piece, TIME)) is not None:
                add(component, piece.seconds)
        else:
            billable = piece.seconds
            if grace_left > 0:
                free = min(grace_left, billable)
                grace_left -= free
                billable -= free
            if billable > 0 and (component := first_component(piece, PARKING_TIME)) is not None:
                add(component, billable)
        if not flat_done and (component := first_component(piece, FLAT)) is not None:
            add(component, Decimal(1))
            flat_done = True

    # Step sizes: the whole volume of a dimension rounded up in the last component's step.
    for dimension, component in last_used.items():
        step = Decimal(max(int(component.step_size or 1), 1))
        if dimension == FLAT or step == 1:
            continue
        total = sum((v for k, v in volumes.items() if used[k].type == dimension), ZERO)
        rounded = (total / step).to_integral_value(ROUND_CEILING) * step
        volumes[id(component)] += rounded - total

    idle_kind = "idle" if (tariff.idle_grace_minutes or tariff.idle_fee_cap is not None) else "parking"
    # One line per kind and price: volumes of components with the same price add up.
    grouped: dict[tuple[str, Decimal], Decimal] = {}
    for key, volume in volumes.items():
        component = used[key]
        group = (component.type, Decimal(component.price))
        grouped[group] = grouped.get(group, ZERO) + volume

    rate = Decimal(tariff.tax_rate or 0)
    include = bool(tariff.prices_include_tax)
    lines: list[PricedLine] = []

    def line(kind: str, description: str, quantity: Decimal, unit: str, unit_price: Decimal, amount: Decimal):
        lines.append(
            _money_line(
                kind=kind,
                description=description,
                quantity=quantity,
                unit=unit,
                stated_unit_price=unit_price,
                stated_amount=amount,
                tax_rate=rate,
                prices_include_tax=include,
                currency=currency,
            )
        )

    order = {ENERGY: 0, TIME: 1, PARKING_TIME: 2, FLAT: 3}
    idle_left = None if tariff.idle_fee_cap is None else Decimal(tariff.idle_fee_cap)
    for (dimension, unit_price), volume in sorted(grouped.items(), key=lambda g: (order[g[0][0]], g[0][1])):
        shown = _money(unit_price, currency)
        if dimension == ENERGY:
            kwh = volume / 1000
            line("energy", f"Energy {_three(kwh)} kWh × {shown}", kwh, "kWh", unit_price, kwh * unit_price)
        elif dimension == TIME:
            hours = volume / 3600
            line(
                "time",
                f"Charging time {_three(hours)} h × {shown}",
                hours,
                "h",
                unit_price,
                hours * unit_price,
            )
        elif dimension == PARKING_TIME:
            hours = volume / 3600
            amount = hours * unit_price
            note = ""
            if idle_left is not None:
                if amount > idle_left:
                    amount = idle_left
                    hours = amount / unit_price if unit_price else hours
                    note = " (capped)"
                idle_left -= amount
                if amount <= 0:
                    continue
            label = "Idle fee" if idle_kind == "idle" else "Plugged-in time"
            line(idle_kind, f"{label} {_three(hours)} h × {shown}{note}", hours, "h", unit_price, amount)
        else:
            line("flat", "Session fee", volume, "session", unit_price, volume * unit_price)

    def adjustment(kind: str, description: str, amount_with_tax: Decimal) -> None:
        lines.append(
            _money_line(
                kind=kind,
                description=description,
                quantity=Decimal(1),
                unit="session",
                stated_unit_price=amount_with_tax,
                stated_amount=amount_with_tax,
                tax_rate=rate,
                prices_include_tax=True,
                currency=currency,
            )
        )

    _apply_min_max(tariff, lines, adjustment)
    return Priced(currency=currency, lines=lines, energy_wh=energy_wh)


def _apply_min_max(tariff, lines: list[PricedLine], line) -> None:
    """The minimum and maximum price as one ADJUSTMENT line that brings the session's total
    (with tax) to the limit. Limits are stated like the prices: for net prices the limit plus
    its tax is compared with the total, so that the total stays a monotone function of what
    was consumed whatever per-line rounding does to the tax."""
    total = sum((ln.total for ln in lines), ZERO)
    rate = Decimal(tariff.tax_rate or 0) / HUNDRED
    currency = tariff.currency

    def with_tax(limit) -> Decimal:
        limit = Decimal(limit)
        return limit if tariff.prices_include_tax else (limit * (1 + rate)).quantize(CENT, ROUND_HALF_UP)

    if tariff.min_price is not None and total < (floor := with_tax(tariff.min_price)):
        line("adjustment", f"Minimum price {_money(Decimal(tariff.min_price), currency)}", floor - total)
    elif tariff.max_price is not None and total > (ceiling := with_tax(tariff.max_price)):
        line("adjustment", f"Maximum price {_money(Decimal(tariff.max_price), currency)}", ceiling - total)
