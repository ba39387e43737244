"""A user's alert settings through the services the settings pages and the API share."""

import base64
import datetime as dt
import os
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ValidationError
from django.utils import timezone

from alerts import catalog
from alerts.models import Alert, AlertProfile, Notification, Preference, PushSubscription
from alerts.services import preferences
from stations.models import User
from tests.factories import ChargePointFactory, SiteFactory

pytestmark = pytest.mark.django_db


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def web_keys() -> dict:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {"p256dh": _b64url(point), "auth": _b64url(os.urandom(16))}


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(email="root@chargedesk.example", password="x")


def _matrix(user) -> dict[str, dict[str, bool]]:
    return {row["event_type"].key: row["channels"] for row in preferences.channel_matrix(user)}


# --- Audience and matrix ----------------------------------------------------------------------


def test_audiences(driver, technician, operator_admin, superuser):
    assert preferences.audience_of(driver) == ["driver"]
    assert preferences.audience_of(technician) == ["operator"]
    assert preferences.audience_of(operator_admin) == ["operator"]
    assert preferences.audience_of(superuser) == ["driver", "operator"]


def test_matrix_is_the_catalogue_defaults_until_chosen(driver, django_assert_num_queries):
    with django_assert_num_queries(1):
        matrix = preferences.channel_matrix(driver)

    assert [row["event_type"] for row in matrix] == catalog.for_audience(catalog.DRIVER)
    for row in matrix:
        assert set(row["channels"]) == {"inapp", "email", "push", "mobile", "sms"}
        assert {c for c, on in row["channels"].items() if on} == set(row["event_type"].default_channels)


def test_superuser_matrix_covers_both_halves(superuser):
    assert set(_matrix(superuser)) == set(catalog.EVENT_TYPES)


def test_set_preferences_stores_only_differences(driver):
    preferences.set_preferences(
        user=driver,
        choices={"session_started": {"inapp": True, "email": True, "push": False}, "maintenance_planned": {}},
    )

    rows = set(Preference.objects.filter(user=driver).values_list("event_type", "channel", "enabled"))
    assert rows == {("session_started", "email", True), ("session_started", "push", False)}
    matrix = _matrix(driver)
    assert matrix["session_started"]["email"] is True
    assert matrix["session_started"]["push"] is False
    assert matrix["session_started"]["mobile"] is True


def test_choosing_the_default_again_deletes_the_row(driver):
    preferences.set_preferences(user=driver, choices={"session_started": {"push": False, "email": True}})
    preferences.set_preferences(user=driver, choices={"session_started": {"push": True}})

    assert set(Preference.objects.filter(user=driver).values_list("channel", flat=True)) == {"email"}


def test_changing_a_choice_updates_the_row(driver):
    preferences.set_preferences(user=driver, choices={"session_started": {"sms": True}})
    preferences.set_preferences(user=driver, choices={"session_started": {"sms": False}})

    assert not Preference.objects.filter(user=driver).exists()


VALID = {"session_started": {"sms": True}}


@pytest.mark.parametrize(
    "choices",
    [
        {**VALID, "fault": {"email": True}},
        {**VALID, "nonsense": {"email": True}},
        {"session_started": {"sms": True, "webhook": True}},
        {"session_started": {"sms": True, "email": 1}},
        {**VALID, "session_finished": ["email"]},
        ["session_started"],
    ],
)
def test_invalid_choices_change_nothing(driver, choices):
    with pytest.raises(ValidationError):
        preferences.set_preferences(user=driver, choices=choices)

    assert not Preference.objects.filter(user=driver).exists()


def test_preferences_are_per_user(driver, other_driver):
    preferences.set_preferences(user=driver, choices={"session_started": {"sms": True}})

    assert _matrix(other_driver)["session_started"]["sms"] is False


# --- Unsubscribe ------------------------------------------------------------------------------


def test_unsubscribe_one_event_type(driver):
    preferences.unsubscribe(user_id=driver.pk, event_type="session_finished", channel="email")

    matrix = _matrix(driver)
    assert matrix["session_finished"]["email"] is False
    assert matrix["session_interrupted"]["email"] is True


