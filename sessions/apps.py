from django.apps import AppConfig


class ChargingConfig(AppConfig):
    """Charging sessions, ID tokens and authorisation.

    The label is ``charging`` because ``django.contrib.sessions`` owns the label ``sessions``.
    """

    default_auto_field = "django.db.models.BigAutoField"
    name = "sessions"
    label = "charging"
    verbose_name = "Charging sessions"
