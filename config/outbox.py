"""Task calls that survive a broker outage.

Every Celery task of ChargeDesk is an ``OutboxTask`` (config/celery.py): when the broker
refuses a call (Redis down, the publish retries spent), the call is written to the database as
a ``DeferredTask`` instead of being lost, and the caller goes on. The relay, run by Celery beat
every ``CELERY_RELAY_SECONDS`` (and by ``manage.py relay_deferred_tasks``), sends the
backlog to the broker once it answers, oldest first, and deletes what it sent.

Delivery is at least once: a relay whose delete does not commit sends its batch again, and
every task is safe to run twice (DESIGN.md). Calls made by Celery beat are not kept: a periodic
task comes round again by itself.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

# The options of a call that are kept with it; others (a producer, links) do not outlive it.
KEPT_OPTIONS = ("queue", "priority", "retries")


def defer(task, task_id: str, args, kwargs, options: dict, error: Exception) -> None:
    """Keep a call the broker refused (when even the database refuses it, it is lost, and
    logged as such)."""
    from config.models import DeferredTask

    eta = options.get("eta")
    if isinstance(eta, str):
        eta = dt.datetime.fromisoformat(eta)
    if eta is None and options.get("countdown"):
        eta = timezone.now() + dt.timedelta(seconds=float(options["countdown"]))
    kept = {k: options[k] for k in KEPT_OPTIONS if isinstance(options.get(k), (str, int))}
    try:
        DeferredTask.objects.create(
            task=task.name,
            task_id=task_id,
            args=list(args or ()),
            kwargs=dict(kwargs or {}),
            options=kept,
            eta=eta,
            last_error=str(error)[:1000],
        )
    except Exception:
        logger.exception("broker and database both refused task %s %s: it is lost", task.name, task_id)
        return
    logger.warning("broker refused task %s %s (%s): kept to be relayed", task.name, task_id, error)


def relay(batch: int = 500) -> int:
    """Send the deferred calls to the broker, oldest first, until none is left or the broker
    refuses one (the rest wait for the next relay). Returns how many were sent."""
    from config.celery import app

    app.loader.import_default_modules()  # every app's tasks known, also outside a worker
    sent = 0
    while True:
        seen, relayed, refused = _relay_batch(batch)
        sent += relayed
        if refused or seen < batch:
            break
    if sent:
        logger.info("relayed %s deferred tasks", sent)
    return sent


def _relay_batch(batch: int) -> tuple[int, int, bool]:
    """(rows looked at, rows sent, whether the broker refused one)."""
    from config.celery import app
    from config.models import DeferredTask

    with transaction.atomic():
        rows = list(
            DeferredTask.objects.select_for_update(skip_locked=True)
            .filter(given_up=False)
            .order_by("pk")[:batch]
        )
        done = []
        refused = False
        now = timezone.now()
        for row in rows:
            if row.task not in app.tasks:
                row.given_up = True
                row.last_error = f"no task named {row.task!r} is registered"
                row.save(update_fields=["given_up", "last_error"])
                logger.error("deferred task %s %s: no such task, kept and not relayed", row.task, row.task_id)
                continue
            if app.conf.task_always_eager:  # no broker (embedded): run it here
                app.tasks[row.task].apply(args=row.args, kwargs=row.kwargs, task_id=row.task_id)
                done.append(row.pk)
                continue
            try:
                app.send_task(
                    row.task,
                    args=row.args,
                    kwargs=row.kwargs,
                    task_id=row.task_id,
                    eta=row.eta if row.eta and row.eta > now else None,
                    **row.options,
                )
            except OperationalError as error:
                row.attempts += 1
                row.last_error = str(error)[:1000]
                row.save(update_fields=["attempts", "last_error"])
                refused = True
                break
            done.append(row.pk)
        DeferredTask.objects.filter(pk__in=done).delete()
    return len(rows), len(done), refused
