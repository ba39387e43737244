"""Operators' energy and revenue reports (included by the lead at /billing/reports/)."""

from django.urls import path

from . import views_reports

app_name = "billing-reports"

urlpatterns = [
    path("", views_reports.ReportView.as_view(), name="index"),
    path("jobs/", views_reports.JobCreateView.as_view(), name="job-create"),
    path("jobs/<int:pk>/", views_reports.JobStatusView.as_view(), name="job"),
    path("jobs/<int:pk>/<str:kind>/", views_reports.JobFileView.as_view(), name="job-file"),
]
