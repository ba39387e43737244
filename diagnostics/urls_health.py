"""Diagnostics dashboard, health and uptime report pages."""

from django.urls import path

from . import views_health

urlpatterns: list = [
    path("", views_health.DashboardView.as_view(), name="dashboard"),
    path("uptime/", views_health.UptimeReportView.as_view(), name="uptime"),
    path("uptime/exclusions/new/", views_health.OutageExclusionCreateView.as_view(), name="exclusion-create"),
]
