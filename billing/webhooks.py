"""The Stripe webhook endpoint: verified by signature, handled once per event id."""

from __future__ import annotations

import json
import logging

import stripe
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .services import payments

logger = logging.getLogger(__name__)


@csrf_exempt  # Stripe signs its requests; it cannot send our CSRF token.
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """400 for a missing or wrong signature (or a body that is not an event), 200 once the
    event is handled or when it was handled before."""
    signature = request.headers.get("Stripe-Signature", "")
    if not signature or not settings.STRIPE_WEBHOOK_SECRET:
        return JsonResponse({"error": "missing signature"}, status=400)
    try:
        stripe.Webhook.construct_event(request.body, signature, settings.STRIPE_WEBHOOK_SECRET)
        event = json.loads(request.body)
        if not isinstance(event.get("id"), str) or not isinstance(event.get("data", {}).get("object"), dict):
            raise ValueError("not a Stripe event")
    except (stripe.SignatureVerificationError, ValueError, AttributeError, TypeError):
        return JsonResponse({"error": "invalid signature or payload"}, status=400)
    handled = payments.handle_stripe_event(event)
    logger.info("stripe event %s %s %s", event["type"], event["id"], "handled" if handled else "replayed")
    return JsonResponse({"received": True, "replay": not handled})
