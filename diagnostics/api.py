"""REST API v1 of diagnostics work: incidents, tickets, diagnostics log uploads and firmware
campaigns, for operator staff, scoped to their operator. Thin: the writes are services."""

from __future__ import annotations

import django_filters
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api import choices_for
from diagnostics.models import (
    Finding,
    FirmwareCampaign,
    FirmwareCampaignTarget,
    Incident,
    LogUpload,
    Severity,
    Ticket,
    TicketStatus,
)
from diagnostics.services import firmware, tickets, uploads
from stations import selectors
from stations.api import IsOperatorStaffMember
from stations.models import User
from stations.permissions import IsOperatorStaff

TAGS = ["operator diagnostics"]


def _drf_error(error: DjangoValidationError) -> serializers.ValidationError:
    if hasattr(error, "message_dict"):
        return serializers.ValidationError(error.message_dict)
    return serializers.ValidationError({"non_field_errors": error.messages})


def _choices_help(choices) -> str:
    return "One of: " + ", ".join(f"`{value}`" for value, _ in choices) + "."


# Choice fields are plain strings in the schema: drf-spectacular names enums after the field,
# and a second "status" enum would rename the ones clients already know.
def _choice(choices, **kwargs) -> serializers.CharField:
    return serializers.CharField(help_text=_choices_help(choices), **kwargs)


# --- Incidents -----------------------------------------------------------------------------


class FindingSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(read_only=True)
    cause = serializers.CharField(read_only=True)
    severity = serializers.CharField(read_only=True)
    evidence = serializers.DictField(read_only=True)

    class Meta:
        model = Finding
        fields = ["id", "kind", "cause", "severity", "summary", "evidence", "detected_at"]
        read_only_fields = fields


class IncidentSerializer(serializers.ModelSerializer):
    charge_point = serializers.CharField(source="charge_point.identity", read_only=True, allow_null=True)
    connector = serializers.IntegerField(source="connector.connector_id", read_only=True, allow_null=True)
    site = serializers.IntegerField(source="site_id", read_only=True, allow_null=True)
    kind = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True, help_text="open or resolved.")
    cause = serializers.CharField(read_only=True)
    severity = serializers.CharField(read_only=True, help_text="info, warning, major or critical.")
    evidence = serializers.DictField(read_only=True)

    class Meta:
        model = Incident
        fields = [
            "id",
            "site",
            "charge_point",
            "connector",
            "kind",
            "status",
            "cause",
            "severity",
            "title",
            "evidence",
            "opened_at",
            "last_seen_at",
            "resolved_at",
            "resolution",
            "expected_back_at",
        ]
        read_only_fields = fields


class IncidentDetailSerializer(IncidentSerializer):
    findings = FindingSerializer(many=True, read_only=True)

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "findings"]
        read_only_fields = fields


class IncidentFilter(django_filters.FilterSet):
    site = django_filters.ModelChoiceFilter(queryset=choices_for(selectors.sites_for))

    class Meta:
        model = Incident
        fields = ["status", "kind", "site", "severity", "cause"]


@extend_schema(tags=TAGS)
@extend_schema_view(
    list=extend_schema(summary="The operator's incidents, newest first"),
    retrieve=extend_schema(summary="An incident with its findings"),
)
class IncidentViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsOperatorStaff]
    filterset_class = IncidentFilter
    search_fields = ["title", "charge_point__identity"]
    ordering_fields = ["opened_at", "last_seen_at"]
    ordering = ["-opened_at"]

    def get_serializer_class(self):
        return IncidentDetailSerializer if self.action == "retrieve" else IncidentSerializer

    def get_queryset(self):
        qs = tickets.incidents_for(self.request.user)
        if self.action == "retrieve":
            qs = qs.prefetch_related(
                Prefetch("findings", queryset=Finding.objects.order_by("-detected_at", "-id"))
            )
        return qs


# --- Tickets -------------------------------------------------------------------------------


class TicketSerializer(serializers.ModelSerializer):
    charge_point = serializers.CharField(source="charge_point.identity", read_only=True, allow_null=True)
    incident = serializers.IntegerField(source="incident_id", read_only=True, allow_null=True)
    status = serializers.CharField(read_only=True, help_text=_choices_help(TicketStatus.choices))
    priority = serializers.CharField(read_only=True, help_text=_choices_help(Severity.choices))
    assignee = serializers.EmailField(source="assignee.email", read_only=True, allow_null=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True, allow_null=True)
    tools = serializers.ListField(child=serializers.CharField(), read_only=True)
    spare_parts = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Ticket
        fields = [
            "id",
            "incident",
            "charge_point",
            "title",
            "description",
            "status",
            "priority",
            "assignee",
            "created_by",
            "tools",
            "spare_parts",
            "resolution_notes",
            "created_at",
            "assigned_at",
            "resolved_at",
            "updated_at",
        ]
        read_only_fields = fields


