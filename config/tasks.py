from celery import shared_task

from config import outbox


@shared_task(acks_late=True)
def relay_deferred_tasks() -> int:
    """Hand the task calls kept during a broker outage to the broker (config/outbox.py)."""
    return outbox.relay()
