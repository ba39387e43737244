"""REST API v1 of the charger network: the public station finder and operator CRUD."""

from __future__ import annotations

from collections import Counter

from django.conf import settings
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from . import selectors, services
from .models import (
    Availability,
    ChargePoint,
    Connector,
    ConnectorStandard,
    Operator,
    PowerType,
    RegistrationStatus,
    Site,
)
from .models.network import identity_validator
from .permissions import IsOperatorStaff
from .services import ConnectorSpec

# --- Public station finder ----------------------------------------------------------------


class NearbyQuerySerializer(serializers.Serializer):
    latitude = serializers.FloatField(min_value=-90, max_value=90, help_text="Latitude of the point, WGS 84.")
    longitude = serializers.FloatField(
        min_value=-180, max_value=180, help_text="Longitude of the point, WGS 84."
    )
    radius_km = serializers.FloatField(
        required=False,
        default=5.0,
        min_value=0.01,
        max_value=settings.CHARGEDESK_MAX_SEARCH_RADIUS_KM,
        help_text="Search radius in kilometres.",
    )
    standard = serializers.ChoiceField(
        choices=ConnectorStandard.choices, required=False, help_text="Only stations with this connector type."
    )
    min_power_kw = serializers.DecimalField(
        max_digits=7,
        decimal_places=2,
        min_value=0,
        required=False,
        help_text="Only stations with a connector of at least this power.",
    )


class StationConnectorSerializer(serializers.ModelSerializer):
    charge_point = serializers.CharField(source="charge_point.identity")
    evse_id = serializers.IntegerField(source="evse.evse_id")
    availability = serializers.SerializerMethodField()

    class Meta:
        model = Connector
        fields = [
            "charge_point",
            "evse_id",
            "connector_id",
            "standard",
            "power_type",
            "max_power_kw",
            "availability",
            "status",
            "status_updated_at",
        ]

    def get_availability(self, connector: Connector) -> Availability:
        return connector.availability()


class AvailabilitySerializer(serializers.Serializer):
    total = serializers.IntegerField()
    available = serializers.IntegerField()
    occupied = serializers.IntegerField()
    reserved = serializers.IntegerField()
    out_of_service = serializers.IntegerField()
    offline = serializers.IntegerField()
    unknown = serializers.IntegerField()


class StationSerializer(serializers.ModelSerializer):
    """A public station (a site). With a connector filter, ``connectors`` and ``availability``
    cover only the connectors that match it."""

    operator = serializers.CharField(source="operator.name")
    distance_km = serializers.SerializerMethodField()
    availability = serializers.SerializerMethodField()
    max_power_kw = serializers.SerializerMethodField()
    connectors = serializers.SerializerMethodField()

    class Meta:
        model = Site
        fields = [
            "id",
            "name",
            "operator",
            "address",
            "city",
            "postal_code",
            "country",
            "latitude",
            "longitude",
            "time_zone",
            "distance_km",
            "max_power_kw",
            "availability",
            "connectors",
        ]

    @staticmethod
    def _connectors(site: Site) -> list[Connector]:
        return [c for cp in site.charge_points.all() for c in cp.connectors.all()]

    def get_distance_km(self, site: Site) -> float | None:
        distance = getattr(site, "distance_km", None)
        return None if distance is None else round(float(distance), 3)

    @extend_schema_field(AvailabilitySerializer)
    def get_availability(self, site: Site) -> dict:
        counts = Counter(c.availability() for c in self._connectors(site))
        return {"total": sum(counts.values()), **{a.value: counts.get(a.value, 0) for a in Availability}}

    def get_max_power_kw(self, site: Site) -> str | None:
        powers = [c.max_power_kw for c in self._connectors(site)]
        return str(max(powers)) if powers else None

    @extend_schema_field(StationConnectorSerializer(many=True))
    def get_connectors(self, site: Site) -> list:
        return StationConnectorSerializer(self._connectors(site), many=True).data


