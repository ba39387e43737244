"""Diagnostics pages: ``urls_health`` (dashboard, health, uptime reports) and ``urls_work``
(incidents, tickets, log uploads, firmware campaigns)."""

from diagnostics.urls_health import urlpatterns as health_urls
from diagnostics.urls_work import urlpatterns as work_urls

app_name = "diagnostics"
urlpatterns = [*health_urls, *work_urls]
