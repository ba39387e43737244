"""Django admin for ID tokens, charging sessions, their meter samples and reservations.

What chargers report (transactions, meter samples) and what went out to them (reservations)
is shown read-only: it changes only through the services, as the chargers speak.
"""

from django.contrib import admin

from .models import IdToken, MeterSample, Reservation, Transaction


@admin.register(IdToken)
class IdTokenAdmin(admin.ModelAdmin):
    list_display = ("token", "label", "type", "driver", "status", "expires_at", "created_at")
    list_filter = ("type", "status")
    list_select_related = ("driver",)
    search_fields = ("token", "label", "parent_token", "driver__email")
    autocomplete_fields = ("driver",)
    readonly_fields = ("created_at",)
    fieldsets = (
        (None, {"fields": ("token", "type", "label", "driver")}),
        ("Authorisation", {"fields": ("status", "expires_at", "parent_token", "created_at")}),
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "charge_point",
        "connector_number",
        "id_tag",
        "driver",
        "status",
        "start_auth_status",
        "started_at",
        "stopped_at",
        "energy_kwh",
        "energy_anomaly",
        "stop_reason",
    )
    list_filter = ("status", "start_auth_status", "energy_anomaly", "stop_reason", "charge_point__operator")
    list_select_related = ("charge_point", "driver")
    search_fields = ("=id", "id_tag", "stop_id_tag", "charge_point__identity", "driver__email")
    date_hierarchy = "started_at"
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("charge_point", "connector", "connector_number", "status", "reservation")}),
        ("Who", {"fields": ("id_tag", "id_token", "driver", "start_auth_status")}),
        (
            "Meter",
            {
                "fields": (
                    "started_at",
                    "meter_start",
                    "stopped_at",
                    "meter_stop",
                    "energy_wh",
                    "energy_anomaly",
                    "last_meter_wh",
                    "last_power_w",
                    "last_meter_at",
                )
            },
        ),
        ("Stop", {"fields": ("stop_reason", "stop_id_tag", "stop_auth_status")}),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="Energy (kWh)")
    def energy_kwh(self, obj: Transaction):
        return obj.energy_kwh


@admin.register(MeterSample)
class MeterSampleAdmin(ReadOnlyAdmin):
    """Meter samples as the chargers sent them (signed data verbatim)."""

    list_display = (
        "timestamp",
        "charge_point",
        "connector_number",
        "transaction_id",
        "measurand",
        "phase",
        "location",
        "context",
        "value_raw",
        "unit",
        "format",
    )
    list_filter = ("measurand", "context", "format", "location", "phase")
    list_select_related = ("charge_point",)
    search_fields = ("charge_point__identity", "=transaction__id")
    date_hierarchy = "timestamp"
    # The biggest table of all: no full count on each page.
    show_full_result_count = False


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "charge_point",
        "connector_number",
        "id_tag",
        "parent_id_tag",
        "status",
        "expires_at",
        "created_at",
    )
    list_filter = ("status", "charge_point__operator")
    list_select_related = ("charge_point",)
    search_fields = ("=id", "id_tag", "parent_id_tag", "charge_point__identity")
    date_hierarchy = "created_at"
