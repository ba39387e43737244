"""Alerts: what happened (``Alert``, once per happening), who was told (``Notification``, one
per recipient, the in-app notification centre), and how (``Delivery``, one per channel and
recipient or webhook endpoint, with its attempts and last error: the delivery log).

Preferences say which channels a user wants per event type (``Preference`` rows override the
catalogue's defaults); ``AlertProfile`` holds quiet hours, the home location and radius,
favourite stations and the operator digest. ``Outage`` is alerts' own memory of a station
being out of service, so that a flapping connector is one alert and not one per flap.
"""

from __future__ import annotations

import datetime as dt
import secrets
import zoneinfo

from django.conf import settings
from django.db import models
from django.db.models import Q

from stations.models import ChargePoint, Operator, Site
from stations.models.network import validate_time_zone


class Channel(models.TextChoices):
    INAPP = "inapp", "In-app"
    EMAIL = "email", "Email"
    PUSH = "push", "Web push"
    MOBILE = "mobile", "Mobile push"
    SMS = "sms", "SMS"
    WEBHOOK = "webhook", "Webhook"


# The channels a user chooses among (webhooks belong to an operator, not to a person).
USER_CHANNELS = [Channel.INAPP, Channel.EMAIL, Channel.PUSH, Channel.MOBILE, Channel.SMS]
# Channels that interrupt: held back during the recipient's quiet hours.
INTERRUPTING_CHANNELS = {Channel.PUSH, Channel.MOBILE, Channel.SMS}


class Digest(models.TextChoices):
    IMMEDIATE = "immediate", "Each alert at once"
    HOURLY = "hourly", "An hourly digest"
    DAILY = "daily", "A daily digest"


class AlertProfile(models.Model):
    """A user's standing choices about alerts (created on first use)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_profile"
    )
    quiet_hours_start = models.TimeField(
        null=True, blank=True, help_text="Local time; empty: no quiet hours."
    )
    quiet_hours_end = models.TimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    home_latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    home_longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    radius_km = models.DecimalField(
        max_digits=6,
        decimal_places=1,
        default=10,
        help_text="Stations this near home are yours to hear about.",
    )
    favourites = models.ManyToManyField(ChargePoint, blank=True, related_name="+")
    digest = models.CharField(
        max_length=10,
        choices=Digest.choices,
        default=Digest.IMMEDIATE,
        help_text="Operators: email alerts one by one, or gathered into a digest.",
    )
    max_per_hour = models.PositiveIntegerField(
        default=12, help_text="Operators: emails beyond this many an hour wait for the next digest."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"alert profile of {self.user}"

    def quiet_until(self, now: dt.datetime) -> dt.datetime | None:
        """When the quiet hours around ``now`` end (aware UTC), or None outside them."""
        start, end = self.quiet_hours_start, self.quiet_hours_end
        if start is None or end is None or start == end:
            return None
        zone = zoneinfo.ZoneInfo(self.time_zone or "UTC")
        local = now.astimezone(zone)
        t = local.time()
        inside = (start <= t < end) if start < end else (t >= start or t < end)
        if not inside:
            return None
        end_day = local.date() if t < end else local.date() + dt.timedelta(days=1)
        return dt.datetime.combine(end_day, end, tzinfo=zone).astimezone(dt.UTC)


class Preference(models.Model):
    """One choice overriding the catalogue's default: event type × channel on or off."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_preferences"
    )
    event_type = models.CharField(max_length=40)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    enabled = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "event_type", "channel"], name="alerts_one_preference")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.event_type}/{self.channel}: {'on' if self.enabled else 'off'}"


class Alert(models.Model):
    """One happening worth telling, stored once: the same ``dedup_key`` is never told twice."""

    event_type = models.CharField(max_length=40, db_index=True)
    dedup_key = models.CharField(max_length=200, unique=True)
    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    charge_point = models.ForeignKey(
        ChargePoint, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True, help_text="Where to look, a path on this site.")
    eta = models.DateTimeField(null=True, blank=True, help_text="When service is expected back.")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event_type}: {self.title}"


