"""Firmware campaigns: UpdateFirmware to chosen chargers of one operator, each one followed
through its FirmwareStatusNotifications until installed or failed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from diagnostics.models import (
    CampaignStatus,
    FirmwareCampaign,
    FirmwareCampaignTarget,
    FirmwareTargetStatus,
)
from stations import selectors
from stations.commands import send_command_many
from stations.models import ChargePoint, CommandStatus, Operator, User

T = FirmwareTargetStatus
FINAL = frozenset({T.REFUSED, T.DOWNLOAD_FAILED, T.INSTALLED, T.INSTALLATION_FAILED})
# The order a charger goes through; a report never moves a target backwards.
STEP = {
    T.PENDING: 0,
    T.SENT: 1,
    T.DOWNLOADING: 2,
    T.DOWNLOADED: 3,
    T.INSTALLING: 4,
}
CHARGER_STATUSES = {
    "Downloading": T.DOWNLOADING,
    "Downloaded": T.DOWNLOADED,
    "DownloadFailed": T.DOWNLOAD_FAILED,
    "Installing": T.INSTALLING,
    "Installed": T.INSTALLED,
    "InstallationFailed": T.INSTALLATION_FAILED,
}
MAX_TARGETS = 1000


def campaigns_for(user: User) -> QuerySet[FirmwareCampaign]:
    return FirmwareCampaign.objects.filter(operator__in=selectors.operators_for(user)).select_related(
        "operator", "created_by"
    )


def campaign_create(
    *,
    operator: Operator,
    name: str,
    location: str,
    charge_points: Iterable[ChargePoint],
    retrieve_at: dt.datetime | None = None,
    firmware_version: str = "",
    retries: int | None = None,
    retry_interval: int | None = None,
    created_by: User | None = None,
) -> FirmwareCampaign:
    """A draft campaign for chosen chargers, all of them the operator's."""
    name = (name or "").strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Name the campaign."
    if not (location or "").lower().startswith(("http://", "https://", "ftp://", "ftps://")):
        errors["location"] = "Where the chargers download the firmware: an http(s) or ftp(s) URL."
    charge_points = list(dict.fromkeys(charge_points))
    if not charge_points:
        errors["charge_points"] = "Choose at least one charge point."
    elif len(charge_points) > MAX_TARGETS:
        errors["charge_points"] = f"At most {MAX_TARGETS} charge points in one campaign."
    elif any(cp.operator_id != operator.pk for cp in charge_points):
        errors["charge_points"] = "Every charge point must be one of the operator's."
    if retrieve_at is not None and timezone.is_naive(retrieve_at):
        errors["retrieve_at"] = "Give the time with its time zone."
    if retries is not None and retries < 0:
        errors["retries"] = "Zero or more."
    if retry_interval is not None and retry_interval < 0:
        errors["retry_interval"] = "Zero or more seconds."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        campaign = FirmwareCampaign.objects.create(
            operator=operator,
            name=name[:200],
            firmware_version=firmware_version.strip()[:50],
            location=location.strip(),
            retrieve_at=retrieve_at or timezone.now(),
            retries=retries,
            retry_interval=retry_interval,
            created_by=created_by,
        )
        FirmwareCampaignTarget.objects.bulk_create(
            FirmwareCampaignTarget(campaign=campaign, charge_point=cp) for cp in charge_points
        )
    return campaign


def _payload(campaign: FirmwareCampaign) -> dict:
    payload: dict = {
        "location": campaign.location,
        "retrieveDate": campaign.retrieve_at.astimezone(dt.UTC).isoformat(),
    }
    if campaign.retries is not None:
        payload["retries"] = campaign.retries
    if campaign.retry_interval is not None:
        payload["retryInterval"] = campaign.retry_interval
    return payload


def campaign_start(*, campaign: FirmwareCampaign, timeout: float | None = None) -> FirmwareCampaign:
    """Send UpdateFirmware to every target at once. A target is sent when its charger took
    the command, refused when it did not (rejected, error, no answer, offline)."""
    with transaction.atomic():
        locked = FirmwareCampaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status != CampaignStatus.DRAFT:
            raise ValidationError(
                {"status": f"The campaign is {locked.get_status_display().lower()} already."}
            )
        locked.status = CampaignStatus.RUNNING
        locked.save(update_fields=["status"])
    # Running before anything is sent: the chargers' first reports find their campaign.
    targets = list(locked.targets.select_related("charge_point"))
    kwargs = {"requested_by": locked.created_by}
    if timeout:
        kwargs["timeout"] = timeout
    commands = send_command_many(
        [t.charge_point for t in targets], "UpdateFirmware", _payload(locked), **kwargs
    )
    now = timezone.now()
    for target, command in zip(targets, commands, strict=True):
        FirmwareCampaignTarget.objects.filter(pk=target.pk).update(command=command)
        outcome = T.SENT if command.status == CommandStatus.ACCEPTED else T.REFUSED
        # A charger's report may have come before the command's answer was handled here.
        FirmwareCampaignTarget.objects.filter(pk=target.pk, status=T.PENDING).update(
            status=outcome, status_at=now
        )
    finish_if_done(campaign=locked)
    locked.refresh_from_db()
    return locked


def campaign_cancel(*, campaign: FirmwareCampaign) -> FirmwareCampaign:
    """Stop following a campaign (a charger that has the command may still install it)."""
    with transaction.atomic():
        locked = FirmwareCampaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status in (CampaignStatus.FINISHED, CampaignStatus.CANCELLED):
            raise ValidationError(
                {"status": f"The campaign is {locked.get_status_display().lower()} already."}
            )
        locked.status = CampaignStatus.CANCELLED
        locked.save(update_fields=["status"])
    return locked


def finish_if_done(*, campaign: FirmwareCampaign) -> bool:
    """A running campaign whose every target is final is finished."""
    if campaign.targets.exclude(status__in=FINAL).exists():
        return False
    return bool(
        FirmwareCampaign.objects.filter(pk=campaign.pk, status=CampaignStatus.RUNNING).update(
            status=CampaignStatus.FINISHED
        )
    )


def on_firmware_status(*, charge_point_id: int, status: str, at: dt.datetime | None = None) -> None:
    """A FirmwareStatusNotification moves the charger's target in its running campaign(s)."""
    new = CHARGER_STATUSES.get(status)
    if new is None:  # Idle, or a status of a later protocol
        return
    at = at or timezone.now()
    targets = list(
        FirmwareCampaignTarget.objects.filter(
            charge_point_id=charge_point_id, campaign__status=CampaignStatus.RUNNING
        )
        .exclude(status__in=FINAL)
        .select_related("campaign")
    )
    for target in targets:
        if new not in FINAL and STEP.get(new, 0) < STEP.get(target.status, 0):
            continue
        changed = (
            FirmwareCampaignTarget.objects.filter(pk=target.pk, status=target.status)
            .exclude(status__in=FINAL)
            .update(status=new, status_at=at)
        )
        if changed and new in FINAL:
            finish_if_done(campaign=target.campaign)


def progress(campaign: FirmwareCampaign) -> dict[str, int]:
    """Targets per status, and how many are done."""
    counts = {s.value: 0 for s in T}
    for status in campaign.targets.values_list("status", flat=True):
        counts[status] += 1
    total = sum(counts.values())
    done = sum(counts[s] for s in FINAL)
    return {"total": total, "done": done, "installed": counts[T.INSTALLED], **counts}
