"""Forms of the commands an operator sends to a charger: one small form a command, each
asking for what a person fills in and building the OCPP payload from it.

The payload is then checked against the official schema once more
(``stations.commands.validate_command``); what the schema refuses is shown at the field it
concerns. A form is bound to the charge point(s) it is for: connector choices, reservations
and sessions come from them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db.models.functions import Upper
from django.utils import timezone

from .commands import validate_command
from .models import ChargePoint, Command, CommandStatus, ConfigurationKey
from .ocpp.v16 import iso

MAX_INT32 = 2**31 - 1
ID_TAG_MAX = 20  # CiString20Type in OCPP 1.6
FILE_URL_SCHEMES = ["http", "https", "ftp", "ftps", "sftp"]
LOCAL_LIST_MAX = 1000  # entries in one SendLocalList; chargers hold a few thousand at most
BULK_CONNECTORS = 8  # connector numbers offered when one command goes to many charge points


def _sessions_models():
    # The sessions app depends on stations, not back: import where it is used.
    from sessions import models

    return models


# --- Schema complaints, at the field they concern ------------------------------------------

_SCHEMA_MESSAGE = re.compile(r"^(?P<path>[^:\s]+): (?P<text>.*)$", re.DOTALL)
_REQUIRED = re.compile(r'^"(?P<name>[^"]+)" is a required property$')


def schema_complaints(error: ValidationError) -> dict[str, list[str]]:
    """Turn ``validate_command``'s error into ``{path: [message]}``: ``path`` is the payload
    property the schema refused (``csChargingProfiles/chargingSchedule/…/limit``), ``""``
    where it names none, ``"action"`` for an unknown command."""
    complaints: dict[str, list[str]] = {}
    for field, messages in error.message_dict.items():
        for message in messages:
            path, text = "", message
            if field == "action":
                path = "action"
            else:
                match = _SCHEMA_MESSAGE.match(message)
                if match:
                    path, text = match["path"], match["text"]
                    if path == "payload":
                        path = ""
                        required = _REQUIRED.match(text)
                        if required:
                            path, text = required["name"], "This field is required."
            complaints.setdefault(path, []).append(text)
    return complaints


# --- Fields -----------------------------------------------------------------------------


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")


class ConnectorField(forms.TypedChoiceField):
    """A connector of the charge point (for many charge points at once, a number), with
    ``whole`` the label of connector 0 and ``blank`` that of leaving it out, where allowed."""

    def __init__(self, *, whole: str | None = None, blank: str | None = None, **kwargs):
        kwargs.setdefault("label", "Connector")
        super().__init__(coerce=int, empty_value=None, required=blank is None, **kwargs)
        self.whole = whole
        self.blank = blank

    def set_choices(self, charge_points: Sequence[ChargePoint]) -> None:
        choices: list[tuple] = [("", self.blank)] if self.blank else []
        if self.whole:
            choices.append((0, self.whole))
        if len(charge_points) == 1:
            # Prefetched, in order, by the selector the views use.
            choices += [
                (c.connector_id, f"Connector {c.connector_id}") for c in charge_points[0].connectors.all()
            ]
        else:
            # Many charge points: a number any of them may have.
            choices += [(n, f"Connector {n}") for n in range(1, BULK_CONNECTORS + 1)]
        self.choices = choices


def _optional_int(**kwargs) -> forms.IntegerField:
    return forms.IntegerField(required=False, min_value=0, max_value=MAX_INT32, **kwargs)


# --- The forms ----------------------------------------------------------------------------


class CommandForm(forms.Form):
    """Base: ``payload_from(cleaned_data)`` builds the OCPP payload; ``clean`` checks it against
    the schema for each charge point; ``prepare()`` does what must happen right before the
    command goes out (e.g. record a reservation) and returns the payload to send."""

    action: ClassVar[str]
    title: ClassVar[str]
    help: ClassVar[str] = ""
    bulk: ClassVar[bool] = False
    # OCPP payload property → form field, so a schema complaint lands at its field.
    payload_fields: ClassVar[dict[str, str]] = {}

    def __init__(self, *args, charge_points: Sequence[ChargePoint], user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.charge_points = list(charge_points)
        self.user = user
        self.payload: dict[str, Any] | None = None
        for field in self.fields.values():
            if isinstance(field, ConnectorField):
                field.set_choices(self.charge_points)

    @property
    def charge_point(self) -> ChargePoint:
        return self.charge_points[0]

    def payload_from(self, data: dict) -> dict:
        raise NotImplementedError

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        payload = self.payload_from(data)
        # The schema is the protocol's: one check per protocol among the charge points.
        for charge_point in {cp.protocol: cp for cp in self.charge_points}.values():
            try:
                validate_command(charge_point, self.action, payload)
            except ValidationError as error:
                self.add_schema_errors(error)
                return data
        self.payload = payload
        return data

    def add_schema_errors(self, error: ValidationError) -> None:
        for path, messages in schema_complaints(error).items():
            field = next(
                (self.payload_fields[p] for p in reversed(path.split("/")) if p in self.payload_fields), None
            )
            for message in messages:
                self.add_error(field, message if field else f"{path}: {message}" if path else message)

    def prepare(self) -> dict:
        assert self.payload is not None, "prepare() after is_valid()"
        return self.payload

    def settle(self, command: Command) -> None:
        """After the command's outcome is known: tidy up what ``prepare`` did."""


