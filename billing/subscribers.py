"""What billing does when other apps report something: a stopped session is priced and
settled by a Celery task (pricing, capture and invoicing are too slow for the publisher)."""

from __future__ import annotations

from config.events import subscribe


def on_session_stopped(*, transaction_id: int, **data) -> None:
    """Hand the stopped session to the worker that prices it and settles its payment."""
    from billing.tasks import settle_session  # the payments side owns the task

    settle_session.delay(transaction_id)


def register() -> None:
    """Subscribe billing to the events it needs; called from ``BillingConfig.ready``."""
    subscribe("session.stopped")(on_session_stopped)
