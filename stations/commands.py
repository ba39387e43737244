"""The command gateway: ask a charger to do something, from any process.

``send_command`` records a ``Command``, hands it through the channel layer to the process
holding the charger's socket (group ``chargepoint.<pk>``), waits for the answer and returns
the row with its outcome: accepted, rejected, error, timed out, or the charger offline.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from .models import ChargePoint, Command, CommandStatus, ProtocolVersion
from .ocpp import protocol, v16

ADAPTERS = {ProtocolVersion.OCPP16: v16}


def validate_command(charge_point: ChargePoint, action: str, payload: dict) -> None:
    """A command the charger's protocol does not have, or a payload its schema refuses, is
    the caller's mistake: a ValidationError naming what is wrong."""
    adapter = ADAPTERS.get(charge_point.protocol)
    if adapter is None:
        raise ValidationError(
            {"action": f"Commands to {charge_point.protocol} chargers are not supported yet."}
        )
    if action not in adapter.CENTRAL_SYSTEM_ACTIONS:
        raise ValidationError(
            {"action": f"{action!r} is not an {charge_point.get_protocol_display()} command."}
        )
    try:
        protocol.validate(charge_point.protocol, action, payload)
    except protocol.CallError as error:
        raise ValidationError({"payload": error.description}) from error


def _create(charge_point: ChargePoint, action: str, payload: dict, requested_by, batch) -> Command:
    validate_command(charge_point, action, payload)
    command = Command.objects.create(
        charge_point=charge_point, action=action, payload=payload, requested_by=requested_by, batch=batch
    )
    if not ChargePoint.objects.filter(pk=charge_point.pk, is_connected=True).exists():
        command.status = CommandStatus.OFFLINE
        command.completed_at = timezone.now()
        command.save(update_fields=["status", "completed_at"])
    return command


def _expire(command_id) -> Command:
    Command.objects.filter(pk=command_id, status=CommandStatus.PENDING).update(
        status=CommandStatus.TIMEOUT,
        error_description="No process holding the charger's connection answered in time.",
        completed_at=timezone.now(),
    )
    return Command.objects.get(pk=command_id)


async def send_command_async(
    charge_point: ChargePoint,
    action: str,
    payload: dict,
    *,
    timeout: float | None = None,
    requested_by=None,
    batch: uuid.UUID | None = None,
) -> Command:
    timeout = timeout or settings.OCPP_COMMAND_TIMEOUT
    command = await sync_to_async(_create)(charge_point, action, payload, requested_by, batch)
    if command.status == CommandStatus.OFFLINE:
        return command
    layer = get_channel_layer()
    reply_channel = await layer.new_channel()
    await layer.group_send(
        f"chargepoint.{charge_point.pk}",
        {
            "type": "ocpp.command",
            "command_id": str(command.pk),
            "action": action,
            "payload": payload,
            "timeout": timeout,
            "reply_channel": reply_channel,
        },
    )
    try:
        # The consumer answers within `timeout`; the margin covers the channel layer.
        await asyncio.wait_for(layer.receive(reply_channel), timeout + 5)
    except TimeoutError:
        return await sync_to_async(_expire)(command.pk)
    return await sync_to_async(Command.objects.get)(pk=command.pk)


def send_command(charge_point: ChargePoint, action: str, payload: dict, **kwargs) -> Command:
    """Synchronous form, for views, the API, management commands and Celery tasks."""
    return async_to_sync(send_command_async)(charge_point, action, payload, **kwargs)


def send_command_many(
    charge_points: Iterable[ChargePoint], action: str, payload: dict, **kwargs
) -> list[Command]:
    """The same command to many chargers at once, concurrently, as one batch."""

    async def run():
        batch = uuid.uuid4()
        return await asyncio.gather(
            *(send_command_async(cp, action, payload, batch=batch, **kwargs) for cp in charge_points)
        )

    return list(async_to_sync(run)())
