"""In-app alerts reach the recipient's open pages at once, through the channel layer (in
memory here, Redis on the real stack), with the unread count for the bell."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from alerts import delivery as engine
from alerts.channels.inapp import user_group
from alerts.models import Alert, Channel, Delivery, Notification


def notify(user, key: str, *, read: bool = False) -> Notification:
    alert = Alert.objects.create(
        event_type="session_finished",
        dedup_key=key,
        title="Charging finished",
        body="21.5 kWh in 1 h 35 min.",
        url="/sessions/42/",
    )
    return Notification.objects.create(
        alert=alert,
        user=user,
        event_type=alert.event_type,
        title=alert.title,
        body=alert.body,
        url=alert.url,
        read_at=timezone.now() if read else None,
    )


def listen(user_id: int) -> str:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(user_id), channel)
    return channel


def receive(channel: str, timeout: float = 1.0) -> dict:
    layer = get_channel_layer()

    async def _receive():
        return await asyncio.wait_for(layer.receive(channel), timeout)

    return async_to_sync(_receive)()


def test_user_group_name():
    assert user_group(7) == "alerts.user.7"


def test_new_notification_is_pushed_to_the_users_open_pages(driver, other_driver):
    notify(driver, "older-unread")
    notify(driver, "older-read", read=True)
    notification = notify(driver, "new")
    d = Delivery.objects.create(
        alert=notification.alert, notification=notification, user=driver, channel=Channel.INAPP
    )
    mine, theirs = listen(driver.pk), listen(other_driver.pk)

    assert engine.send(d.pk) == "sent"

    message = receive(mine)
    assert message == {
        "type": "notification.new",
        "notification": {
            "id": notification.pk,
            "title": "Charging finished",
            "body": "21.5 kWh in 1 h 35 min.",
            "url": "/sessions/42/",
            "event_type": "session_finished",
            "created_at": notification.created_at.isoformat(),
            "unread": 2,
        },
    }
    with pytest.raises(asyncio.TimeoutError):
        receive(theirs, timeout=0.2)
    d.refresh_from_db()
    assert (d.status, d.target) == ("sent", f"notification #{notification.pk}")


def test_nobody_online_is_still_delivered(driver):
    notification = notify(driver, "alone")
    d = Delivery.objects.create(
        alert=notification.alert, notification=notification, user=driver, channel=Channel.INAPP
    )
    assert engine.send(d.pk) == "sent"
