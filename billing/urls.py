from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("", views.payment, name="payment"),
    path("cards/setup-intent/", views.setup_intent, name="setup-intent"),
    path("cards/", views.attach_card, name="attach-card"),
    path("cards/<int:pk>/default/", views.make_default, name="make-default"),
    path("cards/<int:pk>/remove/", views.remove_card, name="remove-card"),
    path("pay-debt/", views.pay_debt, name="pay-debt"),
    path("invoices/<int:pk>/pdf/", views.invoice_pdf, name="invoice-pdf"),
    path("pay/status/<int:payment_id>/<str:token>/", views.guest_status, name="guest-status"),
    path("pay/<str:identity>/<int:connector>/", views.guest_pay, name="guest-pay"),
    path("pay/<str:identity>/<int:connector>/checkout/", views.guest_checkout, name="guest-checkout"),
    path("qr/<str:identity>/<int:connector>.svg", views.connector_qr, name="connector-qr"),
]
