"""The alerts pages: the notification centre and settings every user has, the unsubscribe
links of emails, the push subscription endpoints and the service worker, and the operator's
delivery log, webhooks and maintenance windows (scoped to the operator, drivers refused)."""

import datetime as dt
import json
import threading
import zoneinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from alerts import catalog
from alerts.models import (
    Alert,
    AlertProfile,
    Delivery,
    DeliveryStatus,
    MaintenanceWindow,
    Notification,
    Preference,
    PushSubscription,
    WebhookEndpoint,
)
from alerts.unsubscribe import make_token
from alerts.vapid import generate
from tests.factories import ChargePointFactory, ConnectorFactory, SiteFactory

pytestmark = pytest.mark.django_db

# A browser's subscription keys: a P-256 point and a 16-byte secret, base64url.
P256DH = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
AUTH = "tBHItJI5svbpez7KI4CCXg"


def make_alert(operator=None, *, key="k1", event_type="fault", title="Connector 1 faulted") -> Alert:
    return Alert.objects.create(
        event_type=event_type, dedup_key=key, operator=operator, title=title, body="GroundFailure", url="/x/"
    )


def notify(user, *, key="k1", title="Connector 1 faulted", read=False, url="/charge-points/VW-0001/"):
    return Notification.objects.create(
        alert=make_alert(getattr(user, "operator", None), key=key, title=title),
        user=user,
        event_type="fault",
        title=title,
        body="GroundFailure on connector 1",
        url=url,
        read_at=timezone.now() if read else None,
    )


def delivery(operator, *, key="d1", status=DeliveryStatus.FAILED, channel="email", user=None, endpoint=None):
    return Delivery.objects.create(
        alert=make_alert(operator, key=key),
        operator=operator,
        user=user,
        endpoint=endpoint,
        channel=channel,
        status=status,
        attempts=3,
        last_error="SMTP 451 try later" if status == DeliveryStatus.FAILED else "",
        target="someone@example.com",
    )


def html(response) -> str:
    return response.content.decode()


# --- Notification centre and the nav's bell ---------------------------------------------------


def test_notification_centre_lists_newest_first_with_unread_marked(login, driver, other_driver):
    old = notify(driver, key="a", title="Charging started", read=True)
    new = notify(driver, key="b", title="Charging finished")
    notify(other_driver, key="c", title="Not yours")
    response = login(driver).get(reverse("alerts:notifications"))
    assert response.status_code == 200
    page = html(response)
    assert page.index("Charging finished") < page.index("Charging started")
    assert "Not yours" not in page
    assert f'data-notification="{new.pk}"' in page and f'data-notification="{old.pk}"' in page
    assert page.count("badge-unread") == 2  # the unread one, and the live script's template
    assert 'aria-live="polite"' in page and 'href="/charge-points/VW-0001/"' in page
    assert 'src="/static/alerts/notifications.js"' in page


def test_nav_shows_the_unread_count_for_signed_in_users_only(client, login, driver):
    notify(driver, key="a")
    notify(driver, key="b")
    notify(driver, key="c", read=True)
    page = html(login(driver).get(reverse("alerts:settings")))
    assert 'data-count="2">2</span>' in page and "Notifications" in page
    client.logout()
    anonymous = html(client.get(reverse("login")))
    assert "data-unread-badge" not in anonymous and "notifications.js" not in anonymous


def test_nav_count_is_one_query(rf, driver, django_assert_num_queries):
    from alerts.context_processors import unread_notifications

    request = rf.get("/")
    request.user = driver
    context = unread_notifications(request)
    with django_assert_num_queries(1):
        assert int(str(context["alerts_unread"])) == 0 and not context["alerts_unread"]


def test_mark_one_and_mark_all_read(login, driver, other_driver):
    first, *_ = (notify(driver, key=k) for k in "abc")
    theirs = notify(other_driver, key="d")
    client = login(driver)
    response = client.post(reverse("alerts:mark-read"), {"notification": [first.pk, theirs.pk]})
    assert response.status_code == 302
    first.refresh_from_db(), theirs.refresh_from_db()
    assert first.read_at is not None and theirs.read_at is None
    client.post(reverse("alerts:mark-read"), {"notification": "not-a-number"})
    assert Notification.objects.filter(user=driver, read_at__isnull=True).count() == 2
    response = client.post(reverse("alerts:mark-read"), follow=True)
    assert "2 notifications marked read." in html(response)
    assert not Notification.objects.filter(user=driver, read_at__isnull=True).exists()
    assert client.get(reverse("alerts:unread")).json() == {"unread": 0}


