"""Operator pages: the dashboard, a charge point's page and the commands sent from them.
Thin: the reads are selectors, the writes the command gateway."""

import json
import uuid

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import DetailView
from django_filters.views import FilterView

from . import selectors
from .commands import send_command, send_command_many
from .filters import ChargePointFilter
from .forms import BULK_FORMS, COMMAND_FORMS, CommandForm, outcome_message, response_summary
from .models import ChargePoint, Command, CommandStatus
from .permissions import OperatorStaffRequiredMixin

STATUS_HISTORY_LENGTH = 50
COMMAND_HISTORY_LENGTH = 50
MESSAGE_LOG_LENGTH = 100
MESSAGE_LEVELS = {
    "success": messages.SUCCESS,
    "warning": messages.WARNING,
    "error": messages.ERROR,
    "info": messages.INFO,
}


def home(request):
    """Send each visitor to the page of their role."""
    user = request.user
    if not user.is_authenticated:
        return redirect(settings.LOGIN_URL)
    if user.is_operator_staff:
        return redirect("stations:dashboard")
    if user.is_driver:
        return redirect("account:account")
    raise PermissionDenied("This account has no role in ChargeDesk yet.")


class DashboardView(OperatorStaffRequiredMixin, FilterView):
    filterset_class = ChargePointFilter
    template_name = "stations/dashboard.html"
    context_object_name = "charge_points"
    paginate_by = 50

    def get_queryset(self):
        return selectors.charge_points_for(self.request.user)

    def get_context_data(self, **kwargs):
        user = self.request.user
        return super().get_context_data(
            counts=selectors.status_counts(selectors.charge_points_for(user)),
            sites=selectors.site_summaries(selectors.sites_for(user)),
            bulk_actions=[(action, form.title) for action, form in BULK_FORMS.items()],
            **kwargs,
        )


class DashboardCountsView(OperatorStaffRequiredMixin, View):
    """The dashboard tiles as JSON, for the live page to refresh them without a reload."""

    def get(self, request):
        return JsonResponse(selectors.status_counts(selectors.charge_points_for(request.user)))


def _time_zone(charge_point: ChargePoint) -> str:
    return charge_point.site.time_zone if charge_point.site else "UTC"


def _with_summaries(commands):
    commands = list(commands)
    for command in commands:
        command.summary = response_summary(command)
        command.payload_text = json.dumps(command.payload, indent=1, ensure_ascii=False)
        # An answer with more than its status word is worth opening.
        command.has_details = isinstance(command.response, dict) and bool(set(command.response) - {"status"})
        command.response_text = (
            json.dumps(command.response, indent=1, ensure_ascii=False) if command.response is not None else ""
        )
    return commands


class ChargePointDetailView(OperatorStaffRequiredMixin, DetailView):
    template_name = "stations/charge_point_detail.html"
    context_object_name = "charge_point"
    slug_field = "identity"
    slug_url_kwarg = "identity"

    def get_queryset(self):
        # Another operator's charge point is a 404, as if it did not exist.
        return selectors.charge_points_for(self.request.user)

    def command_form(self, data=None, action: str | None = None) -> CommandForm | None:
        action = action or self.request.GET.get("command")
        form_class = COMMAND_FORMS.get(action or "")
        if form_class is None:
            return None
        return form_class(data, charge_points=[self.object], user=self.request.user)

    def get_context_data(self, **kwargs):
        from billing.views import connector_tariffs
        from sessions.models import Transaction, TransactionStatus

        charge_point = self.object
        time_zone = _time_zone(charge_point)
        with timezone.override(time_zone):
            if "command_form" not in kwargs:
                kwargs["command_form"] = self.command_form()
            active = Transaction.objects.filter(charge_point=charge_point, status=TransactionStatus.ACTIVE)
            sessions = {t.connector_number: t for t in active.order_by("started_at", "pk")}
            connectors = list(charge_point.connectors.all())  # prefetched in order, with their EVSE
            for connector in connectors:
                connector.session = session = sessions.get(connector.connector_id)
                power = session.last_power_w if session is not None else None
                connector.power_kw = None if power is None else power / 1000
            # What a guest pays at each connector now (the price on its QR code's page).
            tariffs = connector_tariffs(
                charge_point, [c.connector_id for c in connectors], user=None, at=timezone.now()
            )
            for connector in connectors:
                connector.tariff_info = tariffs.get(connector.connector_id)
            commands = _with_summaries(
                charge_point.commands.select_related("requested_by").order_by("-created_at")[
                    :COMMAND_HISTORY_LENGTH
                ]
            )
            # The command just sent: its outcome once more in the commands section, where the
            # page opens after sending (the flash message is at the top, out of view).
            sent = next((c for c in commands if str(c.pk) == self.request.GET.get("sent")), None)
            if sent is not None:
                sent.charge_point = charge_point
                kwargs["sent_command"], kwargs["sent_outcome"] = sent, outcome_message(sent)
            return super().get_context_data(
                connectors=connectors,
                status_history=charge_point.status_changes.order_by("-timestamp", "-id")[
                    :STATUS_HISTORY_LENGTH
                ],
                time_zone=time_zone,
                command_choices=[(action, form.title) for action, form in COMMAND_FORMS.items()],
                commands=commands,
                configuration=charge_point.configuration.order_by("key"),
                ocpp_messages=charge_point.messages.order_by("-created_at", "-id")[:MESSAGE_LOG_LENGTH],
                **kwargs,
            )