def _station_prefetch(*, standard: str | None = None, min_power_kw=None) -> Prefetch:
    connectors = selectors.matching_connectors(standard=standard, min_power_kw=min_power_kw).select_related(
        "evse"
    )
    return Prefetch(
        "charge_points",
        queryset=ChargePoint.objects.filter(registration_status=RegistrationStatus.ACCEPTED)
        .order_by("identity")
        .prefetch_related(Prefetch("connectors", queryset=connectors)),
    )


@extend_schema_view(
    list=extend_schema(
        summary="Stations near a point",
        description="Public stations within a radius, nearest first, with live availability.",
        parameters=[NearbyQuerySerializer],
        responses={200: StationSerializer(many=True), 400: OpenApiResponse(description="Invalid parameters")},
    ),
    retrieve=extend_schema(summary="A station with its connectors and live availability"),
)
class StationViewSet(viewsets.ReadOnlyModelViewSet):
    """The station finder of the mobile app; open to anyone, rate-limited."""

    serializer_class = StationSerializer
    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle, UserRateThrottle]
    filter_backends: list = []

    def get_queryset(self):
        return selectors.public_stations().select_related("operator").prefetch_related(_station_prefetch())

    def list(self, request, *args, **kwargs):
        query = NearbyQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        stations = selectors.stations_nearby(
            latitude=params["latitude"],
            longitude=params["longitude"],
            radius_km=params["radius_km"],
            standard=params.get("standard"),
            min_power_kw=params.get("min_power_kw"),
        ).prefetch_related(
            _station_prefetch(standard=params.get("standard"), min_power_kw=params.get("min_power_kw"))
        )
        page = self.paginate_queryset(stations)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


# --- Operator CRUD ------------------------------------------------------------------------


