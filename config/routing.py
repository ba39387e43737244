"""WebSocket routes: chargers speak OCPP at /ocpp/<identity> (or /ocpp/<operator>/<identity>
for an operator that admits unknown chargers); live pages join here as they are built.

Only the pages' routes go through the session and auth middleware: a charger has no cookie
and authenticates with its own password, and the session middleware's wrapper around every
frame sent would cost each OCPP answer for nothing."""

from channels.auth import AuthMiddlewareStack
from django.urls import path

from alerts.consumers import NotificationConsumer
from stations.live import LiveConsumer
from stations.ocpp.consumer import OcppConsumer

websocket_urlpatterns: list = [
    path("ocpp/<str:identity>", OcppConsumer.as_asgi()),
    path("ocpp/<slug:operator>/<str:identity>", OcppConsumer.as_asgi()),
    path("ws/live/", AuthMiddlewareStack(LiveConsumer.as_asgi())),
    path("ws/notifications/", AuthMiddlewareStack(NotificationConsumer.as_asgi())),
]