class TicketCreateSerializer(serializers.Serializer):
    """From an incident (``incident`` alone), or by hand (``title`` and the rest)."""

    incident = serializers.IntegerField(required=False, help_text="Make the ticket from this incident.")
    title = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    priority = _choice(Severity.choices, required=False, default=Severity.MAJOR)
    charge_point = serializers.CharField(required=False, help_text="The charge point's identity.")
    tools = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list)
    spare_parts = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list
    )

    def validate(self, attrs):
        if "incident" not in attrs and not attrs.get("title"):
            raise serializers.ValidationError({"title": "Give a title, or name the incident."})
        return attrs


class TicketAssignSerializer(serializers.Serializer):
    assignee = serializers.IntegerField(help_text="The user id of a technician of the ticket's operator.")


class TicketStatusSerializer(serializers.Serializer):
    status = _choice(TicketStatus.choices)
    resolution_notes = serializers.CharField(required=False, allow_blank=True)


def _staff_of(user: User):
    return User.objects.filter(operator__in=selectors.operators_for(user))


class TicketFilter(django_filters.FilterSet):
    incident = django_filters.ModelChoiceFilter(queryset=choices_for(tickets.incidents_for))
    assignee = django_filters.ModelChoiceFilter(queryset=choices_for(_staff_of))

    class Meta:
        model = Ticket
        fields = ["status", "priority", "incident", "assignee"]


