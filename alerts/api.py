"""REST API v1 of alerts. For everyone signed in (the mobile app, by token): the notification
centre, alert settings, push subscriptions and favourite stations. For operator staff, scoped
to their operator: webhook endpoints, the delivery log and maintenance windows. Thin: the
writes are the services of ``alerts.services``."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import django_filters
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.models import (
    AlertProfile,
    Delivery,
    DeliveryStatus,
    Digest,
    MaintenanceWindow,
    Notification,
    PushKind,
    PushSubscription,
    WebhookEndpoint,
)
from alerts.services import preferences, webhooks
from stations import selectors
from stations.api import IDENTITY_REGEX, OperatorField
from stations.models import ChargePoint, Operator, User
from stations.permissions import IsOperatorStaff

ME_TAGS = ["alerts"]
OPERATOR_TAGS = ["operator alerts"]


def _one_of(values) -> str:
    return "One of: " + ", ".join(f"`{v}`" for v in values) + "."


def _fake(view) -> bool:
    """Schema generation runs the views without a signed-in user."""
    return getattr(view, "swagger_fake_view", False)


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


# --- Notification centre --------------------------------------------------------------------


class NotificationSerializer(serializers.ModelSerializer):
    charge_point = serializers.CharField(
        source="alert.charge_point.identity", read_only=True, allow_null=True, default=None
    )
    eta = serializers.DateTimeField(
        source="alert.eta", read_only=True, allow_null=True, help_text="When service is expected back."
    )
    is_read = serializers.SerializerMethodField()
    data = serializers.DictField(source="all_data", read_only=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "event_type",
            "title",
            "body",
            "url",
            "charge_point",
            "eta",
            "data",
            "created_at",
            "read_at",
            "is_read",
        ]
        read_only_fields = fields

    def get_is_read(self, notification: Notification) -> bool:
        return notification.read_at is not None


class NotificationFilter(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(
        method="filter_unread", label="true: only the unread ones; false: only the read ones."
    )

    class Meta:
        model = Notification
        fields = ["unread", "event_type"]

    def filter_unread(self, queryset, name, value):
        return queryset.filter(read_at__isnull=value)


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many notifications were marked read.")


@extend_schema(tags=ME_TAGS)
@extend_schema_view(
    list=extend_schema(summary="Your notifications, newest first"),
    retrieve=extend_schema(summary="One of your notifications"),
)
class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The in-app notification centre: what the signed-in user was told."""

    serializer_class = NotificationSerializer
    permission_classes = [IsAuthenticated]
    filterset_class = NotificationFilter
    search_fields: list[str] = []
    ordering_fields: list[str] = []

    def get_queryset(self) -> QuerySet[Notification]:
        if _fake(self):
            return Notification.objects.none()
        return (
            Notification.objects.filter(user=self.request.user)
            .select_related("alert__charge_point")
            .order_by("-created_at", "-pk")
        )

    @extend_schema(
        summary="Mark one notification read", request=None, responses={200: NotificationSerializer}
    )
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = self.get_object()
        preferences.mark_read(user=request.user, notification_ids=[notification.pk])
        return Response(self.get_serializer(self.get_queryset().get(pk=notification.pk)).data)

    @extend_schema(
        summary="Mark all your notifications read", request=None, responses={200: MarkedSerializer}
    )
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        return Response({"marked": preferences.mark_read(user=request.user)})


# --- Alert settings -------------------------------------------------------------------------


class RoundedDecimalField(serializers.DecimalField):
    """Rounds input to the stored places instead of refusing it: phones report coordinates to
    many more decimals than a metre needs."""

    def validate_precision(self, value: Decimal) -> Decimal:
        try:
            value = value.quantize(Decimal(1).scaleb(-self.decimal_places), rounding=ROUND_HALF_UP)
        except InvalidOperation:  # far too many digits to round at all
            self.fail("max_digits", max_digits=self.max_digits)
        return super().validate_precision(value)


