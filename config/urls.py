from django.contrib import admin
from django.urls import include, path

from alerts.views import service_worker
from config.health import healthz, livez, readyz
from config.metrics import metrics
from stations.views import home

handler400 = "config.api.bad_request"
handler500 = "config.api.server_error"

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("livez", livez, name="livez"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("sw.js", service_worker, name="service-worker"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("config.api_urls")),
    path("account/", include("sessions.urls")),
    path("diagnostics/", include("diagnostics.urls")),
    path("alerts/", include("alerts.urls")),
    path("billing/reports/", include("billing.urls_reports")),
    path("", include("billing.urls_payments")),  # billing/stripe/webhook/
    path("billing/", include("billing.urls")),
    path("", include("stations.urls")),
]
