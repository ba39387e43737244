"""The driver's own pages."""

from django.views.generic import TemplateView

from stations.permissions import DriverRequiredMixin

from .models import IdToken


class AccountView(DriverRequiredMixin, TemplateView):
    template_name = "sessions/account.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            id_tokens=IdToken.objects.filter(driver=self.request.user).order_by("token"),
            **kwargs,
        )
