"""Content-Security-Policy and Permissions-Policy (django-csp, django-permissions-policy).

Every page's scripts and styles come from our static files, so the site-wide policy allows
'self' only: no inline script, no inline style, no eval. The few pages that need more say so
with the decorators here: the two card pages load Stripe.js (whose origin is a setting, a local
stand-in in tests), the API docs run third-party UIs that inject their own styles.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from csp.constants import NONE, SELF
from django.conf import settings

CSP_DIRECTIVES = {
    "default-src": [SELF],
    "script-src": [SELF],
    "style-src": [SELF],
    "img-src": [SELF],
    "font-src": [SELF],
    # 'self' covers the same-origin ws:/wss: of the live dashboard and notifications.
    "connect-src": [SELF],
    "worker-src": [SELF],
    "frame-src": [NONE],
    "object-src": [NONE],
    "base-uri": [SELF],
    "form-action": [SELF],
    "frame-ancestors": [NONE],
}

# Browser features no page uses are off; geolocation is asked for by the driver's "near me"
# (alerts/location.js), payment (the Payment Request button) by Stripe's frame on the card pages.
PERMISSIONS_POLICY_FEATURES = {
    "accelerometer": [],
    "autoplay": [],
    "camera": [],
    "display-capture": [],
    "fullscreen": [],
    "geolocation": ["self"],
    "gyroscope": [],
    "magnetometer": [],
    "microphone": [],
    "midi": [],
    "payment": ["self"],  # and Stripe.js's origin: permissions_policy()
    "publickey-credentials-get": [],
    "screen-wake-lock": [],
    "usb": [],
    "xr-spatial-tracking": [],
}


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def permissions_policy(stripe_js_url: str) -> dict[str, list[str]]:
    stripe = _origin(stripe_js_url)
    return {**PERMISSIONS_POLICY_FEATURES, "payment": ["self", *([stripe] if stripe else [])]}


def stripe_sources() -> dict[str, list[str]]:
    """What Stripe.js needs, read from the settings at response time (tests point them at a
    local stand-in): its script, the frames of Elements and 3-D Secure, and its API calls."""
    js = _origin(settings.STRIPE_JS_URL)
    if js is None:
        return {}
    api = _origin(settings.STRIPE_API_BASE) if settings.STRIPE_API_BASE else None
    if urlsplit(settings.STRIPE_JS_URL).hostname == "js.stripe.com":
        # Stripe's documented policy for Stripe.js.
        return {
            "script-src": ["https://js.stripe.com", "https://*.js.stripe.com"],
            "frame-src": ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"],
            "connect-src": ["https://api.stripe.com", *([api] if api else [])],
            "img-src": ["https://*.stripe.com"],
        }
    return {"script-src": [js], "frame-src": [js], "connect-src": [js, *([api] if api else [])]}


def with_stripe(view):
    """For a page that loads Stripe.js: the site policy plus Stripe's origins."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        # "frame-src 'none'" would stay in the list beside the origins and void them.
        response._csp_replace = {"frame-src": None}
        response._csp_update = stripe_sources()
        return response

    return wrapped


# Swagger UI and ReDoc (drf-spectacular, from drf-spectacular-sidecar under /static/) set inline
# styles and draw icons from data: URIs; ReDoc runs a worker from a blob. Scripts stay 'self'.
API_DOCS_CSP = {
    "style-src": ["'unsafe-inline'"],
    "img-src": ["data:"],
    "worker-src": ["blob:"],
}
