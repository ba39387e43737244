"""Web push (RFC 8030 with VAPID, RFC 8292): one encrypted message to each browser the user
subscribed, through that browser's push service. The service worker shows it as a system
notification; ``tag`` makes a newer message about the same happening replace the older one.
A 404 or 410 from a push service means the subscription is gone for good: it is forgotten."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import requests
from django.conf import settings
from django.utils import timezone
from pywebpush import WebPushException, webpush

from alerts import vapid
from alerts.channels.base import Transport, TransportError
from alerts.channels.content import message

if TYPE_CHECKING:
    from alerts.models import Delivery, PushSubscription

TIMEOUT = 10  # seconds, for each push service request
# How long a push service keeps the message for a browser that is offline (seconds): an alert
# older than this is no longer news.
TTL = 12 * 3600
# Push services refuse payloads over 4 KiB (after encryption); keep well inside it.
MAX_BODY = 1000
URGENT = {"session_interrupted", "idle_fee_warning", "reservation_expiring", "fault"}


class Gone(TransportError):
    """The push service no longer knows this subscription."""

    def __init__(self, message: str):
        super().__init__(message, permanent=True)


def payload(delivery: Delivery) -> str:
    m = message(delivery)
    body = m.body if len(m.body) <= MAX_BODY else m.body[: MAX_BODY - 1] + "…"
    if m.eta_text:
        body = f"{body}\nBack around {m.eta_text}." if body else f"Back around {m.eta_text}."
    return json.dumps({"title": m.title, "body": body, "url": m.url, "tag": m.tag})


def push(subscription: PushSubscription, data: str, *, urgency: str = "normal") -> None:
    """One push to one browser; failures as ``TransportError`` (404/410: ``Gone``)."""
    private_key, _ = vapid.keys()
    try:
        webpush(
            subscription_info={
                "endpoint": subscription.endpoint,
                "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
            },
            data=data,
            vapid_private_key=private_key,
            # pywebpush adds "aud" and "exp" to this dict: a new one for every push.
            vapid_claims={"sub": settings.ALERTS_VAPID_SUBJECT},
            timeout=TIMEOUT,
            ttl=TTL,
            headers={"Urgency": urgency},
        )
    except WebPushException as error:
        code = error.status_code
        if code in (404, 410):
            raise Gone(f"push service: HTTP {code}, subscription expired") from error
        # 400/401/403/413: this subscription will not take this message (e.g. it was made with
        # another VAPID key); 429 and 5xx are the service's passing trouble.
        permanent = code is not None and 400 <= code < 500 and code != 429
        raise TransportError(f"push service: HTTP {code}", permanent=permanent) from error
    except requests.RequestException as error:
        raise TransportError(f"push service unreachable: {error}") from error
    except ValueError as error:
        # Malformed keys in the stored subscription: it can never be encrypted to.
        raise Gone(f"invalid subscription keys: {error}") from error


class WebPushTransport(Transport):
    name = "push"

    def send(self, delivery: Delivery) -> None:
        from alerts.models import PushKind, PushSubscription

        subscriptions = list(PushSubscription.objects.filter(user_id=delivery.user_id, kind=PushKind.WEB))
        if delivery.user_id is None or not subscriptions:
            raise TransportError("no browser subscribed", permanent=True)
        data = payload(delivery)
        urgency = "high" if delivery.alert.event_type in URGENT else "normal"
        delivered, errors, transient, gone = [], [], False, 0
        for subscription in subscriptions:
            try:
                push(subscription, data, urgency=urgency)
            except Gone as error:
                subscription.delete()
                gone += 1
                errors.append(error.message)
            except TransportError as error:
                errors.append(error.message)
                transient = transient or not error.permanent
            else:
                delivered.append(subscription.pk)
        delivery.target = f"{len(subscriptions)} browser{'s' if len(subscriptions) != 1 else ''}"
        if delivered:
            PushSubscription.objects.filter(pk__in=delivered).update(last_used_at=timezone.now())
            return
        if gone == len(subscriptions):
            raise TransportError("no browser subscribed (all subscriptions expired)", permanent=True)
        raise TransportError("; ".join(errors), permanent=not transient)
