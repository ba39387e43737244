import json

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "alerts"

    def ready(self):
        from config.events import subscribe

        from .rules import RULES

        for name in RULES:
            subscribe(name)(_forwarder(name))


def _forwarder(name: str):
    """A subscriber that hands the event to a Celery worker (the publisher must stay quick)."""

    def forward(**data):
        from .tasks import handle_event

        # Events may carry Decimals and the like; Celery's JSON wants plain values.
        handle_event.delay(name, json.loads(json.dumps(data, default=str)))

    forward.__qualname__ = f"alerts:{name}"
    return forward
