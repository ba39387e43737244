"""ASGI entry point: Django views and the REST API over HTTP, OCPP and live pages over WebSocket."""

import gc
import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The event loop and the database threads share the GIL; a thread back from the database
# otherwise waits up to 5 ms per query for the loop to let go (the convoy effect).
sys.setswitchinterval(float(os.environ.get("CHARGEDESK_GIL_SWITCH_INTERVAL", "0.0005")))
django_asgi_app = get_asgi_application()
if os.environ.get("CHARGEDESK_GC_FREEZE", "1") == "1":
    # Thousands of long-lived connections make every full collection walk them all (pauses of
    # a hundred milliseconds and more under load): move what startup made out of the
    # collector's sight, and collect the young generation less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*(int(n) for n in os.environ.get("CHARGEDESK_GC_THRESHOLD", "20000,50,100").split(",")))

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django set up)

from config.routing import websocket_urlpatterns  # noqa: E402
from diagnostics.asgi_upload_limit import UploadSizeLimit  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Chargers' diagnostics uploads are refused past their limit before Django reads them.
        "http": UploadSizeLimit(django_asgi_app),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
