"""REST API of operators' energy and revenue reports: a summary computed at once (up to 92
days) and report jobs for longer periods, with their CSV and PDF. Scoped to the caller's
operator; technicians may use it too (a report changes nothing)."""

from __future__ import annotations

import datetime as dt
import json

from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from stations.models import Site

from . import reports
from .models import ReportJob, ReportStatus


class IsOperatorStaffReader(permissions.BasePermission):
    """Operator admins and technicians, for reads and for queueing a report."""

    message = "Only an operator's staff may use reports."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_operator_staff)


FIRST_DAY, LAST_DAY = dt.date(1970, 1, 1), dt.date(9998, 12, 31)


def _plausible_day(value: dt.date) -> None:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise serializers.ValidationError(f"Give a day between {FIRST_DAY} and {LAST_DAY}.")


class ReportQuerySerializer(serializers.Serializer):
    """The days are local days of ``time_zone``, both included."""

    # Days far from now are no report anyone needs, and near the ends of the calendar a day's
    # bounds in a zone fall outside what a datetime can hold.
    start = serializers.DateField(help_text="First day (local).", validators=[_plausible_day])
    end = serializers.DateField(help_text="Last day (local), included.", validators=[_plausible_day])
    group_by = serializers.ChoiceField(choices=reports.GROUP_BY_CHOICES, default="day")
    site = serializers.IntegerField(required=False, help_text="Only this site (its id).")
    time_zone = serializers.CharField(
        required=False, help_text="IANA zone of the days; default: the zone most of the sites are in."
    )

    def validate(self, data):
        if data["end"] < data["start"]:
            raise serializers.ValidationError({"end": "The last day must not be before the first."})
        user = self.context["request"].user
        operator_ids = reports.operator_ids_for(user)
        site = None
        if "site" in data:
            site = Site.objects.filter(pk=data["site"], operator_id__in=operator_ids).first()
            if site is None:
                raise serializers.ValidationError({"site": "No such site."})
        tz = data.get("time_zone") or (site.time_zone if site else reports.default_time_zone(operator_ids))
        try:
            reports.zone(tz)
        except reports.ReportError as error:
            raise serializers.ValidationError({"time_zone": str(error)}) from error
        start, end = reports.local_day_bounds(data["start"], data["end"], tz)
        return {
            "operator_ids": operator_ids,
            "start": start,
            "end": end,
            "group_by": data["group_by"],
            "time_zone": tz,
            "site_ids": [site.pk] if site else None,
        }


class RowSerializer(serializers.Serializer):
    key = serializers.JSONField(
        help_text="Site, charge point or tariff id (null: none), or the period's first day."
    )
    label = serializers.CharField()
    currency = serializers.CharField()
    sessions = serializers.IntegerField()
    energy_kwh = serializers.DecimalField(max_digits=21, decimal_places=3)
    revenue_net = serializers.DecimalField(max_digits=18, decimal_places=2)
    revenue_tax = serializers.DecimalField(max_digits=18, decimal_places=2)
    revenue_total = serializers.DecimalField(max_digits=18, decimal_places=2)


class SummarySerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="Exclusive.")
    group_by = serializers.CharField()
    time_zone = serializers.CharField()
    rows = RowSerializer(many=True)
    totals = RowSerializer(many=True, help_text="One per currency.")


def _query_parameters() -> list[OpenApiParameter]:
    return [
        OpenApiParameter("start", OpenApiTypes.DATE, required=True, description="First day (local)."),
        OpenApiParameter("end", OpenApiTypes.DATE, required=True, description="Last day (local), included."),
        OpenApiParameter(
            "group_by", str, enum=[k for k, _ in reports.GROUP_BY_CHOICES], description="Default: day."
        ),
        OpenApiParameter("site", int, description="Only this site (its id)."),
        OpenApiParameter("time_zone", str, description="IANA zone; default: the sites' zone."),
    ]