class ResetForm(CommandForm):
    action = "Reset"
    title = "Reset"
    help = "Soft: the charger stops its sessions and restarts its software. Hard: it reboots."
    bulk = True
    payload_fields = {"type": "type"}

    type = forms.ChoiceField(choices=[("Soft", "Soft"), ("Hard", "Hard")], initial="Soft")

    def payload_from(self, data):
        return {"type": data["type"]}


class UnlockConnectorForm(CommandForm):
    action = "UnlockConnector"
    title = "Unlock connector"
    help = "Releases the cable lock, e.g. when a driver cannot unplug. A running session stops."
    payload_fields = {"connectorId": "connector"}

    connector = ConnectorField()

    def payload_from(self, data):
        return {"connectorId": data["connector"]}


class ChangeAvailabilityForm(CommandForm):
    action = "ChangeAvailability"
    title = "Change availability"
    help = "Take a connector (or the whole charge point) out of service, or back into it."
    bulk = True
    payload_fields = {"connectorId": "connector", "type": "type"}

    connector = ConnectorField(whole="Whole charge point", initial=0)
    type = forms.ChoiceField(
        label="Availability", choices=[("Operative", "Operative"), ("Inoperative", "Inoperative")]
    )

    def payload_from(self, data):
        return {"connectorId": data["connector"], "type": data["type"]}


class ChangeConfigurationForm(CommandForm):
    action = "ChangeConfiguration"
    title = "Change configuration"
    help = "Set one configuration key. The charger may need a reboot for some keys."
    payload_fields = {"key": "key", "value": "value"}

    key = forms.CharField(max_length=50)
    value = forms.CharField(max_length=500, required=False, strip=False)

    def clean_key(self):
        key = self.cleaned_data["key"].strip()
        if len(self.charge_points) == 1:
            known = ConfigurationKey.objects.filter(charge_point=self.charge_point, key=key).first()
            if known is not None and known.readonly:
                raise ValidationError(f"{key} is read-only on this charger.")
        return key

    def payload_from(self, data):
        return {"key": data["key"], "value": data["value"]}


class GetConfigurationForm(CommandForm):
    action = "GetConfiguration"
    title = "Get configuration"
    help = "Read the charger's configuration keys; they are stored and listed on this page."
    payload_fields = {"key": "keys"}

    keys = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Keys to read, one a line or separated by commas. Empty: all keys.",
    )

    def clean_keys(self):
        keys = [k.strip() for k in re.split(r"[,\n]", self.cleaned_data["keys"]) if k.strip()]
        too_long = [k for k in keys if len(k) > 50]
        if too_long:
            raise ValidationError(f"A key has at most 50 characters: {', '.join(too_long)}.")
        return list(dict.fromkeys(keys))

    def payload_from(self, data):
        return {"key": data["keys"]} if data["keys"] else {}


