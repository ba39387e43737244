"""Group commit for the OCPP connections of one process.

Every frame a charger sends must be stored before it is answered, and a commit per frame
makes the database's WAL flush and the round trips the limit. So the connections hand their
database work to this writer: whatever is queued when a database thread is free goes in one
transaction (the frames' log rows in one INSERT at its end), one commit for all, and then
each frame is answered. Under light load a batch is one frame and nothing waits; under heavy
load batches grow on their own.

If any call of a batch fails (a CallError for bad input, a constraint, a lost connection),
the batch is rolled back and its calls run again one by one, each in its own transaction:
the failure stays with its own frame and the others are stored as if alone. The handlers
are idempotent (chargers re-send), so running one twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import SyncToAsync
from django.db import InterfaceError, OperationalError, connection, connections, transaction

from sessions.services import meter_values_deferred
from stations.models import OcppMessage

logger = logging.getLogger("chargedesk.ocpp")

# At most this many calls share one transaction.
MAX_BATCH = 200

_local = threading.local()


def log_rows(charge_point_id: int, *rows) -> None:
    """Append frames to the message log: (direction, message_type, unique_id, action, raw, at)
    each. Inside a batch they are written with the batch's other rows, before its commit."""
    pending = getattr(_local, "log", None)
    entries = [(charge_point_id, *row) for row in rows]
    if pending is not None:
        pending.extend(entries)
    else:
        _insert_log(entries)


LOG_FIELDS = ("charge_point", "direction", "message_type", "unique_id", "action", "raw", "created_at")


@functools.cache
def _log_sql(vendor: str, rows: int) -> str:
    """The statement writing the message log: on PostgreSQL a COPY (the raw frames go as they
    are, no quoting in Python), elsewhere an INSERT with a VALUES list."""
    opts = OcppMessage._meta
    qn = connection.ops.quote_name
    columns = ", ".join(qn(opts.get_field(name).column) for name in LOG_FIELDS)
    if vendor == "postgresql":
        return f"COPY {qn(opts.db_table)} ({columns}) FROM STDIN"
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * rows)
    return f"INSERT INTO {qn(opts.db_table)} ({columns}) VALUES {values}"  # noqa: S608 (model names)


def _insert_log(entries: list[tuple]) -> None:
    """One statement for all the rows, no ORM (this runs for every frame)."""
    if not entries:
        return
    adapt = connection.ops.adapt_datetimefield_value
    rows = [
        (cp_id, direction, message_type, unique_id[:64], action[:50], raw, adapt(at))
        for cp_id, direction, message_type, unique_id, action, raw, at in entries
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(_log_sql(connection.vendor, 0)) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.execute(_log_sql(connection.vendor, len(rows)), [v for row in rows for v in row])


def _in_transaction(calls: list[tuple[Callable, tuple]]) -> list[Any]:
    _local.log = []
    try:
        with transaction.atomic():
            with meter_values_deferred():
                results = [fn(*args) for fn, args in calls]
            _insert_log(_local.log)
        return results
    finally:
        _local.log = None


def _close_connections() -> None:
    for conn in connections.all(initialized_only=True):
        conn.close()


def retrying(fn: Callable, *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)``; once more on fresh connections if the database connection
    broke (a restarted server)."""
    try:
        return fn(*args, **kwargs)
    except (InterfaceError, OperationalError):
        _close_connections()
        return fn(*args, **kwargs)


def _one(fn: Callable, args: tuple) -> Any:
    """One call in its own transaction (retried on a broken connection)."""
    return retrying(_in_transaction, [(fn, args)])[0]


def _run_batch(loop, calls: list[tuple[Callable, tuple]]) -> list[tuple[bool, Any]]:
    """In a database thread: the calls in one transaction, or one by one if that fails."""
    # Events published by the calls hand their live updates to the server's loop.
    SyncToAsync.threadlocal.main_event_loop = loop
    if len(calls) > 1:
        try:
            return [(True, result) for result in _in_transaction(calls)]
        except (InterfaceError, OperationalError):
            _close_connections()
        except Exception as error:  # one of them is at fault: find which, alone
            logger.debug("batch of %d rolled back (%r); one by one", len(calls), error)
    outcomes: list[tuple[bool, Any]] = []
    for fn, args in calls:
        try:
            outcomes.append((True, _one(fn, args)))
        except Exception as error:
            outcomes.append((False, error))
    return outcomes


class BatchWriter:
    """The queue of one event loop; the database threads are shared by all loops."""

    def __init__(self, loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor, threads: int):
        self.loop = loop
        self.executor = executor
        self.threads = threads
        self.queue: deque[tuple[Callable, tuple, asyncio.Future]] = deque()
        self.busy = 0

    async def run(self, fn: Callable, *args) -> Any:
        future = self.loop.create_future()
        self.queue.append((fn, args, future))
        self._dispatch()
        return await future

    def _dispatch(self) -> None:
        while self.queue and self.busy < self.threads:
            size = min(len(self.queue), MAX_BATCH)
            items = [self.queue.popleft() for _ in range(size)]
            self.busy += 1
            done = self.executor.submit(_run_batch, self.loop, [(fn, args) for fn, args, _ in items])
            done.add_done_callback(lambda f, items=items: self._from_thread(f, items))

    def _from_thread(self, done, items) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self.loop.call_soon_threadsafe(self._finish, done, items)

    def _finish(self, done, items) -> None:
        self.busy -= 1
        try:
            outcomes = done.result()
        except BaseException as error:  # the thread itself failed: tell every caller
            outcomes = [(False, error)] * len(items)
        for (_fn, _args, future), (ok, value) in zip(items, outcomes, strict=True):
            if future.done():  # its connection went away meanwhile
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        self._dispatch()


_writers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def writer_for(executor: ThreadPoolExecutor, threads: int) -> BatchWriter:
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = BatchWriter(loop, executor, threads)
    return writer
