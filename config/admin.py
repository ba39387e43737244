from django.contrib import admin, messages

from config import outbox
from config.models import DeferredTask


@admin.register(DeferredTask)
class DeferredTaskAdmin(admin.ModelAdmin):
    list_display = ("task", "task_id", "created_at", "eta", "attempts", "given_up", "last_error")
    list_filter = ("given_up", "task")
    search_fields = ("task", "task_id")
    readonly_fields = [f.name for f in DeferredTask._meta.fields]
    actions = ["relay_now"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Relay the deferred tasks to the broker now")
    def relay_now(self, request, queryset):
        sent = outbox.relay()
        self.message_user(request, f"{sent} deferred tasks relayed.", messages.SUCCESS)