class ClearCacheForm(CommandForm):
    action = "ClearCache"
    title = "Clear authorisation cache"
    help = "The charger forgets the ID tokens it remembered and asks again."
    bulk = True

    def payload_from(self, data):
        return {}


TRIGGERABLE = [
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
]


class TriggerMessageForm(CommandForm):
    action = "TriggerMessage"
    title = "Trigger message"
    help = "Ask the charger to send a message now, e.g. its connectors' status."
    bulk = True
    payload_fields = {"requestedMessage": "requested_message", "connectorId": "connector"}

    requested_message = forms.ChoiceField(
        label="Message", choices=[(m, m) for m in TRIGGERABLE], initial="StatusNotification"
    )
    connector = ConnectorField(blank="Charge point (all connectors)")

    def payload_from(self, data):
        payload: dict[str, Any] = {"requestedMessage": data["requested_message"]}
        if data.get("connector") is not None:
            payload["connectorId"] = data["connector"]
        return payload


class _FileTransferMixin(forms.Form):
    location = forms.CharField(
        label="Location (URL)",
        max_length=500,
        validators=[URLValidator(schemes=FILE_URL_SCHEMES)],
        widget=forms.URLInput(attrs={"placeholder": "ftp://files.example.com/…"}),
    )
    retries = _optional_int(help_text="How often the charger retries; empty: its own default.")
    retry_interval = _optional_int(label="Retry interval (s)")

    def _transfer(self, data) -> dict:
        payload: dict[str, Any] = {"location": data["location"]}
        if data.get("retries") is not None:
            payload["retries"] = data["retries"]
        if data.get("retry_interval") is not None:
            payload["retryInterval"] = data["retry_interval"]
        return payload


class GetDiagnosticsForm(_FileTransferMixin, CommandForm):
    action = "GetDiagnostics"
    title = "Get diagnostics"
    help = "The charger uploads its diagnostics file to this location."
    payload_fields = {
        "location": "location",
        "startTime": "start_time",
        "stopTime": "stop_time",
        "retries": "retries",
        "retryInterval": "retry_interval",
    }

    start_time = forms.DateTimeField(required=False, widget=DateTimeLocalInput(), label="From")
    stop_time = forms.DateTimeField(required=False, widget=DateTimeLocalInput(), label="Until")

    def clean(self):
        data = self.cleaned_data
        if data.get("start_time") and data.get("stop_time") and data["stop_time"] <= data["start_time"]:
            self.add_error("stop_time", "Must be after the start.")
        return super().clean()

    def payload_from(self, data):
        payload = self._transfer(data)
        if data.get("start_time"):
            payload["startTime"] = iso(data["start_time"])
        if data.get("stop_time"):
            payload["stopTime"] = iso(data["stop_time"])
        return payload


class UpdateFirmwareForm(_FileTransferMixin, CommandForm):
    action = "UpdateFirmware"
    title = "Update firmware"
    help = "The charger downloads the firmware from this location at or after the date and installs it."
    bulk = True
    payload_fields = {
        "location": "location",
        "retrieveDate": "retrieve_date",
        "retries": "retries",
        "retryInterval": "retry_interval",
    }

    retrieve_date = forms.DateTimeField(
        label="Retrieve from", widget=DateTimeLocalInput(), required=False, help_text="Empty: now."
    )

    def payload_from(self, data):
        payload = self._transfer(data)
        payload["retrieveDate"] = iso(data.get("retrieve_date") or timezone.now())
        return payload


PROFILE_PURPOSES = [
    ("TxDefaultProfile", "Default for sessions (TxDefaultProfile)"),
    ("ChargePointMaxProfile", "Charge point maximum (ChargePointMaxProfile)"),
]
RATE_UNITS = [("A", "A (current per phase)"), ("W", "W (power)")]