class EventTypeSerializer(serializers.Serializer):
    key = serializers.CharField()
    audience = serializers.CharField(help_text="driver or operator.")
    label = serializers.CharField()
    description = serializers.CharField()
    default_channels = serializers.ListField(child=serializers.CharField())


CHANNELS_HELP = (
    "{event type: {channel: on or off}}. Channels: "
    + ", ".join(preferences.CHANNEL_VALUES)
    + ". Writing: pairs not named keep their setting."
)


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "description": CHANNELS_HELP,
    }
)
class PreferencesField(serializers.DictField):
    child = serializers.DictField(child=serializers.BooleanField())


class AlertSettingsSerializer(serializers.Serializer):
    quiet_hours_start = serializers.TimeField(
        allow_null=True, help_text="Local time quiet hours begin; null (with the end): none."
    )
    quiet_hours_end = serializers.TimeField(allow_null=True, help_text="Local time quiet hours end.")
    time_zone = serializers.CharField(max_length=64, help_text="IANA name, e.g. Europe/Amsterdam.")
    home_latitude = RoundedDecimalField(
        max_digits=9, decimal_places=6, allow_null=True, help_text="Home, WGS 84; null: none."
    )
    home_longitude = RoundedDecimalField(max_digits=9, decimal_places=6, allow_null=True)
    radius_km = RoundedDecimalField(
        max_digits=6,
        decimal_places=1,
        help_text=f"Stations this near home concern you; above 0, at most "
        f"{settings.CHARGEDESK_MAX_SEARCH_RADIUS_KM:g} km.",
    )
    digest = serializers.ChoiceField(
        choices=Digest.choices, help_text="Operators: email one by one or gathered."
    )
    max_per_hour = serializers.IntegerField(
        min_value=1, max_value=preferences.MAX_PER_HOUR_LIMIT, help_text="Operators: emails an hour at most."
    )
    preferences = PreferencesField()
    event_types = EventTypeSerializer(
        many=True, read_only=True, help_text="The event types you can choose among, with their defaults."
    )


def _settings_of(user: User) -> dict:
    profile: AlertProfile = preferences.profile_for(user)
    matrix = preferences.channel_matrix(user)
    return {
        **{name: getattr(profile, name) for name in preferences.PROFILE_FIELDS},
        "preferences": {row["event_type"].key: row["channels"] for row in matrix},
        "event_types": [
            {
                "key": e.key,
                "audience": e.audience,
                "label": e.label,
                "description": e.description,
                "default_channels": [c for c in preferences.CHANNEL_VALUES if c in e.default_channels],
            }
            for e in (row["event_type"] for row in matrix)
        ],
    }


@extend_schema(tags=ME_TAGS)
class AlertSettingsView(APIView):
    """The signed-in user's alert settings: quiet hours, home and radius, digest, and which
    channels each event type reaches."""

    permission_classes = [IsAuthenticated]
    serializer_class = AlertSettingsSerializer

    @extend_schema(summary="Your alert settings", responses={200: AlertSettingsSerializer})
    def get(self, request):
        return Response(AlertSettingsSerializer(_settings_of(request.user)).data)

    @extend_schema(
        summary="Replace your alert settings",
        request=AlertSettingsSerializer,
        responses={200: AlertSettingsSerializer, 400: OpenApiResponse(description="Invalid settings.")},
    )
    def put(self, request):
        return self._write(request, partial=False)

    @extend_schema(
        summary="Change some of your alert settings",
        request=AlertSettingsSerializer,
        responses={200: AlertSettingsSerializer, 400: OpenApiResponse(description="Invalid settings.")},
    )
    def patch(self, request):
        return self._write(request, partial=True)

    def _write(self, request, *, partial: bool) -> Response:
        data = AlertSettingsSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        choices = values.pop("preferences", None)
        with transaction.atomic():
            if values:
                preferences.update_profile(user=request.user, **values)
            if choices is not None:
                try:
                    preferences.set_preferences(user=request.user, choices=choices)
                except DjangoValidationError as error:
                    raise serializers.ValidationError({"preferences": error.messages}) from error
        return Response(AlertSettingsSerializer(_settings_of(request.user)).data)


