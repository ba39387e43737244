"""REST API of alerts for everyone signed in (the mobile app): notifications, alert settings,
push subscriptions and favourite stations — each user's own and nobody else's."""

import base64
import itertools
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.utils import timezone

from alerts.models import Alert, AlertProfile, Notification, Preference, PushSubscription
from stations.models import RegistrationStatus
from tests.factories import ChargePointFactory, SiteFactory

pytestmark = pytest.mark.django_db

NOTIFICATIONS = "/api/v1/me/notifications/"
SETTINGS = "/api/v1/me/alert-settings/"
PUSH = "/api/v1/me/push-subscriptions/"
FAVOURITES = "/api/v1/me/favourite-stations/"
KEYS = itertools.count()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def browser_subscription(endpoint="https://fcm.googleapis.com/fcm/send/abc123") -> dict:
    """What a browser's PushSubscription.toJSON() gives."""
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {
        "endpoint": endpoint,
        "expirationTime": None,
        "keys": {"p256dh": _b64url(point), "auth": _b64url(os.urandom(16))},
    }


def notify(user, title="Charging finished", *, charge_point=None, read=False) -> Notification:
    alert = Alert.objects.create(
        event_type="session_finished", dedup_key=f"test-{next(KEYS)}", title=title, charge_point=charge_point
    )
    return Notification.objects.create(
        alert=alert,
        user=user,
        event_type=alert.event_type,
        title=title,
        read_at=timezone.now() if read else None,
    )


# --- Notifications ----------------------------------------------------------------------------


def test_notifications_list_only_your_own_newest_first(api_as, driver, other_driver, charge_point):
    first = notify(driver, "first")
    second = notify(driver, "second", charge_point=charge_point)
    notify(other_driver, "not yours")

    body = api_as(driver).get(NOTIFICATIONS).json()

    assert body["count"] == 2
    assert [n["id"] for n in body["results"]] == [second.pk, first.pk]
    assert body["results"][0]["charge_point"] == "VW-0001"
    assert body["results"][0]["is_read"] is False


def test_notifications_filter_unread(api_as, driver):
    unread = notify(driver, "new")
    notify(driver, "old", read=True)

    body = api_as(driver).get(NOTIFICATIONS, {"unread": "true"}).json()

    assert [n["id"] for n in body["results"]] == [unread.pk]