def test_unsubscribe_from_everything_on_a_channel(driver):
    preferences.set_preferences(user=driver, choices={"session_started": {"email": True}})

    preferences.unsubscribe(user_id=driver.pk, event_type=None, channel="email")

    assert not any(channels["email"] for channels in _matrix(driver).values())
    # Event types whose default is off keep no row: nothing differs from the catalogue.
    assert not Preference.objects.filter(user=driver, event_type="session_started").exists()


def test_unsubscribe_twice_changes_nothing(technician):
    preferences.unsubscribe(user_id=technician.pk, event_type="fault", channel="email")
    rows = list(Preference.objects.values_list("event_type", "channel", "enabled"))

    preferences.unsubscribe(user_id=technician.pk, event_type="fault", channel="email")

    assert (
        list(Preference.objects.values_list("event_type", "channel", "enabled"))
        == rows
        == [("fault", "email", False)]
    )


def test_unsubscribe_of_a_deleted_user_is_a_no_op(driver):
    user_id = driver.pk
    driver.delete()

    preferences.unsubscribe(user_id=user_id, event_type=None, channel="email")

    assert not Preference.objects.exists()


@pytest.mark.parametrize(("event_type", "channel"), [("fault", "email"), ("session_finished", "webhook")])
def test_unsubscribe_refuses_what_is_not_yours(driver, event_type, channel):
    with pytest.raises(ValidationError):
        preferences.unsubscribe(user_id=driver.pk, event_type=event_type, channel=channel)


# --- Profile ----------------------------------------------------------------------------------


def test_profile_is_created_once(driver):
    assert preferences.profile_for(driver) == preferences.profile_for(driver)
    assert AlertProfile.objects.filter(user=driver).count() == 1


def test_update_profile(driver):
    profile = preferences.update_profile(
        user=driver,
        quiet_hours_start=dt.time(22),
        quiet_hours_end="07:30",
        time_zone="Europe/Amsterdam",
        home_latitude="52.37021649",
        home_longitude=4.8951679,
        radius_km=Decimal("12.34"),
        digest="hourly",
        max_per_hour="20",
    )

    profile.refresh_from_db()
    assert (profile.quiet_hours_start, profile.quiet_hours_end) == (dt.time(22), dt.time(7, 30))
    assert profile.home_latitude == Decimal("52.370216")
    assert profile.home_longitude == Decimal("4.895168")
    assert profile.radius_km == Decimal("12.3")
    assert (profile.time_zone, profile.digest, profile.max_per_hour) == ("Europe/Amsterdam", "hourly", 20)


def test_clearing_quiet_hours_and_home(driver):
    preferences.update_profile(
        user=driver, quiet_hours_start="22:00", quiet_hours_end="06:00", home_latitude=1, home_longitude=2
    )

    profile = preferences.update_profile(
        user=driver, quiet_hours_start=None, quiet_hours_end="", home_latitude=None, home_longitude=None
    )

    assert profile.quiet_hours_start is None and profile.quiet_hours_end is None
    assert profile.home_latitude is None and profile.home_longitude is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"quiet_hours_start": "22:00"}, "quiet_hours_end"),
        ({"quiet_hours_end": "06:00"}, "quiet_hours_start"),
        ({"quiet_hours_start": "22:00", "quiet_hours_end": "22:00"}, "quiet_hours_end"),
        ({"quiet_hours_start": "late", "quiet_hours_end": "06:00"}, "quiet_hours_start"),
        ({"home_latitude": "52"}, "home_longitude"),
        ({"home_latitude": "91", "home_longitude": "4"}, "home_latitude"),
        ({"home_latitude": "52", "home_longitude": "-181"}, "home_longitude"),
        ({"home_latitude": "north", "home_longitude": "4"}, "home_latitude"),
        ({"home_latitude": "1e30", "home_longitude": "4"}, "home_latitude"),
        ({"home_latitude": "NaN", "home_longitude": "4"}, "home_latitude"),
        ({"radius_km": "0"}, "radius_km"),
        ({"radius_km": "-5"}, "radius_km"),
        ({"radius_km": "200.1"}, "radius_km"),
        ({"radius_km": None}, "radius_km"),
        ({"time_zone": "Europe/Atlantis"}, "time_zone"),
        ({"digest": "weekly"}, "digest"),
        ({"max_per_hour": 0}, "max_per_hour"),
        ({"max_per_hour": "many"}, "max_per_hour"),
    ],
)
def test_invalid_profile_changes_say_which_field(driver, fields, field):
    with pytest.raises(ValidationError) as caught:
        preferences.update_profile(user=driver, **fields)

    assert field in caught.value.message_dict
    profile = preferences.profile_for(driver)
    assert profile.quiet_hours_start is None and profile.home_latitude is None and profile.radius_km == 10


