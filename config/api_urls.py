"""REST API v1: one router for every app, the OpenAPI schema and its interactive docs."""

from csp.decorators import csp_update
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from alerts.api import (
    AlertSettingsView,
    DeliveryViewSet,
    FavouriteStationViewSet,
    MaintenanceWindowViewSet,
    NotificationViewSet,
    PushSubscriptionViewSet,
    WebhookEndpointViewSet,
)
from billing.api import (
    BillingStatusView,
    MyInvoiceViewSet,
    OperatorInvoiceViewSet,
    OperatorPaymentViewSet,
    PayDebtView,
    PaymentMethodViewSet,
)
from billing.api_reports import ReportJobViewSet, ReportSummaryView
from billing.api_tariffs import SessionCostView, StationTariffView, TariffAssignmentViewSet, TariffViewSet
from config.security_headers import API_DOCS_CSP
from diagnostics.api import FirmwareCampaignViewSet, IncidentViewSet, LogUploadViewSet, TicketViewSet
from diagnostics.api_health import HealthView, UptimeView
from sessions.api import AuthTokenView, IdTokenViewSet, MeView, SessionViewSet
from stations.api import (
    IDENTITY_REGEX,
    ChargePointCommandViewSet,
    ChargePointViewSet,
    OperatorCommandViewSet,
    SiteViewSet,
    StationViewSet,
)

# The API docs: the split Swagger view serves its init script from a URL ('self'), not inline.
docs_csp = csp_update(API_DOCS_CSP)

router = DefaultRouter()
router.register("stations", StationViewSet, basename="station")
router.register("operator/sites", SiteViewSet, basename="operator-site")
router.register("operator/charge-points", ChargePointViewSet, basename="operator-charge-point")
router.register(
    rf"operator/charge-points/(?P<identity>{IDENTITY_REGEX})/commands",
    ChargePointCommandViewSet,
    basename="operator-charge-point-command",
)
router.register("operator/commands", OperatorCommandViewSet, basename="operator-command")
router.register("me/id-tokens", IdTokenViewSet, basename="me-id-token")
router.register("me/sessions", SessionViewSet, basename="me-session")
router.register("diagnostics/incidents", IncidentViewSet, basename="diagnostics-incident")
router.register("diagnostics/tickets", TicketViewSet, basename="diagnostics-ticket")
router.register("diagnostics/log-uploads", LogUploadViewSet, basename="diagnostics-log-upload")
router.register(
    "diagnostics/firmware-campaigns", FirmwareCampaignViewSet, basename="diagnostics-firmware-campaign"
)
router.register("me/notifications", NotificationViewSet, basename="me-notification")
router.register("me/push-subscriptions", PushSubscriptionViewSet, basename="me-push-subscription")
router.register("me/favourite-stations", FavouriteStationViewSet, basename="me-favourite-station")
router.register("operator/webhooks", WebhookEndpointViewSet, basename="operator-webhook")
router.register("operator/deliveries", DeliveryViewSet, basename="operator-delivery")
router.register(
    "operator/maintenance-windows", MaintenanceWindowViewSet, basename="operator-maintenance-window"
)
router.register("operator/tariffs", TariffViewSet, basename="operator-tariff")
router.register("operator/tariff-assignments", TariffAssignmentViewSet, basename="operator-tariff-assignment")
router.register("me/payment-methods", PaymentMethodViewSet, basename="me-payment-method")
router.register("me/invoices", MyInvoiceViewSet, basename="me-invoice")
router.register("operator/invoices", OperatorInvoiceViewSet, basename="operator-invoice")
router.register("operator/payments", OperatorPaymentViewSet, basename="operator-payment")
router.register("operator/reports/jobs", ReportJobViewSet, basename="operator-report-job")

app_name = "api"

urlpatterns = [
    path("auth/token/", AuthTokenView.as_view(), name="auth-token"),
    path("me/", MeView.as_view(), name="me"),
    path("me/alert-settings/", AlertSettingsView.as_view(), name="me-alert-settings"),
    path("me/billing/", BillingStatusView.as_view(), name="me-billing"),
    path("me/billing/pay-debt/", PayDebtView.as_view(), name="me-billing-pay-debt"),
    path("diagnostics/health/", HealthView.as_view(), name="diagnostics-health"),
    path("diagnostics/uptime/", UptimeView.as_view(), name="diagnostics-uptime"),
    path("operator/reports/summary/", ReportSummaryView.as_view(), name="operator-report-summary"),
    re_path(
        rf"^stations/(?P<identity>{IDENTITY_REGEX})/tariff/$",
        StationTariffView.as_view(),
        name="station-tariff",
    ),
    path("me/sessions/<int:pk>/cost/", SessionCostView.as_view(), name="me-session-cost"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", docs_csp(SpectacularSwaggerSplitView.as_view(url_name="api:schema")), name="docs"),
    path("redoc/", docs_csp(SpectacularRedocView.as_view(url_name="api:schema")), name="redoc"),
    path("", include(router.urls)),
]
