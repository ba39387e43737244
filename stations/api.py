"""REST API v1 of the charger network: the public station finder, operator CRUD and the
commands operators send to chargers."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import django_filters
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from config.api import choices_for

from . import selectors, services
from .commands import send_command, send_command_many, validate_command
from .forms import schema_complaints, settle_reservation
from .models import (
    Availability,
    ChargePoint,
    Command,
    Connector,
    ConnectorStandard,
    Operator,
    PowerType,
    RegistrationStatus,
    Site,
)
from .models.network import identity_validator
from .ocpp.v16 import CENTRAL_SYSTEM_ACTIONS
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
    """The operator a new object belongs to: staff always get their own; a superuser names one.
    Only operators the caller may see are valid: another operator's slug is refused like a
    made-up one (accepting it would tell that it exists)."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="slug", queryset=Operator.objects.none(), required=False, **kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        return selectors.operators_for(request.user) if request is not None else Operator.objects.none()


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


class ChargePointFilter(django_filters.FilterSet):
    site = django_filters.ModelChoiceFilter(queryset=choices_for(selectors.sites_for))

    class Meta:
        model = ChargePoint
        fields = ["site", "registration_status", "is_connected", "protocol", "vendor", "status"]


class ChargePointViewSet(viewsets.ModelViewSet):
    """The operator's charge points with their connectors, by identity."""

    serializer_class = ChargePointSerializer
    permission_classes = [IsOperatorStaff]
    lookup_field = "identity"
    lookup_value_regex = r"[A-Za-z0-9._:*@+\-]+"
    filterset_class = ChargePointFilter
    search_fields = ["identity", "name", "vendor", "model", "serial_number"]
    ordering_fields = ["identity", "last_seen_at", "created_at"]
    ordering = ["identity"]

    def get_queryset(self):
        return selectors.charge_points_for(self.request.user)


# --- Commands to chargers -----------------------------------------------------------------

IDENTITY_REGEX = r"[A-Za-z0-9._:*@+\-]+"
COMMAND_ACTIONS = sorted(CENTRAL_SYSTEM_ACTIONS)
MAX_COMMAND_TIMEOUT = 120
MAX_BULK = 1000
# A ReserveNow is one reservation on one charger: not for many at once.
NOT_IN_BULK = frozenset({"ReserveNow"})


class IsOperatorStaffMember(permissions.BasePermission):
    """Technicians and operator admins alike: sending commands is their daily work."""

    message = "Only an operator's staff may send commands to charge points."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_operator_staff)


def command_error_detail(error: DjangoValidationError) -> dict:
    """A payload the schema refuses, as field messages: ``{"payload": {"type": [...]}}``."""
    complaints = schema_complaints(error)
    detail: dict = {}
    if "action" in complaints:
        detail["action"] = complaints.pop("action")
    if set(complaints) == {""}:
        detail["payload"] = complaints[""]
    elif complaints:
        detail["payload"] = {(path or "non_field_errors"): messages for path, messages in complaints.items()}
    return detail


class CommandSerializer(serializers.ModelSerializer):
    charge_point = serializers.CharField(source="charge_point.identity", read_only=True)
    requested_by = serializers.CharField(
        source="requested_by.email", read_only=True, allow_null=True, help_text="Who sent it."
    )
    outcome = serializers.CharField(
        read_only=True, help_text="The charger's status word, or why there is none (offline, timed out)."
    )
    # A plain string in the schema: a second enum named "status" would rename the connector
    # status enum clients know (drf-spectacular names enums by field name).
    status = serializers.CharField(
        read_only=True,
        help_text="pending (waiting for the charger), accepted, rejected, error (a CALLERROR), "
        "timeout (no answer in time) or offline (not sent: the charger is not connected).",
    )
    payload = serializers.DictField(read_only=True, help_text="The OCPP request as sent.")
    response = serializers.DictField(
        read_only=True, allow_null=True, help_text="The charger's OCPP answer, if it gave one."
    )

    class Meta:
        model = Command
        fields = [
            "id",
            "charge_point",
            "action",
            "payload",
            "status",
            "outcome",
            "response",
            "error_code",
            "error_description",
            "requested_by",
            "batch",
            "created_at",
            "sent_at",
            "completed_at",
        ]
        read_only_fields = fields


class CommandRequestSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=COMMAND_ACTIONS, help_text="The OCPP 1.6 command.")
    payload = serializers.DictField(
        default=dict, help_text="The OCPP request payload, as the OCPP 1.6 schema of the command has it."
    )
    timeout = serializers.FloatField(
        required=False,
        min_value=1,
        max_value=MAX_COMMAND_TIMEOUT,
        help_text="Seconds to wait for the charger's answer (default: the server's setting).",
    )


class BulkCommandRequestSerializer(CommandRequestSerializer):
    charge_points = serializers.ListField(
        child=serializers.CharField(max_length=48),
        min_length=1,
        max_length=MAX_BULK,
        help_text="Identities of the charge points, all of them yours.",
    )

    def validate_action(self, value: str) -> str:
        if value in NOT_IN_BULK:
            raise serializers.ValidationError(f"{value} is sent to one charge point at a time.")
        return value