def test_a_half_given_setting_may_complete_the_stored_one(driver):
    preferences.update_profile(user=driver, quiet_hours_start="22:00", quiet_hours_end="06:00")

    profile = preferences.update_profile(user=driver, quiet_hours_end="07:00")

    assert profile.quiet_hours_end == dt.time(7)


def test_unknown_profile_fields_are_refused(driver):
    with pytest.raises(ValidationError):
        preferences.update_profile(user=driver, user_id=5)


def test_radius_limit_follows_the_setting(driver, settings):
    settings.CHARGEDESK_MAX_SEARCH_RADIUS_KM = 50

    with pytest.raises(ValidationError):
        preferences.update_profile(user=driver, radius_km=60)
    assert preferences.update_profile(user=driver, radius_km=50).radius_km == 50


# --- Favourites -------------------------------------------------------------------------------


def test_follow_a_public_station(driver, charge_point):
    preferences.add_favourite(user=driver, charge_point=charge_point)
    preferences.add_favourite(user=driver, charge_point=charge_point)

    assert list(preferences.profile_for(driver).favourites.all()) == [charge_point]

    preferences.remove_favourite(user=driver, charge_point=charge_point)
    preferences.remove_favourite(user=driver, charge_point=charge_point)
    assert not preferences.profile_for(driver).favourites.exists()


def test_drivers_cannot_follow_a_private_station_but_its_staff_can(
    driver, technician, other_driver, operator
):
    private = ChargePointFactory(site=SiteFactory(operator=operator, is_public=False))
    unsited = ChargePointFactory(site=None, operator=operator)

    for charge_point in (private, unsited):
        with pytest.raises(ValidationError):
            preferences.add_favourite(user=driver, charge_point=charge_point)
    preferences.add_favourite(user=technician, charge_point=private)

    assert list(preferences.profile_for(technician).favourites.all()) == [private]


def test_staff_cannot_follow_another_operators_private_station(technician, other_operator):
    theirs = ChargePointFactory(site=SiteFactory(operator=other_operator, is_public=False))

    with pytest.raises(ValidationError):
        preferences.add_favourite(user=technician, charge_point=theirs)


def test_favourites_are_bounded(driver, site, monkeypatch):
    monkeypatch.setattr(preferences, "MAX_FAVOURITES", 2)
    first, second, third = (ChargePointFactory(site=site) for _ in range(3))
    preferences.add_favourite(user=driver, charge_point=first)
    preferences.add_favourite(user=driver, charge_point=second)

    with pytest.raises(ValidationError):
        preferences.add_favourite(user=driver, charge_point=third)
    preferences.add_favourite(user=driver, charge_point=second)  # already followed: fine


# --- Mark read --------------------------------------------------------------------------------


def _notify(user, n) -> Notification:
    alert = Alert.objects.create(event_type="session_finished", dedup_key=f"k-{user.pk}-{n}", title="Done")
    return Notification.objects.create(alert=alert, user=user, event_type=alert.event_type, title="Done")


def test_mark_read_named_ones_in_one_update(driver, other_driver, django_assert_num_queries):
    mine = [_notify(driver, n) for n in range(3)]
    theirs = _notify(other_driver, 9)

    with django_assert_num_queries(1):
        changed = preferences.mark_read(user=driver, notification_ids=[mine[0].pk, mine[1].pk, theirs.pk])

    assert changed == 2
    assert set(Notification.objects.filter(read_at__isnull=True).values_list("pk", flat=True)) == {
        mine[2].pk,
        theirs.pk,
    }


