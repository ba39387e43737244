from django.urls import path

from . import views

app_name = "stations"

urlpatterns = [
    path("dashboard/", views.DashboardView.as_view(), name="dashboard"),
    path("charge-points/<str:identity>/", views.ChargePointDetailView.as_view(), name="charge-point"),
]
