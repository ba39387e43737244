"""Mobile push to the ChargeDesk app, through the configured gateway (``alerts.providers``),
to every device the user registered; a device token the gateway no longer knows is forgotten."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils import timezone

from alerts import providers
from alerts.channels.base import Transport, TransportError
from alerts.channels.content import message

if TYPE_CHECKING:
    from alerts.models import Delivery


class MobileTransport(Transport):
    name = "mobile"

    def send(self, delivery: Delivery) -> None:
        from alerts.models import PushKind, PushSubscription

        devices = list(PushSubscription.objects.filter(user_id=delivery.user_id, kind=PushKind.MOBILE))
        if delivery.user_id is None or not devices:
            raise TransportError("no mobile device registered", permanent=True)
        m = message(delivery)
        data = {
            "url": m.url,
            "event_type": m.event_type,
            "tag": m.tag,
            "notification_id": delivery.notification_id,
            "eta": m.eta.isoformat() if m.eta else None,
        }
        provider = providers.mobile_push_provider()
        delivered, errors, transient = [], [], False
        for device in devices:
            try:
                provider.send_push(
                    token=device.endpoint, platform=device.platform, title=m.title, body=m.body, data=data
                )
            except providers.TokenGone as error:
                device.delete()
                errors.append(error.message)
            except TransportError as error:
                errors.append(error.message)
                transient = transient or not error.permanent
            else:
                delivered.append(device.pk)
        delivery.target = f"{len(devices)} device{'s' if len(devices) != 1 else ''}"
        if delivered:
            PushSubscription.objects.filter(pk__in=delivered).update(last_used_at=timezone.now())
            return
        raise TransportError("; ".join(errors) or "no device accepted the push", permanent=not transient)
