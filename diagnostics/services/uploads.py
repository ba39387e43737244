"""Remote diagnostics: ask a charger for its log file (GetDiagnostics) and take the upload.

The charger is told to upload to ``/diagnostics/upload/<token>/``; only the upload carrying
a live, unused token is stored, once, up to the request's ``max_bytes``.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from diagnostics.models import LogUpload, LogUploadStatus
from stations import selectors
from stations.commands import send_command
from stations.models import ChargePoint, CommandStatus, User

SAFE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class UploadRefused(Exception):
    """Why an upload is not taken: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def uploads_for(user: User) -> QuerySet[LogUpload]:
    return LogUpload.objects.filter(charge_point__operator__in=selectors.operators_for(user)).select_related(
        "charge_point", "requested_by", "command"
    )


def upload_path(upload: LogUpload) -> str:
    return reverse("diagnostics:upload-receive", kwargs={"token": upload.token})


def upload_url(upload: LogUpload, *, base_url: str) -> str:
    return base_url.rstrip("/") + upload_path(upload)


def display_status(upload: LogUpload, now: dt.datetime | None = None) -> str:
    """The status to show: a request past its expiry without a file is expired."""
    if upload.status == LogUploadStatus.REQUESTED and upload.expires_at <= (now or timezone.now()):
        return LogUploadStatus.EXPIRED
    return upload.status


def upload_request(
    *,
    charge_point: ChargePoint,
    base_url: str,
    requested_by: User | None = None,
    start_time: dt.datetime | None = None,
    stop_time: dt.datetime | None = None,
    timeout: float | None = None,
) -> LogUpload:
    """Record the request with its token, then send GetDiagnostics naming our upload URL.
    A charger that refuses, errs, does not answer or is offline leaves the request failed."""
    if not base_url.startswith(("http://", "https://")):
        raise ValidationError({"base_url": "ChargeDesk's address must be an http(s) URL."})
    if start_time and stop_time and stop_time <= start_time:
        raise ValidationError({"stop_time": "The end of the period must be after its start."})
    ttl = dt.timedelta(seconds=settings.DIAGNOSTICS_UPLOAD_TTL_SECONDS)
    upload = LogUpload.objects.create(
        charge_point=charge_point,
        requested_by=requested_by,
        max_bytes=settings.DIAGNOSTICS_UPLOAD_MAX_BYTES,
        expires_at=timezone.now() + ttl,
    )
    payload: dict = {"location": upload_url(upload, base_url=base_url), "retries": 2, "retryInterval": 30}
    if start_time:
        payload["startTime"] = start_time.astimezone(dt.UTC).isoformat()
    if stop_time:
        payload["stopTime"] = stop_time.astimezone(dt.UTC).isoformat()
    kwargs = {"requested_by": requested_by}
    if timeout:
        kwargs["timeout"] = timeout
    command = send_command(charge_point, "GetDiagnostics", payload, **kwargs)
    if command.status != CommandStatus.ACCEPTED:
        # The upload may already have arrived (a quick charger): only a still waiting row fails.
        LogUpload.objects.filter(pk=upload.pk, status=LogUploadStatus.REQUESTED).update(
            status=LogUploadStatus.FAILED
        )
    elif isinstance(command.response, dict) and command.response.get("fileName"):
        LogUpload.objects.filter(pk=upload.pk, filename="").update(
            filename=_safe_name(command.response["fileName"])
        )
    LogUpload.objects.filter(pk=upload.pk).update(command=command)
    upload.refresh_from_db()
    return upload


def _safe_name(name: str) -> str:
    name = os.path.basename(str(name).replace("\\", "/")).strip() or "diagnostics.log"
    cleaned = "".join(c if c in SAFE_NAME_CHARS else "_" for c in name)
    return cleaned[:200]


def upload_check(token: str, *, now: dt.datetime | None = None) -> LogUpload:
    """The live request for ``token``: 404 for an unknown one, 410 once used or expired."""
    now = now or timezone.now()
    upload = LogUpload.objects.filter(token=token).first() if token else None
    if upload is None:
        raise UploadRefused(404, "No such upload.")
    if upload.status == LogUploadStatus.RECEIVED or upload.file:
        raise UploadRefused(410, "This upload was already received.")
    if upload.status == LogUploadStatus.EXPIRED or upload.expires_at <= now:
        LogUpload.objects.filter(pk=upload.pk, status=LogUploadStatus.REQUESTED).update(
            status=LogUploadStatus.EXPIRED
        )
        raise UploadRefused(410, "This upload link has expired.")
    return upload


def upload_receive(*, token: str, fileobj: IO[bytes], filename: str, size: int) -> LogUpload:
    """Store a received file on its request, once: a second upload with the token is 410."""
    with transaction.atomic():
        upload = upload_check(token)
        upload = LogUpload.objects.select_for_update().get(pk=upload.pk)
        if upload.status == LogUploadStatus.RECEIVED or upload.file:
            raise UploadRefused(410, "This upload was already received.")
        if size > upload.max_bytes:
            raise UploadRefused(413, f"The file is larger than {upload.max_bytes} bytes.")
        name = _safe_name(filename or upload.filename or f"{upload.charge_point.identity}-diagnostics.log")
        fileobj.seek(0)
        upload.file.save(name, File(fileobj), save=False)
        upload.filename = name
        upload.size = size
        upload.status = LogUploadStatus.RECEIVED
        upload.received_at = timezone.now()
        upload.save(update_fields=["file", "filename", "size", "status", "received_at"])
    return upload


def on_diagnostics_status(*, charge_point_id: int, status: str) -> None:
    """The charger's DiagnosticsStatusNotification: UploadFailed fails its newest request
    still waiting for a file (a file that arrives later is still taken)."""
    if status != "UploadFailed":
        return
    upload = (
        LogUpload.objects.filter(
            charge_point_id=charge_point_id, status=LogUploadStatus.REQUESTED, expires_at__gt=timezone.now()
        )
        .order_by("-requested_at", "-id")
        .first()
    )
    if upload is not None:
        LogUpload.objects.filter(pk=upload.pk, status=LogUploadStatus.REQUESTED).update(
            status=LogUploadStatus.FAILED
        )
