"""A user's own alert settings: which channels per event type, quiet hours, home and radius,
favourite stations, where to push, and the notification centre's read marks. Called alike by
the settings pages, the REST API and the unsubscribe links of emails."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_time

from alerts import catalog
from alerts.catalog import EventType
from alerts.models import (
    USER_CHANNELS,
    AlertProfile,
    Digest,
    Notification,
    Preference,
    PushKind,
    PushSubscription,
)
from stations import selectors
from stations.models import ChargePoint, RegistrationStatus, Role, User

CHANNEL_VALUES: tuple[str, ...] = tuple(c.value for c in USER_CHANNELS)
PROFILE_FIELDS = frozenset(
    {
        "quiet_hours_start",
        "quiet_hours_end",
        "time_zone",
        "home_latitude",
        "home_longitude",
        "radius_km",
        "digest",
        "max_per_hour",
    }
)
MAX_PER_HOUR_LIMIT = 1000
# A list of favourites is for the stations one uses; far more is a scraper, not a driver.
MAX_FAVOURITES = 200
MOBILE_PLATFORMS = ("ios", "android")
# Web push keys (RFC 8291): an uncompressed P-256 point and a 16-byte authentication secret.
P256DH_BYTES = 65
AUTH_BYTES = 16
MAX_DEVICE_TOKEN = 4096
MAX_PUSH_ENDPOINT = 2048
LOCAL_PUSH_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


# --- Reads --------------------------------------------------------------------------------------


def profile_for(user: User) -> AlertProfile:
    """The user's alert profile, created with the defaults on first use."""
    profile, _ = AlertProfile.objects.get_or_create(user=user)
    return profile


def audience_of(user: User) -> list[str]:
    """Which halves of the catalogue concern the user: drivers hear about their charging,
    operator staff about their network; a superuser may be either, so sees both."""
    if user.is_superuser:
        return [catalog.DRIVER, catalog.OPERATOR]
    if user.role == Role.DRIVER:
        return [catalog.DRIVER]
    if user.role in (Role.OPERATOR_ADMIN, Role.TECHNICIAN) and user.operator_id:
        return [catalog.OPERATOR]
    return []


def event_types_of(user: User) -> list[EventType]:
    return [e for audience in audience_of(user) for e in catalog.for_audience(audience)]


def channel_matrix(user: User) -> list[dict]:
    """Each event type of the user's audience with every user channel on or off: the
    catalogue's default unless a ``Preference`` row says otherwise (one query)."""
    overrides = {
        (event_type, channel): enabled
        for event_type, channel, enabled in Preference.objects.filter(user=user).values_list(
            "event_type", "channel", "enabled"
        )
    }
    return [
        {
            "event_type": event_type,
            "channels": {
                channel: overrides.get((event_type.key, channel), channel in event_type.default_channels)
                for channel in CHANNEL_VALUES
            },
        }
        for event_type in event_types_of(user)
    ]


# --- Channel choices ----------------------------------------------------------------------------


def _validated_choices(user: User, choices: dict) -> dict[str, dict[str, bool]]:
    if not isinstance(choices, dict):
        raise ValidationError("Give the choices as {event type: {channel: on or off}}.")
    allowed = {e.key for e in event_types_of(user)}
    errors: list[str] = []
    clean: dict[str, dict[str, bool]] = {}
    for event_type, channels in choices.items():
        if event_type not in allowed:
            errors.append(f"“{event_type}” is not an event type you can choose.")
            continue
        if not isinstance(channels, dict):
            errors.append(f"{event_type}: give the channels as {{channel: true or false}}.")
            continue
        for channel, enabled in channels.items():
            if channel not in CHANNEL_VALUES:
                errors.append(
                    f"{event_type}: “{channel}” is not a channel (use {', '.join(CHANNEL_VALUES)})."
                )
            elif not isinstance(enabled, bool):
                errors.append(f"{event_type}/{channel}: say true or false.")
            else:
                clean.setdefault(event_type, {})[channel] = enabled
    if errors:
        raise ValidationError(errors)
    return clean


def _store(user: User, choices: dict[str, dict[str, bool]]) -> None:
    """Keep only the choices that differ from the catalogue: a later change of a default then
    reaches everyone who never chose otherwise."""
    equal: list[Q] = []
    differing: list[Preference] = []
    for key, channels in choices.items():
        defaults = catalog.EVENT_TYPES[key].default_channels
        for channel, enabled in channels.items():
            if enabled == (channel in defaults):
                equal.append(Q(event_type=key, channel=channel))
            else:
                differing.append(Preference(user=user, event_type=key, channel=channel, enabled=enabled))
    with transaction.atomic():
        if equal:
            any_of = Q()
            for q in equal:
                any_of |= q
            Preference.objects.filter(any_of, user=user).delete()
        if differing:
            Preference.objects.bulk_create(
                differing,
                update_conflicts=True,
                unique_fields=["user", "event_type", "channel"],
                update_fields=["enabled"],
            )


