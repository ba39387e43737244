"""REST API of alerts for operator staff: webhook endpoints, the delivery log and maintenance
windows, each scoped to the caller's operator (a superuser sees all; drivers none)."""

import datetime as dt
import itertools
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.utils import timezone

from alerts.models import (
    Alert,
    Channel,
    Delivery,
    DeliveryStatus,
    MaintenanceWindow,
    WebhookEndpoint,
)
from stations.models import User

pytestmark = pytest.mark.django_db

WEBHOOKS = "/api/v1/operator/webhooks/"
DELIVERIES = "/api/v1/operator/deliveries/"
WINDOWS = "/api/v1/operator/maintenance-windows/"
KEYS = itertools.count()


def endpoint_of(operator, url="https://hooks.example.com/chargedesk", **fields) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(operator=operator, url=url, **fields)


def delivery_of(
    operator, *, event_type="fault", channel=Channel.WEBHOOK, status=DeliveryStatus.SENT, **fields
):
    alert = Alert.objects.create(
        event_type=event_type, dedup_key=f"test-{next(KEYS)}", title=f"{event_type} alert", operator=operator
    )
    if channel == Channel.WEBHOOK and "endpoint" not in fields:
        fields["endpoint"] = endpoint_of(operator, url=f"https://hooks.example.com/{next(KEYS)}")
    return Delivery.objects.create(alert=alert, operator=operator, channel=channel, status=status, **fields)


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(email="root@chargedesk.example", password="x")