# --- Push subscriptions ---------------------------------------------------------------------


class PushSubscriptionSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(read_only=True, help_text=_one_of(PushKind.values))
    endpoint = serializers.CharField(read_only=True, help_text="The push service URL, or the device token.")

    class Meta:
        model = PushSubscription
        fields = ["id", "kind", "endpoint", "platform", "user_agent", "created_at", "last_used_at"]
        read_only_fields = fields


class PushKeysSerializer(serializers.Serializer):
    p256dh = serializers.CharField(max_length=200)
    auth = serializers.CharField(max_length=100)


class PushSubscriptionCreateSerializer(serializers.Serializer):
    """A browser's ``PushSubscription.toJSON()`` with ``"kind": "web"``, or a mobile app's
    device token with ``"kind": "mobile"``."""

    kind = serializers.CharField(help_text=_one_of(PushKind.values))
    endpoint = serializers.CharField(required=False, help_text="Web: the push service URL.")
    keys = PushKeysSerializer(required=False, help_text="Web: the subscription's keys.")
    token = serializers.CharField(required=False, help_text="Mobile: the app's device token.")
    platform = serializers.CharField(
        required=False, help_text="Mobile: " + _one_of(preferences.MOBILE_PLATFORMS)
    )

    def validate(self, attrs):
        if attrs["kind"] == PushKind.WEB:
            missing = [name for name in ("endpoint", "keys") if not attrs.get(name)]
        elif attrs["kind"] == PushKind.MOBILE:
            missing = [name for name in ("token", "platform") if not attrs.get(name)]
        else:
            raise serializers.ValidationError({"kind": _one_of(PushKind.values)})
        if missing:
            raise serializers.ValidationError(dict.fromkeys(missing, "This field is required."))
        return attrs


class PushUnregisterSerializer(serializers.Serializer):
    endpoint = serializers.CharField(help_text="The push service URL, or the device token.")


class VapidKeySerializer(serializers.Serializer):
    public_key = serializers.CharField(
        help_text="applicationServerKey for pushManager.subscribe(), base64url."
    )


@extend_schema(tags=ME_TAGS)
@extend_schema_view(
    list=extend_schema(summary="Where alerts are pushed to you"),
    create=extend_schema(
        summary="Register a browser or a phone for push",
        description="Registering the same endpoint (or device token) again updates it.",
        request=PushSubscriptionCreateSerializer,
        responses={
            201: PushSubscriptionSerializer,
            400: OpenApiResponse(description="Invalid subscription."),
        },
    ),
    destroy=extend_schema(summary="Stop pushing to this browser or phone"),
)
class PushSubscriptionViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = PushSubscriptionSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["kind"]
    search_fields: list[str] = []
    ordering_fields: list[str] = []

    def get_queryset(self) -> QuerySet[PushSubscription]:
        if _fake(self):
            return PushSubscription.objects.none()
        return PushSubscription.objects.filter(user=self.request.user).order_by("-created_at", "-pk")

    def create(self, request, *args, **kwargs):
        data = PushSubscriptionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if values["kind"] == PushKind.WEB:
            subscription = preferences.register_push(
                user=request.user,
                kind=PushKind.WEB,
                endpoint=values["endpoint"],
                p256dh=values["keys"]["p256dh"],
                auth=values["keys"]["auth"],
                user_agent=request.headers.get("User-Agent", ""),
            )
        else:
            subscription = preferences.register_push(
                user=request.user,
                kind=PushKind.MOBILE,
                endpoint=values["token"],
                platform=values["platform"],
                user_agent=request.headers.get("User-Agent", ""),
            )
        return Response(PushSubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: PushSubscription) -> None:
        preferences.unregister_push(user=self.request.user, endpoint=instance.endpoint)

    @extend_schema(
        summary="Stop pushing to an endpoint (or device token) you know",
        description="For a browser, which knows its subscription's endpoint but not our id.",
        request=PushUnregisterSerializer,
        responses={204: None, 404: OpenApiResponse(DetailSerializer, description="Not registered.")},
    )
    @action(detail=False, methods=["post"])
    def unregister(self, request):
        data = PushUnregisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not preferences.unregister_push(user=request.user, endpoint=data.validated_data["endpoint"]):
            return Response({"detail": "Not registered."}, status=status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="The server's web push public key (VAPID)", responses={200: VapidKeySerializer})
    @action(detail=False, methods=["get"], url_path="vapid-key")
    def vapid_key(self, request):
        from alerts import vapid

        return Response({"public_key": vapid.keys()[1]})


