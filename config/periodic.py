"""Celery beat's schedule run in-process, for the embedded setup that has no broker."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


def run_due(last_run: dict[str, float], now: float) -> list[str]:
    """Run every entry of CELERY_BEAT_SCHEDULE whose interval has passed; return their names."""
    ran = []
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        every = float(entry["schedule"])
        if now - last_run.get(name, 0.0) < every:
            continue
        last_run[name] = now
        try:
            # Task names are their dotted paths; importing registers them without a worker.
            task = import_string(entry["task"])
            task.apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}), throw=True)
            ran.append(name)
        except Exception:
            logger.exception("periodic task %s failed", name)
    return ran


def start_in_background(stop: threading.Event, tick: float = 5.0) -> threading.Thread:
    def loop():
        last_run: dict[str, float] = {}
        while not stop.wait(tick):
            run_due(last_run, time.monotonic())
            close_old_connections()  # this thread's, as a request would at its end

    thread = threading.Thread(target=loop, name="periodic", daemon=True)
    thread.start()
    return thread
