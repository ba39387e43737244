"""An operator's webhook endpoints through their services: what an endpoint may be, switching
it on and off, its secret, and the test ping."""

import pytest
from django.core.exceptions import ValidationError

from alerts import catalog
from alerts.models import WebhookEndpoint
from alerts.services import webhooks

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/chargedesk"


def test_create_an_endpoint(operator, operator_admin):
    endpoint = webhooks.create_endpoint(
        operator=operator,
        url=f"  {URL}  ",
        description=" Ops room ",
        event_types=["fault", "charger_offline", "fault"],
        by=operator_admin,
    )

    endpoint.refresh_from_db()
    assert endpoint.url == URL
    assert endpoint.description == "Ops room"
    assert endpoint.event_types == ["fault", "charger_offline"]
    assert endpoint.is_active and endpoint.created_by == operator_admin
    assert len(endpoint.secret) == 64


def test_every_operator_event_type_may_be_chosen(operator):
    keys = [e.key for e in catalog.for_audience(catalog.OPERATOR)]

    endpoint = webhooks.create_endpoint(operator=operator, url=URL, event_types=keys)

    assert endpoint.event_types == keys


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": ""}, "url"),
        ({"url": "hooks.example.com"}, "url"),
        ({"url": "ftp://hooks.example.com/in"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "https://me:pw@hooks.example.com/in"}, "url"),
        ({"url": "https://hooks.example.com/" + "a" * 500}, "url"),
        ({"event_types": ["session_finished"]}, "event_types"),
        ({"event_types": ["ping"]}, "event_types"),
        ({"event_types": "fault"}, "event_types"),
        ({"description": "x" * 201}, "description"),
    ],
)
def test_invalid_endpoints_are_refused(operator, fields, field):
    with pytest.raises(ValidationError) as caught:
        webhooks.create_endpoint(operator=operator, **{"url": URL, **fields})

    assert field in caught.value.message_dict
    assert not WebhookEndpoint.objects.exists()


def test_plain_http_and_local_addresses_are_for_development_only(operator, settings):
    webhooks.create_endpoint(operator=operator, url="http://127.0.0.1:9000/hook")

    settings.PRODUCTION = True
    for url in (
        "http://hooks.example.com/in",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest",
        "https://localhost/hook",
    ):
        with pytest.raises(ValidationError):
            webhooks.create_endpoint(operator=operator, url=url)
    assert webhooks.create_endpoint(operator=operator, url=URL).url == URL


def test_endpoints_per_operator_are_bounded(operator, other_operator, monkeypatch):
    monkeypatch.setattr(webhooks, "MAX_ENDPOINTS_PER_OPERATOR", 2)
    webhooks.create_endpoint(operator=operator, url=URL)
    webhooks.create_endpoint(operator=operator, url=URL)

    with pytest.raises(ValidationError):
        webhooks.create_endpoint(operator=operator, url=URL)
    webhooks.create_endpoint(operator=other_operator, url=URL)


def test_update_an_endpoint(operator):
    endpoint = webhooks.create_endpoint(operator=operator, url=URL, event_types=["fault"])
    secret = endpoint.secret

    webhooks.update_endpoint(endpoint=endpoint, url="https://new.example.com/in", event_types=[])

    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.event_types, endpoint.secret) == ("https://new.example.com/in", [], secret)


def test_update_validates_and_refuses_other_fields(operator):
    endpoint = webhooks.create_endpoint(operator=operator, url=URL)

    with pytest.raises(ValidationError):
        webhooks.update_endpoint(endpoint=endpoint, url="ftp://x.example.com/")
    with pytest.raises(ValidationError):
        webhooks.update_endpoint(endpoint=endpoint, secret="mine")
    with pytest.raises(ValidationError):
        webhooks.update_endpoint(endpoint=endpoint, is_active=False)

    endpoint.refresh_from_db()
    assert endpoint.url == URL and endpoint.is_active


def test_disable_and_enable(operator):
    endpoint = webhooks.create_endpoint(operator=operator, url=URL)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=7)
    endpoint.refresh_from_db()

    webhooks.disable_endpoint(endpoint=endpoint, reason="  Too many failures  ")
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert endpoint.disabled_at is not None and endpoint.disabled_reason == "Too many failures"

    webhooks.enable_endpoint(endpoint=endpoint)
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.consecutive_failures == 0
    assert endpoint.disabled_at is None and endpoint.disabled_reason == ""


def test_a_long_reason_is_cut_to_fit(operator):
    endpoint = webhooks.create_endpoint(operator=operator, url=URL)

    webhooks.disable_endpoint(endpoint=endpoint, reason="x" * 1000)

    endpoint.refresh_from_db()
    assert len(endpoint.disabled_reason) == 300


def test_rotate_secret(operator):
    endpoint = webhooks.create_endpoint(operator=operator, url=URL)
    old = endpoint.secret

    new = webhooks.rotate_secret(endpoint=endpoint)

    endpoint.refresh_from_db()
    assert new == endpoint.secret != old
    assert len(new) == 64


def test_delete(operator):
    endpoint = webhooks.create_endpoint(operator=operator, url=URL)

    webhooks.delete_endpoint(endpoint=endpoint)

    assert not WebhookEndpoint.objects.exists()


def test_test_endpoint_sends_through_the_delivery_engine(operator, monkeypatch):
    endpoint = webhooks.create_endpoint(operator=operator, url=URL)
    sent = []

    def fake_send(to):
        sent.append(to)
        return True, "HTTP 200"

    monkeypatch.setattr("alerts.delivery.test_send", fake_send)

    assert webhooks.test_endpoint(endpoint=endpoint) == (True, "HTTP 200")
    assert sent == [endpoint]
