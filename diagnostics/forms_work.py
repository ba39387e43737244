"""Forms of the ticket, log upload and firmware campaign pages."""

from __future__ import annotations

from django import forms

from diagnostics.models import Severity, TicketStatus
from diagnostics.services import tickets
from stations.models import ChargePoint


def _lines(value: str) -> list[str]:
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


class TicketForm(forms.Form):
    """A ticket by hand."""

    title = forms.CharField(max_length=200)
    charge_point = forms.ModelChoiceField(queryset=ChargePoint.objects.none(), required=False)
    priority = forms.ChoiceField(choices=Severity.choices, initial=Severity.MAJOR)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    tools = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text="One a line.")
    spare_parts = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text="One a line."
    )

    def __init__(self, *args, charge_points=None, **kwargs):
        super().__init__(*args, **kwargs)
        if charge_points is not None:
            self.fields["charge_point"].queryset = charge_points.order_by("identity")

    def clean_tools(self):
        return _lines(self.cleaned_data["tools"])

    def clean_spare_parts(self):
        return _lines(self.cleaned_data["spare_parts"])


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=None, label="Technician", empty_label="Choose…")

    def __init__(self, *args, ticket, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = tickets.technicians_of(ticket.operator)
        if ticket.assignee_id:
            self.fields["assignee"].initial = ticket.assignee_id


class TicketStatusForm(forms.Form):
    status = forms.ChoiceField(choices=TicketStatus.choices)
    resolution_notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="What was found and done; needed to resolve.",
    )

    def __init__(self, *args, ticket, **kwargs):
        super().__init__(*args, **kwargs)
        allowed = [ticket.status, *sorted(tickets.TRANSITIONS[ticket.status])]
        self.fields["status"].choices = [
            (s, TicketStatus(s).label) for s in TicketStatus.values if s in allowed
        ]
        self.fields["status"].initial = ticket.status
        self.fields["resolution_notes"].initial = ticket.resolution_notes


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    firmware_version = forms.CharField(max_length=50, required=False, help_text="The version it installs.")
    location = forms.CharField(
        max_length=500, help_text="Where the chargers download the firmware (http, https, ftp or ftps URL)."
    )
    retrieve_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="When the chargers start downloading (UTC); empty: now.",
    )
    retries = forms.IntegerField(min_value=0, max_value=100, required=False)
    retry_interval = forms.IntegerField(min_value=0, max_value=86400, required=False, help_text="Seconds.")
    charge_points = forms.ModelMultipleChoiceField(
        queryset=ChargePoint.objects.none(), widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, charge_points, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["charge_points"]
        field.queryset = charge_points.order_by("identity")
        field.label_from_instance = lambda cp: f"{cp.identity} · {cp.firmware_version or 'firmware unknown'}"
