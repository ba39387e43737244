"""The live view: a WebSocket at ``/ws/live/`` that tells operator pages what changed, and
the event subscribers that feed it.

Operator staff (signed in with the portal's session cookie) join ``live.operator.<id>``: a
connector's status and a charge point going online or offline go there. A superuser joins
``live.all``, where every operator's events also go. A charge point page connects with
``?charge_point=<pk>`` and also joins ``live.chargepoint.<pk>``, where its meter values and
session ends go: these are many, and only that page wants them. Anyone else is refused
before the socket is accepted.

Subscribers run after commit in the process that published, often a worker thread of the
OCPP consumer: each does at most one small query and one channel-layer send, and never
raises (``config.events`` would log it, but an event is not worth an error).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

from asgiref.sync import SyncToAsync, async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http.request import validate_host
from django.utils.dateparse import parse_datetime

from config import events

from .models import ConnectorStatus

logger = logging.getLogger("chargedesk.live")

GROUP_ALL = "live.all"
STATUS_LABELS = dict(ConnectorStatus.choices)
_sending: set[asyncio.Task] = set()  # sends scheduled on a running loop, kept until done


def operator_group(operator_id: int) -> str:
    return f"live.operator.{operator_id}"


def charge_point_group(charge_point_id: int) -> str:
    return f"live.chargepoint.{charge_point_id}"


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _same_origin(scope) -> bool:
    """A browser always sends Origin with a WebSocket; another site's page must not ride
    on the operator's cookie. Our own pages come from the host the socket is opened on (or
    one named in ALLOWED_HOSTS or CSRF_TRUSTED_ORIGINS, behind a proxy that rewrites Host).
    Clients without an Origin (tests, tools) are no browser."""
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    if parts.netloc.lower() == (_header(scope, b"host") or "").lower():
        return True
    named = [host for host in settings.ALLOWED_HOSTS if host != "*"]
    return bool(parts.hostname and validate_host(parts.hostname, named)) or (
        origin in settings.CSRF_TRUSTED_ORIGINS
    )


class LiveConsumer(AsyncJsonWebsocketConsumer):
    live_groups: list[str]

    async def send(self, text_data=None, bytes_data=None, close=False):
        """An update for a page closed meanwhile is dropped (the server raises an OSError);
        the queued disconnect then leaves the groups."""
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except OSError:
            logger.debug("live page gone before an update could be sent")

    async def send_json(self, content, close=False):
        # The base class's send_json calls the plain consumer's send, past the override above.
        await self.send(text_data=await self.encode_json(content), close=close)

    async def connect(self):
        self.live_groups = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_operator_staff:
            await self.close()
            return
        if not _same_origin(self.scope):
            logger.warning("live socket of %s refused: Origin is another site", user)
            await self.close()
            return
        groups = (
            [GROUP_ALL] if user.is_superuser or not user.operator_id else [operator_group(user.operator_id)]
        )
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        wanted = (query.get("charge_point") or [""])[0]
        if wanted.isdigit():
            if not await self._may_watch(user, int(wanted)):
                await self.close()
                return
            groups.append(charge_point_group(int(wanted)))
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.live_groups = groups
        await self.accept()

    @database_sync_to_async
    def _may_watch(self, user, charge_point_id: int) -> bool:
        from .selectors import charge_points_for

        return charge_points_for(user).filter(pk=charge_point_id).exists()

    async def disconnect(self, code):
        for group in self.live_groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"event": "pong"})

    async def live_event(self, event):
        await self.send_json(event["data"])


# --- Event subscribers ----------------------------------------------------------------------


def _send(groups: list[str], data: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "live.event", "data": data}

    async def send_all():
        try:
            for group in groups:
                await layer.group_send(group, message)
        except Exception as error:  # a live update is not worth an error anywhere else
            # One line each (no traceback): during a Redis outage every update comes here.
            logger.warning("live update %s not sent (%r)", data.get("event"), error)

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        main_loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
        if main_loop is not None and main_loop.is_running():
            # A worker thread of the ASGI server (the OCPP handlers): hand the send to the
            # server's loop and go on; waiting for it would hold the thread the next charger
            # message needs.
            main_loop.call_soon_threadsafe(_schedule, main_loop, send_all)
        else:
            async_to_sync(send_all)()
    else:  # published from code running inside an event loop: no blocking there
        _schedule(loop, send_all)


def _schedule(loop, send_all) -> None:
    task = loop.create_task(send_all())
    _sending.add(task)
    task.add_done_callback(_sending.discard)


def _operator_groups(operator_id: int | None) -> list[str]:
    return [GROUP_ALL, operator_group(operator_id)] if operator_id else [GROUP_ALL]


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def connector_status_changed(
    *, charge_point_id, operator_id, connector_id, status, previous_status="", error_code="", at=None, **_
):
    _send(
        _operator_groups(operator_id),
        {
            "event": "connector.status_changed",
            "charge_point_id": charge_point_id,
            "connector_id": connector_id,
            "status": status,
            "label": STATUS_LABELS.get(status, status),
            "previous_status": previous_status,
            "error_code": error_code,
            "at": at,
        },
    )


def charge_point_online(*, charge_point_id, operator_id, at=None, **_):
    _send(
        _operator_groups(operator_id),
        {"event": "charge_point.online", "charge_point_id": charge_point_id, "at": at},
    )


def charge_point_offline(*, charge_point_id, operator_id, at=None, **_):
    _send(
        _operator_groups(operator_id),
        {"event": "charge_point.offline", "charge_point_id": charge_point_id, "at": at},
    )


@functools.cache
def _running_figures_sql(by_transaction: bool) -> str:
    """The session's running figures, as raw SQL built once from the model: this runs every
    few seconds for every charging connector, and the ORM's query building would be most of it."""
    from sessions.models import Transaction

    opts = Transaction._meta
    qn = connection.ops.quote_name
    names = ("id", "connector_number", "meter_start", "last_meter_wh", "last_power_w", "last_meter_at")
    columns = ", ".join(qn(opts.get_field(n).column) for n in names)
    cp = qn(opts.get_field("charge_point").column)
    where = (
        f"{qn(opts.pk.column)} = %s AND {cp} = %s"
        if by_transaction
        else f"{cp} = %s AND {qn(opts.get_field('connector_number').column)} = %s "
        f"AND {qn(opts.get_field('status').column)} = %s "
        f"ORDER BY {qn(opts.get_field('started_at').column)} DESC, {qn(opts.pk.column)} DESC"
    )
    return f"SELECT {columns} FROM {qn(opts.db_table)} WHERE {where} LIMIT 1"  # noqa: S608


