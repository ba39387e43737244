"""Forms of the alerts pages. They parse and shape input; the services validate and write."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import cache

from django import forms
from django.db.models import QuerySet

from alerts import catalog
from alerts.models import Channel, DeliveryStatus, Digest
from stations import selectors
from stations.models import ChargePoint, RegistrationStatus


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


def _time_input() -> forms.TimeInput:
    return forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


class ProfileForm(forms.Form):
    """Quiet hours for everyone; home and radius for drivers; digest and rate for operators."""

    quiet_hours_start = forms.TimeField(
        required=False, widget=_time_input(), label="Quiet from", help_text="Empty: no quiet hours."
    )
    quiet_hours_end = forms.TimeField(required=False, widget=_time_input(), label="Quiet until")
    time_zone = forms.ChoiceField(choices=time_zone_choices, label="Time zone")
    home_latitude = forms.DecimalField(required=False, label="Home latitude", min_value=-90, max_value=90)
    home_longitude = forms.DecimalField(required=False, label="Home longitude", min_value=-180, max_value=180)
    radius_km = forms.DecimalField(label="Radius (km)", min_value=0, help_text="Stations this near home.")
    digest = forms.ChoiceField(choices=Digest.choices, label="Email alerts")
    max_per_hour = forms.IntegerField(
        label="At most per hour", min_value=1, help_text="Emails beyond this wait for the next digest."
    )

    DRIVER_FIELDS = ("home_latitude", "home_longitude", "radius_km")
    OPERATOR_FIELDS = ("digest", "max_per_hour")

    def __init__(self, *args, audience: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        if catalog.DRIVER not in audience:
            for name in self.DRIVER_FIELDS:
                del self.fields[name]
        if catalog.OPERATOR not in audience:
            for name in self.OPERATOR_FIELDS:
                del self.fields[name]

    def fields_of(self, names) -> list:
        return [self[name] for name in names if name in self.fields]


class FavouriteForm(forms.Form):
    identity = forms.CharField(
        label="Charge point", max_length=48, help_text="The id on the charger's label, e.g. VW-AMS-01."
    )

    def clean_identity(self) -> ChargePoint:
        identity = self.cleaned_data["identity"].strip()
        charge_point = (
            ChargePoint.objects.filter(
                identity__iexact=identity,
                registration_status=RegistrationStatus.ACCEPTED,
                site__in=selectors.public_stations(),
            )
            .select_related("site")
            .first()
        )
        if charge_point is None:
            raise forms.ValidationError(f"There is no public charge point “{identity}”.")
        return charge_point


def preference_choices(matrix: list[dict], data) -> dict[str, dict[str, bool]]:
    """The matrix's checkboxes (named ``<event type>:<channel>``) as the service takes them:
    every cell of the page, ticked or not."""
    return {
        row["event_type"].key: {
            channel: f"{row['event_type'].key}:{channel}" in data for channel in row["channels"]
        }
        for row in matrix
    }


class DeliveryFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "Any status"), *DeliveryStatus.choices], required=False)
    channel = forms.ChoiceField(choices=[("", "Any channel"), *Channel.choices], required=False)
    event_type = forms.ChoiceField(
        choices=[("", "Any event")] + [(e.key, e.label) for e in catalog.EVENT_TYPES.values()],
        required=False,
        label="Event",
    )


def operator_event_choices() -> list[tuple[str, str]]:
    return [(e.key, e.label) for e in catalog.for_audience(catalog.OPERATOR)]


class WebhookForm(forms.Form):
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https", help_text="Your HTTPS receiver.")
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        choices=operator_event_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Event types",
        help_text="None ticked: every event type.",
    )
    operator = forms.ModelChoiceField(queryset=None, required=False, empty_label="Choose…")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        if user.operator_id:
            del self.fields["operator"]
        else:  # a superuser of no operator says whose endpoint it is
            self.fields["operator"].queryset = selectors.operators_for(user)
            self.fields["operator"].required = True


class LocalDateTimeField(forms.DateTimeField):
    """A wall-clock time as typed in a datetime-local input: naive, made aware by the form in
    the time zone of the place it concerns (not the server's)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, dt.datetime):
            return value.replace(tzinfo=None)
        try:
            return dt.datetime.fromisoformat(str(value).strip()).replace(tzinfo=None)
        except ValueError:
            raise forms.ValidationError("Enter a date and time.", code="invalid") from None


class MaintenanceForm(forms.Form):
    charge_point = forms.ModelChoiceField(queryset=None, required=False, empty_label="—")
    site = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="—", help_text="Or a whole site."
    )
    starts_at = LocalDateTimeField(label="Starts", help_text="Local time of the site.")
    ends_at = LocalDateTimeField(label="Ends")
    reason = forms.CharField(max_length=300, required=False)

    def __init__(self, *args, charge_points: QuerySet, sites: QuerySet, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["charge_point"].queryset = charge_points.order_by("identity")
        self.fields["site"].queryset = sites.order_by("name")

    def clean(self):
        data = super().clean()
        charge_point, site = data.get("charge_point"), data.get("site")
        if bool(charge_point) == bool(site):
            raise forms.ValidationError("Choose a charge point or a site (one of them).")
        place = site or charge_point.site
        zone = zoneinfo.ZoneInfo(place.time_zone if place else "UTC")
        for name in ("starts_at", "ends_at"):
            if data.get(name) is not None:
                data[name] = data[name].replace(tzinfo=zone)
        data["operator"] = (site or charge_point).operator
        return data
