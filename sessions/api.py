"""REST API v1 for drivers: their profile, their ID tokens and their charging sessions."""

from decimal import Decimal

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.decorators import action
from rest_framework.generics import RetrieveUpdateAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from stations.models import ChargePoint, RegistrationStatus, User
from stations.permissions import IsDriver

from . import charging, selectors
from .charging import Reason
from .models import IdToken, Transaction


class MeSerializer(serializers.ModelSerializer):
    operator = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "first_name", "last_name", "phone", "role", "operator"]
        read_only_fields = ["id", "email", "role", "operator"]


class MeView(RetrieveUpdateAPIView):
    """The signed-in user's own profile."""

    serializer_class = MeSerializer
    permission_classes = [IsAuthenticated]

    def get_object(self):
        return self.request.user


class IdTokenSerializer(serializers.ModelSerializer):
    status = serializers.CharField(source="effective_status", read_only=True)

    class Meta:
        model = IdToken
        fields = ["id", "token", "type", "label", "status", "expires_at", "created_at"]
        read_only_fields = ["id", "token", "type", "status", "expires_at", "created_at"]


class IdTokenViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    """A driver's own RFID cards and app tokens; the driver may rename them."""

    serializer_class = IdTokenSerializer
    permission_classes = [IsDriver]
    http_method_names = ["get", "patch", "head", "options"]
    filterset_fields = ["type", "status"]
    search_fields = ["token", "label"]
    ordering_fields = ["token", "created_at"]
    ordering = ["token"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return IdToken.objects.none()
        return IdToken.objects.filter(driver=self.request.user)


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()


class AuthTokenView(APIView):
    """An API token for an app: post email and password; delete to sign the app out."""

    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenResponseSerializer})
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request, email=data.validated_data["email"], password=data.validated_data["password"]
        )
        if user is None or not user.is_active:
            raise serializers.ValidationError({"non_field_errors": ["Wrong email or password."]})
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        if not request.user.is_authenticated:
            return Response({"detail": "Not signed in."}, status=status.HTTP_401_UNAUTHORIZED)
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Charging sessions ----------------------------------------------------------------------


class SessionSerializer(serializers.ModelSerializer):
    """A driver's charging session. ``id`` is also the OCPP transaction id."""

    transaction_id = serializers.IntegerField(
        source="pk", read_only=True, help_text="The OCPP transactionId."
    )
    charge_point = serializers.CharField(source="charge_point.identity", read_only=True)
    site = serializers.CharField(source="charge_point.site.name", read_only=True, allow_null=True)
    connector_id = serializers.IntegerField(source="connector_number", read_only=True)
    id_token = serializers.CharField(source="id_tag", read_only=True, help_text="The idTag it runs on.")
    # A plain string in the schema: a second enum named "status" would rename the connector
    # status enum clients know (drf-spectacular names enums by field name).
    status = serializers.CharField(read_only=True, help_text="active or completed.")
    energy_kwh = serializers.DecimalField(
        max_digits=18,
        decimal_places=3,
        read_only=True,
        allow_null=True,
        help_text="Energy charged so far (running) or in all (stopped), kWh.",
    )
    duration_s = serializers.SerializerMethodField(help_text="Seconds from start to stop, or to now.")
    power_kw = serializers.SerializerMethodField(help_text="Current charging power while active, kW.")

    class Meta:
        model = Transaction
        fields = [
            "id",
            "transaction_id",
            "charge_point",
            "site",
            "connector_id",
            "id_token",
            "status",
            "started_at",
            "stopped_at",
            "stop_reason",
            "energy_kwh",
            "duration_s",
            "power_kw",
            "last_meter_at",
        ]
        read_only_fields = fields

    def get_duration_s(self, transaction: Transaction) -> int:
        return max(0, int(transaction.duration.total_seconds()))

    @extend_schema_field(serializers.DecimalField(max_digits=18, decimal_places=3, allow_null=True))
    def get_power_kw(self, transaction: Transaction) -> str | None:
        if not transaction.is_active or transaction.last_power_w is None:
            return None
        return str((transaction.last_power_w / 1000).quantize(Decimal("0.001")))


class StartSessionSerializer(serializers.Serializer):
    charge_point = serializers.CharField(max_length=48, help_text="The charge point's identity.")
    connector_id = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    id_token = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Id of one of your ID tokens; default: your first accepted app token (else card).",
    )

    def validate_charge_point(self, value: str) -> ChargePoint:
        charge_point = ChargePoint.objects.filter(
            identity=value, registration_status=RegistrationStatus.ACCEPTED
        ).first()
        if charge_point is None:
            raise serializers.ValidationError(f"There is no charge point “{value}”.")
        return charge_point


class SessionErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Why, for people.")
    code = serializers.ChoiceField(
        choices=[
            Reason.OFFLINE,
            Reason.REJECTED,
            Reason.ERROR,
            Reason.TIMEOUT,
            Reason.NO_SESSION,
            Reason.NOT_STOPPED,
            Reason.CONNECTOR_UNKNOWN,
            Reason.CONNECTOR_BUSY,
            Reason.CONNECTOR_FAULTED,
            Reason.CONNECTOR_UNAVAILABLE,
            Reason.CONNECTOR_RESERVED,
            Reason.TOKEN_NOT_ACCEPTED,
            Reason.TOKEN_IN_USE,
            Reason.NO_TOKEN,
            Reason.NOT_ACTIVE,
            Reason.PAYMENT_REQUIRED,
        ],
        help_text="Why, for programs.",
    )


# What each reason a start or stop failed is, in HTTP.
REASON_STATUS = {
    Reason.TOKEN_NOT_ACCEPTED: status.HTTP_400_BAD_REQUEST,
    Reason.NO_TOKEN: status.HTTP_400_BAD_REQUEST,
    Reason.CONNECTOR_UNKNOWN: status.HTTP_400_BAD_REQUEST,
    Reason.CONNECTOR_BUSY: status.HTTP_409_CONFLICT,
    Reason.CONNECTOR_FAULTED: status.HTTP_409_CONFLICT,
    Reason.CONNECTOR_UNAVAILABLE: status.HTTP_409_CONFLICT,
    Reason.CONNECTOR_RESERVED: status.HTTP_409_CONFLICT,
    Reason.TOKEN_IN_USE: status.HTTP_409_CONFLICT,
    Reason.REJECTED: status.HTTP_409_CONFLICT,
    Reason.NOT_ACTIVE: status.HTTP_409_CONFLICT,
    Reason.NOT_YOURS: status.HTTP_404_NOT_FOUND,
    Reason.PAYMENT_REQUIRED: status.HTTP_402_PAYMENT_REQUIRED,
    Reason.OFFLINE: status.HTTP_503_SERVICE_UNAVAILABLE,
    Reason.TIMEOUT: status.HTTP_503_SERVICE_UNAVAILABLE,
    Reason.NO_SESSION: status.HTTP_503_SERVICE_UNAVAILABLE,
    Reason.ERROR: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def _failure(code: str, reason: str) -> Response:
    return Response(
        {"detail": reason, "code": code}, status=REASON_STATUS.get(code, status.HTTP_503_SERVICE_UNAVAILABLE)
    )


SESSION_ERRORS = {
    400: OpenApiResponse(SessionErrorSerializer, description="Token not accepted, or an invalid field."),
    402: OpenApiResponse(
        SessionErrorSerializer, description="A payment is owed, or no way to pay where charging costs."
    ),
    409: OpenApiResponse(SessionErrorSerializer, description="The connector or token is busy, or refused."),
    503: OpenApiResponse(SessionErrorSerializer, description="Offline, no answer, or no session in time."),
}


@extend_schema_view(
    list=extend_schema(summary="Your charging sessions, newest first"),
    retrieve=extend_schema(summary="One of your charging sessions"),
)
class SessionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A driver's charging sessions; start one at a charger and stop it from the app."""

    serializer_class = SessionSerializer
    permission_classes = [IsDriver]
    filterset_fields = ["status"]
    ordering_fields: list[str] = []
    search_fields: list[str] = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Transaction.objects.none()
        return selectors.transactions_for_driver(self.request.user)

    @extend_schema(
        summary="Start charging",
        description="Asks the charger to start a session on the connector with your ID token and "
        "waits until it has (about a minute at most). 201 with the session; otherwise the reason.",
        request=StartSessionSerializer,
        responses={201: SessionSerializer, **SESSION_ERRORS},
    )
    def create(self, request, *args, **kwargs):
        data = StartSessionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = charging.driver_token(request.user, data.validated_data.get("id_token"))
        if token is None:
            if data.validated_data.get("id_token") is not None:
                raise serializers.ValidationError({"id_token": ["You have no such ID token."]})
            return _failure(*charging.no_token_reason(request.user))
        outcome = charging.remote_start(
            charge_point=data.validated_data["charge_point"],
            connector_id=data.validated_data["connector_id"],
            id_tag=token,
            requested_by=request.user,
        )
        if not outcome.ok:
            return _failure(outcome.code, outcome.reason)
        return Response(self.get_serializer(outcome.transaction).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Stop charging",
        description="Asks the charger to stop the session and waits until it has: 200 with the "
        "stopped session. 202 with the session still active: the charger accepted the stop but "
        "has not reported it yet.",
        request=None,
        responses={200: SessionSerializer, 202: SessionSerializer, **SESSION_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        transaction = self.get_object()
        outcome = charging.remote_stop(transaction=transaction, requested_by=request.user)
        if outcome.ok:
            return Response(self.get_serializer(outcome.transaction).data)
        if outcome.code == Reason.NOT_STOPPED:
            return Response(self.get_serializer(outcome.transaction).data, status=status.HTTP_202_ACCEPTED)
        return _failure(outcome.code, outcome.reason)
