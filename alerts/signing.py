"""Webhook signatures, as receivers check them.

Every webhook request carries ``ChargeDesk-Signature: t=<unix seconds>,v1=<hex>``, where the
hex is HMAC-SHA256 with the endpoint's secret over ``f"{t}."`` followed by the raw request
body. A receiver recomputes it over the body *as received* (before parsing the JSON), compares
in constant time and rejects a timestamp older than a few minutes, so that a captured request
cannot be replayed later. The timestamp is signed with the body so it cannot be swapped.

A receiver in Python needs only the standard library::

    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(expected, v1) and abs(time.time() - t) <= 300

Several ``v1=`` parts may appear (the header is a list); any one matching is enough.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time

from django.conf import settings

SCHEME = "v1"


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``ChargeDesk-Signature`` header value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},{SCHEME}={_digest(secret, body, timestamp)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance: int | None = None,
    now: float | dt.datetime | None = None,
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is at most ``tolerance`` seconds
    old (default ``settings.ALERTS_WEBHOOK_TOLERANCE``) at ``now`` (unix seconds or an aware
    datetime; default: the clock). Never raises on a malformed header."""
    if tolerance is None:
        tolerance = settings.ALERTS_WEBHOOK_TOLERANCE
    timestamp: int | None = None
    candidates: list[str] = []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == SCHEME and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if now is None:
        current = time.time()
    elif isinstance(now, dt.datetime):
        current = now.timestamp()
    else:
        current = float(now)
    if abs(current - timestamp) > tolerance:
        return False
    expected = _digest(secret, body, timestamp)
    # Check every candidate, so the time taken does not tell which one matched.
    return sum(hmac.compare_digest(expected, c) for c in candidates) > 0
