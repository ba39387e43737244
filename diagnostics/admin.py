"""Django admin for diagnostics: the fault rules are the operators' to edit (cause, severity,
action, tools and parts per error code); the rest is shown for staff to inspect and correct."""

from __future__ import annotations

from django.contrib import admin

from .models import (
    FaultRule,
    Finding,
    FirmwareCampaign,
    FirmwareCampaignTarget,
    HealingAttempt,
    HealingPolicy,
    Incident,
    LogUpload,
    OutageExclusion,
    Ticket,
)


@admin.register(FaultRule)
class FaultRuleAdmin(admin.ModelAdmin):
    list_display = (
        "error_code",
        "vendor_id",
        "vendor_error_code",
        "operator",
        "cause",
        "severity",
        "self_heal",
        "is_active",
    )
    list_filter = ("cause", "severity", "self_heal", "is_active", "operator")
    search_fields = ("error_code", "vendor_id", "vendor_error_code", "title")
    list_select_related = ("operator",)


class FindingInline(admin.TabularInline):
    model = Finding
    extra = 0
    fields = ("detected_at", "kind", "cause", "severity", "summary", "evidence")
    readonly_fields = fields
    can_delete = False


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "title",
        "kind",
        "cause",
        "severity",
        "status",
        "charge_point",
        "opened_at",
        "resolved_at",
    )
    list_filter = ("status", "kind", "cause", "severity", "operator")
    search_fields = ("title", "key", "charge_point__identity")
    list_select_related = ("charge_point", "operator")
    raw_id_fields = ("site", "charge_point", "connector", "rule")
    date_hierarchy = "opened_at"
    inlines = [FindingInline]


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "status", "priority", "assignee", "charge_point", "created_at")
    list_filter = ("status", "priority", "operator")
    search_fields = ("title", "charge_point__identity", "assignee__email")
    list_select_related = ("assignee", "charge_point")
    raw_id_fields = ("incident", "charge_point", "assignee", "created_by")


@admin.register(HealingPolicy)
class HealingPolicyAdmin(admin.ModelAdmin):
    list_display = ("operator", "enabled", "max_attempts_per_day", "hard_after_soft", "wait_minutes")


@admin.register(HealingAttempt)
class HealingAttemptAdmin(admin.ModelAdmin):
    list_display = ("charge_point", "kind", "outcome", "created_at", "finished_at")
    list_filter = ("kind", "outcome")
    list_select_related = ("charge_point",)
    raw_id_fields = ("charge_point", "incident", "command")


@admin.register(LogUpload)
class LogUploadAdmin(admin.ModelAdmin):
    list_display = ("charge_point", "status", "filename", "size", "requested_at", "received_at")
    list_filter = ("status",)
    list_select_related = ("charge_point",)
    raw_id_fields = ("charge_point", "command", "requested_by")
    readonly_fields = ("token",)


class TargetInline(admin.TabularInline):
    model = FirmwareCampaignTarget
    extra = 0
    raw_id_fields = ("charge_point", "command")


@admin.register(FirmwareCampaign)
class FirmwareCampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "operator", "firmware_version", "status", "retrieve_at", "created_at")
    list_filter = ("status", "operator")
    inlines = [TargetInline]


@admin.register(OutageExclusion)
class OutageExclusionAdmin(admin.ModelAdmin):
    list_display = ("category", "operator", "site", "charge_point", "connector", "starts_at", "ends_at")
    list_filter = ("category", "operator")
    raw_id_fields = ("site", "charge_point", "connector", "created_by")