class SetChargingProfileForm(CommandForm):
    action = "SetChargingProfile"
    title = "Set charging limit"
    help = "A flat limit from now on, as a charging profile."
    payload_fields = {
        "connectorId": "connector",
        "limit": "limit",
        "chargingRateUnit": "unit",
        "chargingProfilePurpose": "purpose",
        "stackLevel": "stack_level",
        "chargingProfileId": "profile_id",
    }

    connector = ConnectorField(whole="Whole charge point", initial=0)
    limit = forms.DecimalField(min_value=Decimal("0"), max_digits=9, decimal_places=1)
    unit = forms.ChoiceField(choices=RATE_UNITS, initial="A")
    purpose = forms.ChoiceField(choices=PROFILE_PURPOSES, initial="TxDefaultProfile")
    stack_level = forms.IntegerField(min_value=0, max_value=MAX_INT32, initial=0)
    profile_id = forms.IntegerField(
        label="Profile id",
        min_value=1,
        max_value=MAX_INT32,
        initial=1,
        help_text="A profile with the same id on the charger is replaced.",
    )

    def clean(self):
        data = self.cleaned_data
        if data.get("purpose") == "ChargePointMaxProfile" and data.get("connector") not in (0, None):
            self.add_error("connector", "A charge point maximum is set on the whole charge point (0).")
        return super().clean()

    def payload_from(self, data):
        return {
            "connectorId": data["connector"],
            "csChargingProfiles": {
                "chargingProfileId": data["profile_id"],
                "stackLevel": data["stack_level"],
                "chargingProfilePurpose": data["purpose"],
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "startSchedule": iso(timezone.now()),
                    "chargingRateUnit": data["unit"],
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": float(data["limit"])}],
                },
            },
        }


class ClearChargingProfileForm(CommandForm):
    action = "ClearChargingProfile"
    title = "Clear charging profiles"
    help = "Removes the profiles matching what is filled in; all profiles if nothing is."
    payload_fields = {
        "id": "profile_id",
        "connectorId": "connector",
        "chargingProfilePurpose": "purpose",
        "stackLevel": "stack_level",
    }

    profile_id = forms.IntegerField(label="Profile id", required=False, min_value=1, max_value=MAX_INT32)
    connector = ConnectorField(blank="Any", whole="Whole charge point")
    purpose = forms.ChoiceField(
        choices=[("", "Any"), *PROFILE_PURPOSES, ("TxProfile", "Session profile (TxProfile)")],
        required=False,
    )
    stack_level = _optional_int()

    def payload_from(self, data):
        payload: dict[str, Any] = {}
        for key, name in (("id", "profile_id"), ("connectorId", "connector"), ("stackLevel", "stack_level")):
            if data.get(name) is not None:
                payload[key] = data[name]
        if data.get("purpose"):
            payload["chargingProfilePurpose"] = data["purpose"]
        return payload


class GetCompositeScheduleForm(CommandForm):
    action = "GetCompositeSchedule"
    title = "Get composite schedule"
    help = "The limits the charger will apply, all profiles combined, for the coming period."
    payload_fields = {"connectorId": "connector", "duration": "duration", "chargingRateUnit": "unit"}

    connector = ConnectorField(whole="Whole charge point", initial=0)
    duration = forms.IntegerField(label="Duration (s)", min_value=1, max_value=MAX_INT32, initial=3600)
    unit = forms.ChoiceField(choices=[("", "Charger's choice"), *RATE_UNITS], required=False)

    def payload_from(self, data):
        payload: dict[str, Any] = {"connectorId": data["connector"], "duration": data["duration"]}
        if data.get("unit"):
            payload["chargingRateUnit"] = data["unit"]
        return payload


