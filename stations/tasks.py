"""Periodic work of the stations app (Celery beat on the real stack, in-process when embedded)."""

from celery import shared_task

from . import services


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def mark_silent_chargers_offline() -> int:
    """Chargers silent for a few heartbeat intervals are offline. Safe to run twice."""
    return services.mark_silent_chargers_offline()
