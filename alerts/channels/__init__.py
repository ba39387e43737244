"""The channels alerts go out on, one module each; adding a channel is adding a module and a
line here. ``TRANSPORTS`` is keyed by ``Channel`` value."""

from __future__ import annotations

from alerts.channels.base import Transport, TransportError
from alerts.channels.email import EmailTransport
from alerts.channels.inapp import InAppTransport
from alerts.channels.mobile import MobileTransport
from alerts.channels.sms import SmsTransport
from alerts.channels.webhook import WebhookTransport
from alerts.channels.webpush import WebPushTransport

TRANSPORTS: dict[str, Transport] = {
    t.name: t
    for t in (
        InAppTransport(),
        EmailTransport(),
        WebPushTransport(),
        MobileTransport(),
        SmsTransport(),
        WebhookTransport(),
    )
}


def get(name: str) -> Transport:
    """The transport of channel ``name``; ``KeyError`` for a channel nobody implemented."""
    return TRANSPORTS[name]


__all__ = ["TRANSPORTS", "Transport", "TransportError", "get"]
