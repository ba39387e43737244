from django.urls import path

from . import views

app_name = "account"

urlpatterns = [
    path("", views.AccountView.as_view(), name="account"),
    path("charging/start/", views.StartChargingView.as_view(), name="start-charging"),
    path("charging/<int:pk>/stop/", views.StopChargingView.as_view(), name="stop-charging"),
]