# --- Favourite stations ---------------------------------------------------------------------


class FavouriteStationSerializer(serializers.ModelSerializer):
    site = serializers.IntegerField(source="site_id", read_only=True, allow_null=True)
    site_name = serializers.CharField(source="site.name", read_only=True, allow_null=True, default=None)
    address = serializers.CharField(source="site.address", read_only=True, allow_null=True, default=None)
    city = serializers.CharField(source="site.city", read_only=True, allow_null=True, default=None)
    latitude = serializers.DecimalField(
        source="site.latitude", max_digits=9, decimal_places=6, read_only=True, allow_null=True, default=None
    )
    longitude = serializers.DecimalField(
        source="site.longitude", max_digits=9, decimal_places=6, read_only=True, allow_null=True, default=None
    )
    operator = serializers.CharField(source="operator.name", read_only=True)

    class Meta:
        model = ChargePoint
        fields = [
            "identity",
            "name",
            "operator",
            "site",
            "site_name",
            "address",
            "city",
            "latitude",
            "longitude",
            "is_connected",
        ]
        read_only_fields = fields


class FavouriteCreateSerializer(serializers.Serializer):
    charge_point = serializers.CharField(max_length=48, help_text="The charge point's identity.")


@extend_schema(tags=ME_TAGS)
@extend_schema_view(
    list=extend_schema(summary="Stations you follow"),
    create=extend_schema(
        summary="Follow a station: hear when it goes out of service and comes back",
        request=FavouriteCreateSerializer,
        responses={
            201: FavouriteStationSerializer,
            400: OpenApiResponse(description="No such public station."),
        },
    ),
    destroy=extend_schema(summary="Stop following a station"),
)
class FavouriteStationViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = FavouriteStationSerializer
    permission_classes = [IsAuthenticated]
    lookup_field = "identity"
    lookup_value_regex = IDENTITY_REGEX
    search_fields: list[str] = []
    ordering_fields: list[str] = []
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[ChargePoint]:
        if _fake(self):
            return ChargePoint.objects.none()
        # Read through the link table: looking at one's favourites creates no profile.
        followed = AlertProfile.favourites.through.objects.filter(alertprofile__user=self.request.user)
        return (
            ChargePoint.objects.filter(pk__in=followed.values("chargepoint_id"))
            .select_related("site", "operator")
            .order_by("identity")
        )

    def create(self, request, *args, **kwargs):
        data = FavouriteCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        identity = data.validated_data["charge_point"]
        # One answer for a charge point that does not exist and one the caller may not follow
        # (not public, another operator's): which identities exist elsewhere stays unknown.
        charge_point = (
            selectors.findable_charge_points(request.user)
            .select_related("site", "operator")
            .filter(identity=identity)
            .first()
        )
        if charge_point is None:
            raise serializers.ValidationError(
                {"charge_point": f"There is no public charge point “{identity}”."}
            )
        preferences.add_favourite(user=request.user, charge_point=charge_point)
        return Response(FavouriteStationSerializer(charge_point).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ChargePoint) -> None:
        preferences.remove_favourite(user=self.request.user, charge_point=instance)


# --- Operator: webhook endpoints ------------------------------------------------------------


