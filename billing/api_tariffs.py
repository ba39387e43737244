"""REST API v1 of tariffs: the price a driver will pay at a connector, the cost of the
driver's sessions, and the operators' tariffs and where they apply."""

from __future__ import annotations

from decimal import Decimal

import django_filters
from django.db.models import ProtectedError
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import APIException
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import choices_for
from sessions.models import Transaction
from stations.models import ChargePoint, Connector, RegistrationStatus, Site
from stations.permissions import IsOperatorStaff
from stations.selectors import charge_points_for, findable_charge_points, operators_for, sites_for

from .models import ComponentType, CustomerGroup, DayOfWeek, SessionCharge, Tariff, TariffAssignment
from .services.charges import estimate
from .tariffs import as_dict, describe, elements_prefetch, tariff_create, tariff_for, tariff_update

DAY_NAMES = [d.value for d in DayOfWeek]
COMPONENT_TYPES = [c.value for c in ComponentType]

# --- What a tariff looks like to drivers -----------------------------------------------------


class PriceComponentOutSerializer(serializers.Serializer):
    type = serializers.CharField(
        help_text="ENERGY (per kWh), TIME (per hour), PARKING_TIME (per hour), FLAT."
    )
    price = serializers.DecimalField(max_digits=14, decimal_places=5)
    step_size = serializers.IntegerField(help_text="Wh for ENERGY, seconds for the times, 1 for FLAT.")


class RestrictionsOutSerializer(serializers.Serializer):
    start_time = serializers.CharField(required=False, help_text="HH:MM, the site's local time.")
    end_time = serializers.CharField(required=False)
    start_date = serializers.DateField(required=False)
    end_date = serializers.DateField(required=False)
    day_of_week = serializers.ListField(child=serializers.CharField(), required=False)
    min_kwh = serializers.DecimalField(max_digits=10, decimal_places=3, required=False)
    max_kwh = serializers.DecimalField(max_digits=10, decimal_places=3, required=False)
    min_power = serializers.DecimalField(max_digits=8, decimal_places=2, required=False, help_text="kW")
    max_power = serializers.DecimalField(max_digits=8, decimal_places=2, required=False, help_text="kW")
    min_duration = serializers.IntegerField(required=False, help_text="Seconds.")
    max_duration = serializers.IntegerField(required=False, help_text="Seconds.")


class TariffElementOutSerializer(serializers.Serializer):
    price_components = PriceComponentOutSerializer(many=True)
    restrictions = RestrictionsOutSerializer(allow_null=True)


class PublicTariffSerializer(serializers.Serializer):
    """A tariff after OCPI 2.2.1, plus ``text``: the same in plain words."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    currency = serializers.CharField()
    elements = TariffElementOutSerializer(many=True)
    min_price = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    max_price = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    tax_rate = serializers.DecimalField(max_digits=5, decimal_places=2, help_text="Percent.")
    prices_include_tax = serializers.BooleanField()
    idle_grace_minutes = serializers.IntegerField()
    idle_fee_cap = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    description = serializers.CharField()
    text = serializers.CharField(help_text="The tariff in plain words.")


class StationTariffView(APIView):
    """The tariff that applies to the signed-in user at a connector, now."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("connector", int, description="The connector number (default 1).")],
        responses={200: PublicTariffSerializer, 404: OpenApiResponse(description="No tariff applies.")},
    )
    def get(self, request, identity: str):
        try:
            connector = int(request.query_params.get("connector", 1))
        except ValueError:
            raise serializers.ValidationError({"connector": ["A connector number, e.g. 1."]}) from None
        # A station that is not public has no tariff to show, except to its operator's staff.
        charge_point = get_object_or_404(
            findable_charge_points(request.user).select_related("site"),
            identity=identity,
            registration_status=RegistrationStatus.ACCEPTED,
        )
        tariff = tariff_for(
            charge_point=charge_point, connector_number=connector, user=request.user, at=timezone.now()
        )
        if tariff is None:
            return Response({"detail": "No tariff applies here."}, status=status.HTTP_404_NOT_FOUND)
        return Response(as_dict(tariff))