def set_preferences(*, user: User, choices: dict[str, dict[str, bool]]) -> None:
    """Turn channels on or off per event type; pairs not named keep their current setting."""
    _store(user, _validated_choices(user, choices))


def unsubscribe(*, user_id: int, event_type: str | None, channel: str) -> None:
    """The one-click unsubscribe of an email (or any channel): that channel off for that event
    type, or for every event type of the user's audience when ``event_type`` is None. A user
    deleted since the link was sent has nothing left to unsubscribe from."""
    if channel not in CHANNEL_VALUES:
        raise ValidationError(f"“{channel}” is not a channel you can turn off.")
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return
    keys = [e.key for e in event_types_of(user)]
    if event_type is not None:
        if event_type not in keys:
            raise ValidationError(f"“{event_type}” is not an event type of yours.")
        keys = [event_type]
    _store(user, {key: {channel: False} for key in keys})


# --- Profile ------------------------------------------------------------------------------------


def _decimal(value, *, places: str, field: str, errors: dict) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
        if not number.is_finite():
            raise InvalidOperation
        # Phones give coordinates to many more places than a metre needs; round, don't refuse.
        return number.quantize(Decimal(places), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        errors[field] = ["Enter a number within range."]
        return None


def _time(value, *, field: str, errors: dict) -> dt.time | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.time):
        return value
    parsed = parse_time(str(value)) if isinstance(value, str) else None
    if parsed is None:
        errors[field] = ["Enter a time such as 22:00."]
    return parsed


@transaction.atomic
def update_profile(*, user: User, **fields) -> AlertProfile:
    """Change some of the profile's settings. Quiet hours need both ends (or neither), the
    home both coordinates (or neither), so that a half-given setting never silently counts."""
    unknown = sorted(set(fields) - PROFILE_FIELDS)
    if unknown:
        raise ValidationError(f"Not an alert setting: {', '.join(unknown)}.")
    profile = AlertProfile.objects.select_for_update().get(pk=profile_for(user).pk)
    errors: dict[str, list[str]] = {}
    for name in ("quiet_hours_start", "quiet_hours_end"):
        if name in fields:
            setattr(profile, name, _time(fields[name], field=name, errors=errors))
    for name in ("home_latitude", "home_longitude"):
        if name in fields:
            setattr(profile, name, _decimal(fields[name], places="0.000001", field=name, errors=errors))
    if "radius_km" in fields:
        radius = _decimal(fields["radius_km"], places="0.1", field="radius_km", errors=errors)
        if radius is None and "radius_km" not in errors:
            errors["radius_km"] = ["Give a radius."]
        profile.radius_km = radius
    if "time_zone" in fields:
        profile.time_zone = fields["time_zone"] or "UTC"
    if "digest" in fields:
        profile.digest = fields["digest"]
    if "max_per_hour" in fields:
        value = fields["max_per_hour"]
        profile.max_per_hour = int(value) if isinstance(value, str) and value.strip().isdigit() else value
    if errors:
        raise ValidationError(errors)

    if (profile.quiet_hours_start is None) != (profile.quiet_hours_end is None):
        missing = "quiet_hours_end" if profile.quiet_hours_end is None else "quiet_hours_start"
        errors[missing] = ["Give both the start and the end of the quiet hours, or neither."]
    elif profile.quiet_hours_start is not None and profile.quiet_hours_start == profile.quiet_hours_end:
        errors["quiet_hours_end"] = ["The quiet hours end when they start; clear both for none."]
    if (profile.home_latitude is None) != (profile.home_longitude is None):
        missing = "home_longitude" if profile.home_longitude is None else "home_latitude"
        errors[missing] = ["Give both coordinates of home, or neither."]
    if profile.home_latitude is not None and not (-90 <= profile.home_latitude <= 90):
        errors["home_latitude"] = ["A latitude lies between -90 and 90."]
    if profile.home_longitude is not None and not (-180 <= profile.home_longitude <= 180):
        errors["home_longitude"] = ["A longitude lies between -180 and 180."]
    widest = Decimal(str(settings.CHARGEDESK_MAX_SEARCH_RADIUS_KM))
    if profile.radius_km is not None and not (0 < profile.radius_km <= widest):
        errors["radius_km"] = [f"Choose a radius above 0 and at most {widest.normalize():f} km."]
    if profile.digest not in Digest.values:
        errors["digest"] = [f"Choose one of: {', '.join(Digest.values)}."]
    if isinstance(profile.max_per_hour, bool) or not isinstance(profile.max_per_hour, int):
        errors["max_per_hour"] = ["Give a whole number."]
    elif not (1 <= profile.max_per_hour <= MAX_PER_HOUR_LIMIT):
        errors["max_per_hour"] = [
            f"Between 1 and {MAX_PER_HOUR_LIMIT} an hour (choose a digest to gather every email)."
        ]
    if errors:
        raise ValidationError(errors)
    profile.full_clean(exclude=["user"])
    profile.save()
    return profile


# --- Favourite stations -------------------------------------------------------------------------


