"""The one place the stripe library is configured: the secret key from settings and, when
``STRIPE_API_BASE`` is set (tests and the demo point it at localstripe), the API address."""

from __future__ import annotations

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def client() -> stripe.StripeClient:
    """A ``StripeClient`` for the configured account; ImproperlyConfigured without a key, so a
    missing secret is a clear setup error rather than a 401 from Stripe in the middle of a
    session."""
    if not settings.STRIPE_SECRET_KEY:
        raise ImproperlyConfigured("STRIPE_SECRET_KEY is not set: card payments need a Stripe account.")
    base_addresses = {}
    if settings.STRIPE_API_BASE:
        base = settings.STRIPE_API_BASE.rstrip("/")
        base_addresses = {"api": base, "files": base, "connect": base}
    # Retries are ours (Celery, with idempotency keys): the library must not retry on its own
    # with a timing we do not control.
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY, base_addresses=base_addresses, max_network_retries=0
    )
