"""The notification socket /ws/notifications/: who may open it, and that a notification sent
to a user's group (by the in-app channel) reaches that user's open pages and nobody else's."""

import asyncio

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from alerts.channels.inapp import InAppTransport, user_group
from alerts.consumers import NotificationConsumer
from alerts.models import Alert, Delivery, Notification
from config.asgi import application
from tests.stations.test_commands_ui import in_thread, play
from tests.stations.test_live import session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def socket(cookie: bytes | None = None, origin: str | None = None) -> WebsocketCommunicator:
    headers = [(b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie))
    if origin:
        headers.append((b"origin", origin.encode()))
    return WebsocketCommunicator(application, "/ws/notifications/", headers=headers)


def event(notification_id: int, title: str = "Charging finished", unread: int = 1) -> dict:
    return {
        "type": "notification.new",
        "notification": {
            "id": notification_id,
            "title": title,
            "body": "12.5 kWh, € 4.10",
            "url": "/account/",
            "event_type": "session_finished",
            "created_at": "2026-11-25T20:00:00+00:00",
            "unread": unread,
        },
    }


def test_anonymous_visitors_are_refused():
    async def scenario():
        anonymous = socket()
        accepted, _ = await anonymous.connect()
        await anonymous.disconnect()  # the consumer ends as after a real close, not by cancelling
        return accepted

    assert play(scenario) is False


def test_a_page_of_another_site_is_refused(driver):
    cookie = session_cookie(driver)

    async def scenario():
        foreign = socket(cookie, origin="https://evil.example")
        refused, _ = await foreign.connect()
        await foreign.disconnect()
        ours = socket(cookie, origin="http://testserver")
        accepted, _ = await ours.connect()
        await ours.disconnect()
        return refused, accepted

    assert play(scenario) == (False, True)


def test_a_notification_reaches_the_users_pages_only(driver, other_driver, operator_admin):
    mine, theirs, staff = session_cookie(driver), session_cookie(other_driver), session_cookie(operator_admin)

    async def scenario():
        page, other_page, staff_page = socket(mine), socket(theirs), socket(staff)
        for s in (page, other_page, staff_page):
            assert (await s.connect())[0]
        await get_channel_layer().group_send(user_group(driver.pk), event(7))
        received = await page.receive_json_from(timeout=5)
        quiet = await other_page.receive_nothing(timeout=0.3) and await staff_page.receive_nothing(
            timeout=0.1
        )
        for s in (page, other_page, staff_page):
            await s.disconnect()
        return received, quiet

    received, quiet = play(scenario)
    assert quiet
    assert received == {
        "type": "notification",
        "id": 7,
        "title": "Charging finished",
        "body": "12.5 kWh, € 4.10",
        "url": "/account/",
        "event_type": "session_finished",
        "created_at": "2026-11-25T20:00:00+00:00",
        "unread": 1,
    }


def test_the_in_app_channel_delivers_to_the_open_page(driver):
    alert = Alert.objects.create(event_type="session_finished", dedup_key="s1", title="Charging finished")
    notification = Notification.objects.create(
        alert=alert, user=driver, event_type="session_finished", title="Charging finished", body="12.5 kWh"
    )
    delivery = Delivery.objects.create(alert=alert, notification=notification, user=driver, channel="inapp")
    delivery = Delivery.objects.select_related("alert", "notification", "user").get(pk=delivery.pk)
    cookie = session_cookie(driver)

    async def scenario():
        page = socket(cookie)
        assert (await page.connect())[0]
        await in_thread(InAppTransport().send, delivery)
        received = await page.receive_json_from(timeout=5)
        await page.disconnect()
        return received

    received = play(scenario)
    assert (received["type"], received["id"], received["title"]) == (
        "notification",
        notification.pk,
        "Charging finished",
    )
    assert received["unread"] == 1


def test_ping_is_answered(driver):
    cookie = session_cookie(driver)

    async def scenario():
        page = socket(cookie)
        assert (await page.connect())[0]
        await page.send_json_to({"type": "ping"})
        answer = await page.receive_json_from(timeout=5)
        await page.disconnect()
        return answer

    assert play(scenario) == {"type": "pong"}


def test_a_send_to_a_page_gone_meanwhile_is_dropped(monkeypatch):
    async def gone(self, text_data=None, bytes_data=None, close=False):
        raise OSError("connection closed")

    monkeypatch.setattr(AsyncWebsocketConsumer, "send", gone)
    consumer = NotificationConsumer()
    asyncio.run(consumer.notification_new(event(1)))  # no exception