def _may_follow(user: User, charge_point: ChargePoint) -> bool:
    """Drivers follow what they can find in the station finder; staff also their own network."""
    public = (
        charge_point.registration_status == RegistrationStatus.ACCEPTED
        and charge_point.site_id is not None
        and selectors.public_stations().filter(pk=charge_point.site_id).exists()
    )
    if public:
        return True
    return user.is_operator_staff and selectors.charge_points_for(user).filter(pk=charge_point.pk).exists()


def add_favourite(*, user: User, charge_point: ChargePoint) -> None:
    """Follow a station: its outages and returns reach the user whatever their home."""
    if not _may_follow(user, charge_point):
        raise ValidationError({"charge_point": "This charge point is not open to the public."})
    profile = profile_for(user)
    favourites = profile.favourites
    if favourites.filter(pk=charge_point.pk).exists():
        return
    if favourites.count() >= MAX_FAVOURITES:
        raise ValidationError({"charge_point": f"You can follow at most {MAX_FAVOURITES} stations."})
    favourites.add(charge_point)


def remove_favourite(*, user: User, charge_point: ChargePoint) -> None:
    profile_for(user).favourites.remove(charge_point)


# --- Notification centre ------------------------------------------------------------------------


def mark_read(*, user: User, notification_ids: Iterable[int] | None = None) -> int:
    """Mark the user's unread notifications read (all, or those named): one UPDATE; other
    users' ids are ignored. Returns how many changed."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if notification_ids is not None:
        ids = list(notification_ids)
        if not ids:
            return 0
        unread = unread.filter(pk__in=ids)
    return unread.update(read_at=timezone.now())


# --- Push subscriptions -------------------------------------------------------------------------


def _key_bytes(value: str) -> bytes | None:
    text = (value or "").strip().rstrip("=")
    if not text or not BASE64URL.fullmatch(text):
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _validate_web_push(endpoint: str, p256dh: str, auth: str) -> None:
    errors: dict[str, list[str]] = {}
    if len(endpoint) > MAX_PUSH_ENDPOINT:
        errors["endpoint"] = ["This is no push service address (too long)."]
    else:
        try:
            URLValidator(schemes=["https", "http"])(endpoint)
        except ValidationError:
            errors["endpoint"] = ["Give the push service's https address."]
        else:
            parts = urlsplit(endpoint)
            local = parts.hostname in LOCAL_PUSH_HOSTS and not settings.PRODUCTION
            if parts.scheme != "https" and not local:
                errors["endpoint"] = ["A push service is reached over https."]
            elif parts.username or parts.password:
                errors["endpoint"] = ["A push service address carries no user name or password."]
    key = _key_bytes(p256dh)
    if key is None or len(key) != P256DH_BYTES or key[0] != 0x04:
        errors["p256dh"] = ["The p256dh key is a base64url P-256 public key (65 bytes)."]
    secret = _key_bytes(auth)
    if secret is None or len(secret) != AUTH_BYTES:
        errors["auth"] = ["The auth key is a base64url secret of 16 bytes."]
    if errors:
        raise ValidationError(errors)


def _validate_mobile_push(token: str, platform: str) -> None:
    errors: dict[str, list[str]] = {}
    if not token or len(token) > MAX_DEVICE_TOKEN or any(c.isspace() for c in token):
        errors["endpoint"] = ["Give the app's device token."]
    if platform not in MOBILE_PLATFORMS:
        errors["platform"] = [f"Choose one of: {', '.join(MOBILE_PLATFORMS)}."]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def register_push(
    *,
    user: User,
    kind: str,
    endpoint: str,
    p256dh: str = "",
    auth: str = "",
    platform: str = "",
    user_agent: str = "",
) -> PushSubscription:
    """Remember where to push the user; registering the same endpoint again updates it.

    A browser (or phone) belongs to whoever signed in on it last: the same endpoint held by
    another user is dropped, so that their alerts stop appearing on a device now someone
    else's."""
    endpoint = (endpoint or "").strip()
    if kind == PushKind.WEB:
        _validate_web_push(endpoint, p256dh, auth)
        values = {"kind": kind, "p256dh": p256dh.strip(), "auth": auth.strip(), "platform": ""}
    elif kind == PushKind.MOBILE:
        platform = (platform or "").strip().lower()
        _validate_mobile_push(endpoint, platform)
        values = {"kind": kind, "p256dh": "", "auth": "", "platform": platform}
    else:
        raise ValidationError({"kind": [f"Choose one of: {', '.join(PushKind.values)}."]})
    values["user_agent"] = (user_agent or "")[: PushSubscription._meta.get_field("user_agent").max_length]
    PushSubscription.objects.filter(endpoint=endpoint).exclude(user=user).delete()
    subscription, _ = PushSubscription.objects.update_or_create(user=user, endpoint=endpoint, defaults=values)
    return subscription


def unregister_push(*, user: User, endpoint: str) -> bool:
    """Forget a push endpoint of the user's (signed out, or permission withdrawn)."""
    deleted, _ = PushSubscription.objects.filter(user=user, endpoint=(endpoint or "").strip()).delete()
    return deleted > 0