def test_someone_elses_notification_is_not_found(api_as, driver, other_driver):
    theirs = notify(other_driver)
    client = api_as(driver)

    assert client.get(f"{NOTIFICATIONS}{theirs.pk}/").status_code == 404
    assert client.post(f"{NOTIFICATIONS}{theirs.pk}/read/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_one_notification_read(api_as, driver):
    mine = notify(driver)
    other = notify(driver)

    response = api_as(driver).post(f"{NOTIFICATIONS}{mine.pk}/read/")

    assert response.status_code == 200
    assert response.json()["is_read"] is True
    mine.refresh_from_db()
    other.refresh_from_db()
    assert mine.read_at is not None and other.read_at is None


def test_read_all_marks_only_your_unread(api_as, driver, other_driver):
    notify(driver)
    notify(driver)
    notify(driver, read=True)
    theirs = notify(other_driver)

    response = api_as(driver).post(f"{NOTIFICATIONS}read-all/")

    assert response.json() == {"marked": 2}
    assert not Notification.objects.filter(user=driver, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_notifications_list_query_count(api_as, driver, charge_point, django_assert_max_num_queries):
    for i in range(15):
        notify(driver, f"n{i}", charge_point=charge_point)
    client = api_as(driver)

    with django_assert_max_num_queries(3):
        response = client.get(NOTIFICATIONS)

    assert response.json()["count"] == 15


def test_notifications_need_sign_in(api_client):
    assert api_client.get(NOTIFICATIONS).status_code in (401, 403)


# --- Alert settings ---------------------------------------------------------------------------


def test_settings_show_the_catalogue_defaults_of_your_audience(api_as, driver):
    body = api_as(driver).get(SETTINGS).json()

    assert body["preferences"]["session_finished"] == {
        "inapp": True,
        "email": True,
        "push": True,
        "mobile": True,
        "sms": False,
    }
    assert "fault" not in body["preferences"]
    assert {e["key"] for e in body["event_types"]} == set(body["preferences"])
    assert body["radius_km"] == "10.0"
    assert body["quiet_hours_start"] is None


def test_operator_staff_see_operator_event_types(api_as, technician):
    body = api_as(technician).get(SETTINGS).json()

    assert "fault" in body["preferences"]
    assert "session_finished" not in body["preferences"]


def test_settings_round_trip(api_as, driver):
    client = api_as(driver)
    response = client.patch(
        SETTINGS,
        {
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
            "time_zone": "Europe/Amsterdam",
            "home_latitude": "52.3702161234",
            "home_longitude": 4.8951679,
            "radius_km": "7.5",
            "preferences": {"session_finished": {"email": False, "sms": True}},
        },
    )

    assert response.status_code == 200, response.json()
    body = client.get(SETTINGS).json()
    assert body["quiet_hours_start"] == "22:00:00"
    assert body["quiet_hours_end"] == "07:00:00"
    assert body["time_zone"] == "Europe/Amsterdam"
    assert body["home_latitude"] == "52.370216"
    assert body["home_longitude"] == "4.895168"
    assert body["radius_km"] == "7.5"
    assert body["preferences"]["session_finished"]["email"] is False
    assert body["preferences"]["session_finished"]["sms"] is True
    assert body["preferences"]["session_finished"]["push"] is True
    assert set(Preference.objects.filter(user=driver).values_list("channel", "enabled")) == {
        ("email", False),
        ("sms", True),
    }


def test_setting_a_default_again_leaves_no_row(api_as, driver):
    client = api_as(driver)
    client.patch(SETTINGS, {"preferences": {"session_finished": {"email": False}}})
    client.patch(SETTINGS, {"preferences": {"session_finished": {"email": True}}})

    assert not Preference.objects.filter(user=driver).exists()


def test_put_needs_every_setting(api_as, driver):
    response = api_as(driver).put(SETTINGS, {"time_zone": "UTC"})

    assert response.status_code == 400
    assert "radius_km" in response.json()


def test_put_replaces_the_settings(api_as, driver):
    client = api_as(driver)
    current = client.get(SETTINGS).json()
    current.pop("event_types")
    current.update(radius_km="25", digest="daily", preferences={"station_back_in_service": {"email": True}})

    response = client.put(SETTINGS, current)

    assert response.status_code == 200, response.json()
    profile = AlertProfile.objects.get(user=driver)
    assert str(profile.radius_km) == "25.0" and profile.digest == "daily"
    assert response.json()["preferences"]["station_back_in_service"]["email"] is True


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quiet_hours_start": "22:00"}, "quiet_hours_end"),
        ({"home_latitude": "52.1"}, "home_longitude"),
        ({"radius_km": "0"}, "radius_km"),
        ({"radius_km": "100000"}, "radius_km"),
        ({"home_latitude": "1e30", "home_longitude": "4"}, "home_latitude"),
        ({"home_latitude": "95", "home_longitude": "4"}, "home_latitude"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"preferences": {"fault": {"email": True}}}, "preferences"),
        ({"preferences": {"session_finished": {"pigeon": True}}}, "preferences"),
        ({"preferences": {"session_finished": {"email": "yes please"}}}, "preferences"),
    ],
)
def test_invalid_settings_are_400_with_the_field(api_as, driver, change, field):
    response = api_as(driver).patch(SETTINGS, change)

    assert response.status_code == 400
    assert field in response.json()
    assert not Preference.objects.filter(user=driver).exists()


def test_a_bad_preference_rolls_back_the_profile_change(api_as, driver):
    client = api_as(driver)
    client.get(SETTINGS)
    response = client.patch(
        SETTINGS, {"radius_km": "30", "preferences": {"payment_failed": {"email": False}}}
    )

    assert response.status_code == 400
    assert AlertProfile.objects.get(user=driver).radius_km == 10


