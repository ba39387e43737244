"""The driver's own pages: the account, and starting and stopping a charging session."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from stations.models import ChargePoint, RegistrationStatus
from stations.permissions import DriverRequiredMixin

from . import charging, selectors
from .models import IdToken, IdTokenStatus

SESSIONS_LISTED = 20
# Charge points whose prices the account page shows: the newest the driver charged at.
PRICED_CHARGE_POINTS = 3


def duration_text(seconds: float) -> str:
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _for_display(sessions):
    for session in sessions:
        session.duration_text = duration_text(session.duration.total_seconds())
        power = session.last_power_w if session.is_active else None
        session.power_kw = None if power is None else power / 1000
    return sessions


class StartChargingForm(forms.Form):
    charge_point = forms.CharField(
        label="Charge point", max_length=48, help_text="The id on the charger's label, e.g. VW-AMS-01."
    )
    connector = forms.IntegerField(min_value=1, max_value=99, initial=1)
    id_token = forms.TypedChoiceField(label="ID token", coerce=int, required=False, empty_value=None)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        tokens = [
            t
            for t in IdToken.objects.filter(driver=user).order_by("created_at", "pk")
            if t.effective_status == IdTokenStatus.ACCEPTED
        ]
        self.fields["id_token"].choices = [("", "Default")] + [
            (t.pk, f"{t.label or t.get_type_display()} · {t.token}") for t in tokens
        ]

    def clean_charge_point(self):
        identity = self.cleaned_data["charge_point"].strip()
        charge_point = ChargePoint.objects.filter(
            identity__iexact=identity, registration_status=RegistrationStatus.ACCEPTED
        ).first()
        if charge_point is None:
            raise forms.ValidationError(f"There is no charge point “{identity}”.")
        return charge_point


class AccountView(DriverRequiredMixin, TemplateView):
    template_name = "sessions/account.html"

    def get_context_data(self, **kwargs):
        from billing.services.payments import can_start

        user = self.request.user
        kwargs.setdefault("start_form", StartChargingForm(user=user))
        sessions = _for_display(list(selectors.transactions_for_driver(user)[:SESSIONS_LISTED]))
        allowed, why = can_start(user)
        return super().get_context_data(
            id_tokens=IdToken.objects.filter(driver=user).order_by("token"),
            charging_sessions=sessions,
            prices=_prices_where_charged(user, sessions),
            start_blocked_reason="" if allowed else why,
            **kwargs,
        )


def _prices_where_charged(user, sessions) -> list[dict]:
    """The price now at the connectors the driver charged at lately (the few newest charge
    points of the sessions listed), so they know before they charge there again. Each charge
    point's tariffs are looked up once, so the page's queries stay bounded."""
    from billing.views import connector_tariffs

    places: dict[int, dict] = {}
    for session in sessions:
        place = places.get(session.charge_point_id)
        if place is None:
            if len(places) == PRICED_CHARGE_POINTS:
                continue
            place = places[session.charge_point_id] = {"charge_point": session.charge_point, "connectors": []}
        if session.connector_number not in place["connectors"]:
            place["connectors"].append(session.connector_number)
    now = timezone.now()
    for place in places.values():
        tariffs = connector_tariffs(place["charge_point"], place["connectors"], user=user, at=now)
        place["connectors"] = [
            {"number": number, "tariff_info": tariffs[number]} for number in sorted(place["connectors"])
        ]
    return list(places.values())


class StartChargingView(AccountView):
    """Start a session from the account page; the page waits for the charger."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        form = StartChargingForm(request.POST, user=request.user)
        if form.is_valid():
            token = charging.driver_token(request.user, form.cleaned_data["id_token"])
            if token is None:
                form.add_error("id_token", charging.no_token_reason(request.user)[1])
            else:
                outcome = charging.remote_start(
                    charge_point=form.cleaned_data["charge_point"],
                    connector_id=form.cleaned_data["connector"],
                    id_tag=token,
                    requested_by=request.user,
                )
                if outcome.ok:
                    tx = outcome.transaction
                    messages.success(
                        request,
                        f"Charging started at {tx.charge_point.identity}, connector {tx.connector_number}.",
                    )
                    return redirect("account:account")
                messages.error(request, f"Charging did not start: {outcome.reason}")
        return self.render_to_response(self.get_context_data(start_form=form))


class StopChargingView(DriverRequiredMixin, View):
    def post(self, request, pk: int):
        # Another driver's session is a 404, as if it did not exist.
        transaction = get_object_or_404(selectors.transactions_for_driver(request.user), pk=pk)
        outcome = charging.remote_stop(transaction=transaction, requested_by=request.user)
        if outcome.ok:
            messages.success(request, "Charging stopped.")
        elif outcome.code == charging.Reason.NOT_STOPPED:
            messages.warning(request, f"{outcome.reason} It will show here once it has.")
        else:
            messages.error(request, f"Charging did not stop: {outcome.reason}")
        return redirect("account:account")
