"""OCPP 1.6J adapter: one small handler per action a charger sends, each turning the
(already schema-validated) payload into a call of a version-agnostic domain service and the
result back into the 1.6 reply. Handlers are synchronous and run in a worker thread, inside
the transaction that also logs the frame, so a reply goes out only after what it reports is
committed."""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils import timezone

from stations import services
from stations.models import ChargePoint, ConfigurationKey, RegistrationStatus

from .protocol import CallError

PROTOCOL = "ocpp1.6"
# Seconds between two "meter_values.recorded" events of one connector.
METER_EVENT_EVERY = 2.0
_meter_event_at: dict[tuple[int, int], float] = {}
# A pending or rejected charger retries its BootNotification after this many seconds.
RETRY_BOOT_INTERVAL = 60

# What a central system sends (a charger sending one of these gets NotSupported, not NotImplemented).
CENTRAL_SYSTEM_ACTIONS = frozenset(
    {
        "CancelReservation",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "DataTransfer",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetLocalListVersion",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
    }
)
# The largest connector number stored (a PositiveSmallIntegerField).
MAX_CONNECTOR_ID = 32767
# Until it is accepted a charger may only boot and beat (OCPP 1.6 §4.2.1).
ALLOWED_BEFORE_ACCEPTED = frozenset({"BootNotification", "Heartbeat"})


@dataclass
class Context:
    """What a handler knows of the connection it serves."""

    charge_point_id: int
    identity: str
    operator_id: int
    registration_status: str
    unique_id: str = ""
    charge_point: ChargePoint | None = None


Handler = Callable[[Context, dict], dict]
HANDLERS: dict[str, Handler] = {}
RESULT_HANDLERS: dict[str, Callable[[Context, dict, dict], None]] = {}


def on(action: str):
    def register(fn: Handler) -> Handler:
        @functools.wraps(fn)
        def handle(ctx: Context, p: dict) -> dict:
            # Connector 0 is the charge point itself; there are no negative ones, and no charger
            # has more than a connector number can hold.
            if isinstance(p.get("connectorId"), int) and not 0 <= p["connectorId"] <= MAX_CONNECTOR_ID:
                raise CallError(
                    "PropertyConstraintViolation",
                    f"connectorId must be from 0 to {MAX_CONNECTOR_ID}.",
                    unique_id=ctx.unique_id,
                )
            try:
                return fn(ctx, p)
            except ValidationError as error:  # a service refused a value the schema lets through
                raise CallError(
                    "PropertyConstraintViolation", "; ".join(error.messages), unique_id=ctx.unique_id
                ) from error

        HANDLERS[action] = handle
        return fn

    return register


def on_result(action: str):
    def register(fn):
        RESULT_HANDLERS[action] = fn
        return fn

    return register


def check_allowed(ctx: Context, action: str) -> None:
    if action not in HANDLERS:
        if action in CENTRAL_SYSTEM_ACTIONS:
            raise CallError(
                "NotSupported", f"{action} is sent by a central system, not to one.", unique_id=ctx.unique_id
            )
        raise CallError("NotImplemented", f"Unknown action {action!r}.", unique_id=ctx.unique_id)
    if ctx.registration_status != RegistrationStatus.ACCEPTED and action not in ALLOWED_BEFORE_ACCEPTED:
        raise CallError(
            "SecurityError",
            f"The charge point is {ctx.registration_status.lower()}: "
            "only BootNotification and Heartbeat until it is accepted.",
            unique_id=ctx.unique_id,
        )


def now() -> dt.datetime:
    return timezone.now()


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(ctx: Context, value: str | None, name: str = "timestamp") -> dt.datetime:
    """The charger's time, kept as it said it (UTC assumed where it gave no offset)."""
    if value is None:
        return now()
    try:
        parsed = dt.datetime.fromisoformat(value)
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        parsed.astimezone(dt.UTC)  # 0001-01-01T00:00+14:00 is before the calendar starts in UTC
    except (TypeError, ValueError, OverflowError) as exc:
        raise CallError(
            "PropertyConstraintViolation",
            f"{name}: {value!r} is not an ISO 8601 date-time.",
            unique_id=ctx.unique_id,
        ) from exc
    return parsed


def _charging():
    from sessions import services as charging  # the sessions app depends on stations, not back

    return charging


# --- What the charger sends -----------------------------------------------------------------


@on("BootNotification")
def boot_notification(ctx: Context, p: dict) -> dict:
    at = now()
    charge_point = services.charger_booted(
        charge_point_id=ctx.charge_point_id, report=p, protocol=PROTOCOL, at=at
    )
    ctx.registration_status = charge_point.registration_status
    accepted = charge_point.registration_status == RegistrationStatus.ACCEPTED
    return {
        "status": charge_point.registration_status,
        "currentTime": iso(at),
        "interval": charge_point.heartbeat_interval if accepted else RETRY_BOOT_INTERVAL,
    }


@on("Heartbeat")
def heartbeat(ctx: Context, p: dict) -> dict:
    at = now()
    services.charger_seen(charge_point_id=ctx.charge_point_id, at=at)
    return {"currentTime": iso(at)}


@on("StatusNotification")
def status_notification(ctx: Context, p: dict) -> dict:
    services.status_record(
        charge_point=_charge_point(ctx),
        connector_id=p["connectorId"],
        status=p["status"],
        error_code=p["errorCode"],
        info=p.get("info", ""),
        vendor_id=p.get("vendorId", ""),
        vendor_error_code=p.get("vendorErrorCode", ""),
        timestamp=parse_time(ctx, p.get("timestamp")),
    )
    return {}