def _operators_of(request) -> QuerySet[Operator]:
    return selectors.operators_for(request.user)


def _operator_for_create(request, named: Operator | None) -> Operator:
    """Staff create for their own operator; a superuser names one (or has one)."""
    user = request.user
    if user.is_superuser:
        operator = named or user.operator
        if operator is None:
            raise serializers.ValidationError({"operator": "Name the operator (its slug)."})
        return operator
    return user.operator


class WebhookEndpointSerializer(serializers.ModelSerializer):
    operator = OperatorField(
        help_text="The operator (slug); only a superuser chooses, staff always get their own."
    )
    url = serializers.CharField(max_length=500, help_text="Where alerts are POSTed; https.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=40),
        required=False,
        help_text="Empty: every event type. Otherwise among: " + ", ".join(webhooks.operator_event_types()),
    )
    created_by = serializers.EmailField(
        source="created_by.email", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "operator",
            "url",
            "description",
            "event_types",
            "is_active",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "last_success_at",
            "created_by",
            "created_at",
        ]
        read_only_fields = [
            "is_active",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "last_success_at",
            "created_at",
        ]

    def create(self, validated_data):
        request = self.context["request"]
        return webhooks.create_endpoint(
            operator=_operator_for_create(request, validated_data.get("operator")),
            url=validated_data["url"],
            description=validated_data.get("description", ""),
            event_types=validated_data.get("event_types", ()),
            by=request.user,
        )

    def update(self, instance, validated_data):
        validated_data.pop("operator", None)
        return webhooks.update_endpoint(endpoint=instance, **validated_data)


class WebhookEndpointSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="Signs each POST (HMAC-SHA256); shown only now, keep it safe."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="Whether the receiver answered 2xx.")
    detail = serializers.CharField(help_text="What happened: the status code, or the error.")


class WebhookDisableSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


