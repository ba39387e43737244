"""ASGI entry point: Django views and the REST API over HTTP, OCPP and live pages over WebSocket."""

import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The event loop and the database threads share the GIL; a thread back from the database
# otherwise waits up to 5 ms per query for the loop to let go (the convoy effect).
sys.setswitchinterval(float(os.environ.get("CHARGEDESK_GIL_SWITCH_INTERVAL", "0.0005")))
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django set up)

from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
