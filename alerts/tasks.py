"""Alerts' Celery work: react to a domain event, send deliveries, the periodic sweep and the
operators' digests. Every task is safe to run twice (alerts have keys; a sent delivery is
never sent again)."""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import shared_task

logger = logging.getLogger("chargedesk.alerts")


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def handle_event(name: str, data: dict) -> None:
    """A domain event → the alerts it raises (alerts.rules)."""
    from alerts import rules

    rules.handle(name, data)


@shared_task(acks_late=True)
def deliver(delivery_ids: list[int]) -> dict:
    """Send these deliveries; a failure is recorded on its row and retried by the sweep."""
    from alerts import delivery

    try:
        statuses = delivery.send_many(delivery_ids)
    except Exception:  # the sweep finds them again once their lease ends
        logger.exception("delivering %s deliveries failed unexpectedly", len(delivery_ids))
        return {"error": len(delivery_ids)}
    outcome: dict[str, int] = {}
    for status in statuses.values():
        outcome[str(status)] = outcome.get(str(status), 0) + 1
    return outcome


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def sweep() -> dict:
    """What is due: outages to tell or close, idle cars, reservations ending, and deliveries
    whose retry time or quiet hours have come."""
    from alerts import delivery
    from alerts import sweep as alerts_sweep
    from alerts.services.notify import enqueue

    result = asdict(alerts_sweep.run())
    due = delivery.due()
    if due:
        enqueue(due)
    result["deliveries_due"] = len(due)
    return result


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def send_digests() -> int:
    from alerts import delivery

    return delivery.send_digests()
