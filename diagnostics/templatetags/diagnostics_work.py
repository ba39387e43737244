"""The diagnostics uploads and incidents panel of the charge point page."""

from django import template
from django.utils import timezone

from diagnostics.models import Incident, IncidentStatus, LogUpload
from diagnostics.services import uploads

register = template.Library()

UPLOADS_SHOWN = 10


@register.inclusion_tag("diagnostics/_charge_point_work.html", takes_context=True)
def charge_point_work_panel(context, charge_point):
    now = timezone.now()
    recent = list(
        LogUpload.objects.filter(charge_point=charge_point)
        .select_related("requested_by", "command")
        .order_by("-requested_at", "-id")[:UPLOADS_SHOWN]
    )
    for upload in recent:
        upload.shown_status = uploads.display_status(upload, now)
    incidents = Incident.objects.filter(charge_point=charge_point, status=IncidentStatus.OPEN).select_related(
        "connector"
    )
    return {
        "charge_point": charge_point,
        "request": context.get("request"),
        "user": context.get("user"),
        "uploads": recent,
        "open_incidents": incidents.order_by("-opened_at", "-id"),
    }
