"""Prometheus metrics of a real server with a charger connected over a real socket."""

import base64
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.chargers import Chargers
from tests.factories import ChargePointFactory, ConnectorFactory

pytestmark = pytest.mark.live


def scrape(base: str, token: str | None = None) -> dict[tuple[str, tuple], float]:
    request = urllib.request.Request(f"{base}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_connections_messages_and_chargers_online(asgi_server, operator, site):
    cp = ChargePointFactory(site=site, identity="VW-M1", is_connected=False)
    ConnectorFactory(charge_point=cp, connector_id=1)
    before = scrape(asgi_server)
    chargers = Chargers(asgi_server)
    try:
        sim = chargers.start("VW-M1")
        chargers.do(sim.heartbeat())
        after = scrape(asgi_server)
    finally:
        chargers.close()

    assert value(after, "chargedesk_ocpp_connections") == value(before, "chargedesk_ocpp_connections") + 1
    assert value(after, "chargedesk_chargers_connected", operator="voltway") == 1
    assert value(after, "chargedesk_chargers", operator="voltway") == 1
    for action in ("BootNotification", "StatusNotification", "Heartbeat"):
        received = ("chargedesk_ocpp_messages_received_total", {"message_type": "CALL", "action": action})
        assert value(after, received[0], **received[1]) > value(before, received[0], **received[1]), action
    sent = "chargedesk_ocpp_messages_sent_total"
    assert value(after, sent, message_type="CALLRESULT") >= value(before, sent, message_type="CALLRESULT") + 3
    # The standard process metrics come along.
    assert value(after, "process_resident_memory_bytes") > 0


def test_metrics_count_refused_chargers_by_reason(asgi_server, operator, site):
    ChargePointFactory(site=site, identity="VW-M2")
    before = scrape(asgi_server)
    url = asgi_server.replace("http://", "ws://") + "/ocpp/VW-M2"
    auth = "Basic " + base64.b64encode(b"VW-M2:a-wrong-password-of-16+").decode()
    with pytest.raises(InvalidStatus):
        connect(url, subprotocols=["ocpp1.6"], additional_headers={"Authorization": auth}, open_timeout=10)
    after = scrape(asgi_server)
    refused = "chargedesk_ocpp_connections_refused_total"
    assert value(after, refused, reason="wrong password") > value(before, refused, reason="wrong password")


def test_metrics_need_the_bearer_token_when_one_is_configured(client, settings, db):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"})
    assert response.status_code == 200
    assert b"chargedesk_ocpp_connections" in response.content


def test_metrics_are_absent_in_production_without_a_token(client, settings, db):
    settings.METRICS_TOKEN = ""
    settings.PRODUCTION = True
    assert client.get("/metrics").status_code == 404


@pytest.mark.redis
def test_metrics_show_the_celery_queue_depth(client, settings, db):
    import redis

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    broker.delete(queue)
    broker.rpush(queue, "a", "b", "c")
    try:
        response = client.get("/metrics")
    finally:
        broker.delete(queue)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(response.content.decode())
        for s in f.samples
    }
    assert value(samples, "chargedesk_celery_queue_length", queue=queue) == 3


def test_scrape_still_answers_when_the_broker_is_away(client, settings, db):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/metrics")
    except urllib.error.URLError:  # pragma: no cover - the view must not raise
        raise
    assert response.status_code == 200
    assert b"chargedesk_chargers_connected" in response.content
