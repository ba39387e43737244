"""Pages for the work on faults: incidents, tickets (and the technicians' "My tickets"), the
diagnostics upload endpoint chargers post to, and firmware campaigns. Thin: the writes are
services in ``diagnostics.services``."""

from __future__ import annotations

import tempfile

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.db.models import Case, IntegerField, Prefetch, Value, When
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from diagnostics.forms_work import AssignForm, CampaignForm, TicketForm, TicketStatusForm
from diagnostics.models import (
    CampaignStatus,
    Finding,
    FirmwareCampaignTarget,
    TicketStatus,
)
from diagnostics.services import firmware, tickets, uploads
from stations import selectors
from stations.permissions import OperatorStaffRequiredMixin

UPLOAD_CHUNK = 64 * 1024
# A multipart body carries its headers and boundaries besides the file.
MULTIPART_OVERHEAD = 64 * 1024
FINDINGS_SHOWN = 50


def _errors(error: ValidationError) -> list[str]:
    if hasattr(error, "message_dict"):
        return [m for messages_ in error.message_dict.values() for m in messages_]
    return list(error.messages)


def _flash_errors(request, error: ValidationError) -> None:
    for text in _errors(error):
        messages.error(request, text)


def _next_or(request, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


def base_url(request) -> str:
    """ChargeDesk's address for chargers: the configured one, else the one the browser used."""
    return settings.SITE_URL or request.build_absolute_uri("/")


# --- Incidents -----------------------------------------------------------------------------


class IncidentDetailView(OperatorStaffRequiredMixin, View):
    def get(self, request, pk: int):
        incident = get_object_or_404(tickets.incidents_for(request.user), pk=pk)
        findings = list(incident.findings.order_by("-detected_at", "-id")[:FINDINGS_SHOWN])
        return render(
            request,
            "diagnostics/work/incident_detail.html",
            {
                "incident": incident,
                "findings": findings,
                "tickets": incident.tickets.select_related("assignee").order_by("-created_at"),
                "can_create_ticket": request.user.is_operator_admin and incident.is_open,
            },
        )


class IncidentTicketCreateView(OperatorStaffRequiredMixin, View):
    admin_only = True

    def post(self, request, pk: int):
        incident = get_object_or_404(tickets.incidents_for(request.user), pk=pk)
        try:
            ticket = tickets.ticket_create_from_incident(incident=incident, created_by=request.user)
        except ValidationError as error:
            _flash_errors(request, error)
            return redirect("diagnostics:incident-detail", pk=incident.pk)
        messages.success(request, f"Ticket T-{ticket.pk} created.")
        return redirect("diagnostics:ticket-detail", pk=ticket.pk)


# --- Tickets -------------------------------------------------------------------------------

OPEN_FIRST = Case(
    When(status=TicketStatus.OPEN, then=Value(0)),
    When(status=TicketStatus.ASSIGNED, then=Value(1)),
    When(status=TicketStatus.IN_PROGRESS, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


class TicketListView(OperatorStaffRequiredMixin, View):
    def get(self, request):
        qs = tickets.tickets_for(request.user)
        status = request.GET.get("status", "active")
        if status == "active":
            qs = qs.exclude(status__in=tickets.FINAL)
        elif status in TicketStatus.values:
            qs = qs.filter(status=status)
        else:
            status = "all"
        return render(
            request,
            "diagnostics/work/ticket_list.html",
            {
                "tickets": qs.order_by(OPEN_FIRST, "-created_at", "-id")[:200],
                "status": status,
                "statuses": TicketStatus.choices,
                "form": TicketForm(charge_points=selectors.charge_points_for(request.user))
                if request.user.is_operator_admin
                else None,
            },
        )


class TicketCreateView(OperatorStaffRequiredMixin, View):
    admin_only = True

    def post(self, request):
        charge_points = selectors.charge_points_for(request.user)
        form = TicketForm(request.POST, charge_points=charge_points)
        operator = request.user.operator
        if form.is_valid():
            data = form.cleaned_data
            if operator is None and data["charge_point"] is not None:
                operator = data["charge_point"].operator
            if operator is None:
                form.add_error("charge_point", "Choose the charge point (it names the operator).")
            else:
                try:
                    ticket = tickets.ticket_create(operator=operator, created_by=request.user, **data)
                except ValidationError as error:
                    form.add_error(None, error)
                else:
                    messages.success(request, f"Ticket T-{ticket.pk} created.")
                    return redirect("diagnostics:ticket-detail", pk=ticket.pk)
        return render(
            request,
            "diagnostics/work/ticket_list.html",
            {
                "tickets": tickets.tickets_for(request.user).exclude(status__in=tickets.FINAL)[:200],
                "status": "active",
                "statuses": TicketStatus.choices,
                "form": form,
            },
            status=400,
        )


def _ticket_findings(ticket, limit: int = FINDINGS_SHOWN) -> list[Finding]:
    if not ticket.incident_id:
        return []
    return list(ticket.incident.findings.order_by("-detected_at", "-id")[:limit])


class TicketDetailView(OperatorStaffRequiredMixin, View):
    def get(self, request, pk: int):
        ticket = get_object_or_404(tickets.tickets_for(request.user), pk=pk)
        user = request.user
        return render(
            request,
            "diagnostics/work/ticket_detail.html",
            {
                "ticket": ticket,
                "findings": _ticket_findings(ticket),
                "assign_form": AssignForm(ticket=ticket)
                if user.is_operator_admin and ticket.status not in tickets.FINAL
                else None,
                "status_form": TicketStatusForm(ticket=ticket)
                if user.is_operator_admin or ticket.assignee_id == user.pk
                else None,
            },
        )


class TicketAssignView(OperatorStaffRequiredMixin, View):
    admin_only = True

    def post(self, request, pk: int):
        ticket = get_object_or_404(tickets.tickets_for(request.user), pk=pk)
        form = AssignForm(request.POST, ticket=ticket)
        if not form.is_valid():
            messages.error(request, "Choose a technician of this operator.")
        else:
            try:
                ticket = tickets.ticket_assign(
                    ticket=ticket, assignee=form.cleaned_data["assignee"], by=request.user
                )
            except ValidationError as error:
                _flash_errors(request, error)
            else:
                messages.success(request, f"T-{ticket.pk} assigned to {ticket.assignee}.")
        return redirect("diagnostics:ticket-detail", pk=ticket.pk)


class TicketStatusView(OperatorStaffRequiredMixin, View):
    def post(self, request, pk: int):
        ticket = get_object_or_404(tickets.tickets_for(request.user), pk=pk)
        back = _next_or(request, reverse("diagnostics:ticket-detail", kwargs={"pk": ticket.pk}))
        form = TicketStatusForm(request.POST, ticket=ticket)
        if not form.is_valid():
            for errors in form.errors.values():
                for text in errors:
                    messages.error(request, text)
            return redirect(back)
        try:
            ticket = tickets.ticket_set_status(
                ticket=ticket,
                status=form.cleaned_data["status"],
                resolution_notes=form.cleaned_data["resolution_notes"],
                by=request.user,
            )
        except ValidationError as error:
            _flash_errors(request, error)
        else:
            messages.success(request, f"T-{ticket.pk} is {ticket.get_status_display().lower()}.")
        return redirect(back)


class MyTicketsView(OperatorStaffRequiredMixin, View):
    """The technician's phone page: where to go, what to bring, what was seen, and the form
    to report progress."""

    def get(self, request):
        mine = (
            tickets.tickets_for(request.user)
            .filter(assignee=request.user)
            .prefetch_related(
                Prefetch("incident__findings", queryset=Finding.objects.order_by("-detected_at", "-id"))
            )
        )
        active = list(mine.exclude(status__in=tickets.FINAL).order_by(OPEN_FIRST, "-created_at"))
        done = list(mine.filter(status__in=tickets.FINAL).order_by("-resolved_at", "-id")[:10])
        for ticket in active:
            ticket.status_form = TicketStatusForm(ticket=ticket, prefix=f"t{ticket.pk}")
            ticket.recent_findings = list(ticket.incident.findings.all())[:10] if ticket.incident_id else []
        return render(request, "diagnostics/work/my_tickets.html", {"active": active, "done": done})


class MyTicketStatusView(OperatorStaffRequiredMixin, View):
    """The status form of "My tickets" (its fields carry the ticket's prefix)."""

    def post(self, request, pk: int):
        ticket = get_object_or_404(tickets.tickets_for(request.user), pk=pk)
        form = TicketStatusForm(request.POST, ticket=ticket, prefix=f"t{ticket.pk}")
        if not form.is_valid():
            messages.error(request, f"T-{ticket.pk}: choose a status this ticket can move to.")
        else:
            try:
                tickets.ticket_set_status(
                    ticket=ticket,
                    status=form.cleaned_data["status"],
                    resolution_notes=form.cleaned_data["resolution_notes"],
                    by=request.user,
                )
            except ValidationError as error:
                for text in _errors(error):
                    messages.error(request, f"T-{ticket.pk}: {text}")
            else:
                messages.success(request, f"T-{ticket.pk} saved.")
        return redirect(f"{reverse('diagnostics:my-tickets')}#ticket-{ticket.pk}")


# --- Diagnostics log uploads -----------------------------------------------------------------


class UploadTooLarge(Exception):
    pass


class LimitedUploadHandler(FileUploadHandler):
    """Streams a multipart file to a temporary file on disk and stops at the first byte over
    the limit, so an oversized upload is never held whole."""

    def __init__(self, request, limit: int):
        super().__init__(request)
        self.limit = limit
        self.received = 0

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 - handed on as the UploadedFile

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self.file.close()
            raise UploadTooLarge
        self.file.write(raw_data)

    def file_complete(self, file_size):
        self.file.seek(0)
        return UploadedFile(self.file, name=self.file_name, size=file_size, content_type=self.content_type)


def _plain(text: str, status: int) -> HttpResponse:
    return HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt  # chargers have no session or cookie; the single-use token is the credential
def upload_receive(request, token: str):
    """Where a charger uploads the file GetDiagnostics asked for: POST multipart/form-data
    (one file, any field name) or PUT (the raw body, the file name in the URL's last part)."""
    if request.method not in ("POST", "PUT"):
        return HttpResponseNotAllowed(["POST", "PUT"])
    try:
        upload = uploads.upload_check(token)
    except uploads.UploadRefused as refused:
        return _plain(refused.message, refused.status)
    limit = upload.max_bytes
    too_large = _plain(f"The file is larger than {limit} bytes.", 413)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _plain("Content-Length is not a number.", 400)
    multipart = request.content_type == "multipart/form-data"
    if length > limit + (MULTIPART_OVERHEAD if multipart else 0):
        return too_large
    if multipart:
        request.upload_handlers = [LimitedUploadHandler(request, limit)]
        try:
            files = [f for _, fs in request.FILES.lists() for f in fs]
        except UploadTooLarge:
            return too_large
        except Exception:  # a malformed body: Django's parser errors vary by fault
            return _plain("Not a readable multipart/form-data body.", 400)
        if len(files) != 1:
            return _plain("Send exactly one file.", 400)
        fileobj, name, size = files[0].file, files[0].name, files[0].size
    else:
        fileobj = tempfile.TemporaryFile()  # noqa: SIM115 - closed below, after storing
        size = 0
        while chunk := request.read(UPLOAD_CHUNK):
            size += len(chunk)
            if size > limit:
                fileobj.close()
                return too_large
            fileobj.write(chunk)
        name = request.GET.get("filename") or ""
    try:
        with fileobj:
            uploads.upload_receive(token=token, fileobj=fileobj, filename=name, size=size)
    except uploads.UploadRefused as refused:
        return _plain(refused.message, refused.status)
    return _plain("Received.", 201)


@csrf_exempt
def upload_receive_named(request, token: str, filename: str):
    """PUT to ``…/<token>/<file name>`` (as chargers do, naming the file in the URL)."""
    request.GET = request.GET.copy()
    request.GET["filename"] = filename
    return upload_receive(request, token)


class UploadRequestView(OperatorStaffRequiredMixin, View):
    """ "Request diagnostics" on the charge point page (technicians and admins)."""

    def post(self, request, identity: str):
        charge_point = get_object_or_404(selectors.charge_points_for(request.user), identity=identity)
        try:
            upload = uploads.upload_request(
                charge_point=charge_point, base_url=base_url(request), requested_by=request.user
            )
        except ValidationError as error:
            _flash_errors(request, error)
        else:
            if upload.status == "failed":
                outcome = upload.command.outcome if upload.command else "not sent"
                messages.warning(request, f"{charge_point.identity} did not take the request: {outcome}.")
            else:
                messages.success(
                    request, f"{charge_point.identity} was asked for its diagnostics; the file appears below."
                )
        return redirect(f"{charge_point.get_absolute_url()}#diagnostics-uploads")


class UploadDownloadView(OperatorStaffRequiredMixin, View):
    """A received file, for the charger's operator only."""

    def get(self, request, pk: int):
        upload = get_object_or_404(uploads.uploads_for(request.user), pk=pk)
        if not upload.file:
            raise Http404("No file was received for this request.")
        try:
            handle = upload.file.open("rb")
        except FileNotFoundError as error:
            raise Http404("The file is gone from storage.") from error
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=upload.filename or "diagnostics.log",
            content_type="text/plain",
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "sandbox"
        return response


# --- Firmware campaigns ----------------------------------------------------------------------


class CampaignListView(OperatorStaffRequiredMixin, View):
    def get(self, request):
        campaigns = list(firmware.campaigns_for(request.user)[:100])
        for campaign in campaigns:
            campaign.progress = firmware.progress(campaign)
        return render(request, "diagnostics/work/campaign_list.html", {"campaigns": campaigns})


class CampaignCreateView(OperatorStaffRequiredMixin, View):
    admin_only = True
    template_name = "diagnostics/work/campaign_form.html"

    def get(self, request):
        form = CampaignForm(charge_points=selectors.charge_points_for(request.user))
        return render(request, self.template_name, {"form": form})

    def post(self, request):
        form = CampaignForm(request.POST, charge_points=selectors.charge_points_for(request.user))
        if form.is_valid():
            data = form.cleaned_data
            chosen = list(data.pop("charge_points"))
            operators = {cp.operator_id for cp in chosen}
            if len(operators) != 1:
                form.add_error("charge_points", "Choose charge points of one operator.")
            else:
                try:
                    campaign = firmware.campaign_create(
                        operator=chosen[0].operator,
                        charge_points=chosen,
                        retrieve_at=data.pop("retrieve_at"),
                        created_by=request.user,
                        **data,
                    )
                except ValidationError as error:
                    form.add_error(None, error)
                else:
                    messages.success(request, f"Campaign “{campaign.name}” created: check it, then start it.")
                    return redirect("diagnostics:campaign-detail", pk=campaign.pk)
        return render(request, self.template_name, {"form": form}, status=400)


class CampaignDetailView(OperatorStaffRequiredMixin, View):
    def get(self, request, pk: int):
        campaign = get_object_or_404(firmware.campaigns_for(request.user), pk=pk)
        targets = FirmwareCampaignTarget.objects.filter(campaign=campaign).select_related(
            "charge_point", "charge_point__site", "command"
        )
        return render(
            request,
            "diagnostics/work/campaign_detail.html",
            {
                "campaign": campaign,
                "targets": targets.order_by("charge_point__identity"),
                "progress": firmware.progress(campaign),
                "final": firmware.FINAL,
                "can_start": request.user.is_operator_admin and campaign.status == CampaignStatus.DRAFT,
                "can_cancel": request.user.is_operator_admin
                and campaign.status in (CampaignStatus.DRAFT, CampaignStatus.RUNNING),
            },
        )


class CampaignStartView(OperatorStaffRequiredMixin, View):
    admin_only = True

    def post(self, request, pk: int):
        campaign = get_object_or_404(firmware.campaigns_for(request.user), pk=pk)
        try:
            campaign = firmware.campaign_start(campaign=campaign)
        except ValidationError as error:
            _flash_errors(request, error)
        else:
            p = firmware.progress(campaign)
            messages.success(
                request,
                f"UpdateFirmware sent: {p['total'] - p['refused']} charger(s) took it, "
                f"{p['refused']} did not.",
            )
        return redirect("diagnostics:campaign-detail", pk=campaign.pk)


class CampaignCancelView(OperatorStaffRequiredMixin, View):
    admin_only = True

    def post(self, request, pk: int):
        campaign = get_object_or_404(firmware.campaigns_for(request.user), pk=pk)
        try:
            firmware.campaign_cancel(campaign=campaign)
        except ValidationError as error:
            _flash_errors(request, error)
        else:
            messages.success(request, "Campaign cancelled.")
        return redirect("diagnostics:campaign-detail", pk=campaign.pk)
