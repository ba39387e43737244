"""Prometheus metrics (prometheus-client) at /metrics.

Counters and the connection gauge are per process: each ASGI process counts what it handles
and Prometheus scrapes each process (``rate(chargedesk_ocpp_messages_received_total[1m])`` is
messages per second). What the database or the broker knows — chargers connected across all
processes, Celery queue depths — is read at scrape time by a collector, so any process gives
the whole picture for those.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotFound
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger("chargedesk.metrics")

OCPP_CONNECTIONS = Gauge("chargedesk_ocpp_connections", "Charger WebSockets held by this process.")
OCPP_RECEIVED = Counter(
    "chargedesk_ocpp_messages_received",
    "OCPP frames received from chargers, by message type (CALL, CALLRESULT, CALLERROR, invalid) and action.",
    ["message_type", "action"],
)
OCPP_SENT = Counter(
    "chargedesk_ocpp_messages_sent", "OCPP frames sent to chargers, by message type.", ["message_type"]
)
OCPP_CALL_ERRORS = Counter(
    "chargedesk_ocpp_call_errors", "CALLERRORs we answered chargers with, by error code.", ["code"]
)
OCPP_REFUSED = Counter(
    "chargedesk_ocpp_connections_refused", "Charger handshakes refused, by reason.", ["reason"]
)
OCPP_COMMANDS = Counter(
    "chargedesk_ocpp_commands", "Commands sent to chargers, by action and outcome.", ["action", "status"]
)

MESSAGE_TYPES = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}


class DatabaseAndBrokerCollector:
    """Read at scrape time: chargers connected and provisioned per operator (all processes),
    and the length of each Celery queue on the Redis broker."""

    def describe(self):
        # What collect() yields, without reading the database (registering asks at import).
        yield GaugeMetricFamily("chargedesk_chargers_connected", "", labels=["operator"])
        yield GaugeMetricFamily("chargedesk_chargers", "", labels=["operator"])
        yield GaugeMetricFamily("chargedesk_celery_queue_length", "", labels=["queue"])
        yield GaugeMetricFamily("chargedesk_deferred_tasks", "")

    def collect(self):
        connected = GaugeMetricFamily(
            "chargedesk_chargers_connected",
            "Chargers connected (all processes), by operator.",
            labels=["operator"],
        )
        provisioned = GaugeMetricFamily(
            "chargedesk_chargers", "Chargers provisioned, by operator.", labels=["operator"]
        )
        try:
            for slug, total, online in _chargers_by_operator():
                connected.add_metric([slug], online)
                provisioned.add_metric([slug], total)
        except Exception:  # a scrape must still answer when the database is away
            logger.warning("metrics: chargers per operator unavailable", exc_info=True)
        yield connected
        yield provisioned
        queues = GaugeMetricFamily(
            "chargedesk_celery_queue_length", "Tasks waiting in each Celery queue.", labels=["queue"]
        )
        try:
            for name, length in _queue_lengths():
                queues.add_metric([name], length)
        except Exception:
            logger.warning("metrics: Celery queue lengths unavailable", exc_info=True)
        yield queues
        try:
            from config.models import DeferredTask

            deferred = DeferredTask.objects.filter(given_up=False).count()
        except Exception:
            logger.warning("metrics: deferred tasks unavailable", exc_info=True)
        else:
            yield GaugeMetricFamily(
                "chargedesk_deferred_tasks",
                "Task calls kept while the broker was down, waiting to be relayed.",
                value=deferred,
            )


def _chargers_by_operator() -> list[tuple[str, int, int]]:
    from django.db.models import Count, Q

    from stations.models import Operator

    rows = Operator.objects.annotate(
        total=Count("charge_points"),
        online=Count("charge_points", filter=Q(charge_points__is_connected=True)),
    ).values_list("slug", "total", "online")
    return list(rows)


def _queue_lengths() -> list[tuple[str, int]]:
    """LLEN of each queue the deployment uses, on a Redis broker (none embedded)."""
    broker = settings.CELERY_BROKER_URL
    if not broker.startswith(("redis://", "rediss://")):
        return []
    import redis

    names = sorted({settings.CELERY_TASK_DEFAULT_QUEUE, "celery"})
    client = redis.Redis.from_url(broker, socket_connect_timeout=1, socket_timeout=1)
    try:
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(name)
            return list(zip(names, pipe.execute(), strict=True))
    finally:
        client.close()


REGISTRY.register(DatabaseAndBrokerCollector())


@never_cache
@require_GET
def metrics(request):
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            response = HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif settings.PRODUCTION:
        # Not public in production: there is no such page until a token is configured.
        return HttpResponseNotFound("Not found.\n", content_type="text/plain")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