# --- What a session costs --------------------------------------------------------------------


class CostLineSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="energy, time, parking, idle, flat or adjustment.")
    description = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=14, decimal_places=4)
    unit = serializers.CharField()
    unit_price = serializers.DecimalField(max_digits=14, decimal_places=5, help_text="Net of tax.")
    net = serializers.DecimalField(max_digits=14, decimal_places=2)
    tax_rate = serializers.DecimalField(max_digits=5, decimal_places=2)
    tax = serializers.DecimalField(max_digits=14, decimal_places=2)
    total = serializers.DecimalField(max_digits=14, decimal_places=2)


class SessionCostSerializer(serializers.Serializer):
    transaction_id = serializers.IntegerField()
    final = serializers.BooleanField(help_text="True once the session is priced; else a live estimate.")
    currency = serializers.CharField()
    energy_kwh = serializers.DecimalField(max_digits=12, decimal_places=3)
    net = serializers.DecimalField(max_digits=14, decimal_places=2)
    tax = serializers.DecimalField(max_digits=14, decimal_places=2)
    total = serializers.DecimalField(max_digits=14, decimal_places=2)
    lines = CostLineSerializer(many=True)


class SessionCostView(APIView):
    """The cost of one of the caller's sessions: a live estimate while it runs, the stored
    charge once it is priced."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={200: SessionCostSerializer, 404: OpenApiResponse(description="No such session or tariff.")}
    )
    def get(self, request, pk: int):
        transaction = get_object_or_404(
            Transaction.objects.select_related("charge_point__site", "driver"), pk=pk, driver=request.user
        )
        charge = SessionCharge.objects.filter(transaction=transaction).prefetch_related("lines").first()
        if charge is not None:
            data = {
                "transaction_id": transaction.pk,
                "final": True,
                "currency": charge.currency,
                "energy_kwh": charge.energy_kwh,
                "net": charge.net,
                "tax": charge.tax,
                "total": charge.total,
                "lines": list(charge.lines.all()),
            }
        else:
            priced = estimate(transaction)
            if priced is None:
                return Response({"detail": "No tariff applies to this session."}, status=404)
            data = {
                "transaction_id": transaction.pk,
                "final": False,
                "currency": priced.currency,
                "energy_kwh": (priced.energy_wh / 1000).quantize(Decimal("0.001")),
                "net": priced.net,
                "tax": priced.tax,
                "total": priced.total,
                "lines": priced.lines,
            }
        return Response(SessionCostSerializer(data).data)


# --- Operators: tariffs ----------------------------------------------------------------------


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class PriceComponentSerializer(serializers.Serializer):
    type = serializers.CharField(
        help_text="ENERGY (per kWh), TIME (per hour), PARKING_TIME (per hour), FLAT."
    )
    price = serializers.DecimalField(max_digits=14, decimal_places=5, min_value=Decimal(0))
    step_size = serializers.IntegerField(min_value=1, max_value=2**31 - 1, default=1)

    def validate_type(self, value: str) -> str:
        value = value.upper()
        if value not in COMPONENT_TYPES:
            raise serializers.ValidationError(f"One of {', '.join(COMPONENT_TYPES)}.")
        return value


class TariffElementSerializer(serializers.Serializer):
    start_time = serializers.TimeField(required=False, allow_null=True, help_text="Local time, from.")
    end_time = serializers.TimeField(required=False, allow_null=True, help_text="Local time, until.")
    start_date = serializers.DateField(required=False, allow_null=True)
    end_date = serializers.DateField(required=False, allow_null=True, help_text="Exclusive.")
    day_of_week = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        default=list,
        help_text="MONDAY … SUNDAY; empty: every day.",
    )
    min_kwh = serializers.DecimalField(
        max_digits=10, decimal_places=3, min_value=0, required=False, allow_null=True
    )
    max_kwh = serializers.DecimalField(
        max_digits=10, decimal_places=3, min_value=0, required=False, allow_null=True
    )
    min_power_kw = serializers.DecimalField(
        max_digits=8, decimal_places=2, min_value=0, required=False, allow_null=True
    )
    max_power_kw = serializers.DecimalField(
        max_digits=8, decimal_places=2, min_value=0, required=False, allow_null=True
    )
    min_duration_s = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, allow_null=True
    )
    max_duration_s = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, allow_null=True
    )
    components = PriceComponentSerializer(many=True, allow_empty=False)

    def validate_day_of_week(self, value: list[str]) -> list[str]:
        days = [d.upper() for d in value]
        unknown = [d for d in days if d not in DAY_NAMES]
        if unknown:
            raise serializers.ValidationError(f"Unknown day {unknown[0]}: use MONDAY … SUNDAY.")
        if len(set(days)) != len(days):
            raise serializers.ValidationError("Each day may appear once.")
        return [d for d in DAY_NAMES if d in days]

    def validate(self, attrs):
        for low, high, what in (
            ("start_date", "end_date", "The end date must be after the start date."),
            ("min_kwh", "max_kwh", "max_kwh must be above min_kwh."),
            ("min_power_kw", "max_power_kw", "max_power_kw must be above min_power_kw."),
            ("min_duration_s", "max_duration_s", "max_duration_s must be above min_duration_s."),
        ):
            if attrs.get(low) is not None and attrs.get(high) is not None and attrs[high] <= attrs[low]:
                raise serializers.ValidationError({high: [what]})
        start, end = attrs.get("start_time"), attrs.get("end_time")
        if start is not None and end is not None and start == end:
            raise serializers.ValidationError({"end_time": ["Equal times: leave both empty for all day."]})
        types = [c["type"] for c in attrs["components"]]
        if len(set(types)) != len(types):
            raise serializers.ValidationError({"components": ["One component of each type per element."]})
        return attrs


class TariffSerializer(serializers.ModelSerializer):
    elements = TariffElementSerializer(many=True, allow_empty=False)
    text = serializers.SerializerMethodField(help_text="The tariff in plain words, as drivers see it.")
    tax_rate = serializers.DecimalField(max_digits=5, decimal_places=2, min_value=0, max_value=100, default=0)
    min_price = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=0, required=False, allow_null=True
    )
    max_price = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=0, required=False, allow_null=True
    )
    idle_fee_cap = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=0, required=False, allow_null=True
    )

    class Meta:
        model = Tariff
        fields = [
            "id",
            "name",
            "currency",
            "tax_rate",
            "prices_include_tax",
            "min_price",
            "max_price",
            "idle_grace_minutes",
            "idle_fee_cap",
            "description",
            "is_active",
            "elements",
            "text",
            "created_at",
            "updated_at",
        ]

    def get_text(self, tariff: Tariff) -> str:
        return describe(tariff)

    def validate_currency(self, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise serializers.ValidationError("An ISO 4217 code, e.g. EUR.")
        return value.upper()

    def validate(self, attrs):
        low = attrs.get("min_price", getattr(self.instance, "min_price", None))
        high = attrs.get("max_price", getattr(self.instance, "max_price", None))
        if low is not None and high is not None and high < low:
            raise serializers.ValidationError({"max_price": ["The maximum price is below the minimum."]})
        return attrs

    def create(self, validated_data):
        user = self.context["request"].user
        if user.operator is None:
            raise serializers.ValidationError({"detail": "You do not belong to an operator."})
        return tariff_create(operator=user.operator, **validated_data)

    def update(self, instance, validated_data):
        return tariff_update(tariff=instance, **validated_data)


class TariffViewSet(viewsets.ModelViewSet):
    """The operator's tariffs with their elements and price components (OCPI 2.2.1 model).
    Technicians read; operator admins also write. Writing ``elements`` replaces them all."""

    serializer_class = TariffSerializer
    permission_classes = [IsOperatorStaff]
    filterset_fields = ["currency", "is_active"]
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]
    ordering = ["name"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Tariff.objects.none()
        return Tariff.objects.filter(operator__in=operators_for(self.request.user)).prefetch_related(
            elements_prefetch()
        )

    def perform_destroy(self, instance):
        try:
            instance.delete()
        except ProtectedError:
            raise Conflict("Priced sessions use this tariff: deactivate it instead.") from None


# --- Operators: where tariffs apply ----------------------------------------------------------


class TariffAssignmentSerializer(serializers.ModelSerializer):
    tariff = serializers.PrimaryKeyRelatedField(queryset=Tariff.objects.none())
    site = serializers.PrimaryKeyRelatedField(queryset=Site.objects.none(), required=False, allow_null=True)
    charge_point = serializers.SlugRelatedField(
        slug_field="identity", queryset=ChargePoint.objects.none(), required=False, allow_null=True
    )
    connector_number = serializers.IntegerField(
        source="connector.connector_id",
        required=False,
        allow_null=True,
        min_value=1,
        help_text="A connector of the charge point: the most specific place.",
    )
    customer_group = serializers.PrimaryKeyRelatedField(
        queryset=CustomerGroup.objects.none(), required=False, allow_null=True
    )

    class Meta:
        model = TariffAssignment
        fields = [
            "id",
            "tariff",
            "site",
            "charge_point",
            "connector_number",
            "customer_group",
            "valid_from",
            "valid_until",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            user = request.user
            operators = operators_for(user)
            self.fields["tariff"].queryset = Tariff.objects.filter(operator__in=operators)
            self.fields["site"].queryset = sites_for(user)
            self.fields["charge_point"].queryset = charge_points_for(user)
            self.fields["customer_group"].queryset = CustomerGroup.objects.filter(operator__in=operators)

    def validate(self, attrs):
        def current(name):
            return attrs[name] if name in attrs else getattr(self.instance, name, None)

        tariff = current("tariff")
        site, charge_point = current("site"), current("charge_point")
        group = current("customer_group")
        if "connector" in attrs:
            number = (attrs.pop("connector") or {}).get("connector_id")
        else:
            number = (
                self.instance.connector.connector_id if self.instance and self.instance.connector else None
            )
        connector = None
        if number is not None:
            if charge_point is None:
                raise serializers.ValidationError({"connector_number": ["Name the charge point too."]})
            connector = Connector.objects.filter(charge_point=charge_point, connector_id=number).first()
            if connector is None:
                raise serializers.ValidationError(
                    {"connector_number": [f"{charge_point.identity} has no connector {number}."]}
                )
        attrs["connector"] = connector
        operator_id = tariff.operator_id
        for name, obj in (("site", site), ("charge_point", charge_point), ("customer_group", group)):
            if obj is not None and obj.operator_id != operator_id:
                raise serializers.ValidationError({name: ["It belongs to another operator than the tariff."]})
        if site is not None and charge_point is not None and charge_point.site_id != site.pk:
            raise serializers.ValidationError({"charge_point": ["The charge point is not at this site."]})
        valid_from, valid_until = current("valid_from"), current("valid_until")
        if valid_from is not None and valid_until is not None and valid_until <= valid_from:
            raise serializers.ValidationError({"valid_until": ["It must be after valid_from."]})
        attrs["operator_id"] = operator_id
        return attrs


class TariffAssignmentFilter(django_filters.FilterSet):
    tariff = django_filters.ModelChoiceFilter(
        queryset=choices_for(lambda user: Tariff.objects.filter(operator__in=operators_for(user)))
    )
    site = django_filters.ModelChoiceFilter(queryset=choices_for(sites_for))
    customer_group = django_filters.ModelChoiceFilter(
        queryset=choices_for(lambda user: CustomerGroup.objects.filter(operator__in=operators_for(user)))
    )

    class Meta:
        model = TariffAssignment
        fields = ["tariff", "site", "customer_group"]


class TariffAssignmentViewSet(viewsets.ModelViewSet):
    """Where and to whom the operator's tariffs apply, and when. The most specific place wins
    (connector, charge point, site, the whole network); a customer group's over everyone's."""

    serializer_class = TariffAssignmentSerializer
    permission_classes = [IsOperatorStaff]
    filterset_class = TariffAssignmentFilter
    ordering_fields = ["id", "valid_from"]
    ordering = ["id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return TariffAssignment.objects.none()
        return TariffAssignment.objects.filter(operator__in=operators_for(self.request.user)).select_related(
            "tariff", "site", "charge_point", "connector", "customer_group"
        )