class ReserveNowForm(CommandForm):
    action = "ReserveNow"
    title = "Reserve"
    help = "Hold a connector for one ID token until the expiry."
    payload_fields = {"connectorId": "connector", "idTag": "id_tag", "expiryDate": "expiry"}

    connector = ConnectorField(whole="Any connector")
    id_tag = forms.CharField(label="ID tag", max_length=ID_TAG_MAX)
    expiry = forms.DateTimeField(label="Until", widget=DateTimeLocalInput())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reservation = None
        if not self.is_bound:
            expiry = timezone.localtime() + dt.timedelta(minutes=30)
            self.initial.setdefault("expiry", expiry.replace(second=0, microsecond=0))

    def clean_expiry(self):
        expiry = self.cleaned_data["expiry"]
        if expiry <= timezone.now():
            raise ValidationError("The expiry must be in the future.")
        return expiry

    def payload_from(self, data):
        # The reservation's id is known once it is recorded, in prepare(); 0 stands in for it.
        return {
            "connectorId": data["connector"],
            "expiryDate": iso(data["expiry"]),
            "idTag": data["id_tag"],
            "reservationId": 0,
        }

    def prepare(self) -> dict:
        from sessions import services

        payload = super().prepare()
        token = _sessions_models().IdToken.objects.filter(token__iexact=payload["idTag"]).first()
        parent = token.parent_token if token and token.parent_token else None
        try:
            self.reservation = services.reservation_create(
                charge_point=self.charge_point,
                connector_id=payload["connectorId"],
                id_tag=payload["idTag"],
                expiry_date=self.cleaned_data["expiry"],
                parent_id_tag=parent,
            )
        except ValidationError as error:
            names = {"connector_id": "connector", "id_tag": "id_tag", "expiry_date": "expiry"}
            for name, messages in error.message_dict.items():
                for message in messages:
                    self.add_error(names.get(name), message)
            raise
        payload = {**payload, "reservationId": self.reservation.pk}
        if parent and len(parent) <= ID_TAG_MAX:
            payload["parentIdTag"] = parent
        self.payload = payload
        return payload

    def settle(self, command: Command) -> None:
        if self.reservation is not None:
            settle_reservation(self.reservation.pk, command)


def settle_reservation(reservation_id: int, command: Command) -> None:
    """A reservation whose ReserveNow never reached the charger (offline) or that it refused
    with a CALLERROR holds nothing. After a timeout it is left pending: the charger may have
    reserved; the expiry sweep ends it."""
    from sessions import services

    status = {CommandStatus.OFFLINE: "Cancelled", CommandStatus.ERROR: "Rejected"}.get(command.status)
    reservation = _sessions_models().Reservation.objects.filter(pk=reservation_id).first()
    if status is not None and reservation is not None:
        services.reservation_set_status(reservation=reservation, status=status)


class CancelReservationForm(CommandForm):
    action = "CancelReservation"
    title = "Cancel reservation"
    payload_fields = {"reservationId": "reservation"}

    reservation = forms.TypedChoiceField(coerce=int)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        models = _sessions_models()
        active = models.Reservation.objects.filter(
            charge_point__in=self.charge_points,
            status__in=models.ACTIVE_RESERVATION_STATUSES,
            expires_at__gt=timezone.now(),
        ).order_by("expires_at")
        self.fields["reservation"].choices = [
            (
                r.pk,
                f"#{r.pk} · connector {r.connector_number or 'any'} · {r.id_tag} · "
                f"until {timezone.localtime(r.expires_at):%Y-%m-%d %H:%M}",
            )
            for r in active
        ]
        if not self.fields["reservation"].choices:
            self.fields["reservation"].help_text = "There is no active reservation on this charge point."

    def payload_from(self, data):
        return {"reservationId": data["reservation"]}


