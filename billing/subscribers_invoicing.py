"""Invoicing's reactions to domain events. A captured card payment gets its receipt, issued
and emailed by a Celery worker (subscribers run in the publisher's process and must be quick).

``register()`` is called once from ``BillingConfig.ready``; calling it again adds nothing.
"""

from __future__ import annotations

from config.events import subscribe


def on_payment_captured(*, payment_id: int, **_) -> None:
    from billing.tasks_invoicing import issue_receipt_for_payment

    issue_receipt_for_payment.delay(payment_id)


def register() -> None:
    subscribe("billing.payment_captured")(on_payment_captured)
