"""REST API of live health and uptime (read-only, scoped to the caller's operator)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import Pagination
from stations import selectors
from stations.permissions import IsOperatorStaff

from . import health, uptime
from .forms_health import MAX_REPORT_DAYS, UptimePeriodForm


class HealthSummarySerializer(serializers.Serializer):
    units = serializers.IntegerField(help_text="Charge points in scope.")
    online = serializers.IntegerField()
    offline = serializers.IntegerField()
    faulted = serializers.IntegerField(help_text="Online, with the charge point or a connector Faulted.")
    charging = serializers.IntegerField()
    down = serializers.IntegerField(help_text="Offline plus faulted.")


class ConnectorHealthSerializer(serializers.Serializer):
    connector_id = serializers.IntegerField(source="connector.connector_id")
    status = serializers.CharField()
    error_code = serializers.CharField(help_text="Empty without an error.")
    power_kw = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    expected_kw = serializers.DecimalField(max_digits=7, decimal_places=2, help_text="Rated power.")
    power_share = serializers.DecimalField(
        max_digits=6, decimal_places=2, allow_null=True, help_text="Delivered / rated, while charging."
    )
    under_delivering = serializers.BooleanField()


class ChargePointHealthSerializer(serializers.Serializer):
    identity = serializers.CharField(source="charge_point.identity")
    site = serializers.CharField(source="charge_point.site.name", allow_null=True, default=None)
    state = serializers.ChoiceField(choices=["online", "offline", "faulted", "charging"])
    connectivity = serializers.ChoiceField(choices=[health.OK, health.LATE, health.OFFLINE])
    last_seen_at = serializers.DateTimeField(source="charge_point.last_seen_at", allow_null=True)
    seconds_since_seen = serializers.IntegerField(allow_null=True)
    heartbeat_interval = serializers.IntegerField(source="charge_point.heartbeat_interval")
    status = serializers.CharField(source="charge_point.status", help_text="Connector 0: the whole unit.")
    error_code = serializers.CharField(source="charge_point.error_code")
    firmware_version = serializers.CharField(source="charge_point.firmware_version")
    reboots_24h = serializers.IntegerField()
    open_incidents = serializers.IntegerField()
    power_kw = serializers.DecimalField(max_digits=10, decimal_places=2)
    expected_kw = serializers.DecimalField(max_digits=10, decimal_places=2)
    needs_attention = serializers.BooleanField()
    connectors = ConnectorHealthSerializer(many=True)


class HealthResponseSerializer(serializers.Serializer):
    summary = HealthSummarySerializer()
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ChargePointHealthSerializer(many=True)


SITE_PARAMETER = OpenApiParameter("site", int, description="Only this site (its id).")


class HealthView(APIView):
    """Live health of the operator's charge points, one page of them, with the summary."""

    permission_classes = [IsOperatorStaff]

    @extend_schema(
        summary="Live health of the charge points, with the network summary",
        parameters=[
            SITE_PARAMETER,
            OpenApiParameter("page", int, description="Page number."),
            OpenApiParameter("page_size", int, description="Charge points a page (at most 500)."),
        ],
        responses=HealthResponseSerializer,
        tags=["diagnostics"],
    )
    def get(self, request):
        now = timezone.now()
        charge_points = selectors.charge_points_for(request.user)
        site = request.query_params.get("site")
        if site:
            if not site.isdigit():
                raise serializers.ValidationError({"site": "A site id (a number)."})
            charge_points = charge_points.filter(site_id=int(site))
        paginator = Pagination()
        page = paginator.paginate_queryset(charge_points.order_by("identity"), request, view=self)
        rows = health.charge_point_health(page, now=now)
        return Response(
            {
                "summary": HealthSummarySerializer(health.summary(charge_points, now=now)).data,
                "count": paginator.page.paginator.count,
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
                "results": ChargePointHealthSerializer(rows, many=True).data,
            }
        )


class UptimeFiguresSerializer(serializers.Serializer):
    uptime_percent = serializers.DecimalField(
        max_digits=6, decimal_places=2, allow_null=True, help_text="Null without status data."
    )
    meets_target = serializers.BooleanField(allow_null=True, help_text="At least 97 %.")
    total_hours = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="Counted (known) time.")
    outage_hours = serializers.DecimalField(max_digits=12, decimal_places=2)
    excluded_hours = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="Outage in an exclusion window."
    )
    unknown_hours = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="Before any report: not counted."
    )


class ConnectorUptimeSerializer(UptimeFiguresSerializer):
    connector_id = serializers.IntegerField()


class ChargePointUptimeSerializer(UptimeFiguresSerializer):
    identity = serializers.CharField()
    connectors = ConnectorUptimeSerializer(many=True)


class SiteUptimeSerializer(UptimeFiguresSerializer):
    site_id = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()
    charge_points = ChargePointUptimeSerializer(many=True)


class ExclusionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    category = serializers.CharField()
    scope = serializers.CharField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    note = serializers.CharField()


class UptimeResponseSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="Exclusive; never later than now.")
    target_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    network = UptimeFiguresSerializer()
    sites = SiteUptimeSerializer(many=True)
    exclusions = ExclusionSerializer(many=True)


def report_data(report: uptime.UptimeReport) -> dict:
    return {
        "start": report.start,
        "end": report.end,
        "target_percent": report.target_percent,
        "network": report.figures.as_dict(),
        "sites": [
            {
                "site_id": s.site.pk if s.site else None,
                "name": s.name,
                **s.figures.as_dict(),
                "charge_points": [
                    {
                        "identity": cp.charge_point.identity,
                        **cp.figures.as_dict(),
                        "connectors": [
                            {"connector_id": c.connector.connector_id, **c.figures.as_dict()}
                            for c in cp.connectors
                        ],
                    }
                    for cp in s.charge_points
                ],
            }
            for s in report.sites
        ],
        "exclusions": [
            {
                "id": x.pk,
                "category": x.category,
                "scope": uptime.exclusion_scope(x),
                "starts_at": x.starts_at,
                "ends_at": x.ends_at,
                "note": x.note,
            }
            for x in report.exclusions
        ],
    }


class UptimeView(APIView):
    """Uptime per connector, charge point and site over whole UTC days."""

    permission_classes = [IsOperatorStaff]

    @extend_schema(
        summary="Uptime report (23 CFR 680.116(b)) per connector, charge point and site",
        parameters=[
            OpenApiParameter(
                "from", str, description="First day, YYYY-MM-DD (UTC); default 29 days before `to`."
            ),
            OpenApiParameter(
                "to", str, description=f"Last day, included; default today. At most {MAX_REPORT_DAYS} days."
            ),
            SITE_PARAMETER,
        ],
        responses=UptimeResponseSerializer,
        tags=["diagnostics"],
    )
    def get(self, request):
        params = request.query_params
        form = UptimePeriodForm(
            {"start": params.get("from", ""), "end": params.get("to", ""), "site": params.get("site", "")},
            user=request.user,
        )
        if not form.is_valid():
            errors = form.errors.get_json_data()
            names = {"start": "from", "end": "to"}
            raise serializers.ValidationError(
                {names.get(k, k): [e["message"] for e in v] for k, v in errors.items()}
            )
        start, end = form.period()
        charge_points = selectors.charge_points_for(request.user)
        if form.cleaned_data.get("site") is not None:
            charge_points = charge_points.filter(site=form.cleaned_data["site"])
        report = uptime.uptime_report(charge_points, start=start, end=end)
        return Response(UptimeResponseSerializer(report_data(report)).data)
