"""Planned maintenance: an operator publishes a window for a charge point or a whole site;
the drivers it affects are told in advance, and out-of-service alerts during it carry its
end as the expected time of return."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from alerts import selectors
from alerts.channels.content import zone_of
from alerts.models import MaintenanceWindow
from alerts.services.notify import raise_alert
from alerts.services.outages import station_label
from stations.models import ChargePoint, Operator, Site


def create_window(
    *,
    operator: Operator,
    charge_point: ChargePoint | None = None,
    site: Site | None = None,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    reason: str = "",
    by=None,
) -> MaintenanceWindow:
    if (charge_point is None) == (site is None):
        raise ValidationError("Choose either a charge point or a site.")
    if (charge_point or site).operator_id != operator.pk:
        raise ValidationError("That station belongs to another operator.")
    if timezone.is_naive(starts_at) or timezone.is_naive(ends_at):
        raise ValidationError("Times must carry their time zone.")
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": "The window must end after it starts."})
    if ends_at <= timezone.now():
        raise ValidationError({"ends_at": "The window is already over."})
    return MaintenanceWindow.objects.create(
        operator=operator,
        charge_point=charge_point,
        site=site,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        created_by=by,
    )


def _charge_points(window: MaintenanceWindow) -> list[ChargePoint]:
    if window.charge_point_id:
        return [ChargePoint.objects.select_related("site").get(pk=window.charge_point_id)]
    return list(ChargePoint.objects.filter(site_id=window.site_id).select_related("site"))


def _affected(window: MaintenanceWindow, now: dt.datetime) -> tuple[list[ChargePoint], set[int]]:
    cps = _charge_points(window)
    drivers: set[int] = set()
    for cp in cps:
        drivers.update(selectors.affected_drivers(cp, now=now))
    return cps, drivers


def _where(window: MaintenanceWindow, cps: list[ChargePoint]) -> tuple[str, str]:
    if window.charge_point_id:
        return station_label(cps[0]), cps[0].site.time_zone if cps[0].site_id else "UTC"
    site = window.site or Site.objects.get(pk=window.site_id)
    return site.name, site.time_zone


def publish_window(*, window: MaintenanceWindow, by=None) -> int:
    """Tell the affected drivers (once). Returns how many were told."""
    now = timezone.now()
    with transaction.atomic():
        locked = MaintenanceWindow.objects.select_for_update().get(pk=window.pk)
        if locked.cancelled_at is not None:
            raise ValidationError("A cancelled window cannot be published.")
        if locked.ends_at <= now:
            raise ValidationError("The window is already over.")
        if locked.published_at is None:
            locked.published_at = now
            locked.save(update_fields=["published_at"])
    window.published_at = locked.published_at
    cps, drivers = _affected(locked, now)
    where, zone_name = _where(locked, cps)
    zone = zone_of(zone_name)
    start, end = timezone.localtime(locked.starts_at, zone), timezone.localtime(locked.ends_at, zone)
    span = f"{start:%a %d %b %H:%M} to {end:%a %d %b %H:%M} ({zone_name})"
    alert = raise_alert(
        event_type="maintenance_planned",
        dedup_key=f"maintenance:{locked.pk}:published",
        title=f"Planned maintenance at {where}",
        body=f"{where} will be out of service from {span}." + (f" {locked.reason}" if locked.reason else ""),
        url="/account/",
        recipients=drivers,
        operator_id=locked.operator_id,
        charge_point_id=locked.charge_point_id,
        eta=locked.ends_at,
        data={
            "window_id": locked.pk,
            "starts_at": locked.starts_at.isoformat(),
            "ends_at": locked.ends_at.isoformat(),
        },
        now=now,
    )
    return len(drivers) if alert is not None else 0


def cancel_window(*, window: MaintenanceWindow, by=None) -> None:
    """Call the work off; drivers told of it hear it is cancelled."""
    now = timezone.now()
    with transaction.atomic():
        locked = MaintenanceWindow.objects.select_for_update().get(pk=window.pk)
        if locked.cancelled_at is not None:
            return
        locked.cancelled_at = now
        locked.save(update_fields=["cancelled_at"])
    window.cancelled_at = now
    if locked.published_at is None:
        return
    cps = _charge_points(locked)
    where, _ = _where(locked, cps)
    from alerts.models import Notification

    told = Notification.objects.filter(alert__dedup_key=f"maintenance:{locked.pk}:published").values_list(
        "user_id", flat=True
    )
    raise_alert(
        event_type="maintenance_planned",
        dedup_key=f"maintenance:{locked.pk}:cancelled",
        title=f"Maintenance at {where} cancelled",
        body=f"The planned maintenance at {where} will not take place; the station stays in service.",
        url="/account/",
        recipients=set(told),
        operator_id=locked.operator_id,
        charge_point_id=locked.charge_point_id,
        data={"window_id": locked.pk},
        now=now,
    )