def _reserve(charge_point: ChargePoint, payload: dict) -> dict:
    """A ReserveNow records its reservation first; the reservation's id is the reservationId."""
    from sessions import services as charging
    from sessions.models import Reservation

    if "reservationId" in payload:
        if not Reservation.objects.filter(pk=payload["reservationId"], charge_point=charge_point).exists():
            raise serializers.ValidationError(
                {"payload": {"reservationId": ["No such reservation on this charge point."]}}
            )
        return payload
    try:
        validate_command(charge_point, "ReserveNow", {**payload, "reservationId": 0})
    except DjangoValidationError as error:
        raise serializers.ValidationError(command_error_detail(error)) from error
    try:
        expiry = dt.datetime.fromisoformat(payload["expiryDate"])
    except ValueError as error:
        raise serializers.ValidationError(
            {"payload": {"expiryDate": ["Not an ISO 8601 date-time."]}}
        ) from error
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=dt.UTC)
    names = {"connector_id": "connectorId", "id_tag": "idTag", "expiry_date": "expiryDate"}
    try:
        reservation = charging.reservation_create(
            charge_point=charge_point,
            connector_id=payload["connectorId"],
            id_tag=payload["idTag"],
            expiry_date=expiry,
            parent_id_tag=payload.get("parentIdTag"),
        )
    except DjangoValidationError as error:
        detail = {names.get(k, k): v for k, v in error.message_dict.items()}
        raise serializers.ValidationError({"payload": detail}) from error
    return {**payload, "reservationId": reservation.pk}


IDENTITY_PARAMETER = OpenApiParameter(
    "identity", OpenApiTypes.STR, OpenApiParameter.PATH, description="The charge point's identity."
)
COMMAND_400 = OpenApiResponse(
    description="Unknown action or a payload the OCPP schema refuses, with field messages."
)


@extend_schema(parameters=[IDENTITY_PARAMETER], tags=["operator commands"])
@extend_schema_view(
    list=extend_schema(summary="Commands sent to a charge point, newest first"),
    create=extend_schema(
        summary="Send a command to a charge point",
        description="Sends the command and waits for the charger's answer (or the timeout). "
        "The command is recorded whatever its outcome: status `accepted`, `rejected`, `error`, "
        "`timeout` or `offline` (not sent: the charger is not connected).",
        request=CommandRequestSerializer,
        responses={
            201: CommandSerializer,
            400: COMMAND_400,
            403: OpenApiResponse(description="Not operator staff."),
            404: OpenApiResponse(description="No such charge point of yours."),
        },
    ),
)
class ChargePointCommandViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """The commands of one of the operator's charge points: send one, list those sent."""

    serializer_class = CommandSerializer
    permission_classes = [IsOperatorStaffMember]
    filterset_fields = ["action", "status"]
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]

    def charge_point(self) -> ChargePoint:
        if not hasattr(self, "_charge_point"):
            self._charge_point = get_object_or_404(
                selectors.charge_points_for(self.request.user), identity=self.kwargs["identity"]
            )
        return self._charge_point

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no charge point
            return Command.objects.none()
        return Command.objects.filter(charge_point=self.charge_point()).select_related(
            "charge_point", "requested_by"
        )

    def create(self, request, *args, **kwargs):
        charge_point = self.charge_point()
        data = CommandRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        action = data.validated_data["action"]
        payload = data.validated_data["payload"]
        reserving = action == "ReserveNow" and "reservationId" not in payload
        if action == "ReserveNow":
            payload = _reserve(charge_point, payload)
        try:
            command = send_command(
                charge_point,
                action,
                payload,
                timeout=data.validated_data.get("timeout"),
                requested_by=request.user,
            )
        except DjangoValidationError as error:
            raise serializers.ValidationError(command_error_detail(error)) from error
        if reserving:
            settle_reservation(payload["reservationId"], command)
        return Response(CommandSerializer(command).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["operator commands"])
@extend_schema_view(
    list=extend_schema(summary="Commands sent to the operator's charge points, newest first"),
    retrieve=extend_schema(summary="One command with its outcome"),
    create=extend_schema(
        summary="Send one command to many charge points at once",
        description="Sends to all of them concurrently, as one batch, and waits for every answer "
        "(or its timeout). Every identity must be one of your charge points.",
        request=BulkCommandRequestSerializer,
        responses={
            201: CommandSerializer(many=True),
            400: COMMAND_400,
            403: OpenApiResponse(description="Not operator staff."),
        },
    ),
)
class OperatorCommandViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Commands across the operator's network; many charge points at once."""

    serializer_class = CommandSerializer
    permission_classes = [IsOperatorStaffMember]
    filterset_fields = ["action", "status", "batch"]
    search_fields = ["charge_point__identity"]
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Command.objects.none()
        return Command.objects.filter(
            charge_point__in=selectors.charge_points_for(self.request.user).values("pk")
        ).select_related("charge_point", "requested_by")

    def create(self, request, *args, **kwargs):
        data = BulkCommandRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        identities = list(dict.fromkeys(data.validated_data["charge_points"]))
        charge_points = list(
            selectors.charge_points_for(request.user).filter(identity__in=identities).order_by("identity")
        )
        unknown = [i for i in identities if i not in {cp.identity for cp in charge_points}]
        if unknown:
            raise serializers.ValidationError(
                {"charge_points": [f"Not charge points of yours: {', '.join(unknown)}."]}
            )
        action = data.validated_data["action"]
        payload = data.validated_data["payload"]
        try:
            for charge_point in {cp.protocol: cp for cp in charge_points}.values():
                validate_command(charge_point, action, payload)
        except DjangoValidationError as error:
            raise serializers.ValidationError(command_error_detail(error)) from error
        commands = send_command_many(
            charge_points,
            action,
            payload,
            timeout=data.validated_data.get("timeout"),
            requested_by=request.user,
        )
        return Response(CommandSerializer(commands, many=True).data, status=status.HTTP_201_CREATED)
