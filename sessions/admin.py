"""Django admin for ID tokens (RFID cards, app tokens)."""

from django.contrib import admin

from .models import IdToken


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
