"""The notification centre in a real browser: a notification sent while the page is open
appears at the top of the list and the nav's bell counts it, without a reload; the push
service worker installs with the whole site as its scope."""

import asyncio

import pytest
from channels.layers import get_channel_layer

from alerts.channels.inapp import user_group
from alerts.consumers import NotificationConsumer
from alerts.models import Alert, Notification
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.fixture
def server_loop(monkeypatch):
    """The event loop of the in-process server, learnt when the page's socket connects: the
    in-memory channel layer's queues belong to it, so the test sends on it."""
    loops: list[asyncio.AbstractEventLoop] = []
    connect = NotificationConsumer.connect

    async def recording(self):
        loops.append(asyncio.get_running_loop())
        await connect(self)

    monkeypatch.setattr(NotificationConsumer, "connect", recording)
    return loops


def send_to_page(loop, user_id: int, notification: Notification, unread: int) -> None:
    message = {
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
    asyncio.run_coroutine_threadsafe(
        get_channel_layer().group_send(user_group(user_id), message), loop
    ).result(5)


def test_a_new_notification_appears_without_a_reload(asgi_server, browser_page, driver, server_loop):
    older = Alert.objects.create(event_type="session_started", dedup_key="s0", title="Charging started")
    Notification.objects.create(
        alert=older, user=driver, event_type="session_started", title="Charging started", url="/account/"
    )
    page = browser_page
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{asgi_server}/accounts/login/")
    page.fill("input[name=username]", driver.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url("**/account/**")

    page.goto(f"{asgi_server}/alerts/")
    page.wait_for_selector("html[data-notifications-state=open]")
    assert page.inner_text("[data-unread-count]") == "1"
    page.evaluate("window.__notReloaded = true")

    alert = Alert.objects.create(event_type="session_finished", dedup_key="s1", title="Charging finished")
    notification = Notification.objects.create(
        alert=alert,
        user=driver,
        event_type="session_finished",
        title="Charging finished",
        body="12.5 kWh in 1 h 05 min",
        url="/account/",
    )
    send_to_page(server_loop[-1], driver.pk, notification, unread=2)

    first = page.locator("[data-notification-list] > li").first
    first.wait_for()
    page.wait_for_function(
        f"() => document.querySelector('[data-notification-list] > li').dataset.notification === '{notification.pk}'"
    )
    assert first.locator("[data-field=title]").inner_text() == "Charging finished"
    assert first.locator("[data-field=body]").inner_text() == "12.5 kWh in 1 h 05 min"
    assert first.locator("[data-field=event]").inner_text() == "Charging finished"
    assert first.locator("[data-field=link]").get_attribute("href") == "/account/"
    assert first.locator("input[name=notification]").get_attribute("value") == str(notification.pk)
    assert page.inner_text("[data-unread-count]") == "2"
    assert page.locator("[data-notification-list] > li").count() == 2
    assert page.evaluate("window.__notReloaded") is True

    # Its "Mark read" works like the server-rendered ones.
    with page.expect_navigation():
        first.locator("button", has_text="Mark read").click()
    notification.refresh_from_db()
    assert notification.read_at is not None
    assert page.inner_text("[data-unread-count]") == "1"

    # The settings page: the push service worker installs for the whole site (subscribing
    # needs a real push service, so the endpoint it posts to is tested with the test client).
    page.goto(f"{asgi_server}/alerts/settings/")
    assert page.is_visible("[data-push-enable]") and not page.is_visible("[data-push-disable]")
    scope = page.evaluate("navigator.serviceWorker.register('/sw.js', {scope: '/'}).then((r) => r.scope)")
    assert scope == f"{asgi_server}/"
    assert problems == []