@pytest.fixture
def receiver():
    """A real HTTP receiver on a free port; yields (url, the requests it got)."""
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append({"headers": dict(self.headers), "body": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got
    server.shutdown()
    server.server_close()


# --- Who may --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [WEBHOOKS, DELIVERIES, WINDOWS])
def test_drivers_may_not_use_operator_routes(api_as, driver, path):
    assert api_as(driver).get(path).status_code == 403


def test_technicians_read_but_do_not_write(api_as, technician, operator):
    endpoint = endpoint_of(operator)
    client = api_as(technician)

    assert client.get(WEBHOOKS).json()["count"] == 1
    assert client.post(WEBHOOKS, {"url": "https://x.example.com/"}).status_code == 403
    assert client.delete(f"{WEBHOOKS}{endpoint.pk}/").status_code == 403


# --- Webhook endpoints ----------------------------------------------------------------------


def test_create_a_webhook_shows_the_secret_once(api_as, operator_admin, operator):
    client = api_as(operator_admin)

    response = client.post(
        WEBHOOKS,
        {
            "url": "https://hooks.example.com/in",
            "description": "Ops",
            "event_types": ["fault", "charger_offline"],
        },
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    endpoint = WebhookEndpoint.objects.get()
    assert body["secret"] == endpoint.secret and len(endpoint.secret) == 64
    assert endpoint.operator == operator
    assert endpoint.created_by == operator_admin
    assert endpoint.event_types == ["fault", "charger_offline"]
    assert body["operator"] == "voltway"
    assert "secret" not in client.get(f"{WEBHOOKS}{endpoint.pk}/").json()
    assert "secret" not in client.get(WEBHOOKS).json()["results"][0]


def test_staff_cannot_create_for_another_operator(api_as, operator_admin, other_operator):
    response = api_as(operator_admin).post(
        WEBHOOKS, {"url": "https://hooks.example.com/in", "operator": other_operator.slug}
    )

    # Refused as an unknown slug is: accepting it would tell that the operator exists.
    assert response.status_code == 400
    assert "operator" in response.json()
    assert not WebhookEndpoint.objects.exists()


def test_a_superuser_names_the_operator(api_as, superuser, other_operator):
    client = api_as(superuser)

    assert "operator" in client.post(WEBHOOKS, {"url": "https://hooks.example.com/in"}).json()
    response = client.post(WEBHOOKS, {"url": "https://hooks.example.com/in", "operator": "northgrid"})
    assert response.status_code == 201
    assert WebhookEndpoint.objects.get().operator == other_operator


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/in"}, "url"),
        ({"url": "https://user:secret@hooks.example.com/in"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://hooks.example.com/in", "event_types": ["session_started"]}, "event_types"),
        ({"url": "https://hooks.example.com/in", "event_types": ["ping"]}, "event_types"),
    ],
)
def test_invalid_webhooks_are_refused(api_as, operator_admin, body, field):
    response = api_as(operator_admin).post(WEBHOOKS, body)

    assert response.status_code == 400
    assert field in response.json()
    assert not WebhookEndpoint.objects.exists()


def test_change_a_webhook(api_as, operator_admin, operator):
    endpoint = endpoint_of(operator)

    response = api_as(operator_admin).patch(
        f"{WEBHOOKS}{endpoint.pk}/", {"url": "https://new.example.com/in", "event_types": []}
    )

    assert response.status_code == 200, response.json()
    endpoint.refresh_from_db()
    assert endpoint.url == "https://new.example.com/in"
    assert endpoint.event_types == []


def test_another_operators_webhook_is_not_found(api_as, operator_admin, other_operator):
    theirs = endpoint_of(other_operator)
    client = api_as(operator_admin)

    assert client.get(WEBHOOKS).json()["count"] == 0
    for response in (
        client.get(f"{WEBHOOKS}{theirs.pk}/"),
        client.patch(f"{WEBHOOKS}{theirs.pk}/", {"description": "mine now"}),
        client.delete(f"{WEBHOOKS}{theirs.pk}/"),
        client.post(f"{WEBHOOKS}{theirs.pk}/rotate-secret/"),
        client.post(f"{WEBHOOKS}{theirs.pk}/test/"),
        client.post(f"{WEBHOOKS}{theirs.pk}/enable/"),
    ):
        assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.description == ""


def test_rotate_the_secret(api_as, operator_admin, operator):
    endpoint = endpoint_of(operator)
    old = endpoint.secret

    response = api_as(operator_admin).post(f"{WEBHOOKS}{endpoint.pk}/rotate-secret/")

    endpoint.refresh_from_db()
    assert response.status_code == 200
    assert response.json()["secret"] == endpoint.secret != old


def test_enable_a_disabled_webhook(api_as, operator_admin, operator):
    endpoint = endpoint_of(
        operator,
        is_active=False,
        consecutive_failures=9,
        disabled_at=timezone.now(),
        disabled_reason="Too many failures",
    )

    response = api_as(operator_admin).post(f"{WEBHOOKS}{endpoint.pk}/enable/")

    assert response.status_code == 200
    assert response.json()["is_active"] is True
    endpoint.refresh_from_db()
    assert (
        endpoint.is_active,
        endpoint.consecutive_failures,
        endpoint.disabled_at,
        endpoint.disabled_reason,
    ) == (
        True,
        0,
        None,
        "",
    )


def test_disable_a_webhook(api_as, operator_admin, operator):
    endpoint = endpoint_of(operator)

    response = api_as(operator_admin).post(f"{WEBHOOKS}{endpoint.pk}/disable/", {"reason": "Migrating"})

    assert response.status_code == 200
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_reason == "Migrating"


def test_delete_a_webhook(api_as, operator_admin, operator):
    endpoint = endpoint_of(operator)

    assert api_as(operator_admin).delete(f"{WEBHOOKS}{endpoint.pk}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_test_sends_a_signed_ping(api_as, operator_admin, operator, receiver):
    url, got = receiver
    endpoint = endpoint_of(operator, url=url)

    response = api_as(operator_admin).post(f"{WEBHOOKS}{endpoint.pk}/test/")

    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert "204" in response.json()["detail"]
    assert len(got) == 1
    assert got[0]["body"]["type"] == "ping"
    assert "Chargedesk-Signature" in {k.title() for k in got[0]["headers"]}


def test_test_reports_an_unreachable_receiver(api_as, operator_admin, operator):
    with socket.socket() as s:  # a port just free: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = endpoint_of(operator, url=f"http://127.0.0.1:{port}/hook")

    response = api_as(operator_admin).post(f"{WEBHOOKS}{endpoint.pk}/test/")

    assert response.status_code == 200
    assert response.json()["ok"] is False
    assert response.json()["detail"]


# --- Delivery log ---------------------------------------------------------------------------


def test_deliveries_are_the_operators_own(api_as, technician, operator, other_operator):
    mine = delivery_of(operator)
    theirs = delivery_of(other_operator)
    client = api_as(technician)

    body = client.get(DELIVERIES).json()

    assert [d["id"] for d in body["results"]] == [mine.pk]
    assert body["results"][0]["event_type"] == "fault"
    assert client.get(f"{DELIVERIES}{theirs.pk}/").status_code == 404


def test_superuser_sees_every_delivery(api_as, superuser, operator, other_operator):
    delivery_of(operator)
    delivery_of(other_operator)

    assert api_as(superuser).get(DELIVERIES).json()["count"] == 2


def test_delivery_filters(api_as, technician, operator):
    failed = delivery_of(operator, status=DeliveryStatus.FAILED, last_error="HTTP 500")
    email = delivery_of(
        operator, channel=Channel.EMAIL, event_type="charger_offline", target="ops@example.com"
    )
    client = api_as(technician)

    def ids(**params):
        return [d["id"] for d in client.get(DELIVERIES, params).json()["results"]]

    assert ids(status="failed") == [failed.pk]
    assert ids(channel="email") == [email.pk]
    assert ids(event_type="charger_offline") == [email.pk]
    assert ids(event_type="fault", channel="webhook") == [failed.pk]


def test_deliveries_list_query_count(api_as, technician, operator, django_assert_max_num_queries):
    endpoint = endpoint_of(operator)
    for _ in range(10):
        delivery_of(operator, endpoint=endpoint)
        delivery_of(operator, channel=Channel.EMAIL, user=technician, target=technician.email)
    client = api_as(technician)

    with django_assert_max_num_queries(3):
        response = client.get(DELIVERIES)

    assert response.json()["count"] == 20


def test_retry_a_failed_delivery(api_as, operator_admin, operator, monkeypatch):
    queued = []
    monkeypatch.setattr("alerts.tasks.deliver.delay", lambda ids: queued.append(ids))
    failed = delivery_of(operator, status=DeliveryStatus.FAILED, attempts=5, last_error="HTTP 500")

    response = api_as(operator_admin).post(f"{DELIVERIES}{failed.pk}/retry/")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "pending"
    assert queued == [[failed.pk]]


def test_a_sent_delivery_is_not_retried(api_as, operator_admin, operator, monkeypatch):
    queued = []
    monkeypatch.setattr("alerts.tasks.deliver.delay", lambda ids: queued.append(ids))
    sent = delivery_of(operator, status=DeliveryStatus.SENT)

    response = api_as(operator_admin).post(f"{DELIVERIES}{sent.pk}/retry/")

    assert response.status_code == 400
    assert queued == []


def test_retry_is_for_admins_of_the_operator(api_as, technician, other_operator_admin, operator):
    failed = delivery_of(operator, status=DeliveryStatus.FAILED)

    assert api_as(technician).post(f"{DELIVERIES}{failed.pk}/retry/").status_code == 403
    assert api_as(other_operator_admin).post(f"{DELIVERIES}{failed.pk}/retry/").status_code == 404


# --- Maintenance windows --------------------------------------------------------------------


def _window_body(**fields) -> dict:
    start = timezone.now() + dt.timedelta(days=1)
    return {
        "starts_at": start.isoformat(),
        "ends_at": (start + dt.timedelta(hours=3)).isoformat(),
        "reason": "Replacing the cable",
        **fields,
    }


def test_plan_publish_and_cancel_a_maintenance_window(api_as, operator_admin, charge_point):
    client = api_as(operator_admin)

    response = client.post(WINDOWS, _window_body(charge_point="VW-0001"))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["charge_point"] == "VW-0001" and body["state"] == "draft"

    published = client.post(f"{WINDOWS}{body['id']}/publish/")
    assert published.status_code == 200, published.json()
    assert published.json()["window"]["state"] == "published"
    assert published.json()["drivers_told"] == 0

    assert client.delete(f"{WINDOWS}{body['id']}/").status_code == 204
    window = MaintenanceWindow.objects.get()
    assert window.cancelled_at is not None
    assert client.get(f"{WINDOWS}{window.pk}/").json()["state"] == "cancelled"


def test_plan_a_window_for_a_whole_site(api_as, operator_admin, site):
    response = api_as(operator_admin).post(WINDOWS, _window_body(site=site.pk))

    assert response.status_code == 201, response.json()
    assert response.json()["site_name"] == "Central Station"


def test_cannot_plan_on_another_operators_station(api_as, operator_admin, other_charge_point):
    client = api_as(operator_admin)

    response = client.post(WINDOWS, _window_body(charge_point="NG-0001"))
    assert response.status_code == 400 and "charge_point" in response.json()
    response = client.post(WINDOWS, _window_body(site=other_charge_point.site_id))
    assert response.status_code == 400 and "site" in response.json()
    assert not MaintenanceWindow.objects.exists()


def test_a_window_must_end_after_it_starts(api_as, operator_admin, charge_point):
    body = _window_body(charge_point="VW-0001")
    body["ends_at"] = body["starts_at"]

    response = api_as(operator_admin).post(WINDOWS, body)

    assert response.status_code == 400 and "ends_at" in response.json()


def test_another_operators_window_is_not_found(api_as, operator_admin, other_charge_point, other_operator):
    start = timezone.now() + dt.timedelta(days=1)
    theirs = MaintenanceWindow.objects.create(
        operator=other_operator,
        charge_point=other_charge_point,
        starts_at=start,
        ends_at=start + dt.timedelta(hours=1),
    )
    client = api_as(operator_admin)

    assert client.get(WINDOWS).json()["count"] == 0
    assert client.get(f"{WINDOWS}{theirs.pk}/").status_code == 404
    assert client.post(f"{WINDOWS}{theirs.pk}/publish/").status_code == 404
    assert client.delete(f"{WINDOWS}{theirs.pk}/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.published_at is None and theirs.cancelled_at is None