class ChargePointCommandView(ChargePointDetailView):
    """Send one command from the charge point page; its outcome comes back as a message.
    An invalid form is shown again on the page with its errors at the fields."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        self.object = charge_point = self.get_object()
        action = request.POST.get("action", "")
        if action not in COMMAND_FORMS:
            messages.error(request, f"“{action[:50]}” is not a command ChargeDesk can send.")
            return redirect(f"{charge_point.get_absolute_url()}#commands")
        with timezone.override(_time_zone(charge_point)):
            form = self.command_form(request.POST, action)
            if form.is_valid():
                try:
                    payload = form.prepare()
                    command = send_command(charge_point, action, payload, requested_by=request.user)
                except ValidationError as error:
                    if not form.errors:
                        form.add_schema_errors(error)
                else:
                    form.settle(command)
                    command.charge_point = charge_point
                    level, text = outcome_message(command)
                    messages.add_message(request, MESSAGE_LEVELS[level], text)
                    return redirect(
                        f"{charge_point.get_absolute_url()}?command={action}&sent={command.pk}#commands"
                    )
        context = self.get_context_data(object=charge_point, command_form=form)
        return self.render_to_response(context)


class BulkCommandView(OperatorStaffRequiredMixin, View):
    """One command to the charge points chosen on the dashboard.

    First post (from the dashboard): the chosen charge points and command; this page asks
    for the command's details. Second post (``send``): the commands go out together, and
    the batch's results page follows.
    """

    template_name = "stations/bulk_command.html"

    def post(self, request):
        action = request.POST.get("action", "")
        form_class = BULK_FORMS.get(action)
        if form_class is None:
            messages.error(request, "Choose a command to send to the selected charge points.")
            return redirect("stations:dashboard")
        identities = list(dict.fromkeys(request.POST.getlist("charge_points")))
        charge_points = list(
            selectors.charge_points_for(request.user).filter(identity__in=identities).order_by("identity")
        )
        if not charge_points:
            messages.error(request, "Select at least one charge point.")
            return redirect("stations:dashboard")
        missing = sorted(set(identities) - {cp.identity for cp in charge_points})
        if missing:
            return HttpResponseBadRequest(f"Unknown charge points: {', '.join(missing)}")
        if "send" not in request.POST:
            form = form_class(charge_points=charge_points, user=request.user)
        else:
            form = form_class(request.POST, charge_points=charge_points, user=request.user)
            if form.is_valid():
                commands = send_command_many(charge_points, action, form.prepare(), requested_by=request.user)
                return redirect("stations:command-batch", batch=commands[0].batch)
        return render(
            request,
            self.template_name,
            {"form": form, "action": action, "title": form_class.title, "charge_points": charge_points},
        )


class CommandBatchView(OperatorStaffRequiredMixin, View):
    """The outcome of one command sent to many charge points at once."""

    def get(self, request, batch: uuid.UUID):
        commands = list(
            Command.objects.filter(
                batch=batch, charge_point__in=selectors.charge_points_for(request.user).values("pk")
            )
            .select_related("charge_point", "requested_by")
            .order_by("charge_point__identity")
        )
        if not commands:
            raise Http404("No such batch of commands.")
        commands = _with_summaries(commands)
        counts = {status.value: 0 for status in CommandStatus}
        for command in commands:
            counts[command.status] += 1
        return render(
            request,
            "stations/command_batch.html",
            {
                "commands": commands,
                "action": commands[0].action,
                "payload": commands[0].payload,
                "sent_at": commands[0].created_at,
                "counts": [(s, counts[s.value]) for s in CommandStatus if counts[s.value]],
                "dashboard_url": reverse("stations:dashboard"),
            },
        )
