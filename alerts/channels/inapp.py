"""In-app: the ``Notification`` row is the delivery (the notification centre lists it); this
channel only tells the recipient's open pages at once, through the channel layer, so the bell's
count and the list update without a reload. Nobody online is still a success."""

from __future__ import annotations

from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db.models import Count

from alerts.channels.base import Transport, TransportError

if TYPE_CHECKING:
    from alerts.models import Delivery


def user_group(user_id: int) -> str:
    """The channel-layer group of one user's open pages (their consumers join it)."""
    return f"alerts.user.{user_id}"


class InAppTransport(Transport):
    name = "inapp"

    def prepare(self, deliveries: list[Delivery]) -> None:
        """Each recipient's unread count for the bell, for the whole batch in one query."""
        from alerts.models import Notification

        users = {d.user_id for d in deliveries if d.user_id}
        counts = dict(
            Notification.objects.filter(user_id__in=users, read_at__isnull=True)
            .values("user_id")
            .annotate(n=Count("pk"))
            .values_list("user_id", "n")
        )
        for d in deliveries:
            d.unread = counts.get(d.user_id, 0)

    def send(self, delivery: Delivery) -> None:
        from alerts.models import Notification

        notification = delivery.notification
        if notification is None or delivery.user_id is None:
            raise TransportError("no notification to show", permanent=True)
        delivery.target = f"notification #{notification.pk}"
        layer = get_channel_layer()
        if layer is None:
            raise TransportError("no channel layer configured", permanent=True)
        unread = getattr(delivery, "unread", None)
        if unread is None:
            unread = Notification.objects.filter(user_id=delivery.user_id, read_at__isnull=True).count()
        event = {
            "type": "notification.new",
            "notification": {
                "id": notification.pk,
                "title": notification.title,
                "body": notification.body,
                "url": notification.url,
                "event_type": notification.event_type,
                "created_at": notification.created_at.isoformat(),
                "unread": unread,
            },
        }
        try:
            async_to_sync(layer.group_send)(user_group(delivery.user_id), event)
        except (OSError, ConnectionError) as error:
            raise TransportError(f"channel layer: {error!r}") from error
