"""Alerts pages: everyone's notifications and settings, the unsubscribe links of emails, and
the operator's delivery log, webhooks and maintenance windows. (The push service worker is
served from the site's root: see ``config.urls``.)"""

from django.urls import path

from alerts import views

app_name = "alerts"

urlpatterns = [
    path("", views.notifications, name="notifications"),
    path("read/", views.mark_read, name="mark-read"),
    path("unread/", views.unread, name="unread"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/channels/", views.save_channels, name="save-channels"),
    path("settings/profile/", views.save_profile, name="save-profile"),
    path("settings/favourites/", views.add_favourite, name="add-favourite"),
    path("settings/favourites/<int:pk>/remove/", views.remove_favourite, name="remove-favourite"),
    path("push/subscribe/", views.push_subscribe, name="push-subscribe"),
    path("push/unsubscribe/", views.push_unsubscribe, name="push-unsubscribe"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("deliveries/", views.deliveries, name="deliveries"),
    path("deliveries/<int:pk>/retry/", views.delivery_retry, name="delivery-retry"),
    path("webhooks/", views.webhooks, name="webhooks"),
    path("webhooks/<int:pk>/rotate/", views.webhook_rotate, name="webhook-rotate"),
    path("webhooks/<int:pk>/enable/", views.webhook_enable, name="webhook-enable"),
    path("webhooks/<int:pk>/disable/", views.webhook_disable, name="webhook-disable"),
    path("webhooks/<int:pk>/delete/", views.webhook_delete, name="webhook-delete"),
    path("webhooks/<int:pk>/test/", views.webhook_test, name="webhook-test"),
    path("maintenance/", views.maintenance, name="maintenance"),
    path("maintenance/<int:pk>/publish/", views.maintenance_publish, name="maintenance-publish"),
    path("maintenance/<int:pk>/cancel/", views.maintenance_cancel, name="maintenance-cancel"),
]
