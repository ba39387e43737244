"""Links in messages that leave the site (emails, pushes, webhooks) must be absolute: the
reader is in a mail client or another server, not on our pages."""

from __future__ import annotations

from django.conf import settings

DEFAULT_SITE_URL = "http://localhost:8000"


def absolute(path: str) -> str:
    """``path`` (a path on this site) as a full URL under ``settings.SITE_URL``."""
    if path.startswith(("http://", "https://")):
        return path
    base = (getattr(settings, "SITE_URL", "") or DEFAULT_SITE_URL).rstrip("/")
    return f"{base}/{path.lstrip('/')}"