def meter_values_recorded(*, charge_point_id, connector_id, transaction_id=None, figures=None, **_):
    """The session's running power and energy, from the figures the meter values moved (in
    the event when the store knew them, else read)."""
    from sessions.models import TransactionStatus

    if figures is not None and transaction_id is not None:
        tx = {"pk": transaction_id, "connector_number": connector_id, **figures}
        _send_figures(charge_point_id, tx)
        return
    if transaction_id is not None:
        sql, params = _running_figures_sql(True), [transaction_id, charge_point_id]
    else:
        sql = _running_figures_sql(False)
        params = [charge_point_id, connector_id, TransactionStatus.ACTIVE]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    fields = ("pk", "connector_number", "meter_start", "last_meter_wh", "last_power_w", "last_meter_at")
    tx = None if row is None else dict(zip(fields, row, strict=True))
    if tx is not None:  # raw rows skip the ORM's converters (SQLite hands back text and floats)
        for name in ("meter_start", "last_meter_wh", "last_power_w"):
            if tx[name] is not None:
                tx[name] = Decimal(str(tx[name]))
        at = tx["last_meter_at"]
        if isinstance(at, str):
            at = parse_datetime(at)
        if at is not None and at.tzinfo is None:  # stored as UTC
            at = at.replace(tzinfo=dt.UTC)
        tx["last_meter_at"] = at
    if tx is None:
        return
    _send_figures(charge_point_id, tx)


def _send_figures(charge_point_id: int, tx: dict) -> None:
    energy_wh = None
    if tx["last_meter_wh"] is not None and tx["meter_start"] is not None:
        energy_wh = tx["last_meter_wh"] - tx["meter_start"]
    _send(
        [charge_point_group(charge_point_id)],
        {
            "event": "meter_values.recorded",
            "charge_point_id": charge_point_id,
            "connector_id": tx["connector_number"],
            "transaction_id": tx["pk"],
            "power_w": _number(tx["last_power_w"]),
            "energy_kwh": None if energy_wh is None else round(float(energy_wh) / 1000, 3),
            "at": tx["last_meter_at"].isoformat() if tx["last_meter_at"] else None,
        },
    )


def session_stopped(*, transaction_id, charge_point_id, connector_id, **_):
    _send(
        [charge_point_group(charge_point_id)],
        {
            "event": "session.stopped",
            "charge_point_id": charge_point_id,
            "connector_id": connector_id,
            "transaction_id": transaction_id,
        },
    )


def session_started(*, transaction_id, charge_point_id, connector_id, **_):
    _send(
        [charge_point_group(charge_point_id)],
        {
            "event": "session.started",
            "charge_point_id": charge_point_id,
            "connector_id": connector_id,
            "transaction_id": transaction_id,
        },
    )


SUBSCRIPTIONS = {
    "connector.status_changed": connector_status_changed,
    "charge_point.online": charge_point_online,
    "charge_point.offline": charge_point_offline,
    "meter_values.recorded": meter_values_recorded,
    "session.started": session_started,
    "session.stopped": session_stopped,
}


def register() -> None:
    """Subscribe the live view to the events it shows (idempotent)."""
    for name, subscriber in SUBSCRIPTIONS.items():
        events.subscribe(name)(subscriber)
