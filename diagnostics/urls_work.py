"""Incident, ticket, log upload and firmware campaign pages."""

urlpatterns: list = []
