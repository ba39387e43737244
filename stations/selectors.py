"""Reads on the charger network, always scoped to what the asking user may see."""

from __future__ import annotations

import math
from decimal import Decimal

from django.db.models import Count, Exists, F, FloatField, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import ASin, Cos, Power, Radians, Sin, Sqrt

from .models import (
    OCCUPIED_STATUSES,
    ChargePoint,
    Connector,
    ConnectorStatus,
    Operator,
    RegistrationStatus,
    Site,
    User,
)

EARTH_RADIUS_KM = 6371.0088


def operators_for(user: User) -> QuerySet[Operator]:
    if not user.is_authenticated or not user.is_active:
        return Operator.objects.none()
    if user.is_superuser:
        return Operator.objects.all()
    if user.is_operator_staff:
        return Operator.objects.filter(pk=user.operator_id)
    return Operator.objects.none()


def sites_for(user: User) -> QuerySet[Site]:
    return Site.objects.filter(operator__in=operators_for(user)).select_related("operator")


def charge_points_for(user: User) -> QuerySet[ChargePoint]:
    return (
        ChargePoint.objects.filter(operator__in=operators_for(user))
        .select_related("operator", "site")
        .prefetch_related(
            Prefetch("connectors", queryset=Connector.objects.select_related("evse").order_by("connector_id"))
        )
    )


def findable_charge_points(user: User) -> QuerySet[ChargePoint]:
    """Charge points the user may look up by identity: accepted ones at public stations (what
    the station finder shows), and for staff their own network as well. Anything else is
    answered as if it did not exist."""
    public = ChargePoint.objects.filter(
        registration_status=RegistrationStatus.ACCEPTED, site__in=public_stations().values("pk")
    )
    own = ChargePoint.objects.filter(operator__in=operators_for(user))
    return ChargePoint.objects.filter(Q(pk__in=public.values("pk")) | Q(pk__in=own.values("pk")))


def status_counts(charge_points: QuerySet[ChargePoint]) -> dict[str, int]:
    """Counts for the dashboard tiles: charge points online/offline, connectors by state.

    A connector of an offline charge point counts as offline, whatever it last reported.
    """
    cp = charge_points.order_by().aggregate(
        total=Count("pk"),
        online=Count("pk", filter=Q(is_connected=True)),
        pending=Count("pk", filter=Q(registration_status=RegistrationStatus.PENDING)),
    )
    online = Q(charge_point__is_connected=True)
    conn = Connector.objects.filter(charge_point__in=charge_points.order_by().values("pk")).aggregate(
        connectors=Count("pk"),
        available=Count("pk", filter=online & Q(status=ConnectorStatus.AVAILABLE)),
        charging=Count("pk", filter=online & Q(status__in=OCCUPIED_STATUSES)),
        faulted=Count("pk", filter=online & Q(status=ConnectorStatus.FAULTED)),
        unavailable=Count(
            "pk", filter=online & Q(status__in=[ConnectorStatus.UNAVAILABLE, ConnectorStatus.RESERVED])
        ),
        offline=Count("pk", filter=~online),
    )
    return {
        "charge_points": cp["total"],
        "online": cp["online"],
        "offline_charge_points": cp["total"] - cp["online"],
        "pending": cp["pending"],
        **conn,
    }


def site_summaries(sites: QuerySet[Site]) -> QuerySet[Site]:
    online = Q(charge_points__connectors__charge_point__is_connected=True)
    return sites.annotate(
        charge_point_count=Count("charge_points", distinct=True),
        connector_count=Count("charge_points__connectors"),
        available_count=Count(
            "charge_points__connectors",
            filter=online & Q(charge_points__connectors__status=ConnectorStatus.AVAILABLE),
        ),
        faulted_count=Count(
            "charge_points__connectors",
            filter=online & Q(charge_points__connectors__status=ConnectorStatus.FAULTED),
        ),
        offline_count=Count("charge_points", filter=Q(charge_points__is_connected=False), distinct=True),
    )


def public_stations() -> QuerySet[Site]:
    """Sites drivers may find: public, with at least one accepted charge point."""
    accepted = ChargePoint.objects.filter(
        site=OuterRef("pk"), registration_status=RegistrationStatus.ACCEPTED
    )
    return Site.objects.filter(Exists(accepted), is_public=True)


def matching_connectors(
    *, standard: str | None = None, min_power_kw: Decimal | None = None
) -> QuerySet[Connector]:
    qs = Connector.objects.filter(charge_point__registration_status=RegistrationStatus.ACCEPTED)
    if standard:
        qs = qs.filter(standard=standard)
    if min_power_kw is not None:
        qs = qs.filter(max_power_kw__gte=min_power_kw)
    return qs.select_related("charge_point").order_by("charge_point__identity", "connector_id")


def stations_nearby(
    *,
    latitude: float,
    longitude: float,
    radius_km: float,
    standard: str | None = None,
    min_power_kw: Decimal | None = None,
) -> QuerySet[Site]:
    """Public stations within ``radius_km`` of a point, nearest first, annotated with
    ``distance_km``; with a standard or minimum power, only stations having such a connector.

    A bounding box on the indexed coordinates narrows the rows first; the great-circle
    (haversine) distance then decides, in the database.
    """
    dlat = radius_km / 111.32
    cos_lat = max(math.cos(math.radians(latitude)), 1e-6)
    dlon = min(radius_km / (111.32 * cos_lat), 360.0)
    qs = public_stations().filter(
        latitude__gte=latitude - dlat,
        latitude__lte=latitude + dlat,
    )
    if longitude - dlon >= -180 and longitude + dlon <= 180:
        qs = qs.filter(longitude__gte=longitude - dlon, longitude__lte=longitude + dlon)
    if standard or min_power_kw is not None:
        matching = matching_connectors(standard=standard, min_power_kw=min_power_kw)
        qs = qs.filter(Exists(matching.filter(charge_point__site=OuterRef("pk"))))
    lat1, lon1 = math.radians(latitude), math.radians(longitude)
    lat2 = Radians(F("latitude"), output_field=FloatField())
    lon2 = Radians(F("longitude"), output_field=FloatField())
    a = Power(Sin((lat2 - lat1) / 2), 2) + math.cos(lat1) * Cos(lat2) * Power(Sin((lon2 - lon1) / 2), 2)
    distance = 2 * EARTH_RADIUS_KM * ASin(Sqrt(a))
    return (
        qs.annotate(distance_km=distance)
        .filter(distance_km__lte=radius_km)
        .select_related("operator")
        .order_by("distance_km", "pk")
    )
