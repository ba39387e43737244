"""Domain events between apps, published after the transaction that caused them commits.

A service calls ``publish("connector.status_changed", charge_point_id=…, …)``; apps subscribe
in their ``AppConfig.ready`` with ``@subscribe("connector.status_changed")``. Subscribers
run after commit, in the publishing process: they must be quick (a channel-layer send) or
hand heavy work to Celery. A failing subscriber is logged and never breaks the publisher.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

_subscribers: dict[str, list[Callable[..., Any]]] = defaultdict(list)


def subscribe(name: str):
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        if fn not in _subscribers[name]:
            _subscribers[name].append(fn)
        return fn

    return register


def _deliver(name: str, data: dict) -> None:
    for fn in list(_subscribers.get(name, ())):
        try:
            fn(**data)
        except Exception:
            logger.exception("subscriber %s of %s failed", getattr(fn, "__qualname__", fn), name)


def publish(name: str, **data: Any) -> None:
    """Deliver the event once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _deliver(name, data), robust=True)
