from django.apps import AppConfig


class InfrastructureConfig(AppConfig):
    """What the domain apps share that is not a domain: the deferred-task outbox."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "config"
    label = "infrastructure"
    verbose_name = "Infrastructure"
