from django.core.management.base import BaseCommand

from config import outbox
from config.models import DeferredTask


class Command(BaseCommand):
    help = (
        "Send the task calls kept while the Celery broker was down to the broker now "
        "(Celery beat does it every CELERY_RELAY_SECONDS)."
    )

    def handle(self, *args, **options):
        sent = outbox.relay()
        left = DeferredTask.objects.filter(given_up=False).count()
        given_up = DeferredTask.objects.filter(given_up=True).count()
        self.stdout.write(f"relayed {sent}; waiting {left}; unknown tasks kept {given_up}")
        if left:
            self.stderr.write("the broker refused the rest: is it up?")
            raise SystemExit(1)
