"""Webhooks: the alert as JSON, POSTed to an operator's endpoint and signed (``alerts.signing``)
so the receiver knows it is ours and fresh. 2xx is delivered; 410 Gone means "stop sending"
and is final; anything else is tried again (and counts toward disabling the endpoint)."""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from alerts import signing
from alerts.channels.base import Transport, TransportError
from alerts.links import absolute

if TYPE_CHECKING:
    from alerts.models import Delivery, WebhookEndpoint

USER_AGENT = "ChargeDesk-Webhooks/1"


class EndpointGone(TransportError):
    """The receiver answered 410 Gone: it wants no more deliveries."""

    def __init__(self, message: str):
        super().__init__(message, permanent=True)


def event(delivery: Delivery) -> dict[str, Any]:
    """The JSON document receivers get (documented for them: keep it stable)."""
    alert = delivery.alert
    operator = delivery.endpoint.operator if delivery.endpoint else delivery.operator
    return {
        "id": delivery.pk,
        "type": alert.event_type,
        "created_at": alert.created_at.isoformat(),
        "operator": operator.slug if operator else None,
        "title": alert.title,
        "body": alert.body,
        "url": absolute(alert.url or "/"),
        "eta": alert.eta.isoformat() if alert.eta else None,
        "data": alert.data or {},
    }


class PrivateAddress(TransportError):
    """The receiver's name resolves to an address inside our network."""

    def __init__(self, message: str):
        super().__init__(message, permanent=True)


def check_public(url: str) -> None:
    """Refuse a receiver whose host resolves to a loopback, private, link-local or otherwise
    internal address (unless ``ALERTS_WEBHOOK_ALLOW_PRIVATE``): an operator's webhook must not
    be a way into the network ChargeDesk runs in."""
    if settings.ALERTS_WEBHOOK_ALLOW_PRIVATE:
        return
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname or "", parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransportError(f"cannot resolve {parts.hostname}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise PrivateAddress(f"{parts.hostname} resolves to {address}, an internal address")


def post(endpoint: WebhookEndpoint, document: dict[str, Any], *, delivery_id: str) -> requests.Response:
    """POST ``document`` to ``endpoint``, signed; network errors as ``requests`` raises them."""
    check_public(endpoint.url)
    body = json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "ChargeDesk-Event": str(document["type"]),
        "ChargeDesk-Delivery": delivery_id,
        "ChargeDesk-Signature": signing.sign(endpoint.secret, body, int(time.time())),
    }
    # No redirects: a receiver that moved must be re-registered, not followed blindly.
    return requests.post(
        endpoint.url,
        data=body,
        headers=headers,
        timeout=settings.ALERTS_WEBHOOK_TIMEOUT,
        allow_redirects=False,
    )


def outcome(response: requests.Response) -> str:
    """``HTTP 200``, or with the start of the receiver's answer when it failed."""
    text = f"HTTP {response.status_code}"
    if not 200 <= response.status_code < 300:
        answer = " ".join(response.text[:200].split())
        if answer:
            text += f": {answer}"
    return text


class WebhookTransport(Transport):
    name = "webhook"

    def send(self, delivery: Delivery) -> None:
        endpoint = delivery.endpoint
        if endpoint is None:
            raise TransportError("no webhook endpoint", permanent=True)
        delivery.target = endpoint.url
        try:
            response = post(endpoint, event(delivery), delivery_id=str(delivery.pk))
        except requests.RequestException as error:
            raise TransportError(f"{type(error).__name__}: {error}") from error
        if 200 <= response.status_code < 300:
            return
        if response.status_code == 410:
            raise EndpointGone(outcome(response))
        raise TransportError(outcome(response))
