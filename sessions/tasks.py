"""Periodic work of the charging-session domain."""

from celery import shared_task

from . import services


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def expire_reservations() -> int:
    """Reservations past their expiry end as Expired. Safe to run twice."""
    return services.reservations_expire()
