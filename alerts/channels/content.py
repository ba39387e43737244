"""What a message says, the same on every channel: title, body, absolute link, when service is
expected back (in the station's local time) and the nearest alternatives. Channels only choose
how much of it fits (an SMS: the title and the ETA; an email: all of it)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils.dateparse import parse_datetime

from alerts.links import absolute

if TYPE_CHECKING:
    from alerts.models import Delivery


@dataclass
class Message:
    event_type: str
    title: str
    body: str
    path: str
    url: str
    tag: str
    created_at: dt.datetime
    eta: dt.datetime | None
    eta_text: str
    alternatives: list[dict[str, Any]] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


_ASK = object()


def local_zone(delivery: Delivery, user_zone: Any = _ASK) -> zoneinfo.ZoneInfo:
    """The zone times are told in: the station's (where the driver stands), else the
    recipient's own (``user_zone`` when the caller knows it already), else UTC."""
    from alerts.models import AlertProfile

    names: list[str | None] = []
    charge_point = delivery.alert.charge_point
    site = getattr(charge_point, "site", None) if charge_point else None
    names.append(getattr(site, "time_zone", None))
    if user_zone is _ASK and delivery.user_id:
        user_zone = (
            AlertProfile.objects.filter(user_id=delivery.user_id).values_list("time_zone", flat=True).first()
        )
    names.append(None if user_zone is _ASK else user_zone)
    for name in names:
        if name:
            try:
                return zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
    return zoneinfo.ZoneInfo("UTC")


def zone_of(name: str | None) -> zoneinfo.ZoneInfo:
    """A stored time-zone name as a zone; UTC for an empty or unknown one (never an error in
    the middle of telling someone something)."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def format_local(when: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    """``Wed 25 Nov, 14:30 CET``: short, and unambiguous about the zone."""
    local = when.astimezone(zone)
    return f"{local:%a %d %b, %H:%M} {local.tzname()}"


def _eta(alert_eta: dt.datetime | None, data: dict[str, Any]) -> dt.datetime | None:
    if alert_eta is not None:
        return alert_eta
    raw = data.get("eta")
    if isinstance(raw, str):
        parsed = parse_datetime(raw)
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return None


def _duration(minutes: Any) -> str:
    minutes = round(float(minutes))
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"


def _cost(cost: Any) -> str:
    if isinstance(cost, dict) and "amount" in cost:
        return f"{cost['amount']} {cost.get('currency', '')}".strip()
    return str(cost)


def _details(data: dict[str, Any]) -> list[tuple[str, str]]:
    details = []
    try:
        if data.get("energy_kwh") is not None:
            details.append(("Energy", f"{float(data['energy_kwh']):.2f} kWh"))
        if data.get("duration_minutes") is not None:
            details.append(("Duration", _duration(data["duration_minutes"])))
    except (TypeError, ValueError):
        pass
    if data.get("cost") not in (None, ""):
        details.append(("Cost", _cost(data["cost"])))
    return details


def _alternatives(data: dict[str, Any]) -> list[dict[str, Any]]:
    alternatives = []
    for item in data.get("alternatives") or []:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        distance = item.get("distance_km")
        try:
            distance_text = f"{float(distance):.1f} km" if distance is not None else ""
        except (TypeError, ValueError):
            distance_text = ""
        alternatives.append(
            {
                "name": item["name"],
                "address": item.get("address") or "",
                "distance": distance_text,
                "available": item.get("available"),
                "standards": ", ".join(str(s) for s in item.get("standards") or []),
                "url": absolute(item["url"]) if item.get("url") else "",
            }
        )
    return alternatives


def message(delivery: Delivery, *, user_zone: Any = _ASK) -> Message:
    """The message of ``delivery``: the recipient's notification if there is one (it may be
    worded for them), else the alert itself (webhooks). ``user_zone``: the recipient's time
    zone name if already known (saves a query per message in a digest)."""
    alert = delivery.alert
    source = delivery.notification or alert
    data = {**(alert.data or {}), **(source.data or {})}
    eta = _eta(alert.eta, data)
    return Message(
        event_type=alert.event_type,
        title=source.title,
        body=source.body,
        path=source.url or alert.url or "/",
        url=absolute(source.url or alert.url or "/"),
        tag=alert.dedup_key,
        created_at=alert.created_at,
        eta=eta,
        eta_text=format_local(eta, local_zone(delivery, user_zone)) if eta else "",
        alternatives=_alternatives(data),
        details=_details(data),
        data=data,
    )
