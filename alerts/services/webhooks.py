"""An operator's webhook endpoints: created, changed, switched on and off, their signing
secret rotated, and a signed "ping" sent on demand. Deliveries to them are
``alerts.delivery``'s business; this module keeps the endpoints themselves right."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from alerts import catalog
from alerts.models import WebhookEndpoint
from stations.models import Operator, User

EDITABLE_FIELDS = frozenset({"url", "description", "event_types"})
URL_MAX = WebhookEndpoint._meta.get_field("url").max_length
REASON_MAX = WebhookEndpoint._meta.get_field("disabled_reason").max_length
# Every endpoint is POSTed each alert of its network: a bound keeps one alert's fan-out small.
MAX_ENDPOINTS_PER_OPERATOR = 25
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})


def operator_event_types() -> list[str]:
    """What an endpoint may subscribe to: the operator half of the catalogue ("ping" is sent
    only when asked for, to every endpoint, and is not a subscription)."""
    return [e.key for e in catalog.for_audience(catalog.OPERATOR)]


def validate_url(url: str) -> str:
    url = (url or "").strip()
    if not url:
        raise ValidationError({"url": "Give the address to POST alerts to."})
    if len(url) > URL_MAX:
        raise ValidationError({"url": f"At most {URL_MAX} characters."})
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError({"url": "Give an http or https address."}) from None
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValidationError(
            {"url": "Put no user name or password in the address; the signature authenticates us."}
        )
    if settings.PRODUCTION:
        if parts.scheme != "https":
            raise ValidationError({"url": "Use https: alerts carry your network's data."})
        if _is_internal(parts.hostname or ""):
            raise ValidationError({"url": "The address must be reachable on the internet, not a local one."})
    return url


def _is_internal(host: str) -> bool:
    # Literal addresses only; a name resolving inward is for the sender to refuse at send time.
    if host.lower() in LOCAL_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not address.is_global


def validate_event_types(event_types: Iterable[str] | None) -> list[str]:
    if event_types is None:
        return []
    if isinstance(event_types, str | dict):
        raise ValidationError({"event_types": "Give a list of event types."})
    chosen = list(dict.fromkeys(event_types))
    allowed = operator_event_types()
    unknown = [e for e in chosen if e not in allowed]
    if unknown:
        raise ValidationError(
            {
                "event_types": f"Not event types of an operator's network: {', '.join(map(str, unknown))}. "
                f"Choose among {', '.join(allowed)}, or none for all."
            }
        )
    return chosen


@transaction.atomic
def create_endpoint(
    *,
    operator: Operator,
    url: str,
    description: str = "",
    event_types: Iterable[str] = (),
    by: User | None = None,
) -> WebhookEndpoint:
    """A new endpoint, active, with a fresh secret (shown to the operator once, now)."""
    Operator.objects.select_for_update().filter(pk=operator.pk).first()
    if WebhookEndpoint.objects.filter(operator=operator).count() >= MAX_ENDPOINTS_PER_OPERATOR:
        raise ValidationError(f"An operator has at most {MAX_ENDPOINTS_PER_OPERATOR} webhook endpoints.")
    endpoint = WebhookEndpoint(
        operator=operator,
        url=validate_url(url),
        description=(description or "").strip(),
        event_types=validate_event_types(event_types),
        created_by=by,
    )
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def update_endpoint(*, endpoint: WebhookEndpoint, **fields) -> WebhookEndpoint:
    """Change the address, description or event types (the secret by ``rotate_secret``, the
    on/off state by ``enable_endpoint``/``disable_endpoint``)."""
    unknown = sorted(set(fields) - EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(f"Not a field to change here: {', '.join(unknown)}.")
    if "url" in fields:
        endpoint.url = validate_url(fields["url"])
    if "description" in fields:
        endpoint.description = (fields["description"] or "").strip()
    if "event_types" in fields:
        endpoint.event_types = validate_event_types(fields["event_types"])
    endpoint.full_clean()
    endpoint.save(update_fields=[*fields])
    return endpoint


def enable_endpoint(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Switch on again (after the receiver was fixed): failures counted afresh."""
    endpoint.is_active = True
    endpoint.consecutive_failures = 0
    endpoint.disabled_at = None
    endpoint.disabled_reason = ""
    endpoint.save(update_fields=["is_active", "consecutive_failures", "disabled_at", "disabled_reason"])
    return endpoint


def disable_endpoint(*, endpoint: WebhookEndpoint, reason: str) -> WebhookEndpoint:
    """Stop POSTing there, saying why (by hand, or after too many failures in a row)."""
    endpoint.is_active = False
    endpoint.disabled_at = timezone.now()
    endpoint.disabled_reason = (reason or "").strip()[:REASON_MAX]
    endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason"])
    return endpoint


def rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """A new signing secret, effective at once; the old one stops verifying. Returned so it
    can be shown once."""
    endpoint.secret = secrets.token_hex()
    endpoint.save(update_fields=["secret"])
    return endpoint.secret


def delete_endpoint(*, endpoint: WebhookEndpoint) -> None:
    """Forget the endpoint and its delivery log."""
    endpoint.delete()


def test_endpoint(*, endpoint: WebhookEndpoint) -> tuple[bool, str]:
    """POST a signed "ping" now and say how the receiver answered: (ok, detail)."""
    from alerts.delivery import test_send

    return test_send(endpoint)
