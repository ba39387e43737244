"""Forms of the diagnostics dashboard and uptime report: the period picker and outage exclusions."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from stations import selectors
from stations.models import User

from .models import ExclusionCategory, OutageExclusion

MAX_REPORT_DAYS = 366
DEFAULT_REPORT_DAYS = 30


class DateInput(forms.DateInput):
    input_type = "date"


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%dT%H:%M")


class SiteFilterForm(forms.Form):
    site = forms.ModelChoiceField(queryset=None, required=False, empty_label="All sites")

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the user's own sites are choices: another operator's site id is invalid.
        self.fields["site"].queryset = selectors.sites_for(user).order_by("name")


class UptimePeriodForm(SiteFilterForm):
    """A period of whole days (UTC), both ends included, and optionally one site."""

    start = forms.DateField(label="From", required=False, widget=DateInput)
    end = forms.DateField(label="To", required=False, widget=DateInput)

    field_order = ["start", "end", "site"]

    def clean(self):
        data = super().clean()
        today = timezone.now().date()
        end = data.get("end") or today
        start = data.get("start") or end - dt.timedelta(days=DEFAULT_REPORT_DAYS - 1)
        if start > end:
            raise ValidationError({"end": "The end must not be before the start."})
        if (end - start).days + 1 > MAX_REPORT_DAYS:
            raise ValidationError({"start": f"Choose a period of at most {MAX_REPORT_DAYS} days."})
        data["start"], data["end"] = start, end
        return data

    def period(self) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) as aware UTC datetimes (the end day is included)."""
        start = dt.datetime.combine(self.cleaned_data["start"], dt.time.min, tzinfo=dt.UTC)
        end = dt.datetime.combine(self.cleaned_data["end"] + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
        return start, end


class OutageExclusionForm(forms.ModelForm):
    """An outage window left out of uptime, for a site, a charge point, a connector or (with
    none of them) the whole network of the user's operator. Times are UTC."""

    class Meta:
        model = OutageExclusion
        fields = ["category", "starts_at", "ends_at", "site", "charge_point", "connector", "note"]
        labels = {"starts_at": "Starts (UTC)", "ends_at": "Ends (UTC)"}
        widgets = {"starts_at": DateTimeLocalInput, "ends_at": DateTimeLocalInput}

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["category"].choices = ExclusionCategory.choices
        cps = selectors.charge_points_for(user).order_by("identity")
        self.fields["site"].queryset = selectors.sites_for(user).order_by("name")
        self.fields["charge_point"].queryset = cps
        self.fields["connector"].queryset = (
            self.fields["connector"]
            .queryset.filter(charge_point__in=cps.values("pk"))
            .select_related("charge_point")
            .order_by("charge_point__identity", "connector_id")
        )
        for name, label in (("site", "Whole network"), ("charge_point", "—"), ("connector", "—")):
            self.fields[name].empty_label = label
        self.fields[
            "site"
        ].help_text = "Choose one of site, charge point or connector, or none for the network."

    def clean(self):
        data = super().clean()
        scopes = [data.get(name) for name in ("site", "charge_point", "connector") if data.get(name)]
        if len(scopes) > 1:
            raise ValidationError("Choose one scope: a site, a charge point or a connector (or none).")
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The end must be after the start.")
        scope = scopes[0] if scopes else None
        if scope is None:
            if not self.user.operator_id:
                raise ValidationError("Choose a site, a charge point or a connector: it names the operator.")
            self.instance.operator_id = self.user.operator_id
        else:
            owner = getattr(scope, "operator_id", None)
            if owner is None:  # a connector
                owner = scope.charge_point.operator_id
            self.instance.operator_id = owner
        self.instance.created_by = self.user
        return data
