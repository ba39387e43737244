"""What every channel module implements: ``send(delivery)`` either delivers or raises
``TransportError`` saying whether trying again could help."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alerts.models import Delivery


class TransportError(Exception):
    """A delivery failed. ``permanent``: retrying cannot help (no address, unsubscribed
    browser, 4xx from a receiver that means it); otherwise it is retried with backoff."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class Transport:
    """One channel. ``name`` is a ``Channel`` value. ``send`` is called in a Celery worker
    with the delivery (its ``alert``, ``notification``, ``user`` and ``endpoint`` loaded); it
    returns nothing on success and may set ``delivery.target`` for the log."""

    name: str = ""

    def prepare(self, deliveries: list[Delivery]) -> None:
        """Called once with a batch's deliveries of this channel before they are sent one by one:
        the place to read in one query what each send would otherwise read again."""

    def send(self, delivery: Delivery) -> None:  # pragma: no cover - interface
        raise NotImplementedError