@extend_schema(tags=TAGS)
@extend_schema_view(
    list=extend_schema(summary="The operator's tickets, newest first"),
    retrieve=extend_schema(summary="A ticket"),
    create=extend_schema(
        summary="Create a ticket from an incident, or by hand",
        request=TicketCreateSerializer,
        responses={201: TicketSerializer, 400: OpenApiResponse(description="Invalid input.")},
    ),
)
class TicketViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Technicians read and move their own tickets on; operator admins create and assign."""

    serializer_class = TicketSerializer
    filterset_class = TicketFilter
    search_fields = ["title", "charge_point__identity"]
    ordering_fields = ["created_at", "updated_at"]
    ordering = ["-created_at"]

    def get_permissions(self):
        if self.action == "set_status":
            return [IsOperatorStaffMember()]
        return [IsOperatorStaff()]

    def get_queryset(self):
        return tickets.tickets_for(self.request.user)

    def create(self, request, *args, **kwargs):
        data = TicketCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        user = request.user
        try:
            if "incident" in values:
                incident = tickets.incidents_for(user).filter(pk=values["incident"]).first()
                if incident is None:
                    raise serializers.ValidationError({"incident": "No such incident of yours."})
                ticket = tickets.ticket_create_from_incident(incident=incident, created_by=user)
            else:
                charge_point = None
                if values.get("charge_point"):
                    charge_point = (
                        selectors.charge_points_for(user).filter(identity=values["charge_point"]).first()
                    )
                    if charge_point is None:
                        raise serializers.ValidationError({"charge_point": "No such charge point of yours."})
                operator = user.operator or (charge_point.operator if charge_point else None)
                if operator is None:
                    raise serializers.ValidationError({"charge_point": "Name the charge point."})
                ticket = tickets.ticket_create(
                    operator=operator,
                    title=values["title"],
                    description=values["description"],
                    priority=values["priority"],
                    charge_point=charge_point,
                    tools=values["tools"],
                    spare_parts=values["spare_parts"],
                    created_by=user,
                )
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        ticket = self.get_queryset().get(pk=ticket.pk)
        return Response(TicketSerializer(ticket).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Assign a technician",
        request=TicketAssignSerializer,
        responses={200: TicketSerializer, 400: OpenApiResponse(description="Not a technician of yours.")},
    )
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        ticket = self.get_object()
        data = TicketAssignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignee = User.objects.filter(pk=data.validated_data["assignee"]).first()
        if assignee is None:
            # As the service words it for someone else's staff: an unknown id must look the same.
            raise serializers.ValidationError(
                {"assignee": ["Assign a technician of this ticket's operator."]}
            )
        try:
            ticket = tickets.ticket_assign(ticket=ticket, assignee=assignee, by=request.user)
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return Response(TicketSerializer(self.get_queryset().get(pk=ticket.pk)).data)

    @extend_schema(
        summary="Move a ticket on (in progress, resolved with notes, cancelled)",
        request=TicketStatusSerializer,
        responses={200: TicketSerializer, 400: OpenApiResponse(description="Not a transition it can make.")},
    )
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request, pk=None):
        ticket = self.get_object()
        data = TicketStatusSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            ticket = tickets.ticket_set_status(
                ticket=ticket,
                status=data.validated_data["status"],
                resolution_notes=data.validated_data.get("resolution_notes"),
                by=request.user,
            )
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return Response(TicketSerializer(self.get_queryset().get(pk=ticket.pk)).data)


# --- Diagnostics log uploads -----------------------------------------------------------------


class LogUploadSerializer(serializers.ModelSerializer):
    charge_point = serializers.CharField(source="charge_point.identity", read_only=True)
    requested_by = serializers.EmailField(source="requested_by.email", read_only=True, allow_null=True)
    status = serializers.SerializerMethodField(help_text="requested, received, failed or expired.")
    command = serializers.UUIDField(source="command_id", read_only=True, allow_null=True)
    download_url = serializers.SerializerMethodField(help_text="Where to fetch the file (signed-in staff).")

    class Meta:
        model = LogUpload
        fields = [
            "id",
            "charge_point",
            "status",
            "filename",
            "size",
            "max_bytes",
            "requested_by",
            "command",
            "requested_at",
            "expires_at",
            "received_at",
            "download_url",
        ]
        read_only_fields = fields

    def get_status(self, upload: LogUpload) -> str:
        return uploads.display_status(upload)

    def get_download_url(self, upload: LogUpload) -> str | None:
        if not upload.file:
            return None
        path = reverse("diagnostics:upload-download", kwargs={"pk": upload.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class LogUploadRequestSerializer(serializers.Serializer):
    charge_point = serializers.CharField(help_text="The charge point's identity.")
    start_time = serializers.DateTimeField(required=False, help_text="Logs from this time on.")
    stop_time = serializers.DateTimeField(required=False, help_text="Logs up to this time.")


@extend_schema(tags=TAGS)
@extend_schema_view(
    list=extend_schema(
        summary="Diagnostics files requested from the operator's chargers",
        parameters=[
            OpenApiParameter(
                "charge_point",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                description="Only this charge point's.",
            )
        ],
    ),
    retrieve=extend_schema(summary="A diagnostics request with its file's details"),
    create=extend_schema(
        summary="Ask a charger for its diagnostics file (GetDiagnostics)",
        description="Records the request with a single-use upload link and sends GetDiagnostics; "
        "waits for the charger's answer. `status` is `failed` when the charger did not take it.",
        request=LogUploadRequestSerializer,
        responses={201: LogUploadSerializer, 400: OpenApiResponse(description="Invalid input.")},
    ),
)
class LogUploadViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    serializer_class = LogUploadSerializer
    permission_classes = [IsOperatorStaffMember]
    filterset_fields = ["status"]
    search_fields = ["charge_point__identity", "filename"]
    ordering_fields = ["requested_at"]
    ordering = ["-requested_at"]

    def get_queryset(self):
        qs = uploads.uploads_for(self.request.user)
        identity = self.request.query_params.get("charge_point")
        if identity:
            qs = qs.filter(charge_point__identity=identity)
        return qs

    def create(self, request, *args, **kwargs):
        data = LogUploadRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        charge_point = (
            selectors.charge_points_for(request.user).filter(identity=values["charge_point"]).first()
        )
        if charge_point is None:
            raise serializers.ValidationError({"charge_point": "No such charge point of yours."})
        try:
            upload = uploads.upload_request(
                charge_point=charge_point,
                base_url=settings.SITE_URL or request.build_absolute_uri("/"),
                requested_by=request.user,
                start_time=values.get("start_time"),
                stop_time=values.get("stop_time"),
            )
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        upload = self.get_queryset().get(pk=upload.pk)
        return Response(
            LogUploadSerializer(upload, context={"request": request}).data, status=status.HTTP_201_CREATED
        )


# --- Firmware campaigns ----------------------------------------------------------------------


class CampaignTargetSerializer(serializers.ModelSerializer):
    charge_point = serializers.CharField(source="charge_point.identity", read_only=True)
    firmware_version = serializers.CharField(source="charge_point.firmware_version", read_only=True)
    status = serializers.CharField(
        read_only=True,
        help_text="pending, sent, refused, or the charger's report: Downloading, Downloaded, "
        "DownloadFailed, Installing, Installed, InstallationFailed.",
    )
    command = serializers.UUIDField(source="command_id", read_only=True, allow_null=True)

    class Meta:
        model = FirmwareCampaignTarget
        fields = ["charge_point", "firmware_version", "status", "status_at", "command"]
        read_only_fields = fields


class CampaignProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    installed = serializers.IntegerField()


class CampaignSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text="draft, running, finished or cancelled.")
    created_by = serializers.EmailField(source="created_by.email", read_only=True, allow_null=True)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = FirmwareCampaign
        fields = [
            "id",
            "name",
            "firmware_version",
            "location",
            "retrieve_at",
            "retries",
            "retry_interval",
            "status",
            "created_by",
            "created_at",
            "progress",
        ]
        read_only_fields = fields

    @extend_schema_field(CampaignProgressSerializer)
    def get_progress(self, campaign: FirmwareCampaign) -> dict:
        p = firmware.progress(campaign)
        return {"total": p["total"], "done": p["done"], "installed": p["installed"]}


class CampaignDetailSerializer(CampaignSerializer):
    targets = CampaignTargetSerializer(many=True, read_only=True)

    class Meta(CampaignSerializer.Meta):
        fields = [*CampaignSerializer.Meta.fields, "targets"]
        read_only_fields = fields


class CampaignCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    firmware_version = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    location = serializers.CharField(max_length=500, help_text="Where the chargers download the firmware.")
    retrieve_at = serializers.DateTimeField(
        required=False, help_text="When to start downloading; default now."
    )
    retries = serializers.IntegerField(min_value=0, max_value=100, required=False)
    retry_interval = serializers.IntegerField(
        min_value=0, max_value=86400, required=False, help_text="Seconds."
    )
    charge_points = serializers.ListField(
        child=serializers.CharField(max_length=48),
        min_length=1,
        max_length=firmware.MAX_TARGETS,
        help_text="Identities of the charge points, all of them yours.",
    )


@extend_schema(tags=TAGS)
@extend_schema_view(
    list=extend_schema(summary="The operator's firmware campaigns"),
    retrieve=extend_schema(summary="A campaign with each charger's progress"),
    create=extend_schema(
        summary="Create a firmware campaign (a draft: start it next)",
        request=CampaignCreateSerializer,
        responses={201: CampaignDetailSerializer, 400: OpenApiResponse(description="Invalid input.")},
    ),
)
class FirmwareCampaignViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Technicians read; operator admins create, start and cancel."""

    permission_classes = [IsOperatorStaff]
    filterset_fields = ["status"]
    search_fields = ["name", "firmware_version"]
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]

    def get_serializer_class(self):
        return CampaignSerializer if self.action == "list" else CampaignDetailSerializer

    def get_queryset(self):
        qs = firmware.campaigns_for(self.request.user)
        if self.action != "list":
            qs = qs.prefetch_related(
                Prefetch(
                    "targets",
                    queryset=FirmwareCampaignTarget.objects.select_related("charge_point").order_by(
                        "charge_point__identity"
                    ),
                )
            )
        return qs

    def _detail(self, campaign: FirmwareCampaign, code: int = status.HTTP_200_OK) -> Response:
        campaign = self.get_queryset().get(pk=campaign.pk)
        return Response(CampaignDetailSerializer(campaign).data, status=code)

    def create(self, request, *args, **kwargs):
        data = CampaignCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        identities = list(dict.fromkeys(values.pop("charge_points")))
        charge_points = list(selectors.charge_points_for(request.user).filter(identity__in=identities))
        unknown = sorted(set(identities) - {cp.identity for cp in charge_points})
        if unknown:
            raise serializers.ValidationError(
                {"charge_points": [f"Not charge points of yours: {', '.join(unknown)}."]}
            )
        operators = {cp.operator for cp in charge_points}
        if len(operators) != 1:
            raise serializers.ValidationError({"charge_points": ["Choose charge points of one operator."]})
        try:
            campaign = firmware.campaign_create(
                operator=operators.pop(), charge_points=charge_points, created_by=request.user, **values
            )
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return self._detail(campaign, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Start: send UpdateFirmware to every charger of the campaign",
        description="Sends to all of them at once and waits for their answers. A charger that took "
        "the command is `sent`, one that did not (rejected, error, no answer, offline) `refused`.",
        request=None,
        responses={200: CampaignDetailSerializer, 400: OpenApiResponse(description="Not a draft.")},
    )
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        campaign = self.get_object()
        try:
            campaign = firmware.campaign_start(campaign=campaign)
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return self._detail(campaign)

    @extend_schema(
        summary="Cancel: stop following the campaign",
        request=None,
        responses={200: CampaignDetailSerializer, 400: OpenApiResponse(description="Already over.")},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        campaign = self.get_object()
        try:
            campaign = firmware.campaign_cancel(campaign=campaign)
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return self._detail(campaign)
