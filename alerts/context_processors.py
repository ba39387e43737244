"""The unread count beside the nav's bell: one count on the indexed (user, read_at) rows, made
only when a page shows it, and nothing for anonymous visitors."""

from django.utils.functional import SimpleLazyObject


def unread_notifications(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def count() -> int:
        from alerts.models import Notification

        return Notification.objects.filter(user=user, read_at__isnull=True).count()

    return {"alerts_unread": SimpleLazyObject(count)}