class Notification(models.Model):
    """An alert as one recipient gets it: the in-app notification centre's row."""

    # Both foreign keys lead a composite index below: no index of their own.
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications", db_index=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications", db_index=False
    )
    event_type = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True, help_text="What differs from the alert's data.")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["alert", "user"], name="alerts_one_notification")]
        indexes = [models.Index(fields=["user", "read_at", "-created_at"])]

    def __str__(self) -> str:
        return f"to {self.user_id}: {self.title}"

    @property
    def all_data(self) -> dict:
        """The alert's data with this recipient's own on top (only the latter is stored here,
        so that telling 10,000 drivers does not copy the alert's data 10,000 times)."""
        return {**(self.alert.data or {}), **(self.data or {})}


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    HELD = "held", "Held (quiet hours)"
    DIGEST = "digest", "Waiting for the digest"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class WebhookEndpoint(models.Model):
    """An operator's HTTPS receiver: every alert of its network (or of the chosen event types)
    is POSTed there, signed with HMAC-SHA256 over the timestamp and the body."""

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=64, default=secrets.token_hex, editable=False)
    event_types = models.JSONField(default=list, blank=True, help_text="Empty: every event type.")
    is_active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class Delivery(models.Model):
    """One channel's attempt(s) at one notification (or one webhook endpoint's copy of an
    alert): the delivery log. Sent or failed for good, it is never sent again."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    # The notification and the operator lead composite indexes below: no index of their own.
    notification = models.ForeignKey(
        Notification,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
        db_index=False,
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    operator = models.ForeignKey(
        Operator,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text="Whose log this is in (the alert's operator).",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    target = models.CharField(max_length=500, blank=True, help_text="Address, number or URL, for the log.")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "channel"],
                condition=Q(notification__isnull=False),
                name="alerts_one_delivery_per_channel",
            ),
            models.UniqueConstraint(
                fields=["alert", "endpoint"],
                condition=Q(endpoint__isnull=False),
                name="alerts_one_webhook_delivery",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["operator", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.channel} #{self.pk} {self.status}"


class PushKind(models.TextChoices):
    WEB = "web", "Browser (web push)"
    MOBILE = "mobile", "Mobile app"


class PushSubscription(models.Model):
    """Where to push a user: a browser's push service subscription (endpoint and keys) or a
    mobile app's device token."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions"
    )
    kind = models.CharField(max_length=8, choices=PushKind.choices, default=PushKind.WEB)
    endpoint = models.TextField(help_text="The push service URL, or the device token of a mobile app.")
    p256dh = models.CharField(max_length=200, blank=True)
    auth = models.CharField(max_length=100, blank=True)
    platform = models.CharField(max_length=20, blank=True, help_text="Mobile: ios or android.")
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "endpoint"], name="alerts_one_subscription")]

    def __str__(self) -> str:
        return f"{self.kind} push of {self.user_id}"


class MaintenanceWindow(models.Model):
    """Planned work on a charge point or a whole site; drivers it affects are told when it is
    published, and out-of-service alerts during it carry its end as the ETA."""

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="maintenance_windows")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    charge_point = models.ForeignKey(
        ChargePoint, on_delete=models.CASCADE, null=True, blank=True, related_name="maintenance_windows"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=300, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="alerts_window_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(site__isnull=False) | Q(charge_point__isnull=False),
                name="alerts_window_has_a_place",
            ),
        ]

    def __str__(self) -> str:
        return f"maintenance {self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%H:%M}"


class OutageCause(models.TextChoices):
    FAULTED = "faulted", "Faulted"
    OFFLINE = "offline", "Offline"
    UNAVAILABLE = "unavailable", "Unavailable"


class Outage(models.Model):
    """A station out of service as drivers are told of it: opened by the first fault (or, for
    a charger gone offline, once it stayed offline past a grace period), kept open through
    flaps, closed once it has been back for a while. One alert when told, one when back."""

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="+")
    connector_number = models.IntegerField(default=0, help_text="0: the whole charge point.")
    cause = models.CharField(max_length=12, choices=OutageCause.choices)
    opened_at = models.DateTimeField()
    confirm_at = models.DateTimeField(help_text="Told to drivers from this time on, if still out.")
    notified_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(
        null=True, blank=True, help_text="Back in service since (may flap again)."
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["charge_point", "connector_number"],
                condition=Q(closed_at__isnull=True),
                name="alerts_one_open_outage",
            )
        ]
        indexes = [models.Index(fields=["closed_at", "confirm_at"])]

    def __str__(self) -> str:
        return f"outage of {self.charge_point_id}/{self.connector_number} ({self.cause})"