def test_mark_all_read_and_again(driver):
    for n in range(3):
        _notify(driver, n)

    assert preferences.mark_read(user=driver) == 3
    assert preferences.mark_read(user=driver) == 0
    assert preferences.mark_read(user=driver, notification_ids=[]) == 0


def test_marking_read_keeps_the_first_read_time(driver):
    notification = _notify(driver, 1)
    earlier = timezone.now() - dt.timedelta(hours=1)
    Notification.objects.filter(pk=notification.pk).update(read_at=earlier)

    assert preferences.mark_read(user=driver, notification_ids=[notification.pk]) == 0
    notification.refresh_from_db()
    assert notification.read_at == earlier


# --- Push subscriptions ----------------------------------------------------------------------


def test_register_web_push_is_an_upsert(driver):
    first = preferences.register_push(
        user=driver, kind="web", endpoint="https://push.example.com/1", **web_keys()
    )
    keys = web_keys()
    again = preferences.register_push(
        user=driver, kind="web", endpoint="https://push.example.com/1", user_agent="Chrome", **keys
    )

    assert again.pk == first.pk
    assert (again.p256dh, again.auth, again.user_agent) == (keys["p256dh"], keys["auth"], "Chrome")
    assert PushSubscription.objects.count() == 1


def test_a_browser_moves_to_whoever_signed_in_last(driver, other_driver):
    preferences.register_push(user=driver, kind="web", endpoint="https://push.example.com/1", **web_keys())

    preferences.register_push(
        user=other_driver, kind="web", endpoint="https://push.example.com/1", **web_keys()
    )

    assert list(PushSubscription.objects.values_list("user", flat=True)) == [other_driver.pk]


def test_keys_with_padding_are_fine(driver):
    keys = web_keys()
    keys = {name: value + "=" * (-len(value) % 4) for name, value in keys.items()}

    preferences.register_push(user=driver, kind="web", endpoint="https://push.example.com/1", **keys)


def test_local_http_push_only_outside_production(driver, settings):
    keys = web_keys()
    preferences.register_push(user=driver, kind="web", endpoint="http://localhost:8000/push", **keys)

    settings.PRODUCTION = True
    with pytest.raises(ValidationError) as caught:
        preferences.register_push(user=driver, kind="web", endpoint="http://localhost:8000/push2", **keys)
    assert "endpoint" in caught.value.message_dict


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "http://push.example.com/1"}, "endpoint"),
        ({"endpoint": "https://" + "a" * 3000 + ".example.com/"}, "endpoint"),
        ({"p256dh": _b64url(b"\x05" + b"a" * 64)}, "p256dh"),
        ({"p256dh": _b64url(b"\x04" + b"a" * 63)}, "p256dh"),
        ({"p256dh": ""}, "p256dh"),
        ({"auth": _b64url(b"a" * 17)}, "auth"),
        ({"auth": "a+b/"}, "auth"),
        ({"kind": "pager"}, "kind"),
    ],
)
def test_invalid_web_push(driver, change, field):
    values = {"kind": "web", "endpoint": "https://push.example.com/1", **web_keys(), **change}

    with pytest.raises(ValidationError) as caught:
        preferences.register_push(user=driver, **values)

    assert field in caught.value.message_dict
    assert not PushSubscription.objects.exists()


def test_mobile_push(driver):
    subscription = preferences.register_push(
        user=driver, kind="mobile", endpoint=" apns-token ", platform="iOS"
    )

    assert (subscription.endpoint, subscription.platform, subscription.p256dh) == ("apns-token", "ios", "")

    with pytest.raises(ValidationError):
        preferences.register_push(user=driver, kind="mobile", endpoint="tok", platform="")


def test_unregister_push_is_your_own(driver, other_driver):
    preferences.register_push(user=driver, kind="mobile", endpoint="tok-1", platform="android")

    assert preferences.unregister_push(user=other_driver, endpoint="tok-1") is False
    assert preferences.unregister_push(user=driver, endpoint="tok-1") is True
    assert preferences.unregister_push(user=driver, endpoint="tok-1") is False
