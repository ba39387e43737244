"""Log context: which charge point (and which Celery task) a log record is about.

The OCPP consumer sets the charge point for its connection (an asyncio task each, so the
value stays with that connection); the group-commit writer's database threads run the calls
of many chargers in one batch, so each call runs in a copy of its caller's context
(stations/ocpp/consumer.py ``_write``). Celery's task signals set the task. A filter on the
handler copies the values onto every record, where the plain and the JSON formats show them.
"""

from __future__ import annotations

import contextvars
import logging

from pythonjsonlogger.core import RESERVED_ATTRS

charge_point: contextvars.ContextVar[tuple[str, int | None] | None] = contextvars.ContextVar(
    "charge_point", default=None
)
task: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("task", default=None)


def bind_charge_point(identity: str, charge_point_id: int | None = None) -> None:
    charge_point.set((identity, charge_point_id))


class ContextFilter(logging.Filter):
    """Adds ``charge_point``, ``charge_point_id``, ``task_name`` and ``task_id`` to records
    (empty where they do not apply), unless the call gave them in ``extra``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "charge_point"):
            bound = charge_point.get()
            record.charge_point, record.charge_point_id = bound if bound else ("", None)
        if not hasattr(record, "task_name"):
            running = task.get()
            record.task_name, record.task_id = running if running else ("", "")
        # For the plain format: " [CP-1]" (or the task), nothing where neither applies.
        where = record.charge_point or record.task_name
        record.where = f" [{where}]" if where else ""
        return True


def logging_config(*, fmt: str, level: str) -> dict:
    """Django's LOGGING: ``fmt`` is "json" (one object a line) or "plain"."""
    formatters = {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s%(where)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(levelname)s %(name)s %(message)s "
            "%(charge_point)s %(charge_point_id)s %(task_name)s %(task_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601, UTC
            "reserved_attrs": [*RESERVED_ATTRS, "where"],
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"active": formatters[fmt]},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "active", "filters": ["context"]}
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.db.backends": {"level": "WARNING"}},
    }
