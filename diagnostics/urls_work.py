"""Incident, ticket, log upload and firmware campaign pages."""

from django.urls import path

from diagnostics import views_work as views

urlpatterns: list = [
    path("incidents/<int:pk>/", views.IncidentDetailView.as_view(), name="incident-detail"),
    path("incidents/<int:pk>/ticket/", views.IncidentTicketCreateView.as_view(), name="incident-ticket"),
    path("tickets/", views.TicketListView.as_view(), name="ticket-list"),
    path("tickets/new/", views.TicketCreateView.as_view(), name="ticket-create"),
    path("tickets/<int:pk>/", views.TicketDetailView.as_view(), name="ticket-detail"),
    path("tickets/<int:pk>/assign/", views.TicketAssignView.as_view(), name="ticket-assign"),
    path("tickets/<int:pk>/status/", views.TicketStatusView.as_view(), name="ticket-status"),
    path("my-tickets/", views.MyTicketsView.as_view(), name="my-tickets"),
    path("my-tickets/<int:pk>/", views.MyTicketStatusView.as_view(), name="my-ticket-status"),
    path("upload/<str:token>/", views.upload_receive, name="upload-receive"),
    path("upload/<str:token>/<str:filename>", views.upload_receive_named, name="upload-receive-named"),
    path(
        "charge-points/<str:identity>/request-diagnostics/",
        views.UploadRequestView.as_view(),
        name="upload-request",
    ),
    path("uploads/<int:pk>/download/", views.UploadDownloadView.as_view(), name="upload-download"),
    path("firmware/", views.CampaignListView.as_view(), name="campaign-list"),
    path("firmware/new/", views.CampaignCreateView.as_view(), name="campaign-create"),
    path("firmware/<int:pk>/", views.CampaignDetailView.as_view(), name="campaign-detail"),
    path("firmware/<int:pk>/start/", views.CampaignStartView.as_view(), name="campaign-start"),
    path("firmware/<int:pk>/cancel/", views.CampaignCancelView.as_view(), name="campaign-cancel"),
]
