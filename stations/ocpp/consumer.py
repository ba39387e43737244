"""The Channels consumer that holds one charger's OCPP WebSocket.

Per frame: parse (orjson), check the official schema (jsonschema-rs), run the version's
handler in a database thread inside a transaction that also logs the frame (shared with
other connections' frames by the group-commit writer), and only then answer.

Commands for the charger arrive from any process through the channel layer
group ``chargepoint.<pk>``; one CALL is in flight at a time (OCPP-J), the rest wait in order.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import contextvars
import functools
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings
from django.utils import timezone

from config import logs
from config import metrics as m
from stations import charger_auth, services
from stations.models import Command, CommandStatus, Direction

from . import handshakes, protocol, v16, writer
from .protocol import CALL, CALLERROR, CALLRESULT, CallError

logger = logging.getLogger("chargedesk.ocpp")

SUPPORTED = {v16.PROTOCOL: v16}
# last_seen_at is written at most this often per connection (Heartbeat always writes it).
SEEN_WRITE_EVERY = 30
# Charger words for a command that was carried out (or will be).
ACCEPTED_WORDS = frozenset({"Accepted", "Unlocked", "Scheduled", "RebootRequired"})
# Our frames by their MessageTypeId, the character after "[" (orjson writes no spaces).
SENT_TYPES = {"2": "CALL", "3": "CALLRESULT", "4": "CALLERROR"}


def group_name(charge_point_id: int) -> str:
    return f"chargepoint.{charge_point_id}"


# The database work of all connections runs in this pool: each thread keeps one database
# connection. Frames go through the group-commit writer (writer.py); connecting and
# disconnecting, rarer and partly slow on purpose (the password hash), run here directly.
_executor = ThreadPoolExecutor(max_workers=settings.OCPP_DB_THREADS, thread_name_prefix="ocpp-db")


def _write(fn, *args):
    """Run ``fn(*args)`` in a database thread inside the current group commit; await it.
    It runs in a copy of the caller's context: its log records name the caller's charger."""
    run_in_context = contextvars.copy_context().run
    return writer.writer_for(_executor, settings.OCPP_WRITER_THREADS).run(run_in_context, fn, *args)


def _retrying(fn):
    """Run ``fn`` in a worker thread; on a broken database connection (a restarted server)
    drop the thread's connections and try once more."""

    return sync_to_async(functools.partial(writer.retrying, fn), thread_sensitive=False, executor=_executor)


