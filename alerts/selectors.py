"""The reads behind alerts: who is affected by a station going out of service, which stations
are the nearest alternatives, when service should be back, and who works for an operator."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, F, FloatField, Q
from django.db.models.functions import ASin, Cos, Power, Radians, Sin, Sqrt

from sessions.models import Transaction
from stations.models import ChargePoint, ConnectorStatus, RegistrationStatus
from stations.models.accounts import Role
from stations.selectors import EARTH_RADIUS_KM, stations_nearby

from .models import AlertProfile, MaintenanceWindow

User = get_user_model()


def operator_staff(
    operator_id: int, *, roles: tuple[str, ...] = (Role.OPERATOR_ADMIN, Role.TECHNICIAN)
) -> list[int]:
    """The active staff of an operator who hear about its network."""
    return list(
        User.objects.filter(operator_id=operator_id, role__in=roles, is_active=True).values_list(
            "pk", flat=True
        )
    )


def affected_drivers(charge_point: ChargePoint, *, now: dt.datetime) -> list[int]:
    """Drivers who use this station: it is a favourite, they charged there lately, or it lies
    within their radius of home. Three queries whatever the number of drivers."""
    favourites = AlertProfile.favourites.through.objects.filter(chargepoint_id=charge_point.pk).values_list(
        "alertprofile__user_id", flat=True
    )
    recent = (
        Transaction.objects.filter(
            charge_point_id=charge_point.pk,
            driver__isnull=False,
            started_at__gte=now - dt.timedelta(days=settings.ALERTS_RECENT_DAYS),
        )
        .values_list("driver_id", flat=True)
        .distinct()
    )
    ids = set(favourites) | set(recent)
    site = charge_point.site
    if site is not None and site.latitude is not None and site.longitude is not None:
        ids |= set(_homes_near(float(site.latitude), float(site.longitude)))
    if not ids:
        return []
    return sorted(
        User.objects.filter(pk__in=ids, is_active=True, role=Role.DRIVER).values_list("pk", flat=True)
    )


def _homes_near(latitude: float, longitude: float) -> list[int]:
    """Users whose home lies within their own radius of the point (bounding box on the
    largest radius first, then the great-circle distance against each user's radius)."""
    widest = float(settings.CHARGEDESK_MAX_SEARCH_RADIUS_KM)
    dlat = widest / 111.32
    dlon = min(widest / (111.32 * max(math.cos(math.radians(latitude)), 1e-6)), 360.0)
    lat1, lon1 = math.radians(latitude), math.radians(longitude)
    lat2 = Radians(F("home_latitude"), output_field=FloatField())
    lon2 = Radians(F("home_longitude"), output_field=FloatField())
    a = Power(Sin((lat2 - lat1) / 2), 2) + math.cos(lat1) * Cos(lat2) * Power(Sin((lon2 - lon1) / 2), 2)
    return list(
        AlertProfile.objects.filter(
            home_latitude__gte=latitude - dlat,
            home_latitude__lte=latitude + dlat,
            home_longitude__gte=longitude - dlon,
            home_longitude__lte=longitude + dlon,
        )
        .annotate(distance_km=2 * EARTH_RADIUS_KM * ASin(Sqrt(a)))
        .filter(distance_km__lte=F("radius_km"))
        .values_list("user_id", flat=True)
    )


def alternatives(
    charge_point: ChargePoint, *, standards: set[str] | None = None, limit: int | None = None
) -> list[dict]:
    """The nearest public stations (other than this one's charge point) with a connector free
    to charge now — available, on a connected and accepted charger — of one of ``standards``."""
    site = charge_point.site
    if site is None or site.latitude is None or site.longitude is None:
        return []
    limit = limit or settings.ALERTS_ALTERNATIVES
    free = Q(
        charge_points__connectors__status=ConnectorStatus.AVAILABLE,
        charge_points__is_connected=True,
        charge_points__registration_status=RegistrationStatus.ACCEPTED,
    ) & ~Q(charge_points__pk=charge_point.pk)
    if standards:
        free &= Q(charge_points__connectors__standard__in=standards)
    sites = (
        stations_nearby(
            latitude=float(site.latitude),
            longitude=float(site.longitude),
            radius_km=settings.ALERTS_ALTERNATIVES_RADIUS_KM,
        )
        .annotate(available=Count("charge_points__connectors", filter=free, distinct=True))
        .filter(available__gt=0)[:limit]
    )
    return [
        {
            "name": s.name,
            "address": ", ".join(p for p in (s.address, s.city) if p),
            "distance_km": round(float(s.distance_km), 1),
            "available": s.available,
            "standards": sorted(standards or ()),
            "url": f"geo:{s.latitude},{s.longitude}",
        }
        for s in sites
    ]


def connector_standards(charge_point: ChargePoint, connector_number: int) -> set[str]:
    """The plug types of the connector (all of the charger's for connector 0)."""
    qs = charge_point.connectors.all()
    if connector_number:
        qs = qs.filter(connector_id=connector_number)
    return {s for s in qs.values_list("standard", flat=True) if s}


def eta_for(charge_point: ChargePoint, *, connector_number: int = 0, now: dt.datetime) -> dt.datetime | None:
    """When service should be back: the end of published maintenance under way, else the
    expected time an open incident of this charger carries."""
    window = (
        MaintenanceWindow.objects.filter(
            Q(charge_point_id=charge_point.pk) | Q(site_id=charge_point.site_id, charge_point__isnull=True),
            published_at__isnull=False,
            cancelled_at__isnull=True,
            starts_at__lte=now,
            ends_at__gt=now,
        )
        .order_by("-ends_at")
        .values_list("ends_at", flat=True)
        .first()
    )
    if window is not None:
        return window
    from diagnostics.models import Incident, IncidentStatus

    incidents = Incident.objects.filter(
        charge_point_id=charge_point.pk, status=IncidentStatus.OPEN, expected_back_at__gt=now
    )
    if connector_number:
        incidents = incidents.filter(Q(connector__isnull=True) | Q(connector__connector_id=connector_number))
    return incidents.order_by("-expected_back_at").values_list("expected_back_at", flat=True).first()


def kwh(wh: Decimal | None) -> Decimal:
    return (Decimal(wh or 0) / 1000).quantize(Decimal("0.01"))
