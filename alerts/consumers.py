"""The notification socket: ``/ws/notifications/`` tells a signed-in user's open pages of each
new in-app notification (the notification centre prepends it, the nav's bell counts it).

Every signed-in user may open it, for their own group only (``alerts.user.<id>``, where the
in-app channel sends). Anonymous visitors and other sites' pages are refused before the
socket is accepted, as on ``/ws/live/``."""

from __future__ import annotations

import logging

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from stations.live import _same_origin

logger = logging.getLogger("chargedesk.alerts")


def _user_group(user_id: int) -> str:
    from alerts.channels.inapp import user_group

    return user_group(user_id)


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def send(self, text_data=None, bytes_data=None, close=False):
        """A notification for a page closed meanwhile is dropped (the server raises an
        OSError); the queued disconnect then leaves the group."""
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except OSError:
            logger.debug("notification page gone before a notification could be sent")

    async def send_json(self, content, close=False):
        # The base class's send_json calls the plain consumer's send, past the override above.
        await self.send(text_data=await self.encode_json(content), close=close)

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        if not _same_origin(self.scope):
            logger.warning("notification socket of %s refused: Origin is another site", user)
            await self.close()
            return
        self.group = _user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def notification_new(self, event):
        await self.send_json({**event["notification"], "type": "notification"})
