"""WebSocket routes: the OCPP endpoint and the live dashboard join here as they are built."""

websocket_urlpatterns: list = []
