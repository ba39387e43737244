"""Filters of the operator dashboard's charge point list."""

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet

from . import selectors
from .models import ChargePoint, Connector, ConnectorStatus, RegistrationStatus, Site


class SearchInput(forms.TextInput):
    input_type = "search"


def _sites_of_requester(request) -> QuerySet[Site]:
    # Only the requester's own sites are valid choices: another operator's site id is an error.
    if request is None:
        return Site.objects.none()
    return selectors.sites_for(request.user).order_by("name")


class ChargePointFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="filter_search",
        label="Search",
        max_length=100,
        widget=SearchInput(attrs={"placeholder": "Identity, name, vendor, model, serial"}),
    )
    site = django_filters.ModelChoiceFilter(
        queryset=_sites_of_requester, label="Site", empty_label="All sites"
    )
    connectivity = django_filters.ChoiceFilter(
        choices=[("online", "Online"), ("offline", "Offline")],
        method="filter_connectivity",
        label="Connectivity",
        empty_label="Any",
    )
    connector_status = django_filters.ChoiceFilter(
        choices=ConnectorStatus.choices,
        method="filter_connector_status",
        label="Connector status",
        empty_label="Any",
    )
    registration_status = django_filters.ChoiceFilter(
        choices=RegistrationStatus.choices, label="Registration", empty_label="Any"
    )

    class Meta:
        model = ChargePoint
        fields = ["q", "site", "connectivity", "connector_status", "registration_status"]

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(identity__icontains=value)
            | Q(name__icontains=value)
            | Q(vendor__icontains=value)
            | Q(model__icontains=value)
            | Q(serial_number__icontains=value)
        )

    def filter_connectivity(self, queryset, name, value):
        return queryset.filter(is_connected=(value == "online"))

    def filter_connector_status(self, queryset, name, value):
        in_status = Connector.objects.filter(charge_point=OuterRef("pk"), status=value)
        return queryset.filter(Exists(in_status))