def basic_auth(headers) -> tuple[str | None, str | None]:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, encoded = value.decode("latin-1").partition(" ")
            if scheme.lower() != "basic":
                return None, None
            try:
                user, _, password = (
                    base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                return None, None
            return user, password
    return None, None


class OcppConsumer(AsyncWebsocketConsumer):
    ctx: v16.Context | None = None
    # Set when the channel layer failed: Redis may have restarted without our group in it.
    rejoin = False

    async def __call__(self, scope, receive, send):
        """As Channels' own, but with a channel-layer receive that outlives a Redis outage. In
        Channels' a Redis error escapes the receive loop and ends the consumer without its
        ``disconnect()``: the charger's socket is dropped although nothing it says needs Redis,
        it stays shown online and its commands in flight stay pending for ever."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.base_send = send
        with contextlib.suppress(StopConsumer):
            await await_many_dispatch([receive, self._channel_receive], self.dispatch)

    async def _channel_receive(self):
        """The next message for this connection from the channel layer, waiting out a Redis
        outage (backing off), then joining the charger's group again: a restarted Redis has
        forgotten it, and commands for the charger would reach nobody."""
        delay = 0.1
        while True:
            try:
                if self.rejoin and self.ctx is not None:
                    await self.channel_layer.group_add(self.group, self.channel_name)
                    self.rejoin = False
                    logger.info("%s: channel layer back; rejoined %s", self.identity, self.group)
                return await self.channel_layer.receive(self.channel_name)
            except Exception as error:  # CancelledError (closing) is no Exception: it ends us
                logger.warning(
                    "%s: channel layer unavailable (%r); retrying in %.1f s",
                    getattr(self, "identity", "-"),
                    error,
                    delay,
                )
                self.rejoin = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _layer(self, what: str, call) -> bool:
        """Await a channel-layer call whose failure must not end this connection (Redis down:
        the charger's own messages need only the database)."""
        try:
            await call
            return True
        except Exception as error:
            logger.warning("%s: channel layer unavailable for %s (%r)", self.identity, what, error)
            self.rejoin = True
            return False

    async def dispatch(self, message):
        """As Channels' own, without its per-message ``close_old_connections`` hop to a thread:
        this consumer never touches the database from the loop, and its database threads keep
        their connections (a broken one is replaced by the writer's retry)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def send(self, text_data=None, bytes_data=None, close=False):
        """As Channels' own, but a frame for a charger that has just gone is dropped: the server
        raises (uvicorn's ClientDisconnected is an OSError) when the socket closed while we were
        storing its last message, and an error escaping here would end this consumer without
        its ``disconnect()`` (the charger would stay online, its commands unanswered). The
        disconnect itself is already queued and comes next."""
        if text_data:
            m.OCPP_SENT.labels(SENT_TYPES.get(text_data[1:2], "other")).inc()
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except OSError:
            logger.info("%s: connection gone before our frame could be sent", self.identity)

    # --- Connection ------------------------------------------------------------------------

    async def connect(self):
        # A reconnecting fleet waits its turn here (handshakes.py), not in the database threads.
        async with handshakes.slot():
            await self._connect()

    async def _connect(self):
        kwargs = self.scope["url_route"]["kwargs"]
        self.identity = kwargs["identity"]
        logs.bind_charge_point(self.identity)
        offered = self.scope.get("subprotocols") or []
        self.subprotocol = next((p for p in offered if p in SUPPORTED), None)
        if self.subprotocol is None:
            logger.warning("refused %s: no supported subprotocol in %s", self.identity, offered)
            m.OCPP_REFUSED.labels("no supported subprotocol").inc()
            await self.close()
            return
        user, password = basic_auth(self.scope.get("headers", []))
        client_ip = (self.scope.get("client") or (None,))[0]
        if user is not None and user != self.identity:
            logger.warning("refused %s: Basic auth user %r is another charge point", self.identity, user)
            m.OCPP_REFUSED.labels("basic auth user is another charge point").inc()
            await _retrying(charger_auth.record_failure)(
                identity=self.identity, ip=client_ip, reason=f"Basic auth user {user!r} is another one"
            )
            await self.close()
            return
        admission = await _retrying(services.charger_admit)(
            identity=self.identity,
            password=password,
            operator_slug=kwargs.get("operator"),
            client_ip=client_ip,
        )
        if not admission.admitted:
            logger.warning("refused %s: %s", self.identity, admission.reason)
            m.OCPP_REFUSED.labels(admission.reason).inc()
            await self.close()
            return
        cp = admission.charge_point
        logs.bind_charge_point(cp.identity, cp.pk)
        self.adapter = SUPPORTED[self.subprotocol]
        self.ctx = self.adapter.Context(cp.pk, cp.identity, cp.operator_id, cp.registration_status)
        self.group = group_name(cp.pk)
        self.outbox: deque[dict] = deque()
        self.in_flight: dict | None = None
        self.max_frame = settings.OCPP_MAX_FRAME_BYTES
        # Replace any older connection of this charger, wherever it is held.
        # Without Redis the charger is still admitted; the group is joined once Redis is back.
        takeover = {"type": "ocpp.takeover", "channel": self.channel_name}
        if await self._layer("takeover", self.channel_layer.group_send(self.group, takeover)):
            await self._layer("group_add", self.channel_layer.group_add(self.group, self.channel_name))
        # Online before the handshake completes: a command sent the moment the charger is
        # connected must find it so.
        self.connected_at = timezone.now()
        self.seen_written = self.connected_at
        await _retrying(services.charger_connected)(
            charge_point_id=cp.pk, operator_id=cp.operator_id, at=self.connected_at
        )
        await self.accept(self.subprotocol)
        m.OCPP_CONNECTIONS.inc()
        logger.info("connected %s (%s, %s)", self.identity, self.subprotocol, admission.reason)

    async def disconnect(self, code):
        if self.ctx is None:
            return
        m.OCPP_CONNECTIONS.dec()
        # The database first: whatever the channel layer does next (Redis down: errors, or a
        # wait until its timeout, during which the server may cancel us), the charger is shown
        # offline and its commands in flight are closed.
        pending = ([self.in_flight] if self.in_flight else []) + list(self.outbox)
        if self.in_flight:
            self.in_flight["timer"].cancel()
        self.in_flight, self.outbox = None, deque()
        try:
            await _retrying(services.charger_disconnected)(
                charge_point_id=self.ctx.charge_point_id,
                operator_id=self.ctx.operator_id,
                connected_at=self.connected_at,
                at=timezone.now(),
            )
        except Exception:  # the database down: the silent-charger sweep marks it offline later
            logger.exception("%s: could not record the disconnect", self.identity)
        for event in pending:
            await self._finish(
                event, CommandStatus.OFFLINE, error="Connection closed before the charger answered."
            )
        logger.info("disconnected %s (code %s)", self.identity, code)
        # Redis down must not end this with an error: the group membership expires anyway.
        await self._layer("group_discard", self.channel_layer.group_discard(self.group, self.channel_name))

    async def ocpp_takeover(self, event):
        if event["channel"] != self.channel_name:
            logger.info("%s reconnected elsewhere; closing this connection", self.identity)
            await self.close(code=4000)

    # --- Frames from the charger -----------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        received_at = timezone.now()
        if text_data is None:
            m.OCPP_RECEIVED.labels("invalid", "").inc()
            await self._refuse(
                CallError("FormationViolation", "OCPP-J frames are text, not binary."), "", received_at
            )
            return
        if len(text_data) > self.max_frame:
            m.OCPP_RECEIVED.labels("invalid", "").inc()
            error = CallError("FormationViolation", f"Frame larger than {self.max_frame} bytes refused.")
            await self._refuse(error, text_data[:1000], received_at)
            return
        try:
            frame = protocol.parse(text_data)
        except CallError as error:
            m.OCPP_RECEIVED.labels("invalid", "").inc()
            await self._refuse(error, text_data, received_at)
            return
        # A charger's action names go into a label only when known: labels must stay few.
        action = frame.action if frame.action in self.adapter.HANDLERS else ""
        m.OCPP_RECEIVED.labels(m.MESSAGE_TYPES[frame.message_type], action).inc()
        if frame.message_type == CALL:
            await self._handle_call(frame, text_data, received_at)
        else:
            await self._handle_answer(frame, text_data, received_at)

    async def _handle_call(self, frame: protocol.Frame, raw: str, received_at) -> None:
        self.ctx.unique_id = frame.unique_id
        try:
            self.adapter.check_allowed(self.ctx, frame.action)
            protocol.validate(self.subprotocol, frame.action, frame.payload, unique_id=frame.unique_id)
            reply = await _write(self._process_call, frame, raw, received_at)
        except CallError as error:
            error.unique_id = frame.unique_id
            await self._refuse(error, raw, received_at, frame)
            return
        except Exception:
            logger.exception("%s: %s failed", self.identity, frame.action)
            error = CallError("InternalError", "The central system could not process this message.")
            error.unique_id = frame.unique_id
            await self._refuse(error, raw, received_at, frame)
            return
        await self.send(reply)

    def _process_call(self, frame: protocol.Frame, raw: str, received_at) -> str:
        """In a database thread, inside the writer's transaction: handle, check our own
        answer, log both frames. The answer goes out once the transaction commits."""
        handler = self.adapter.HANDLERS[frame.action]
        payload = handler(self.ctx, frame.payload)
        protocol.validate(self.subprotocol, frame.action, payload, response=True, unique_id=frame.unique_id)
        reply = protocol.dumps([CALLRESULT, frame.unique_id, payload])
        self._log_rows(
            (Direction.IN, CALL, frame.unique_id, frame.action, raw, received_at),
            (Direction.OUT, CALLRESULT, frame.unique_id, frame.action, reply, timezone.now()),
        )
        since_written = (received_at - self.seen_written).total_seconds()
        if frame.action != "Heartbeat" and since_written > SEEN_WRITE_EVERY:
            services.charger_seen(charge_point_id=self.ctx.charge_point_id, at=received_at)
            self.seen_written = received_at
        return reply

    async def _refuse(
        self, error: CallError, raw: str, received_at, frame: protocol.Frame | None = None
    ) -> None:
        reply = error.frame()
        logger.info("%s: %s %s", self.identity, error.code, error.description)
        m.OCPP_CALL_ERRORS.labels(error.code).inc()
        action = frame.action if frame else ""
        message_type = frame.message_type if frame else 0
        if "\x00" in raw:  # no JSON (so refused), and PostgreSQL text cannot hold it: logged escaped
            raw = raw.replace("\x00", "\\u0000")
        try:
            await _write(
                self._log_rows,
                (Direction.IN, message_type, error.unique_id, action, raw, received_at),
                (Direction.OUT, CALLERROR, error.unique_id, action, reply, timezone.now()),
            )
        except Exception as failure:
            # The database is gone (often why the frame failed): refuse it unlogged rather than
            # leave the charger waiting and end this connection with the error.
            logger.warning("%s: could not log a refused frame (%r)", self.identity, failure)
        await self.send(reply)

    def _log_rows(self, *rows) -> None:
        writer.log_rows(self.ctx.charge_point_id, *rows)

    # --- Commands to the charger -----------------------------------------------------------

    async def ocpp_command(self, event):
        """From send_command(): queue a CALL; it goes out when the one in flight is answered."""
        self.outbox.append(event)
        await self._send_next()

    async def _send_next(self) -> None:
        while self.in_flight is None and self.outbox:
            event = self.outbox.popleft()
            command_id = event["command_id"]
            raw = protocol.dumps([CALL, command_id, event["action"], event["payload"]])
            loop = asyncio.get_running_loop()
            event["timer"] = loop.call_later(
                event["timeout"], lambda cid=command_id: asyncio.ensure_future(self._expire(cid))
            )
            self.in_flight = event
            await self.send(raw)
            await _write(self._mark_sent, command_id, event["action"], raw)

    def _mark_sent(self, command_id: str, action: str, raw: str) -> None:
        now = timezone.now()
        Command.objects.filter(pk=command_id).update(sent_at=now)
        self._log_rows((Direction.OUT, CALL, command_id, action, raw, now))

    async def _handle_answer(self, frame: protocol.Frame, raw: str, received_at) -> None:
        event = self.in_flight
        if event is None or frame.unique_id != event["command_id"]:
            logger.info("%s: answer to unknown or expired call %s ignored", self.identity, frame.unique_id)
            await _write(
                self._log_rows, (Direction.IN, frame.message_type, frame.unique_id, "", raw, received_at)
            )
            return
        event["timer"].cancel()
        self.in_flight = None
        await _write(
            self._log_rows,
            (Direction.IN, frame.message_type, frame.unique_id, event["action"], raw, received_at),
        )
        if frame.message_type == CALLERROR:
            await self._finish(
                event, CommandStatus.ERROR, code=frame.error_code, error=frame.error_description
            )
        else:
            try:
                protocol.validate(self.subprotocol, event["action"], frame.payload, response=True)
            except CallError as error:
                await self._finish(event, CommandStatus.ERROR, code=error.code, error=error.description)
            else:
                word = frame.payload.get("status")
                status = (
                    CommandStatus.ACCEPTED
                    if word is None or word in ACCEPTED_WORDS
                    else CommandStatus.REJECTED
                )
                await self._finish(event, status, response=frame.payload)
        await self._send_next()

    async def _expire(self, command_id: str) -> None:
        if self.in_flight is None or self.in_flight["command_id"] != command_id:
            return
        event, self.in_flight = self.in_flight, None
        await self._finish(event, CommandStatus.TIMEOUT, error="The charger did not answer in time.")
        await self._send_next()

    async def _finish(
        self, event: dict, status: str, *, response=None, code: str = "", error: str = ""
    ) -> None:
        m.OCPP_COMMANDS.labels(event["action"], status).inc()
        try:
            await _write(self._store_result, event, status, response, code, error)
        except Exception:
            logger.exception("%s: could not store the result of %s", self.identity, event["action"])
        if event.get("reply_channel"):  # the caller also polls the stored row
            await self._layer(
                "command result",
                self.channel_layer.send(
                    event["reply_channel"],
                    {"type": "ocpp.result", "command_id": event["command_id"], "status": status},
                ),
            )

    def _store_result(self, event: dict, status: str, response, code: str, error: str) -> None:
        updated = Command.objects.filter(pk=event["command_id"], status=CommandStatus.PENDING).update(
            status=status,
            response=response,
            error_code=code[:50],
            error_description=error[:255],
            completed_at=timezone.now(),
        )
        handler = self.adapter.RESULT_HANDLERS.get(event["action"])
        if updated and response is not None and handler is not None:
            handler(self.ctx, event["payload"], response)
