"""Tariffs: which one applies where and to whom, how to say it in words, and their writes.

``tariff_for`` picks the tariff of a connector at a moment (the most specific assignment
wins); ``describe``/``display``/``as_dict`` show it to drivers before they charge, in words
and numbers; ``tariff_create``/``tariff_update`` write a tariff with its elements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.db import transaction as db_transaction
from django.db.models import Prefetch, Q, prefetch_related_objects

from stations.models import ChargePoint, Operator

from .models import ComponentType, CustomerGroup, PriceComponent, Tariff, TariffAssignment, TariffElement
from .pricing import format_money

WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]
WEEKEND = ["SATURDAY", "SUNDAY"]
DAY_ORDER = WEEKDAYS + WEEKEND


def elements_prefetch() -> Prefetch:
    """What the pricing engine and the wording read: elements in order with their components."""
    return Prefetch(
        "elements",
        queryset=TariffElement.objects.order_by("order", "pk").prefetch_related(
            Prefetch("components", queryset=PriceComponent.objects.order_by("pk"))
        ),
    )


def tariff_for(
    *, charge_point: ChargePoint, connector_number: int, user=None, at: dt.datetime
) -> Tariff | None:
    """The active tariff of a connector at ``at`` for ``user`` (anyone when None).

    The most specific place wins (connector, charge point, site, operator); among equals an
    assignment for one of the user's customer groups wins over one for everyone; then the
    newest. Three queries: the candidates, then the winner's elements and components.
    """
    place = (
        Q(connector__charge_point=charge_point, connector__connector_id=connector_number)
        | Q(connector__isnull=True, charge_point=charge_point)
        | Q(connector__isnull=True, charge_point__isnull=True, site__isnull=True)
    )
    if charge_point.site_id is not None:
        place |= Q(connector__isnull=True, charge_point__isnull=True, site_id=charge_point.site_id)
    group = Q(customer_group__isnull=True)
    if user is not None and user.is_authenticated:
        group |= Q(customer_group__members=user)
    candidates = list(
        TariffAssignment.objects.filter(
            place, group, operator_id=charge_point.operator_id, tariff__is_active=True
        )
        .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=at))
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        .select_related("tariff")
        .distinct()
    )
    if not candidates:
        return None

    tariff = max(candidates, key=rank).tariff
    prefetch_related_objects([tariff], elements_prefetch())
    return tariff


def rank(assignment: TariffAssignment) -> tuple:
    """How well an assignment fits: the more specific place, then a customer group's, then newest."""
    if assignment.connector_id is not None:
        specificity = 3
    elif assignment.charge_point_id is not None:
        specificity = 2
    elif assignment.site_id is not None:
        specificity = 1
    else:
        specificity = 0
    return (specificity, assignment.customer_group_id is not None, assignment.pk)


class TariffBook:
    """``tariff_for`` for many sessions at once (pricing a backlog, a month): the operators'
    assignments, their tariffs and the drivers' groups read once, then chosen in memory by
    the same rules."""

    def __init__(self, *, operator_ids, user_ids=()):
        self.assignments = list(
            TariffAssignment.objects.filter(operator_id__in=set(operator_ids), tariff__is_active=True)
            .select_related("tariff", "connector")
            .prefetch_related(Prefetch("tariff__elements", queryset=elements_prefetch().queryset))
        )
        groups: dict[int, set[int]] = {}
        through = CustomerGroup.members.through
        for user_id, group_id in through.objects.filter(user_id__in=set(user_ids)).values_list(
            "user_id", "customergroup_id"
        ):
            groups.setdefault(user_id, set()).add(group_id)
        self.groups = groups

    def tariff_for(
        self, *, charge_point: ChargePoint, connector_number: int, user_id=None, at
    ) -> Tariff | None:
        mine = self.groups.get(user_id, set())
        candidates = [
            a
            for a in self.assignments
            if a.operator_id == charge_point.operator_id
            and (a.customer_group_id is None or a.customer_group_id in mine)
            and (a.valid_from is None or a.valid_from <= at)
            and (a.valid_until is None or a.valid_until > at)
            and (
                (
                    a.connector_id is not None
                    and a.connector.charge_point_id == charge_point.pk
                    and a.connector.connector_id == connector_number
                )
                or (a.connector_id is None and a.charge_point_id == charge_point.pk)
                or (a.connector_id is None and a.charge_point_id is None and a.site_id is None)
                or (
                    a.connector_id is None
                    and a.charge_point_id is None
                    and a.site_id is not None
                    and a.site_id == charge_point.site_id
                )
            )
        ]
        return max(candidates, key=rank).tariff if candidates else None