# --- Push subscriptions ----------------------------------------------------------------------


def test_register_a_browser_for_push(api_as, driver):
    body = browser_subscription()

    response = api_as(driver).post(PUSH, {"kind": "web", **body}, HTTP_USER_AGENT="Firefox/140")

    assert response.status_code == 201, response.json()
    subscription = PushSubscription.objects.get(user=driver)
    assert subscription.endpoint == body["endpoint"]
    assert subscription.p256dh == body["keys"]["p256dh"]
    assert subscription.user_agent == "Firefox/140"
    assert "p256dh" not in response.json()


def test_registering_the_same_browser_twice_keeps_one(api_as, driver):
    client = api_as(driver)
    client.post(PUSH, {"kind": "web", **browser_subscription()})
    client.post(PUSH, {"kind": "web", **browser_subscription()})

    assert PushSubscription.objects.filter(user=driver).count() == 1
    assert client.get(PUSH).json()["count"] == 1


def test_register_a_phone_for_push(api_as, driver):
    response = api_as(driver).post(PUSH, {"kind": "mobile", "token": "fcm-token-123", "platform": "Android"})

    assert response.status_code == 201, response.json()
    subscription = PushSubscription.objects.get(user=driver)
    assert (subscription.kind, subscription.endpoint, subscription.platform) == (
        "mobile",
        "fcm-token-123",
        "android",
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "http://push.example.com/x"}, "endpoint"),
        ({"endpoint": "not a url"}, "endpoint"),
        ({"endpoint": "https://user:pw@push.example.com/x"}, "endpoint"),
        ({"keys": {"p256dh": _b64url(b"\x04" + b"x" * 10), "auth": _b64url(b"a" * 16)}}, "p256dh"),
        ({"keys": {"p256dh": "!!!not base64!!!", "auth": _b64url(b"a" * 16)}}, "p256dh"),
        ({"keys": {"auth": _b64url(b"a" * 16)}}, "keys"),
        ({"keys": None}, "keys"),
        ({"endpoint": None}, "endpoint"),
    ],
)
def test_invalid_browser_subscriptions_are_refused(api_as, driver, change, field):
    body = {"kind": "web", **browser_subscription()}
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}

    response = api_as(driver).post(PUSH, body)

    assert response.status_code == 400
    assert field in response.json()
    assert not PushSubscription.objects.exists()


def test_a_short_auth_secret_is_refused(api_as, driver):
    body = browser_subscription()
    body["keys"]["auth"] = _b64url(b"a" * 8)

    response = api_as(driver).post(PUSH, {"kind": "web", **body})

    assert response.status_code == 400
    assert "auth" in response.json()


def test_local_push_service_is_fine_outside_production(api_as, driver):
    body = browser_subscription("http://127.0.0.1:8765/push/1")

    assert api_as(driver).post(PUSH, {"kind": "web", **body}).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "mobile", "token": "abc", "platform": "windows-phone"}, "platform"),
        ({"kind": "mobile", "platform": "ios"}, "token"),
        ({"kind": "mobile", "token": "has a space", "platform": "ios"}, "endpoint"),
        ({"kind": "fax", "token": "abc"}, "kind"),
    ],
)
def test_invalid_phone_subscriptions_are_refused(api_as, driver, body, field):
    response = api_as(driver).post(PUSH, body)

    assert response.status_code == 400
    assert field in response.json()


def test_delete_a_push_subscription(api_as, driver, other_driver):
    mine = PushSubscription.objects.create(user=driver, kind="mobile", endpoint="tok-1", platform="ios")
    theirs = PushSubscription.objects.create(
        user=other_driver, kind="mobile", endpoint="tok-2", platform="ios"
    )
    client = api_as(driver)

    assert client.delete(f"{PUSH}{theirs.pk}/").status_code == 404
    assert client.delete(f"{PUSH}{mine.pk}/").status_code == 204
    assert list(PushSubscription.objects.all()) == [theirs]


