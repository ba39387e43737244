from django.apps import AppConfig


class DiagnosticsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "diagnostics"

    def ready(self):
        from config.events import subscribe
        from diagnostics import subscribers_work  # noqa: F401
        from diagnostics.services import incidents

        subscribe("connector.status_changed")(incidents.on_status_changed)
        subscribe("charge_point.online")(incidents.on_charge_point_online)
        subscribe("charge_point.offline")(incidents.on_charge_point_offline)
