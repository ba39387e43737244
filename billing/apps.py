from django.apps import AppConfig


class BillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "billing"

    def ready(self):
        from billing import subscribers, subscribers_invoicing
        from billing.services import payments
        from config.events import subscribe

        subscribers.register()  # session.stopped → price and settle
        subscribers_invoicing.register()  # payment captured → receipt
        subscribe("session.started")(payments.on_session_started)  # the pre-authorisation