class OperatorField(serializers.SlugRelatedField):
    """The operator a new object belongs to: staff always get their own; a superuser names one."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="slug", queryset=Operator.objects.all(), required=False, **kwargs)


def _operator_for_create(serializer: serializers.Serializer, attrs: dict) -> Operator:
    user = serializer.context["request"].user
    if user.is_superuser:
        operator = attrs.get("operator") or user.operator
        if operator is None:
            raise serializers.ValidationError({"operator": "Name the operator (its slug)."})
        return operator
    return user.operator


class SiteSerializer(serializers.ModelSerializer):
    operator = OperatorField()
    charge_point_count = serializers.IntegerField(read_only=True)
    connector_count = serializers.IntegerField(read_only=True)
    available_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Site
        fields = [
            "id",
            "operator",
            "name",
            "address",
            "city",
            "postal_code",
            "country",
            "latitude",
            "longitude",
            "time_zone",
            "is_public",
            "charge_point_count",
            "connector_count",
            "available_count",
            "created_at",
            "updated_at",
        ]
        # The operator comes from the user; the service checks the per-operator unique name.
        validators: list = []

    def validate_country(self, value: str) -> str:
        if len(value) != 2 or not value.isalpha():
            raise serializers.ValidationError("Use the two-letter ISO 3166-1 code, e.g. NL.")
        return value.upper()

    def create(self, validated_data):
        validated_data["operator"] = _operator_for_create(self, validated_data)
        return services.site_create(**validated_data)

    def update(self, instance, validated_data):
        validated_data.pop("operator", None)
        return services.site_update(site=instance, **validated_data)


class ConnectorSerializer(serializers.ModelSerializer):
    evse_id = serializers.IntegerField(source="evse.evse_id", required=False, min_value=1)

    class Meta:
        model = Connector
        fields = [
            "connector_id",
            "evse_id",
            "standard",
            "power_type",
            "max_power_kw",
            "status",
            "error_code",
            "status_info",
            "status_updated_at",
        ]
        read_only_fields = ["status", "error_code", "status_info", "status_updated_at"]
        # Uniqueness per charge point is checked by the charge point serializer.
        validators: list = []


class ChargePointSerializer(serializers.ModelSerializer):
    operator = OperatorField()
    identity = serializers.CharField(max_length=48, validators=[identity_validator])
    site = serializers.PrimaryKeyRelatedField(queryset=Site.objects.none(), required=False, allow_null=True)
    password = serializers.CharField(
        write_only=True,
        required=False,
        min_length=services.CHARGER_PASSWORD_MIN,
        max_length=services.CHARGER_PASSWORD_MAX,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="The charger's HTTP Basic password (OCPP security profile 1/2); stored hashed.",
    )
    connectors = ConnectorSerializer(many=True, required=False)

    class Meta:
        model = ChargePoint
        fields = [
            "id",
            "identity",
            "operator",
            "site",
            "name",
            "vendor",
            "model",
            "serial_number",
            "firmware_version",
            "protocol",
            "registration_status",
            "heartbeat_interval",
            "password",
            "has_password",
            "is_connected",
            "connected_at",
            "last_seen_at",
            "last_boot_at",
            "status",
            "error_code",
            "status_updated_at",
            "connectors",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "firmware_version",
            "is_connected",
            "connected_at",
            "last_seen_at",
            "last_boot_at",
            "status",
            "error_code",
            "status_updated_at",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["site"].queryset = selectors.sites_for(request.user)

    def validate_identity(self, value: str) -> str:
        clash = ChargePoint.objects.filter(identity=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("A charge point with this identity already exists.")
        return value

    def validate_connectors(self, value: list[dict]) -> list[dict]:
        ids = [c["connector_id"] for c in value]
        if len(ids) != len(set(ids)):
            raise serializers.ValidationError("Each connector_id may appear once.")
        return value

    def validate(self, attrs):
        if self.instance is None:
            attrs["operator"] = _operator_for_create(self, attrs)
        else:
            attrs.pop("operator", None)
        return attrs

    @staticmethod
    def _specs(connectors: list[dict] | None) -> list[ConnectorSpec] | None:
        if connectors is None:
            return None
        return [
            ConnectorSpec(
                connector_id=c["connector_id"],
                evse_id=c.get("evse", {}).get("evse_id"),
                standard=c.get("standard", ConnectorStandard.TYPE2),
                power_type=c.get("power_type", PowerType.AC_3_PHASE),
                max_power_kw=c.get("max_power_kw", ConnectorSpec.max_power_kw),
            )
            for c in connectors
        ]

    def create(self, validated_data):
        connectors = self._specs(validated_data.pop("connectors", [])) or []
        return services.charge_point_create(connectors=connectors, **validated_data)

    def update(self, instance, validated_data):
        connectors = self._specs(validated_data.pop("connectors", None))
        return services.charge_point_update(charge_point=instance, connectors=connectors, **validated_data)


class SiteViewSet(viewsets.ModelViewSet):
    """The operator's sites. Technicians read; operator admins also write."""

    serializer_class = SiteSerializer
    permission_classes = [IsOperatorStaff]
    filterset_fields = ["city", "country", "is_public"]
    search_fields = ["name", "address", "city", "postal_code"]
    ordering_fields = ["name", "city", "created_at"]
    ordering = ["name"]

    def get_queryset(self):
        return selectors.site_summaries(selectors.sites_for(self.request.user))


class ChargePointViewSet(viewsets.ModelViewSet):
    """The operator's charge points with their connectors, by identity."""

    serializer_class = ChargePointSerializer
    permission_classes = [IsOperatorStaff]
    lookup_field = "identity"
    lookup_value_regex = r"[A-Za-z0-9._:*@+\-]+"
    filterset_fields = ["site", "registration_status", "is_connected", "protocol", "vendor", "status"]
    search_fields = ["identity", "name", "vendor", "model", "serial_number"]
    ordering_fields = ["identity", "last_seen_at", "created_at"]
    ordering = ["identity"]

    def get_queryset(self):
        return selectors.charge_points_for(self.request.user)
