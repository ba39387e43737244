"""WebSocket routes: chargers speak OCPP at /ocpp/<identity> (or /ocpp/<operator>/<identity>
for an operator that admits unknown chargers); live pages join here as they are built."""

from django.urls import path

from stations.live import LiveConsumer
from stations.ocpp.consumer import OcppConsumer

websocket_urlpatterns: list = [
    path("ocpp/<str:identity>", OcppConsumer.as_asgi()),
    path("ocpp/<slug:operator>/<str:identity>", OcppConsumer.as_asgi()),
    path("ws/live/", LiveConsumer.as_asgi()),
]
