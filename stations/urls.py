from django.urls import path

from . import views

app_name = "stations"

urlpatterns = [
    path("dashboard/", views.DashboardView.as_view(), name="dashboard"),
    path("dashboard/counts/", views.DashboardCountsView.as_view(), name="dashboard-counts"),
    path("commands/bulk/", views.BulkCommandView.as_view(), name="bulk-command"),
    path("commands/batch/<uuid:batch>/", views.CommandBatchView.as_view(), name="command-batch"),
    path("charge-points/<str:identity>/", views.ChargePointDetailView.as_view(), name="charge-point"),
    path(
        "charge-points/<str:identity>/commands/",
        views.ChargePointCommandView.as_view(),
        name="charge-point-command",
    ),
]
