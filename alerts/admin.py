"""Django admin for alerts. What was told and how (alerts, notifications, deliveries) is a
record to inspect, not to edit: those pages are read-only but for retrying and marking read.
Webhook endpoints never show their secret here; rotating one goes through the service."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import timezone

from .models import (
    Alert,
    AlertProfile,
    Delivery,
    DeliveryStatus,
    MaintenanceWindow,
    Notification,
    Outage,
    Preference,
    PushSubscription,
    WebhookEndpoint,
)
from .services import webhooks


class ReadOnlyAdmin(admin.ModelAdmin):
    """A log: viewable and deletable (to clean up), never added or changed by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AlertProfile)
class AlertProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "time_zone", "quiet_hours_start", "quiet_hours_end", "radius_km", "digest")
    list_filter = ("digest",)
    search_fields = ("user__email",)
    list_select_related = ("user",)
    raw_id_fields = ("user", "favourites")


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "event_type", "channel", "enabled")
    list_filter = ("channel", "enabled", "event_type")
    search_fields = ("user__email", "event_type")
    list_select_related = ("user",)
    raw_id_fields = ("user",)


class NotificationInline(admin.TabularInline):
    model = Notification
    extra = 0
    fields = ("user", "title", "created_at", "read_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    fields = ("channel", "target", "status", "attempts", "last_error", "sent_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("id", "event_type", "title", "operator", "charge_point", "eta", "created_at")
    list_filter = ("event_type", "operator")
    search_fields = ("title", "dedup_key", "charge_point__identity")
    list_select_related = ("operator", "charge_point")
    date_hierarchy = "created_at"
    inlines = [NotificationInline, DeliveryInline]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "event_type", "title", "created_at", "read_at")
    list_filter = ("event_type", ("read_at", admin.EmptyFieldListFilter))
    search_fields = ("user__email", "title")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    actions = ["mark_read"]

    @admin.action(description="Mark the selected notifications read")
    def mark_read(self, request, queryset):
        changed = queryset.filter(read_at__isnull=True).update(read_at=timezone.now())
        self.message_user(request, f"{changed} notification(s) marked read.", messages.SUCCESS)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "channel",
        "status",
        "target",
        "event_type",
        "operator",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "created_at",
    )
    list_filter = ("status", "channel", "operator")
    search_fields = ("target", "alert__title", "alert__event_type", "user__email", "last_error")
    list_select_related = ("alert", "operator")
    date_hierarchy = "created_at"
    actions = ["retry"]

    @admin.display(description="Event type", ordering="alert__event_type")
    def event_type(self, delivery: Delivery) -> str:
        return delivery.alert.event_type

    @admin.action(description="Retry the selected failed deliveries now")
    def retry(self, request, queryset):
        from alerts.delivery import retry_now
        from alerts.tasks import deliver

        ids = list(queryset.filter(status=DeliveryStatus.FAILED).values_list("pk", flat=True))
        retried = [pk for pk in ids if retry_now(pk)]
        if retried:
            deliver.delay(retried)
        self.message_user(request, f"{len(retried)} delivery(ies) sent again.", messages.SUCCESS)


class WebhookEndpointForm(forms.ModelForm):
    """The same rules as the operators' own pages: the service's checks of URL and events."""

    url = forms.URLField(max_length=500, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ("operator", "url", "description", "event_types", "is_active")

    def clean_url(self) -> str:
        return self._checked(webhooks.validate_url, "url")

    def clean_event_types(self) -> list[str]:
        return self._checked(webhooks.validate_event_types, "event_types")

    def _checked(self, check, name: str):
        try:
            return check(self.cleaned_data.get(name))
        except ValidationError as error:
            raise ValidationError(error.message_dict.get(name, error.messages)) from None


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = (
        "url",
        "operator",
        "description",
        "is_active",
        "consecutive_failures",
        "last_success_at",
        "disabled_at",
    )
    list_filter = ("is_active", "operator")
    search_fields = ("url", "description", "operator__name")
    list_select_related = ("operator",)
    readonly_fields = (
        "consecutive_failures",
        "disabled_at",
        "disabled_reason",
        "last_success_at",
        "created_by",
        "created_at",
    )
    fields = ("operator", "url", "description", "event_types", "is_active", *readonly_fields)
    actions = ["enable", "disable", "rotate"]

    @admin.action(description="Enable (and count failures afresh)")
    def enable(self, request, queryset):
        for endpoint in queryset:
            webhooks.enable_endpoint(endpoint=endpoint)
        self.message_user(request, f"{queryset.count()} endpoint(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable")
    def disable(self, request, queryset):
        for endpoint in queryset:
            webhooks.disable_endpoint(endpoint=endpoint, reason=f"Disabled in the admin by {request.user}.")
        self.message_user(request, f"{queryset.count()} endpoint(s) disabled.", messages.SUCCESS)

    @admin.action(description="Rotate the signing secret (the operator sees the new one on rotation only)")
    def rotate(self, request, queryset):
        # The new secrets are not shown here: whoever runs the receiver rotates in ChargeDesk
        # to see one; this is for a secret known to have leaked.
        for endpoint in queryset:
            webhooks.rotate_secret(endpoint=endpoint)
        self.message_user(
            request, f"{queryset.count()} secret(s) rotated; the operator must rotate again to see one."
        )


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "platform", "short_endpoint", "created_at", "last_used_at")
    list_filter = ("kind", "platform")
    search_fields = ("user__email", "endpoint", "user_agent")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = ("created_at", "last_used_at")

    @admin.display(description="Endpoint")
    def short_endpoint(self, subscription: PushSubscription) -> str:
        endpoint = subscription.endpoint
        return endpoint if len(endpoint) <= 60 else f"{endpoint[:57]}…"


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "operator",
        "charge_point",
        "site",
        "starts_at",
        "ends_at",
        "reason",
        "published_at",
        "cancelled_at",
    )
    list_filter = (
        "operator",
        ("published_at", admin.EmptyFieldListFilter),
        ("cancelled_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("reason", "charge_point__identity", "site__name")
    list_select_related = ("operator", "charge_point", "site")
    raw_id_fields = ("charge_point", "site", "created_by")
    readonly_fields = ("published_at", "cancelled_at", "created_at")
    date_hierarchy = "starts_at"


@admin.register(Outage)
class OutageAdmin(admin.ModelAdmin):
    list_display = (
        "charge_point",
        "connector_number",
        "cause",
        "opened_at",
        "notified_at",
        "cleared_at",
        "closed_at",
    )
    list_filter = ("cause", ("closed_at", admin.EmptyFieldListFilter))
    search_fields = ("charge_point__identity",)
    list_select_related = ("charge_point",)
    raw_id_fields = ("charge_point",)
    date_hierarchy = "opened_at"