class FileRenderer(BaseRenderer):
    """Lets a client ask for the file's own type (``Accept: text/csv``); the file is sent as it
    is, and an error as JSON."""

    media_type = "*/*"
    format = "file"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class ReportSummaryView(APIView):
    """Sessions, energy and revenue of the operator's network by site, charge point, tariff or
    period, computed now (at most 92 days; longer periods: POST a report job)."""

    permission_classes = [IsOperatorStaffReader]

    @extend_schema(
        summary="Energy and revenue report",
        parameters=_query_parameters(),
        responses={200: SummarySerializer},
    )
    def get(self, request):
        query = ReportQuerySerializer(data=request.query_params, context={"request": request})
        query.is_valid(raise_exception=True)
        params = query.validated_data
        if reports.is_long(params["start"], params["end"]):
            raise serializers.ValidationError(
                {"end": f"More than {reports.INLINE_MAX_DAYS} days: POST a report job instead."}
            )
        rows = reports.summary(**params)
        data = {
            "start": params["start"],
            "end": params["end"],
            "group_by": params["group_by"],
            "time_zone": params["time_zone"],
            "rows": rows,
            "totals": reports.totals_of(rows),
        }
        return Response(SummarySerializer(data).data)


class ReportJobSerializer(serializers.ModelSerializer):
    csv_url = serializers.SerializerMethodField()
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = ReportJob
        fields = [
            "id",
            "status",
            "progress",
            "params",
            "result",
            "error",
            "created_at",
            "finished_at",
            "csv_url",
            "pdf_url",
        ]
        read_only_fields = fields

    def _url(self, job: ReportJob, kind: str) -> str | None:
        if job.status != ReportStatus.DONE or not getattr(job, f"{kind}_file"):
            return None
        request = self.context.get("request")
        path = f"/api/v1/operator/reports/jobs/{job.pk}/{kind}/"
        return request.build_absolute_uri(path) if request else path

    def get_csv_url(self, job: ReportJob) -> str | None:
        return self._url(job, "csv")

    def get_pdf_url(self, job: ReportJob) -> str | None:
        return self._url(job, "pdf")


class ReportJobViewSet(
    mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet
):
    """Long reports, made by a worker: POST the same query as the summary's (any length up to
    ten years), then poll the job until ``status`` is ``done`` and download its files."""

    permission_classes = [IsOperatorStaffReader]
    serializer_class = ReportJobSerializer

    queryset = ReportJob.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ReportJob.objects.none()
        return reports.jobs_for(self.request.user)

    @extend_schema(request=ReportQuerySerializer, responses={201: ReportJobSerializer})
    def create(self, request, *args, **kwargs):
        query = ReportQuerySerializer(data=request.data, context={"request": request})
        query.is_valid(raise_exception=True)
        params = query.validated_data
        try:
            job = reports.request_job(
                user=request.user,
                start=params["start"],
                end=params["end"],
                group_by=params["group_by"],
                time_zone=params["time_zone"],
                site_ids=params["site_ids"],
            )
        except reports.ReportError as error:
            raise serializers.ValidationError({"non_field_errors": [str(error)]}) from error
        job.refresh_from_db()  # an eager worker may have finished it already
        return Response(self.get_serializer(job).data, status=status.HTTP_201_CREATED)

    def _file(self, kind: str):
        job = self.get_object()
        field = getattr(job, f"{kind}_file")
        if job.status != ReportStatus.DONE or not field:
            raise Http404("The job has no such file (yet).")
        try:
            handle = field.open("rb")
        except FileNotFoundError as error:
            raise Http404("The file is gone from storage.") from error
        return FileResponse(
            handle,
            as_attachment=True,
            filename=field.name.rsplit("/", 1)[-1],
            content_type="text/csv" if kind == "csv" else "application/pdf",
        )

    @extend_schema(
        summary="The report's CSV",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY)},
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, FileRenderer])
    def csv(self, request, pk=None):
        return self._file("csv")

    @extend_schema(
        summary="The report's PDF",
        responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY)},
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, FileRenderer])
    def pdf(self, request, pk=None):
        return self._file("pdf")