class SendLocalListForm(CommandForm):
    action = "SendLocalList"
    title = "Send local authorisation list"
    help = "The ID tokens the charger may accept while it is offline, with their status."
    payload_fields = {"listVersion": "list_version", "updateType": "update_type", "idTag": "id_tags"}

    list_version = forms.IntegerField(min_value=1, max_value=MAX_INT32)
    update_type = forms.ChoiceField(
        choices=[("Full", "Full: replace the list"), ("Differential", "Differential: add or update")]
    )
    id_tags = forms.CharField(
        label="ID tags",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Known ID tokens, one a line; each goes with its status and expiry. "
        "Empty with “Full” clears the charger's list.",
    )
    all_tokens = forms.BooleanField(label="All known ID tokens", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if len(self.charge_points) == 1:
            self.fields["list_version"].initial = (self.charge_point.local_list_version or 0) + 1

    def clean_id_tags(self):
        tags = list(
            dict.fromkeys(t.strip() for t in re.split(r"[,\n]", self.cleaned_data["id_tags"]) if t.strip())
        )
        if len(tags) > LOCAL_LIST_MAX:
            raise ValidationError(f"At most {LOCAL_LIST_MAX} tags at once.")
        return tags

    def clean(self):
        data = self.cleaned_data
        IdToken = _sessions_models().IdToken
        tags = data.get("id_tags") or []
        if data.get("all_tokens"):
            tokens = list(IdToken.objects.order_by("token")[: LOCAL_LIST_MAX + 1])
            if len(tokens) > LOCAL_LIST_MAX:
                self.add_error("all_tokens", f"More than {LOCAL_LIST_MAX} tokens: name the ones to send.")
        else:
            # idTags compare case-insensitively (OCPP CiString).
            upper = [t.upper() for t in tags]
            found = {
                t.token.upper(): t
                for t in IdToken.objects.alias(upper=Upper("token")).filter(upper__in=upper).order_by("-pk")
            }
            unknown = [t for t in tags if t.upper() not in found]
            if unknown:
                self.add_error("id_tags", f"Unknown ID token(s): {', '.join(unknown)}.")
            tokens = [found[t.upper()] for t in tags if t.upper() in found]
        too_long = [t.token for t in tokens if len(t.token) > ID_TAG_MAX]
        if too_long:
            self.add_error(
                "all_tokens" if data.get("all_tokens") else "id_tags",
                f"OCPP 1.6 lists tags of at most {ID_TAG_MAX} characters: {', '.join(too_long[:10])}.",
            )
        self.tokens = tokens
        return super().clean()

    def payload_from(self, data):
        entries = []
        for token in self.tokens:
            info: dict[str, str] = {"status": token.effective_status}
            if token.expires_at is not None:
                info["expiryDate"] = iso(token.expires_at)
            if token.parent_token and len(token.parent_token) <= ID_TAG_MAX:
                info["parentIdTag"] = token.parent_token
            entries.append({"idTag": token.token, "idTagInfo": info})
        return {
            "listVersion": data["list_version"],
            "updateType": data["update_type"],
            "localAuthorizationList": entries,
        }


class GetLocalListVersionForm(CommandForm):
    action = "GetLocalListVersion"
    title = "Get local list version"

    def payload_from(self, data):
        return {}


class RemoteStartTransactionForm(CommandForm):
    action = "RemoteStartTransaction"
    title = "Start a session"
    help = "The charger starts a session for this ID tag, as if it had been presented."
    payload_fields = {"connectorId": "connector", "idTag": "id_tag"}

    connector = ConnectorField(blank="Charger's choice")
    id_tag = forms.CharField(label="ID tag", max_length=ID_TAG_MAX)

    def payload_from(self, data):
        payload: dict[str, Any] = {"idTag": data["id_tag"]}
        if data["connector"] is not None:
            payload["connectorId"] = data["connector"]
        return payload


class RemoteStopTransactionForm(CommandForm):
    action = "RemoteStopTransaction"
    title = "Stop a session"
    payload_fields = {"transactionId": "transaction"}

    transaction = forms.TypedChoiceField(label="Session", coerce=int)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        models = _sessions_models()
        active = models.Transaction.objects.filter(
            charge_point__in=self.charge_points, status=models.TransactionStatus.ACTIVE
        ).order_by("connector_number", "-started_at")
        self.fields["transaction"].choices = [
            (
                t.pk,
                f"#{t.pk} · connector {t.connector_number} · {t.id_tag} · "
                f"since {timezone.localtime(t.started_at):%Y-%m-%d %H:%M}",
            )
            for t in active
        ]
        if not self.fields["transaction"].choices:
            self.fields["transaction"].help_text = "There is no active session on this charge point."

    def payload_from(self, data):
        return {"transactionId": data["transaction"]}


class DataTransferForm(CommandForm):
    action = "DataTransfer"
    title = "Data transfer"
    help = "A vendor-specific message."
    payload_fields = {"vendorId": "vendor_id", "messageId": "message_id", "data": "data"}

    vendor_id = forms.CharField(label="Vendor id", max_length=255)
    message_id = forms.CharField(label="Message id", max_length=50, required=False)
    data = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), strip=False)

    def payload_from(self, data):
        payload = {"vendorId": data["vendor_id"]}
        if data.get("message_id"):
            payload["messageId"] = data["message_id"]
        if data.get("data"):
            payload["data"] = data["data"]
        return payload


