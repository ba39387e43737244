"""The application server's VAPID key pair for web push.

Browsers subscribe with the public key (``applicationServerKey``) and push services accept only
pushes signed with the matching private key, so the pair must stay the same for as long as the
subscriptions live. Production sets both in the environment; elsewhere a pair is made on first
use and kept in ``var/vapid.json`` so that restarts do not orphan the browsers subscribed so far.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from py_vapid import Vapid02

_lock = threading.Lock()
_generated: dict[Path, tuple[str, str]] = {}


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def generate() -> tuple[str, str]:
    """A new pair: the raw 32-byte private key and the uncompressed public point, base64url."""
    vapid = Vapid02()
    vapid.generate_keys()
    private = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    public = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(private), _b64url(public)


def _load_or_create(path: Path) -> tuple[str, str]:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        private, public = generate()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(json.dumps({"private_key": private, "public_key": public}))
        tmp.chmod(0o600)
        try:
            # link() fails if another process got there first: then its pair is the one.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    stored = json.loads(path.read_text())
    return stored["private_key"], stored["public_key"]


def keys() -> tuple[str, str]:
    """``(private_key, public_key)``: the private one as pywebpush takes it, the public one as
    browsers take it for ``pushManager.subscribe``."""
    private, public = settings.ALERTS_VAPID_PRIVATE_KEY, settings.ALERTS_VAPID_PUBLIC_KEY
    if private and public:
        return private, public
    if private or public:
        raise ImproperlyConfigured(
            "Set both ALERTS_VAPID_PRIVATE_KEY and ALERTS_VAPID_PUBLIC_KEY, or neither."
        )
    if getattr(settings, "PRODUCTION", False):
        raise ImproperlyConfigured(
            "Web push needs ALERTS_VAPID_PRIVATE_KEY and ALERTS_VAPID_PUBLIC_KEY in production "
            "(make a pair with alerts.vapid.generate())."
        )
    path = Path(settings.BASE_DIR) / "var" / "vapid.json"
    with _lock:
        if path not in _generated:
            _generated[path] = _load_or_create(path)
        return _generated[path]
