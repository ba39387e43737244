"""The event types ChargeDesk alerts about: who hears each, on which channels by default, and
how it reads in the preferences page. Preferences override the defaults per user."""

from __future__ import annotations

from dataclasses import dataclass

from .models import Channel

DRIVER = "driver"
OPERATOR = "operator"


@dataclass(frozen=True)
class EventType:
    key: str
    audience: str  # DRIVER or OPERATOR
    label: str
    description: str
    default_channels: frozenset[str]


def _e(key: str, audience: str, label: str, description: str, *channels: str) -> EventType:
    return EventType(key, audience, label, description, frozenset(channels))


IN, E, P, M = Channel.INAPP, Channel.EMAIL, Channel.PUSH, Channel.MOBILE

EVENT_TYPES: dict[str, EventType] = {
    e.key: e
    for e in [
        # Drivers
        _e("session_started", DRIVER, "Charging started", "Your session has begun.", IN, P, M),
        _e(
            "session_interrupted",
            DRIVER,
            "Charging interrupted",
            "A fault, a power loss or the charger going offline stopped your session; with when "
            "service should resume and the nearest alternatives.",
            IN,
            E,
            P,
            M,
        ),
        _e(
            "session_finished", DRIVER, "Charging finished", "Energy delivered and what it cost.", IN, E, P, M
        ),
        _e(
            "idle_fee_warning",
            DRIVER,
            "Charging done, car still plugged in",
            "Move your car before idle fees start.",
            IN,
            P,
            M,
        ),
        _e(
            "reservation_expiring",
            DRIVER,
            "Reservation about to expire",
            "Your reservation ends soon.",
            IN,
            P,
            M,
        ),
        _e(
            "station_out_of_service",
            DRIVER,
            "A station you use is out of service",
            "A favourite, recently used or nearby station stopped working; with the nearest alternatives.",
            IN,
            E,
            P,
        ),
        _e("station_back_in_service", DRIVER, "A station you use is back", "It works again.", IN, P),
        _e(
            "maintenance_planned",
            DRIVER,
            "Planned maintenance",
            "A station you use will be out of service for planned work.",
            IN,
            E,
        ),
        # Operators
        _e("fault", OPERATOR, "Faults", "A fault opened on your network (connector, charger, site).", IN, E),
        _e(
            "charger_offline",
            OPERATOR,
            "Chargers offline",
            "A charger or a whole site stopped talking.",
            IN,
            E,
        ),
        _e(
            "under_performance",
            OPERATOR,
            "Under-performance",
            "A session charges well below what the unit should deliver.",
            IN,
            E,
        ),
        _e("incident_resolved", OPERATOR, "Incidents resolved", "A fault or outage cleared.", IN),
        _e("ticket_assigned", OPERATOR, "Tickets assigned to you", "A work order is yours.", IN, E, P),
        _e(
            "webhook_disabled",
            OPERATOR,
            "Webhook endpoint disabled",
            "A webhook receiver kept failing and deliveries to it stopped.",
            IN,
            E,
        ),
        _e("payment_failed", OPERATOR, "Failed payments", "A driver's payment could not be taken.", IN, E),
    ]
}


def for_audience(audience: str) -> list[EventType]:
    return [e for e in EVENT_TYPES.values() if e.audience == audience]