def test_unregister_by_endpoint(api_as, driver):
    client = api_as(driver)
    body = browser_subscription()
    client.post(PUSH, {"kind": "web", **body})

    assert client.post(f"{PUSH}unregister/", {"endpoint": body["endpoint"]}).status_code == 204
    assert client.post(f"{PUSH}unregister/", {"endpoint": body["endpoint"]}).status_code == 404
    assert not PushSubscription.objects.exists()


def test_vapid_public_key(api_as, driver, settings):
    settings.ALERTS_VAPID_PRIVATE_KEY = "private-key"
    settings.ALERTS_VAPID_PUBLIC_KEY = "BPublicKey"

    response = api_as(driver).get(f"{PUSH}vapid-key/")

    assert response.status_code == 200
    assert response.json() == {"public_key": "BPublicKey"}


# --- Favourite stations ----------------------------------------------------------------------


def test_follow_and_unfollow_a_station(api_as, driver, charge_point):
    client = api_as(driver)

    response = client.post(FAVOURITES, {"charge_point": "VW-0001"})
    assert response.status_code == 201, response.json()
    assert response.json()["identity"] == "VW-0001"
    assert response.json()["site_name"] == "Central Station"

    body = client.get(FAVOURITES).json()
    assert [s["identity"] for s in body["results"]] == ["VW-0001"]

    assert client.delete(f"{FAVOURITES}VW-0001/").status_code == 204
    assert client.get(FAVOURITES).json()["count"] == 0
    assert client.delete(f"{FAVOURITES}VW-0001/").status_code == 404


def test_following_twice_keeps_one(api_as, driver, charge_point):
    client = api_as(driver)
    client.post(FAVOURITES, {"charge_point": "VW-0001"})
    client.post(FAVOURITES, {"charge_point": "VW-0001"})

    assert AlertProfile.objects.get(user=driver).favourites.count() == 1


def test_cannot_follow_a_private_or_unknown_station(api_as, driver, operator):
    private = ChargePointFactory(site=SiteFactory(operator=operator, is_public=False), identity="VW-HIDDEN")
    pending = ChargePointFactory(
        site=SiteFactory(operator=operator),
        identity="VW-PENDING",
        registration_status=RegistrationStatus.PENDING,
    )
    client = api_as(driver)

    for identity in (private.identity, pending.identity, "NOPE-1"):
        response = client.post(FAVOURITES, {"charge_point": identity})
        assert response.status_code == 400
        assert "charge_point" in response.json()
    assert not AlertProfile.objects.filter(user=driver, favourites__isnull=False).exists()


def test_favourites_are_your_own(api_as, driver, other_driver, charge_point):
    api_as(other_driver).post(FAVOURITES, {"charge_point": "VW-0001"})

    assert api_as(driver).get(FAVOURITES).json()["count"] == 0


def test_the_schema_documents_the_alerts_api(api_client):
    schema = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]

    for path in (
        "/api/v1/me/notifications/",
        "/api/v1/me/notifications/{id}/read/",
        "/api/v1/me/notifications/read-all/",
        "/api/v1/me/alert-settings/",
        "/api/v1/me/push-subscriptions/",
        "/api/v1/me/push-subscriptions/vapid-key/",
        "/api/v1/me/favourite-stations/{identity}/",
        "/api/v1/operator/webhooks/{id}/rotate-secret/",
        "/api/v1/operator/webhooks/{id}/test/",
        "/api/v1/operator/deliveries/{id}/retry/",
        "/api/v1/operator/maintenance-windows/{id}/publish/",
    ):
        assert path in paths
    assert "unread" in {p["name"] for p in paths["/api/v1/me/notifications/"]["get"]["parameters"]}
    delivery_filters = {p["name"] for p in paths["/api/v1/operator/deliveries/"]["get"]["parameters"]}
    assert {"status", "channel", "event_type"} <= delivery_filters
    webhook_get = paths["/api/v1/operator/webhooks/{id}/"]["get"]["responses"]["200"]["content"]
    component = webhook_get["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "secret" not in schema["components"]["schemas"][component]["properties"]
