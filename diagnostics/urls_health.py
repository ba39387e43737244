"""Diagnostics dashboard, health and uptime report pages."""

urlpatterns: list = []
