"""Operator pages: the dashboard and a charge point's page. Thin: the reads are selectors."""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.views.generic import DetailView
from django_filters.views import FilterView

from . import selectors
from .filters import ChargePointFilter
from .permissions import OperatorStaffRequiredMixin

STATUS_HISTORY_LENGTH = 50


def home(request):
    """Send each visitor to the page of their role."""
    user = request.user
    if not user.is_authenticated:
        return redirect(settings.LOGIN_URL)
    if user.is_operator_staff:
        return redirect("stations:dashboard")
    if user.is_driver:
        return redirect("account:account")
    raise PermissionDenied("This account has no role in ChargeDesk yet.")


class DashboardView(OperatorStaffRequiredMixin, FilterView):
    filterset_class = ChargePointFilter
    template_name = "stations/dashboard.html"
    context_object_name = "charge_points"
    paginate_by = 50

    def get_queryset(self):
        return selectors.charge_points_for(self.request.user)

    def get_context_data(self, **kwargs):
        user = self.request.user
        return super().get_context_data(
            counts=selectors.status_counts(selectors.charge_points_for(user)),
            sites=selectors.site_summaries(selectors.sites_for(user)),
            **kwargs,
        )


class ChargePointDetailView(OperatorStaffRequiredMixin, DetailView):
    template_name = "stations/charge_point_detail.html"
    context_object_name = "charge_point"
    slug_field = "identity"
    slug_url_kwarg = "identity"

    def get_queryset(self):
        # Another operator's charge point is a 404, as if it did not exist.
        return selectors.charge_points_for(self.request.user)

    def get_context_data(self, **kwargs):
        charge_point = self.object
        return super().get_context_data(
            connectors=charge_point.connectors.all(),  # prefetched in order, with their EVSE
            status_history=charge_point.status_changes.order_by("-timestamp", "-id")[:STATUS_HISTORY_LENGTH],
            time_zone=charge_point.site.time_zone if charge_point.site else "UTC",
            **kwargs,
        )