COMMAND_FORMS: dict[str, type[CommandForm]] = {
    form.action: form
    for form in (
        ResetForm,
        ChangeAvailabilityForm,
        UnlockConnectorForm,
        TriggerMessageForm,
        RemoteStartTransactionForm,
        RemoteStopTransactionForm,
        ChangeConfigurationForm,
        GetConfigurationForm,
        ClearCacheForm,
        SendLocalListForm,
        GetLocalListVersionForm,
        ReserveNowForm,
        CancelReservationForm,
        SetChargingProfileForm,
        ClearChargingProfileForm,
        GetCompositeScheduleForm,
        GetDiagnosticsForm,
        UpdateFirmwareForm,
        DataTransferForm,
    )
}
BULK_FORMS: dict[str, type[CommandForm]] = {a: f for a, f in COMMAND_FORMS.items() if f.bulk}


# --- What the charger answered, in a line -------------------------------------------------


def response_summary(command: Command) -> str:
    """The charger's answer in a few words, beyond its status word."""
    response = command.response if isinstance(command.response, dict) else None
    if response is None:
        return ""
    action = command.action
    if action == "GetConfiguration":
        keys = response.get("configurationKey") or []
        unknown = response.get("unknownKey") or []
        text = f"{len(keys)} key{'s' if len(keys) != 1 else ''}"
        if unknown:
            text += f", unknown: {', '.join(unknown[:5])}{'…' if len(unknown) > 5 else ''}"
        return text
    if action == "GetLocalListVersion":
        return f"list version {response.get('listVersion')}"
    if action == "GetDiagnostics":
        return f"file {response['fileName']}" if response.get("fileName") else "no file to upload"
    if action == "GetCompositeSchedule" and response.get("chargingSchedule"):
        schedule = response["chargingSchedule"]
        unit = schedule.get("chargingRateUnit", "")
        limits = [f"{p.get('limit')} {unit}" for p in schedule.get("chargingSchedulePeriod", [])[:3]]
        return "limits " + ", ".join(limits)
    if action == "DataTransfer" and response.get("data"):
        data = str(response["data"])
        return f"data: {data[:80]}{'…' if len(data) > 80 else ''}"
    return ""


def outcome_message(command: Command) -> tuple[str, str]:
    """(level, text) of a flash message about a command's outcome."""
    name = command.action
    identity = command.charge_point.identity
    summary = response_summary(command)
    tail = f" ({summary})" if summary else ""
    if command.status == CommandStatus.ACCEPTED:
        return "success", f"{name} → {identity}: {command.outcome}{tail}."
    if command.status == CommandStatus.REJECTED:
        return "error", f"{name} → {identity}: the charger answered {command.outcome}{tail}."
    if command.status == CommandStatus.ERROR:
        return "error", f"{name} → {identity}: the charger refused it with {command.outcome}."
    if command.status == CommandStatus.OFFLINE:
        return "warning", f"{name} → {identity}: not sent, the charger is offline."
    if command.status == CommandStatus.TIMEOUT:
        return "warning", f"{name} → {identity}: the charger did not answer in time."
    return "info", f"{name} → {identity}: {command.get_status_display()}."