@on("Authorize")
def authorize(ctx: Context, p: dict) -> dict:
    info = _charging().authorize(charge_point=_charge_point(ctx), id_tag=p["idTag"])
    return {"idTagInfo": info.to_ocpp()}


@on("StartTransaction")
def start_transaction(ctx: Context, p: dict) -> dict:
    transaction, info = _charging().transaction_start(
        charge_point=_charge_point(ctx),
        connector_id=p["connectorId"],
        id_tag=p["idTag"],
        meter_start=p["meterStart"],
        timestamp=parse_time(ctx, p["timestamp"]),
        reservation_id=p.get("reservationId"),
    )
    return {"transactionId": transaction.pk, "idTagInfo": info.to_ocpp()}


@on("StopTransaction")
def stop_transaction(ctx: Context, p: dict) -> dict:
    _transaction, info = _charging().transaction_stop(
        charge_point=_charge_point(ctx),
        transaction_id=p["transactionId"],
        meter_stop=p["meterStop"],
        timestamp=parse_time(ctx, p["timestamp"]),
        id_tag=p.get("idTag"),
        reason=p.get("reason"),
        transaction_data=p.get("transactionData"),
    )
    return {"idTagInfo": info.to_ocpp()} if info is not None else {}


@on("MeterValues")
def meter_values(ctx: Context, p: dict) -> dict:
    for value in p["meterValue"]:
        parse_time(ctx, value["timestamp"], "meterValue/timestamp")
    # Live pages want the running figures, not every sample: at most one event per connector
    # every few seconds, however often the charger reports.
    key = (ctx.charge_point_id, p["connectorId"])
    now_s = time.monotonic()
    announce = now_s - _meter_event_at.get(key, 0.0) >= METER_EVENT_EVERY
    if announce:
        _meter_event_at[key] = now_s
    _charging().meter_values_record(
        charge_point=_charge_point(ctx),
        connector_id=p["connectorId"],
        transaction_id=p.get("transactionId"),
        meter_values=p["meterValue"],
        announce=announce,
    )
    return {}


@on("DataTransfer")
def data_transfer(ctx: Context, p: dict) -> dict:
    # Kept in the message log; no vendor extensions are understood yet.
    return {"status": "UnknownVendorId"}


@on("DiagnosticsStatusNotification")
def diagnostics_status_notification(ctx: Context, p: dict) -> dict:
    services.charger_diagnostics_status(charge_point_id=ctx.charge_point_id, status=p["status"], at=now())
    return {}


@on("FirmwareStatusNotification")
def firmware_status_notification(ctx: Context, p: dict) -> dict:
    services.charger_firmware_status(charge_point_id=ctx.charge_point_id, status=p["status"], at=now())
    return {}


def _charge_point(ctx: Context) -> ChargePoint:
    # A light instance, made once a connection: the services need its pk and operator id,
    # not a fresh read.
    if ctx.charge_point is None:
        ctx.charge_point = ChargePoint(
            pk=ctx.charge_point_id, identity=ctx.identity, operator_id=ctx.operator_id
        )
    return ctx.charge_point


# --- What the charger answers to our commands ----------------------------------------------


@on_result("GetConfiguration")
def got_configuration(ctx: Context, request: dict, response: dict) -> None:
    for item in response.get("configurationKey", []):
        ConfigurationKey.objects.update_or_create(
            charge_point_id=ctx.charge_point_id,
            key=item["key"],
            defaults={"value": item.get("value"), "readonly": item["readonly"]},
        )


@on_result("ChangeConfiguration")
def changed_configuration(ctx: Context, request: dict, response: dict) -> None:
    if response["status"] not in ("Accepted", "RebootRequired"):
        return
    ConfigurationKey.objects.update_or_create(
        charge_point_id=ctx.charge_point_id, key=request["key"], defaults={"value": request["value"]}
    )
    if request["key"] == "HeartbeatInterval" and request["value"].isdigit():
        ChargePoint.objects.filter(pk=ctx.charge_point_id).update(
            heartbeat_interval=max(10, int(request["value"]))
        )


@on_result("SendLocalList")
def sent_local_list(ctx: Context, request: dict, response: dict) -> None:
    if response["status"] == "Accepted":
        ChargePoint.objects.filter(pk=ctx.charge_point_id).update(local_list_version=request["listVersion"])


@on_result("GetLocalListVersion")
def got_local_list_version(ctx: Context, request: dict, response: dict) -> None:
    ChargePoint.objects.filter(pk=ctx.charge_point_id).update(local_list_version=response["listVersion"])


@on_result("ReserveNow")
def reserved(ctx: Context, request: dict, response: dict) -> None:
    _set_reservation(ctx, request["reservationId"], response["status"])


@on_result("CancelReservation")
def cancelled_reservation(ctx: Context, request: dict, response: dict) -> None:
    if response["status"] == "Accepted":
        _set_reservation(ctx, request["reservationId"], "Cancelled")


def _set_reservation(ctx: Context, reservation_id: int, status: str) -> None:
    from sessions.models import Reservation

    reservation = Reservation.objects.filter(pk=reservation_id, charge_point_id=ctx.charge_point_id).first()
    if reservation is not None:
        _charging().reservation_set_status(reservation=reservation, status=status)