# --- Words ----------------------------------------------------------------------------------


def _number(value: Decimal) -> str:
    return f"{Decimal(value).normalize():f}"


def _hours(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "1 hour" if hours == 1 else f"{hours} hours"
    minutes = round(seconds / 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def _days(days: Sequence[str]) -> str:
    chosen = [d for d in DAY_ORDER if d in set(days)]
    if chosen == WEEKDAYS:
        return "on weekdays"
    if chosen == WEEKEND:
        return "at weekends"
    names = [d.capitalize() + "s" for d in chosen]
    if len(names) == 1:
        return f"on {names[0]}"
    return "on " + ", ".join(names[:-1]) + " and " + names[-1]


def _when(element: TariffElement) -> str:
    """The element's restrictions in words ("between 08:00 and 20:00 on weekdays")."""
    parts = []
    if element.start_time is not None and element.end_time is not None:
        parts.append(f"between {element.start_time:%H:%M} and {element.end_time:%H:%M}")
    elif element.start_time is not None:
        parts.append(f"from {element.start_time:%H:%M}")
    elif element.end_time is not None:
        parts.append(f"until {element.end_time:%H:%M}")
    if element.day_of_week:
        parts.append(_days(element.day_of_week))
    if element.start_date is not None:
        parts.append(f"from {element.start_date:%-d %B %Y}")
    if element.end_date is not None:
        parts.append(f"before {element.end_date:%-d %B %Y}")
    if element.min_kwh is not None:
        parts.append(f"from {_number(element.min_kwh)} kWh")
    if element.max_kwh is not None:
        parts.append(f"up to {_number(element.max_kwh)} kWh")
    if element.min_power_kw is not None:
        parts.append(f"at {_number(element.min_power_kw)} kW or more")
    if element.max_power_kw is not None:
        parts.append(f"below {_number(element.max_power_kw)} kW")
    if element.min_duration_s is not None:
        parts.append(f"after {_hours(element.min_duration_s)}")
    if element.max_duration_s is not None:
        parts.append(f"for the first {_hours(element.max_duration_s)}")
    return " ".join(parts)


def _parking_words(tariff: Tariff, price: str) -> str:
    grace = tariff.idle_grace_minutes or 0
    words = f"{price} per hour plugged in without charging"
    if grace:
        words = f"after {_hours(grace * 60)} plugged in without charging {price} per hour"
    if tariff.idle_fee_cap is not None:
        words += f", at most {format_money(tariff.idle_fee_cap, tariff.currency)}"
    return words


def describe(tariff: Tariff) -> str:
    """The tariff in plain words, e.g. "€0.35 per kWh, €2.00 per hour of charging between
    08:00 and 20:00 on weekdays, a €1.00 session fee; after 30 minutes plugged in without
    charging €10.00 per hour, at most €20.00; prices include 21% VAT"."""
    money = tariff.currency
    charging: list[str] = []
    parking: list[str] = []
    # "otherwise" only where an earlier element with restrictions priced the same kind.
    restricted_charging = restricted_parking = False
    for element in tariff.elements.all():
        when = _when(element)
        suffix = f" {when}" if when else ""
        phrases: list[str] = []
        parked: list[str] = []
        for component in element.components.all():
            price = format_money(component.price, money)
            if component.type == ComponentType.ENERGY:
                phrases.append(f"{price} per kWh")
            elif component.type == ComponentType.TIME:
                phrases.append(f"{price} per hour of charging")
            elif component.type == ComponentType.FLAT:
                phrases.append(f"a {price} session fee")
            elif component.type == ComponentType.PARKING_TIME:
                parked.append(_parking_words(tariff, price))
        if phrases:
            prefix = "otherwise " if restricted_charging and not when else ""
            charging.append(prefix + ", ".join(phrases) + suffix)
            restricted_charging = restricted_charging or bool(when)
        for words in parked:
            prefix = "otherwise " if restricted_parking and not when else ""
            parking.append(prefix + words + suffix)
            restricted_parking = restricted_parking or bool(when)
    clauses = []
    if charging:
        clauses.append(", ".join(charging))
    clauses.extend(parking)
    if tariff.min_price is not None and tariff.max_price is not None:
        clauses.append(
            f"a session costs at least {format_money(tariff.min_price, money)} "
            f"and at most {format_money(tariff.max_price, money)}"
        )
    elif tariff.min_price is not None:
        clauses.append(f"a session costs at least {format_money(tariff.min_price, money)}")
    elif tariff.max_price is not None:
        clauses.append(f"a session costs at most {format_money(tariff.max_price, money)}")
    if tariff.tax_rate:
        verb = "include" if tariff.prices_include_tax else "exclude"
        clauses.append(f"prices {verb} {_number(tariff.tax_rate)}% VAT")
    if not clauses:
        return "Free of charge"
    return "; ".join(clauses)


COMPONENT_WORDS = {
    ComponentType.ENERGY: ("Energy", "per kWh"),
    ComponentType.TIME: ("Charging time", "per hour"),
    ComponentType.PARKING_TIME: ("Plugged in, not charging", "per hour"),
    ComponentType.FLAT: ("Session fee", "per session"),
}


def display(tariff: Tariff) -> dict:
    """What the ``billing/_tariff.html`` partial shows: the words and a row per price."""
    rows = []
    for element in tariff.elements.all():
        when = _when(element) or "always"
        for component in element.components.all():
            what, per = COMPONENT_WORDS[component.type]
            rows.append(
                {
                    "when": when,
                    "what": what,
                    "price": f"{format_money(component.price, tariff.currency)} {per}",
                }
            )
    return {
        "name": tariff.name,
        "currency": tariff.currency,
        "text": describe(tariff),
        "description": tariff.description,
        "rows": rows,
    }


def _decimal(value) -> str | None:
    return None if value is None else str(value)


def as_dict(tariff: Tariff) -> dict:
    """The tariff as OCPI-like JSON for the API (decimals as strings)."""
    elements = []
    for element in tariff.elements.all():
        restrictions = {
            "start_time": element.start_time.strftime("%H:%M") if element.start_time else None,
            "end_time": element.end_time.strftime("%H:%M") if element.end_time else None,
            "start_date": element.start_date.isoformat() if element.start_date else None,
            "end_date": element.end_date.isoformat() if element.end_date else None,
            "day_of_week": list(element.day_of_week) or None,
            "min_kwh": _decimal(element.min_kwh),
            "max_kwh": _decimal(element.max_kwh),
            "min_power": _decimal(element.min_power_kw),
            "max_power": _decimal(element.max_power_kw),
            "min_duration": element.min_duration_s,
            "max_duration": element.max_duration_s,
        }
        elements.append(
            {
                "price_components": [
                    {"type": c.type, "price": str(c.price), "step_size": c.step_size}
                    for c in element.components.all()
                ],
                "restrictions": {k: v for k, v in restrictions.items() if v is not None} or None,
            }
        )
    return {
        "id": tariff.pk,
        "name": tariff.name,
        "currency": tariff.currency,
        "elements": elements,
        "min_price": _decimal(tariff.min_price),
        "max_price": _decimal(tariff.max_price),
        "tax_rate": str(tariff.tax_rate),
        "prices_include_tax": tariff.prices_include_tax,
        "idle_grace_minutes": tariff.idle_grace_minutes,
        "idle_fee_cap": _decimal(tariff.idle_fee_cap),
        "description": tariff.description,
        "text": describe(tariff),
    }


# --- Writes ---------------------------------------------------------------------------------

ELEMENT_FIELDS = (
    "start_time",
    "end_time",
    "start_date",
    "end_date",
    "day_of_week",
    "min_kwh",
    "max_kwh",
    "min_power_kw",
    "max_power_kw",
    "min_duration_s",
    "max_duration_s",
)


def _write_elements(tariff: Tariff, elements: Sequence[dict]) -> None:
    """Replace the tariff's elements: sessions already priced keep their frozen lines."""
    tariff.elements.all().delete()
    for index, spec in enumerate(elements):
        element = TariffElement.objects.create(
            tariff=tariff,
            order=spec.get("order", index),
            **{name: spec[name] for name in ELEMENT_FIELDS if name in spec},
        )
        PriceComponent.objects.bulk_create(
            PriceComponent(element=element, type=c["type"], price=c["price"], step_size=c.get("step_size", 1))
            for c in spec.get("components", ())
        )


@db_transaction.atomic
def tariff_create(*, operator: Operator, elements: Sequence[dict] = (), **fields) -> Tariff:
    tariff = Tariff.objects.create(operator=operator, **fields)
    _write_elements(tariff, elements)
    return tariff


@db_transaction.atomic
def tariff_update(*, tariff: Tariff, elements: Sequence[dict] | None = None, **fields) -> Tariff:
    for name, value in fields.items():
        setattr(tariff, name, value)
    tariff.save()
    if elements is not None:
        _write_elements(tariff, elements)
    return tariff
