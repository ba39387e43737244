"""Writes on the charger network: one function a use case, called by views, the API,
management commands and (later) the OCPP handlers alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import (
    ChargePoint,
    Connector,
    ConnectorStandard,
    ConnectorStatus,
    Evse,
    Operator,
    PowerType,
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
