"""Writes on the charger network: one function a use case, called by views, the API,
management commands and (later) the OCPP handlers alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from config import events

from . import charger_auth
from .models import (
    ChargePoint,
    Connector,
    ConnectorStandard,
    ConnectorStatus,
    Evse,
    Operator,
    PowerType,
    RegistrationStatus,
    Site,
    StatusChange,
)
from .models.network import SITE_OF_OTHER_OPERATOR, StatusSource

CHARGER_PASSWORD_MIN = 16
CHARGER_PASSWORD_MAX = 40


@dataclass(frozen=True)
class ConnectorSpec:
    connector_id: int
    standard: str = ConnectorStandard.TYPE2
    power_type: str = PowerType.AC_3_PHASE
    max_power_kw: Decimal = Decimal("22")
    evse_id: int | None = None


def validate_charger_password(password: str) -> None:
    # OCPP security profile 1/2: BasicAuthPassword is 16 to 40 characters.
    if not (CHARGER_PASSWORD_MIN <= len(password) <= CHARGER_PASSWORD_MAX):
        message = f"A charger password has {CHARGER_PASSWORD_MIN} to {CHARGER_PASSWORD_MAX} characters."
        raise ValidationError({"password": message})


def _full_clean(instance, **kwargs) -> None:
    instance.full_clean(**kwargs)


@transaction.atomic
def site_create(*, operator: Operator, **fields) -> Site:
    site = Site(operator=operator, **fields)
    _full_clean(site)
    site.save()
    return site


@transaction.atomic
def site_update(*, site: Site, **fields) -> Site:
    for name, value in fields.items():
        setattr(site, name, value)
    _full_clean(site)
    site.save()
    return site


@transaction.atomic
def connectors_sync(*, charge_point: ChargePoint, connectors: Sequence[ConnectorSpec]) -> list[Connector]:
    """Create or update the given connectors (by connector id); others are left alone."""
    result = []
    for spec in connectors:
        evse, _ = Evse.objects.get_or_create(
            charge_point=charge_point, evse_id=spec.evse_id or spec.connector_id
        )
        connector = Connector.objects.filter(
            charge_point=charge_point, connector_id=spec.connector_id
        ).first()
        if connector is None:
            connector = Connector(charge_point=charge_point, connector_id=spec.connector_id)
        connector.evse = evse
        connector.standard = spec.standard
        connector.power_type = spec.power_type
        connector.max_power_kw = Decimal(spec.max_power_kw)
        _full_clean(connector, exclude=["charge_point", "evse"])
        connector.save()
        result.append(connector)
    return result


@transaction.atomic
def charge_point_create(
    *,
    operator: Operator,
    identity: str,
    site: Site | None = None,
    password: str | None = None,
    connectors: Sequence[ConnectorSpec] = (),
    **fields,
) -> ChargePoint:
    charge_point = ChargePoint(operator=operator, identity=identity, site=site, **fields)
    if password:
        validate_charger_password(password)
        charge_point.set_password(password)
    _full_clean(charge_point)
    try:
        with transaction.atomic():
            charge_point.save()
    except IntegrityError as exc:  # a concurrent create of the same identity
        raise ValidationError({"identity": "A charge point with this identity already exists."}) from exc
    connectors_sync(charge_point=charge_point, connectors=connectors)
    return charge_point


@transaction.atomic
def charge_point_update(
    *,
    charge_point: ChargePoint,
    password: str | None = None,
    connectors: Sequence[ConnectorSpec] | None = None,
    **fields,
) -> ChargePoint:
    for name, value in fields.items():
        setattr(charge_point, name, value)
    if password:
        validate_charger_password(password)
        charge_point.set_password(password)
    _full_clean(charge_point)
    charge_point.save()
    if connectors is not None:
        connectors_sync(charge_point=charge_point, connectors=connectors)
    return charge_point


def charge_points_provision(
    *,
    operator: Operator,
    identities: Iterable[str],
    password: str,
    connectors: int = 2,
    site: Site | None = None,
    standard: str = ConnectorStandard.TYPE2,
    power_type: str = PowerType.AC_3_PHASE,
    max_power_kw: Decimal = Decimal("22"),
) -> tuple[int, int]:
    """Create or update many charge points at once, all with the same password.

    Idempotent: running it again updates passwords and adds missing connectors. Built for
    fleets of thousands (a few bulk statements, one password hash shared by the batch).
    Returns (created, updated).
    """
    validate_charger_password(password)
    if site is not None and site.operator_id != operator.pk:  # bulk: no full_clean per row
        raise ValidationError({"site": SITE_OF_OTHER_OPERATOR})
    identities = list(dict.fromkeys(identities))
    for identity in identities:
        ChargePoint._meta.get_field("identity").run_validators(identity)
    template = ChargePoint()
    template.set_password(password)
    now = timezone.now()
    with transaction.atomic():
        existing = dict(
            ChargePoint.objects.filter(identity__in=identities).values_list("identity", "operator_id")
        )
        foreign = sorted(i for i, op in existing.items() if op != operator.pk)
        if foreign:
            raise ValidationError(
                {"identity": f"Already provisioned for another operator: {', '.join(foreign[:10])}"}
            )
        ChargePoint.objects.bulk_create(
            [
                ChargePoint(
                    operator=operator,
                    site=site,
                    identity=i,
                    password_hash=template.password_hash,
                    created_at=now,
                    updated_at=now,
                )
                for i in identities
                if i not in existing
            ],
            batch_size=1000,
        )
        ChargePoint.objects.filter(identity__in=list(existing)).update(
            password_hash=template.password_hash, updated_at=now
        )
        cps = dict(ChargePoint.objects.filter(identity__in=identities).values_list("pk", "identity"))
        Evse.objects.bulk_create(
            [Evse(charge_point_id=pk, evse_id=n) for pk in cps for n in range(1, connectors + 1)],
            batch_size=1000,
            ignore_conflicts=True,
        )
        evses = {
            (e.charge_point_id, e.evse_id): e.pk for e in Evse.objects.filter(charge_point_id__in=list(cps))
        }
        Connector.objects.bulk_create(
            [
                Connector(
                    charge_point_id=pk,
                    evse_id=evses[(pk, n)],
                    connector_id=n,
                    standard=standard,
                    power_type=power_type,
                    max_power_kw=max_power_kw,
                )
                for pk in cps
                for n in range(1, connectors + 1)
            ],
            batch_size=1000,
            ignore_conflicts=True,
        )
    return len(identities) - len(existing), len(existing)


@transaction.atomic
def status_record(
    *,
    charge_point: ChargePoint,
    connector_id: int,
    status: str,
    error_code: str = "",
    info: str = "",
    vendor_id: str = "",
    vendor_error_code: str = "",
    timestamp: dt.datetime | None = None,
    source: str = StatusSource.CHARGER,
) -> StatusChange | None:
    """Record a status report of a connector (0: the charge point) and update its current status.

    The history keeps every report with the charger's timestamp; a report re-sent after a
    reconnect is stored once. The current status only moves forward in time, so a late,
    older report does not overwrite a newer one. Unknown connectors are created.
    Returns the new history row, or None if the same report was already stored.
    """
    if status not in ConnectorStatus.values:
        raise ValidationError({"status": f"Unknown status “{status}”."})
    timestamp = timestamp or timezone.now()
    if timezone.is_naive(timestamp):
        raise ValidationError({"timestamp": "Timestamps must carry a time zone."})
    connector = None
    if connector_id:
        connector = (
            Connector.objects.select_for_update()
            .filter(charge_point=charge_point, connector_id=connector_id)
            .first()
        )
        if connector is None:
            (connector,) = connectors_sync(
                charge_point=charge_point, connectors=[ConnectorSpec(connector_id)]
            )
    obj, created = StatusChange.objects.get_or_create(
        charge_point=charge_point,
        connector_number=connector_id,
        timestamp=timestamp,
        status=status,
        error_code=error_code,
        defaults={
            "connector": connector,
            "info": info,
            "vendor_id": vendor_id,
            "vendor_error_code": vendor_error_code,
            "source": source,
        },
    )
    if not created:
        return None
    target = connector or charge_point
    if target.status_updated_at is None or target.status_updated_at <= timestamp:
        previous = target.status
        events.publish(
            "connector.status_changed",
            charge_point_id=charge_point.pk,
            operator_id=charge_point.operator_id,
            connector_id=connector_id,
            status=status,
            previous_status=previous,
            error_code=error_code,
            at=timestamp.isoformat(),
        )
        target.status = status
        target.error_code = error_code
        target.status_updated_at = timestamp
        fields = ["status", "error_code", "status_updated_at"]
        if connector is not None:
            connector.status_info = info
            connector.vendor_error_code = vendor_error_code
            fields += ["status_info", "vendor_error_code"]
        target.save(update_fields=fields)
    return obj


# --- Chargers connecting and reporting (called by the OCPP adapters) -------------------------


@dataclass(frozen=True)
class Admission:
    charge_point: ChargePoint | None
    reason: str

    @property
    def admitted(self) -> bool:
        return self.charge_point is not None


def charger_admit(
    *, identity: str, password: str | None, operator_slug: str | None = None, client_ip: str | None = None
) -> Admission:
    """Decide whether a charger opening a WebSocket may stay (OCPP security profile 1).

    A provisioned charger must present its password. An unknown one is admitted as pending,
    for an operator to approve, only where the operator accepts unknown chargers (named in the
    URL, or the deployment's default operator); its first password is kept (trust on first use).
    Refusals count against the identity and ``client_ip``; past a limit, handshakes are refused
    before any password is checked (``stations.charger_auth``).
    """
    door = charger_auth.Door(identity=identity, ip=client_ip)
    locked = door.locked
    if locked:
        return Admission(None, locked)
    admission = _admit(door, identity=identity, password=password, operator_slug=operator_slug)
    if not admission.admitted:
        door.failed(admission.reason)
    return admission


def _admit(door, *, identity: str, password: str | None, operator_slug: str | None) -> Admission:
    charge_point = ChargePoint.objects.select_related("operator").filter(identity=identity).first()
    if charge_point is None:
        slug = operator_slug or settings.CHARGEDESK_UNKNOWN_CHARGERS_OPERATOR
        operator = Operator.objects.filter(slug=slug, accept_unknown_chargers=True).first() if slug else None
        if operator is None:
            return Admission(None, "unknown charge point")
        if not password or not (CHARGER_PASSWORD_MIN <= len(password) <= CHARGER_PASSWORD_MAX):
            return Admission(None, "unknown charge point without a valid password")
        try:
            ChargePoint._meta.get_field("identity").run_validators(identity)
        except ValidationError:
            return Admission(None, "invalid identity")
        try:
            with transaction.atomic():
                charge_point = ChargePoint(
                    operator=operator, identity=identity, registration_status=RegistrationStatus.PENDING
                )
                charge_point.set_password(password)
                charge_point.save()
        except IntegrityError:  # admitted concurrently by another process: check like a known one
            return _admit(door, identity=identity, password=password, operator_slug=operator_slug)
        events.publish("charge_point.pending", charge_point_id=charge_point.pk, operator_id=operator.pk)
        return Admission(charge_point, "admitted as pending")
    if operator_slug and charge_point.operator.slug != operator_slug:
        return Admission(None, "charge point belongs to another operator")
    if not charge_point.has_password:
        return Admission(None, "no password is set for this charge point")
    if not door.password_matches(charge_point, password):
        return Admission(None, "wrong password")
    return Admission(charge_point, "ok")


def charger_connected(*, charge_point_id: int, operator_id: int, at: dt.datetime) -> None:
    # One statement where the charger was still marked online (a reconnect after a crash, the
    # common case in a reconnect storm); a second, and the event, where it was offline. An old
    # connection's disconnect landing in between only makes the event certain (it published
    # "offline"); one after the first statement no longer matches its own connected_at.
    cps = ChargePoint.objects.filter(pk=charge_point_id)
    if cps.filter(is_connected=True).update(connected_at=at, last_seen_at=at):
        return
    cps.update(is_connected=True, connected_at=at, last_seen_at=at)
    _publish_connectivity(charge_point_id, operator_id, online=True, at=at)


def charger_disconnected(
    *, charge_point_id: int, operator_id: int, connected_at: dt.datetime, at: dt.datetime
) -> bool:
    """Mark the charger offline, unless a newer connection of it has taken over meanwhile."""
    changed = ChargePoint.objects.filter(
        pk=charge_point_id, connected_at=connected_at, is_connected=True
    ).update(is_connected=False)
    if changed:
        _publish_connectivity(charge_point_id, operator_id, online=False, at=at)
    return bool(changed)


def charger_seen(*, charge_point_id: int, at: dt.datetime) -> None:
    ChargePoint.objects.filter(pk=charge_point_id).update(last_seen_at=at)


def _publish_connectivity(charge_point_id: int, operator_id: int, *, online: bool, at: dt.datetime) -> None:
    events.publish(
        "charge_point.online" if online else "charge_point.offline",
        charge_point_id=charge_point_id,
        operator_id=operator_id,
        at=at.isoformat(),
    )


def mark_silent_chargers_offline(*, now: dt.datetime | None = None) -> int:
    """The periodic sweep: a charger silent for longer than a few heartbeat intervals is
    offline, whatever its socket says (a process may have died holding it). Safe to run twice."""
    now = now or timezone.now()
    factor = settings.CHARGEDESK_OFFLINE_AFTER_HEARTBEATS
    connected = ChargePoint.objects.filter(is_connected=True)
    # One condition per heartbeat interval in use (a fleet has few), so the database does the work.
    silent_if = Q(last_seen_at__isnull=True)
    for interval in connected.order_by().values_list("heartbeat_interval", flat=True).distinct():
        cutoff = now - dt.timedelta(seconds=interval * factor)
        silent_if |= Q(heartbeat_interval=interval, last_seen_at__lt=cutoff)
    silent = connected.filter(silent_if)
    found = list(silent.values_list("pk", "operator_id"))
    changed = ChargePoint.objects.filter(pk__in=[pk for pk, _ in found], is_connected=True).update(
        is_connected=False
    )
    for pk, operator_id in found:
        _publish_connectivity(pk, operator_id, online=False, at=now)
    return changed


BOOT_FIELDS = {
    "chargePointVendor": "vendor",
    "chargePointModel": "model",
    "chargePointSerialNumber": "serial_number",
    "firmwareVersion": "firmware_version",
    "iccid": "iccid",
    "imsi": "imsi",
    "meterType": "meter_type",
    "meterSerialNumber": "meter_serial_number",
}


@transaction.atomic
def charger_booted(*, charge_point_id: int, report: dict, protocol: str, at: dt.datetime) -> ChargePoint:
    """Store what a BootNotification reports; answer with the registration status."""
    charge_point = ChargePoint.objects.select_for_update().get(pk=charge_point_id)
    old_firmware = charge_point.firmware_version
    for key, name in BOOT_FIELDS.items():
        if key in report:
            setattr(charge_point, name, str(report[key])[: ChargePoint._meta.get_field(name).max_length])
    if not report.get("chargePointSerialNumber") and report.get("chargeBoxSerialNumber"):
        charge_point.serial_number = str(report["chargeBoxSerialNumber"])[:50]
    charge_point.protocol = protocol
    charge_point.last_boot_at = at
    charge_point.last_seen_at = at
    charge_point.save()
    events.publish(
        "charge_point.booted",
        charge_point_id=charge_point.pk,
        operator_id=charge_point.operator_id,
        firmware_version=charge_point.firmware_version,
        previous_firmware_version=old_firmware,
        at=at.isoformat(),
    )
    return charge_point


def charger_firmware_status(*, charge_point_id: int, status: str, at: dt.datetime) -> None:
    ChargePoint.objects.filter(pk=charge_point_id).update(firmware_status=status, firmware_status_at=at)
    events.publish("charge_point.firmware_status", charge_point_id=charge_point_id, status=status)


def charger_diagnostics_status(*, charge_point_id: int, status: str, at: dt.datetime) -> None:
    ChargePoint.objects.filter(pk=charge_point_id).update(diagnostics_status=status, diagnostics_status_at=at)
    events.publish("charge_point.diagnostics_status", charge_point_id=charge_point_id, status=status)