@extend_schema(tags=OPERATOR_TAGS)
@extend_schema_view(
    list=extend_schema(summary="The operator's webhook endpoints"),
    retrieve=extend_schema(summary="A webhook endpoint"),
    create=extend_schema(
        summary="Add a webhook endpoint",
        description="The response carries the signing secret, shown only now (and on rotation).",
        responses={201: WebhookEndpointSecretSerializer, 400: OpenApiResponse(description="Invalid input.")},
    ),
    update=extend_schema(summary="Change a webhook endpoint"),
    partial_update=extend_schema(summary="Change some of a webhook endpoint"),
    destroy=extend_schema(summary="Delete a webhook endpoint and its delivery log"),
)
class WebhookEndpointViewSet(viewsets.ModelViewSet):
    """Technicians read; operator admins add, change, test and delete."""

    serializer_class = WebhookEndpointSerializer
    permission_classes = [IsOperatorStaff]
    filterset_fields = ["is_active"]
    search_fields = ["url", "description"]
    ordering_fields = ["created_at", "url"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        return WebhookEndpoint.objects.filter(operator__in=_operators_of(self.request)).select_related(
            "operator", "created_by"
        )

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = serializer.save()
        return Response(WebhookEndpointSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: WebhookEndpoint) -> None:
        webhooks.delete_endpoint(endpoint=instance)

    @extend_schema(
        summary="Send a signed ping now",
        description="POSTs a `ping` event signed like every alert and says how the receiver answered.",
        request=None,
        responses={200: WebhookTestSerializer},
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        ok, detail = webhooks.test_endpoint(endpoint=self.get_object())
        return Response({"ok": ok, "detail": detail})

    @extend_schema(
        summary="Switch on again, failures counted afresh",
        request=None,
        responses={200: WebhookEndpointSerializer},
    )
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        endpoint = webhooks.enable_endpoint(endpoint=self.get_object())
        return Response(self.get_serializer(endpoint).data)

    @extend_schema(
        summary="Stop POSTing alerts there",
        request=WebhookDisableSerializer,
        responses={200: WebhookEndpointSerializer},
    )
    @action(detail=True, methods=["post"])
    def disable(self, request, pk=None):
        endpoint = self.get_object()
        data = WebhookDisableSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reason = data.validated_data["reason"] or f"Disabled by {request.user.email}."
        endpoint = webhooks.disable_endpoint(endpoint=endpoint, reason=reason)
        return Response(self.get_serializer(endpoint).data)

    @extend_schema(
        summary="A new signing secret",
        description="Effective at once: the old secret stops verifying. The response is the only place "
        "the new secret is shown.",
        request=None,
        responses={200: WebhookEndpointSecretSerializer},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        endpoint = self.get_object()
        webhooks.rotate_secret(endpoint=endpoint)
        return Response(WebhookEndpointSecretSerializer(endpoint).data)


# --- Operator: delivery log -----------------------------------------------------------------


class DeliverySerializer(serializers.ModelSerializer):
    event_type = serializers.CharField(source="alert.event_type", read_only=True)
    title = serializers.CharField(source="alert.title", read_only=True)
    channel = serializers.CharField(
        read_only=True, help_text=_one_of(c for c, _ in Delivery._meta.get_field("channel").choices)
    )
    status = serializers.CharField(read_only=True, help_text=_one_of(DeliveryStatus.values))
    endpoint = serializers.IntegerField(source="endpoint_id", read_only=True, allow_null=True)
    recipient = serializers.EmailField(source="user.email", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "alert",
            "event_type",
            "title",
            "channel",
            "status",
            "endpoint",
            "recipient",
            "target",
            "attempts",
            "last_error",
            "next_attempt_at",
            "sent_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DeliveryFilter(django_filters.FilterSet):
    status = django_filters.CharFilter(help_text=_one_of(DeliveryStatus.values))
    channel = django_filters.CharFilter()
    event_type = django_filters.CharFilter(field_name="alert__event_type")
    endpoint = django_filters.NumberFilter(field_name="endpoint_id")

    class Meta:
        model = Delivery
        fields = ["status", "channel", "event_type", "endpoint"]


@extend_schema(tags=OPERATOR_TAGS)
@extend_schema_view(
    list=extend_schema(summary="The operator's delivery log, newest first"),
    retrieve=extend_schema(summary="One delivery with its attempts and last error"),
)
class DeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    """Every attempt to tell someone (or POST a webhook) about the operator's alerts."""

    serializer_class = DeliverySerializer
    permission_classes = [IsOperatorStaff]
    filterset_class = DeliveryFilter
    search_fields = ["target", "alert__title"]
    ordering_fields = ["created_at", "updated_at"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self) -> QuerySet[Delivery]:
        return Delivery.objects.filter(operator__in=_operators_of(self.request)).select_related(
            "alert", "user", "endpoint"
        )

    @extend_schema(
        summary="Try a delivery again now",
        request=None,
        responses={200: DeliverySerializer, 400: OpenApiResponse(description="Not a delivery to retry.")},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        from alerts.delivery import retry_now
        from alerts.tasks import deliver

        delivery = self.get_object()
        if not retry_now(delivery.pk):
            raise serializers.ValidationError(
                {
                    "non_field_errors": [
                        "Only a failed delivery can be retried (to a disabled endpoint: enable it first)."
                    ]
                }
            )
        deliver.delay([delivery.pk])
        return Response(self.get_serializer(self.get_queryset().get(pk=delivery.pk)).data)


# --- Operator: maintenance windows ----------------------------------------------------------


class MaintenanceWindowSerializer(serializers.ModelSerializer):
    operator = serializers.CharField(source="operator.slug", read_only=True)
    site = serializers.IntegerField(source="site_id", read_only=True, allow_null=True)
    site_name = serializers.CharField(source="site.name", read_only=True, allow_null=True, default=None)
    charge_point = serializers.CharField(
        source="charge_point.identity", read_only=True, allow_null=True, default=None
    )
    state = serializers.SerializerMethodField(help_text="draft, published or cancelled.")
    created_by = serializers.EmailField(
        source="created_by.email", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = MaintenanceWindow
        fields = [
            "id",
            "operator",
            "site",
            "site_name",
            "charge_point",
            "starts_at",
            "ends_at",
            "reason",
            "state",
            "published_at",
            "cancelled_at",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_state(self, window: MaintenanceWindow) -> str:
        if window.cancelled_at:
            return "cancelled"
        return "published" if window.published_at else "draft"


class MaintenanceWindowCreateSerializer(serializers.Serializer):
    charge_point = serializers.CharField(
        max_length=48, required=False, help_text="The charge point's identity (or give the site)."
    )
    site = serializers.IntegerField(
        required=False, help_text="A whole site, by id (or give the charge point)."
    )
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if bool(attrs.get("charge_point")) == (attrs.get("site") is not None):
            raise serializers.ValidationError(
                {"charge_point": "Name the charge point or the site (one of them)."}
            )
        if attrs["ends_at"] <= attrs["starts_at"]:
            raise serializers.ValidationError({"ends_at": "The work ends after it starts."})
        return attrs


class PublishResultSerializer(serializers.Serializer):
    drivers_told = serializers.IntegerField(help_text="How many drivers were told of the work.")
    window = MaintenanceWindowSerializer()


@extend_schema(tags=OPERATOR_TAGS)
@extend_schema_view(
    list=extend_schema(summary="Planned maintenance on the operator's network"),
    retrieve=extend_schema(summary="A maintenance window"),
    create=extend_schema(
        summary="Plan maintenance on a charge point or a site (a draft: publish it next)",
        request=MaintenanceWindowCreateSerializer,
        responses={201: MaintenanceWindowSerializer, 400: OpenApiResponse(description="Invalid input.")},
    ),
    destroy=extend_schema(summary="Cancel a maintenance window"),
)
class MaintenanceWindowViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = MaintenanceWindowSerializer
    permission_classes = [IsOperatorStaff]
    search_fields = ["reason", "charge_point__identity", "site__name"]
    ordering_fields = ["starts_at", "created_at"]
    ordering = ["-starts_at", "-id"]

    def get_queryset(self) -> QuerySet[MaintenanceWindow]:
        return MaintenanceWindow.objects.filter(operator__in=_operators_of(self.request)).select_related(
            "operator", "site", "charge_point", "created_by"
        )

    def create(self, request, *args, **kwargs):
        from alerts.services import maintenance

        data = MaintenanceWindowCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        user = request.user
        charge_point = site = None
        if values.get("charge_point"):
            charge_point = selectors.charge_points_for(user).filter(identity=values["charge_point"]).first()
            if charge_point is None:
                raise serializers.ValidationError({"charge_point": "No such charge point of yours."})
        if values.get("site") is not None:
            site = selectors.sites_for(user).filter(pk=values["site"]).first()
            if site is None:
                raise serializers.ValidationError({"site": "No such site of yours."})
        operator = (charge_point or site).operator if user.is_superuser else user.operator
        window = maintenance.create_window(
            operator=operator,
            charge_point=charge_point,
            site=site,
            starts_at=values["starts_at"],
            ends_at=values["ends_at"],
            reason=values["reason"],
            by=user,
        )
        window = self.get_queryset().get(pk=window.pk)
        return Response(self.get_serializer(window).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: MaintenanceWindow) -> None:
        from alerts.services import maintenance

        maintenance.cancel_window(window=instance, by=self.request.user)

    @extend_schema(
        summary="Publish: tell the drivers who use the stations",
        request=None,
        responses={200: PublishResultSerializer, 400: OpenApiResponse(description="Cancelled or over.")},
    )
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        from alerts.services import maintenance

        window = self.get_object()
        told = maintenance.publish_window(window=window, by=request.user)
        window = self.get_queryset().get(pk=window.pk)
        return Response({"drivers_told": told, "window": self.get_serializer(window).data})