def test_notification_centre_paginates(login, driver):
    for n in range(30):
        notify(driver, key=f"n{n}", title=f"Alert number {n}")
    client = login(driver)
    first = html(client.get(reverse("alerts:notifications")))
    second = html(client.get(reverse("alerts:notifications"), {"page": 2}))
    assert "Alert number 29" in first and "Alert number 0<" not in first
    assert "Alert number 0<" in second and "data-notification-list" not in second


def test_a_script_link_is_not_offered(login, driver):
    notify(driver, url="javascript:alert(1)")
    assert "javascript:" not in html(login(driver).get(reverse("alerts:notifications")))


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for name in ("alerts:notifications", "alerts:settings", "alerts:deliveries"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- Settings ---------------------------------------------------------------------------------


def test_driver_settings_show_the_driver_matrix_home_and_favourites(login, driver):
    page = html(login(driver).get(reverse("alerts:settings")))
    for event in catalog.for_audience(catalog.DRIVER):
        assert event.label in page
    assert "Failed payments" not in page  # an operator's event
    assert 'name="session_finished:email" id="pref-session_finished-email"' in page
    assert "Home latitude" in page and "data-use-location" in page and "Favourite stations" in page
    assert 'name="digest"' not in page and 'name="max_per_hour"' not in page
    assert "data-vapid-key=" in page and "Enable browser notifications" in page


def test_operator_settings_show_digest_and_no_home(login, operator_admin):
    page = html(login(operator_admin).get(reverse("alerts:settings")))
    assert "Failed payments" in page and "Charging finished" not in page
    assert 'name="digest"' in page and 'name="max_per_hour"' in page
    assert "Home latitude" not in page and "Favourite stations" not in page


def test_saving_the_matrix_stores_what_differs_from_the_defaults(login, driver):
    matrix_on = {
        f"{event.key}:{channel}"
        for event in catalog.for_audience(catalog.DRIVER)
        for channel in event.default_channels
    }
    matrix_on.discard("session_finished:email")  # off, though on by default
    matrix_on.add("session_started:sms")  # on, though off by default
    response = login(driver).post(reverse("alerts:save-channels"), dict.fromkeys(matrix_on, "on"))
    assert response.status_code == 302
    stored = set(Preference.objects.filter(user=driver).values_list("event_type", "channel", "enabled"))
    assert stored == {("session_finished", "email", False), ("session_started", "sms", True)}


def test_profile_saves_through_the_service(login, driver):
    response = login(driver).post(
        reverse("alerts:save-profile"),
        {
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
            "time_zone": "Europe/Amsterdam",
            "home_latitude": "52.370216",
            "home_longitude": "4.895168",
            "radius_km": "15",
        },
    )
    assert response.status_code == 302
    profile = AlertProfile.objects.get(user=driver)
    assert (profile.quiet_hours_start, profile.quiet_hours_end) == (dt.time(22), dt.time(7))
    assert profile.time_zone == "Europe/Amsterdam" and str(profile.radius_km) == "15.0"
    assert str(profile.home_latitude) == "52.370216"


def test_half_given_quiet_hours_show_the_services_error(login, driver):
    response = login(driver).post(
        reverse("alerts:save-profile"), {"quiet_hours_start": "22:00", "time_zone": "UTC", "radius_km": "10"}
    )
    assert response.status_code == 400
    assert "Give both the start and the end of the quiet hours" in html(response)
    assert AlertProfile.objects.get(user=driver).quiet_hours_start is None


def test_operator_digest_saves(login, operator_admin):
    response = login(operator_admin).post(
        reverse("alerts:save-profile"), {"time_zone": "UTC", "digest": "hourly", "max_per_hour": "5"}
    )
    assert response.status_code == 302
    profile = AlertProfile.objects.get(user=operator_admin)
    assert (profile.digest, profile.max_per_hour) == ("hourly", 5)


def test_favourites_add_public_stations_and_remove(login, driver, charge_point, other_operator):
    hidden = ChargePointFactory(
        site=SiteFactory(operator=other_operator, name="Depot", is_public=False), identity="NG-DEPOT"
    )
    client = login(driver)
    response = client.post(reverse("alerts:add-favourite"), {"identity": "vw-0001"})
    assert response.status_code == 302
    assert list(AlertProfile.objects.get(user=driver).favourites.all()) == [charge_point]
    refused = client.post(reverse("alerts:add-favourite"), {"identity": hidden.identity})
    assert refused.status_code == 400 and "There is no public charge point" in html(refused)
    page = html(client.get(reverse("alerts:settings")))
    assert "VW-0001" in page and "Central Station" in page
    client.post(reverse("alerts:remove-favourite", args=[charge_point.pk]))
    assert not AlertProfile.objects.get(user=driver).favourites.exists()


# --- Browser push -----------------------------------------------------------------------------


def test_push_subscription_is_registered_and_removed(login, driver):
    client = login(driver)
    subscription = {
        "endpoint": "https://fcm.googleapis.com/fcm/send/abc123",
        "expirationTime": None,
        "keys": {"p256dh": P256DH, "auth": AUTH},
    }
    response = client.post(
        reverse("alerts:push-subscribe"),
        json.dumps(subscription),
        content_type="application/json",
        headers={"User-Agent": "Firefox 140"},
    )
    assert response.status_code == 201 and response.json() == {"subscribed": True}
    stored = PushSubscription.objects.get(user=driver)
    assert (stored.kind, stored.p256dh, stored.auth, stored.user_agent) == (
        "web",
        P256DH,
        AUTH,
        "Firefox 140",
    )
    response = client.post(
        reverse("alerts:push-unsubscribe"),
        json.dumps({"endpoint": subscription["endpoint"]}),
        "application/json",
    )
    assert response.json() == {"unsubscribed": True}
    assert not PushSubscription.objects.exists()


def test_push_subscription_refuses_bad_keys_and_needs_csrf(client, login, driver):
    bad = {"endpoint": "https://push.example.com/x", "keys": {"p256dh": "short", "auth": AUTH}}
    response = login(driver).post(reverse("alerts:push-subscribe"), json.dumps(bad), "application/json")
    assert response.status_code == 400 and "p256dh" in " ".join(response.json()["errors"])
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(driver)
    good = {"endpoint": "https://push.example.com/x", "keys": {"p256dh": P256DH, "auth": AUTH}}
    assert (
        strict.post(reverse("alerts:push-subscribe"), json.dumps(good), "application/json").status_code == 403
    )
    assert not PushSubscription.objects.exists()


def test_settings_page_carries_the_vapid_public_key(login, driver, settings):
    _, public = generate()
    settings.ALERTS_VAPID_PUBLIC_KEY, settings.ALERTS_VAPID_PRIVATE_KEY = public, generate()[0]
    page = html(login(driver).get(reverse("alerts:settings")))
    assert f'data-vapid-key="{public}"' in page and 'src="/static/alerts/push.js"' in page


def test_service_worker_is_served_from_the_root(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    body = response.content.decode()
    assert "showNotification" in body and "notificationclick" in body


# --- Unsubscribe links ------------------------------------------------------------------------


def test_unsubscribe_link_confirms_then_turns_the_channel_off(client, driver):
    url = reverse("alerts:unsubscribe", args=[make_token(driver.pk, "session_finished", "email")])
    page = client.get(url)
    assert page.status_code == 200
    assert "You will no longer receive “Charging finished” alerts by email" in html(page)
    assert not Preference.objects.exists()  # a GET (a mail scanner) changes nothing
    done = client.post(url)
    assert done.status_code == 200 and "Unsubscribed" in html(done)
    assert Preference.objects.get(user=driver).enabled is False


def test_one_click_unsubscribe_of_every_event(driver):
    from django.test import Client

    mail_client = Client(enforce_csrf_checks=True)
    url = reverse("alerts:unsubscribe", args=[make_token(driver.pk, None, "email")])
    response = mail_client.post(url, "List-Unsubscribe=One-Click", "application/x-www-form-urlencoded")
    assert response.status_code == 200 and "any alerts by email" in html(response)
    off = set(Preference.objects.filter(user=driver, enabled=False).values_list("event_type", flat=True))
    on_by_email = {e.key for e in catalog.for_audience(catalog.DRIVER) if "email" in e.default_channels}
    assert off == on_by_email


def test_a_bad_unsubscribe_token_is_400(client, driver):
    token = make_token(driver.pk, None, "email")
    for bad in ("nonsense", token[:-2] + "xx"):
        response = client.get(reverse("alerts:unsubscribe", args=[bad]))
        assert response.status_code == 400 and "This unsubscribe link is not valid" in html(response)
        assert client.post(reverse("alerts:unsubscribe", args=[bad])).status_code == 400
    assert not Preference.objects.exists()


# --- Operator pages: who may see them ---------------------------------------------------------


OPERATOR_PAGES = ("alerts:deliveries", "alerts:webhooks", "alerts:maintenance")


def test_drivers_may_not_see_operator_pages(login, driver):
    client = login(driver)
    for name in OPERATOR_PAGES:
        assert client.get(reverse(name)).status_code == 403


def test_technicians_read_without_forms(login, technician, operator):
    endpoint = WebhookEndpoint.objects.create(operator=operator, url="https://hooks.example.com/a")
    client = login(technician)
    for name in OPERATOR_PAGES:
        page = client.get(reverse(name))
        assert page.status_code == 200
        assert '<form method="post"' not in html(page).split('id="main"')[1]
    assert "hooks.example.com/a" in html(client.get(reverse("alerts:webhooks")))
    assert client.post(reverse("alerts:webhook-test", args=[endpoint.pk])).status_code == 403
    assert client.post(reverse("alerts:webhooks"), {"url": "https://x.example.com"}).status_code == 403


def test_operator_nav_leads_to_the_alerts_pages(login, operator_admin, driver):
    page = html(login(operator_admin).get(reverse("alerts:deliveries")))
    assert 'href="/alerts/deliveries/" aria-current="page">Alerts</a>' in page
    assert 'href="/alerts/webhooks/"' in page and 'href="/alerts/maintenance/"' in page
    assert 'href="/alerts/deliveries/"' not in html(login(driver).get(reverse("alerts:notifications")))


# --- Delivery log -----------------------------------------------------------------------------


def test_delivery_log_shows_the_operators_deliveries_only(
    login, operator_admin, operator, other_operator, driver
):
    mine = delivery(operator, key="mine", user=driver)
    theirs = delivery(other_operator, key="theirs")
    page = html(login(operator_admin).get(reverse("alerts:deliveries")))
    assert f'data-delivery="{mine.pk}"' in page and f'data-delivery="{theirs.pk}"' not in page
    assert "alice@example.com" in page and "SMTP 451 try later" in page and "Retry" in page


def test_delivery_log_filters(login, operator_admin, operator):
    failed = delivery(operator, key="a", channel="email")
    sent = delivery(operator, key="b", status=DeliveryStatus.SENT, channel="push")
    client = login(operator_admin)
    by_status = html(client.get(reverse("alerts:deliveries"), {"status": "sent"}))
    assert f'data-delivery="{sent.pk}"' in by_status and f'data-delivery="{failed.pk}"' not in by_status
    by_channel = html(client.get(reverse("alerts:deliveries"), {"channel": "email"}))
    assert f'data-delivery="{failed.pk}"' in by_channel and f'data-delivery="{sent.pk}"' not in by_channel
    by_event = html(client.get(reverse("alerts:deliveries"), {"event_type": "payment_failed"}))
    assert "No deliveries match these filters" in by_event


def test_delivery_log_queries_do_not_grow_with_rows(
    login, operator_admin, operator, driver, django_assert_max_num_queries
):
    endpoint = WebhookEndpoint.objects.create(operator=operator, url="https://hooks.example.com/a")
    delivery(operator, key="first", user=driver)
    client = login(operator_admin)
    with CaptureQueriesContext(connection) as one:
        assert client.get(reverse("alerts:deliveries")).status_code == 200
    for n in range(30):
        delivery(
            operator, key=f"more{n}", user=driver if n % 2 else None, endpoint=None if n % 2 else endpoint
        )
    with django_assert_max_num_queries(len(one)):
        response = client.get(reverse("alerts:deliveries"))
    assert html(response).count("data-delivery=") == 31
    assert len(one) <= 8  # session, user, unread count, count, rows (and the savepoints around them)


def test_retry_puts_a_failed_delivery_back_and_sends_it(
    login, operator_admin, operator, other_operator, monkeypatch
):
    from alerts import tasks

    sent = []
    monkeypatch.setattr(tasks.deliver, "delay", lambda ids: sent.append(ids))
    failed = delivery(operator, key="a")
    client = login(operator_admin)
    response = client.post(reverse("alerts:delivery-retry", args=[failed.pk]), follow=True)
    assert "is being sent again" in html(response)
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.PENDING and sent == [[failed.pk]]
    again = client.post(reverse("alerts:delivery-retry", args=[failed.pk]), follow=True)
    assert "cannot be retried" in html(again) and sent == [[failed.pk]]
    theirs = delivery(other_operator, key="b")
    assert client.post(reverse("alerts:delivery-retry", args=[theirs.pk])).status_code == 404


# --- Webhooks ---------------------------------------------------------------------------------


def test_webhook_is_created_with_its_secret_shown_once(login, operator_admin, operator):
    client = login(operator_admin)
    response = client.post(
        reverse("alerts:webhooks"),
        {
            "url": "https://hooks.example.com/cd",
            "description": "Ops",
            "event_types": ["fault", "charger_offline"],
        },
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get(operator=operator)
    assert (endpoint.url, endpoint.event_types, endpoint.created_by) == (
        "https://hooks.example.com/cd",
        ["fault", "charger_offline"],
        operator_admin,
    )
    assert endpoint.secret in html(response) and "Faults, Chargers offline" in html(response)
    assert endpoint.secret not in html(client.get(reverse("alerts:webhooks")))


def test_webhook_form_shows_the_services_errors(login, operator_admin):
    response = login(operator_admin).post(reverse("alerts:webhooks"), {"url": "not a url"})
    assert response.status_code == 400 and "field-error" in html(response)
    assert not WebhookEndpoint.objects.exists()


def test_rotate_disable_enable_and_delete(login, operator_admin, operator):
    endpoint = WebhookEndpoint.objects.create(operator=operator, url="https://hooks.example.com/a")
    old = endpoint.secret
    client = login(operator_admin)
    page = html(client.post(reverse("alerts:webhook-rotate", args=[endpoint.pk]), follow=True))
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret in page
    page = html(client.post(reverse("alerts:webhook-disable", args=[endpoint.pk]), follow=True))
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "Disabled by admin@voltway.example." in page
    client.post(reverse("alerts:webhook-enable", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.disabled_reason == ""
    client.post(reverse("alerts:webhook-delete", args=[endpoint.pk]))
    assert not WebhookEndpoint.objects.exists()


@pytest.fixture
def receiver():
    """An HTTP receiver on a free port answering ``receiver.status`` and keeping the bodies."""
    state = SimpleNamespace(status=200, bodies=[])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            state.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(state.status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    server.shutdown()
    server.server_close()


def test_test_send_reports_the_receivers_answer(login, operator_admin, operator, receiver):
    endpoint = WebhookEndpoint.objects.create(operator=operator, url=receiver.url)
    client = login(operator_admin)
    page = html(client.post(reverse("alerts:webhook-test", args=[endpoint.pk]), follow=True))
    assert f"Test sent to {receiver.url}" in page and receiver.bodies[0]["type"] == "ping"
    receiver.status = 500
    page = html(client.post(reverse("alerts:webhook-test", args=[endpoint.pk]), follow=True))
    assert f"Test to {receiver.url} failed" in page


def test_another_operators_webhook_is_404(login, operator_admin, other_operator):
    theirs = WebhookEndpoint.objects.create(operator=other_operator, url="https://hooks.example.com/ng")
    client = login(operator_admin)
    assert "hooks.example.com/ng" not in html(client.get(reverse("alerts:webhooks")))
    for name in ("webhook-test", "webhook-rotate", "webhook-enable", "webhook-disable", "webhook-delete"):
        assert client.post(reverse(f"alerts:{name}", args=[theirs.pk])).status_code == 404
    assert WebhookEndpoint.objects.filter(pk=theirs.pk, is_active=True).exists()


# --- Maintenance windows ----------------------------------------------------------------------


def local_input(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def test_maintenance_window_is_created_in_the_sites_time_zone(login, operator_admin, charge_point):
    charge_point.site.time_zone = "Europe/Amsterdam"
    charge_point.site.save()
    zone = zoneinfo.ZoneInfo("Europe/Amsterdam")
    start = (
        (timezone.now() + dt.timedelta(days=3))
        .astimezone(zone)
        .replace(hour=9, minute=0, second=0, microsecond=0)
    )
    response = login(operator_admin).post(
        reverse("alerts:maintenance"),
        {
            "charge_point": charge_point.pk,
            "starts_at": local_input(start),
            "ends_at": local_input(start + dt.timedelta(hours=4)),
            "reason": "New cable",
        },
        follow=True,
    )
    window = MaintenanceWindow.objects.get()
    assert window.starts_at == start and window.ends_at == start + dt.timedelta(hours=4)
    assert (window.charge_point, window.operator, window.created_by) == (
        charge_point,
        charge_point.operator,
        operator_admin,
    )
    page = html(response)
    assert (
        "saved as a draft" in page and start.strftime("%Y-%m-%d 09:00") in page and "Europe/Amsterdam" in page
    )


def test_maintenance_form_needs_one_place_and_an_end_after_the_start(login, operator_admin, charge_point):
    start = timezone.now() + dt.timedelta(days=1)
    client = login(operator_admin)
    neither = client.post(
        reverse("alerts:maintenance"),
        {"starts_at": local_input(start), "ends_at": local_input(start + dt.timedelta(hours=1))},
    )
    assert neither.status_code == 400 and "Choose a charge point or a site" in html(neither)
    backwards = client.post(
        reverse("alerts:maintenance"),
        {"site": charge_point.site.pk, "starts_at": local_input(start), "ends_at": local_input(start)},
    )
    assert backwards.status_code == 400 and "must end after it starts" in html(backwards)
    assert not MaintenanceWindow.objects.exists()


def test_publish_tells_the_drivers_and_says_how_many(login, operator_admin, charge_point, driver):
    from alerts.services.preferences import add_favourite

    add_favourite(user=driver, charge_point=charge_point)
    start = timezone.now() + dt.timedelta(days=2)
    window = MaintenanceWindow.objects.create(
        operator=charge_point.operator,
        charge_point=charge_point,
        starts_at=start,
        ends_at=start + dt.timedelta(hours=2),
    )
    client = login(operator_admin)
    page = html(client.post(reverse("alerts:maintenance-publish", args=[window.pk]), follow=True))
    assert "Published: 1 driver told." in page
    window.refresh_from_db()
    assert window.published_at is not None
    assert Notification.objects.filter(user=driver, event_type="maintenance_planned").exists()
    page = html(client.post(reverse("alerts:maintenance-cancel", args=[window.pk]), follow=True))
    window.refresh_from_db()
    assert window.cancelled_at is not None and "Maintenance window cancelled." in page


def test_another_operators_window_is_404(login, operator_admin, other_charge_point):
    start = timezone.now() + dt.timedelta(days=2)
    theirs = MaintenanceWindow.objects.create(
        operator=other_charge_point.operator,
        charge_point=other_charge_point,
        starts_at=start,
        ends_at=start + dt.timedelta(hours=1),
    )
    client = login(operator_admin)
    assert f'data-window="{theirs.pk}"' not in html(client.get(reverse("alerts:maintenance")))
    for name in ("maintenance-publish", "maintenance-cancel"):
        assert client.post(reverse(f"alerts:{name}", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.published_at is None and theirs.cancelled_at is None


def test_maintenance_form_offers_only_the_operators_places(
    login, operator_admin, charge_point, other_charge_point
):
    ConnectorFactory(
        charge_point=ChargePointFactory(site=charge_point.site, identity="VW-0002"), connector_id=1
    )
    page = html(login(operator_admin).get(reverse("alerts:maintenance")))
    assert "VW-0002" in page and "Central Station" in page
    assert "NG-0001" not in page and "Harbour" not in page
    response = login(operator_admin).post(
        reverse("alerts:maintenance"),
        {
            "charge_point": other_charge_point.pk,
            "starts_at": local_input(timezone.now() + dt.timedelta(days=1)),
            "ends_at": local_input(timezone.now() + dt.timedelta(days=2)),
        },
    )
    assert response.status_code == 400 and not MaintenanceWindow.objects.exists()


def test_superuser_sees_every_operator_and_names_the_webhooks_operator(client, operator, other_operator):
    from stations.models import User

    root = User.objects.create_superuser(email="root@example.com", password="x")
    client.force_login(root)
    mine, theirs = delivery(operator, key="a"), delivery(other_operator, key="b")
    page = html(client.get(reverse("alerts:deliveries")))
    assert f'data-delivery="{mine.pk}"' in page and f'data-delivery="{theirs.pk}"' in page
    refused = client.post(reverse("alerts:webhooks"), {"url": "https://hooks.example.com/ng"})
    assert refused.status_code == 400 and not WebhookEndpoint.objects.exists()
    client.post(
        reverse("alerts:webhooks"), {"url": "https://hooks.example.com/ng", "operator": other_operator.pk}
    )
    assert WebhookEndpoint.objects.get().operator == other_operator
