"""The Django admin of alerts: every model's pages load, the logs are read-only, and a webhook
endpoint's secret never appears."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from alerts.models import (
    Alert,
    AlertProfile,
    Channel,
    Delivery,
    DeliveryStatus,
    MaintenanceWindow,
    Notification,
    Outage,
    Preference,
    PushSubscription,
    WebhookEndpoint,
)

pytestmark = pytest.mark.django_db

MODELS = [
    AlertProfile,
    Preference,
    Alert,
    Notification,
    Delivery,
    WebhookEndpoint,
    PushSubscription,
    MaintenanceWindow,
    Outage,
]


@pytest.fixture
def everything(driver, operator, charge_point):
    """One row of every alerts model."""
    now = timezone.now()
    profile = AlertProfile.objects.create(user=driver)
    profile.favourites.add(charge_point)
    Preference.objects.create(user=driver, event_type="session_started", channel="email", enabled=True)
    alert = Alert.objects.create(
        event_type="station_out_of_service",
        dedup_key="admin-test",
        title="VW-0001 is out of service",
        operator=operator,
        charge_point=charge_point,
    )
    notification = Notification.objects.create(
        alert=alert, user=driver, event_type=alert.event_type, title=alert.title
    )
    endpoint = WebhookEndpoint.objects.create(operator=operator, url="https://hooks.example.com/in")
    delivery = Delivery.objects.create(
        alert=alert,
        notification=notification,
        operator=operator,
        user=driver,
        channel=Channel.EMAIL,
        target=driver.email,
        status=DeliveryStatus.FAILED,
        attempts=3,
        last_error="SMTP 451",
    )
    Delivery.objects.create(alert=alert, endpoint=endpoint, operator=operator, channel=Channel.WEBHOOK)
    PushSubscription.objects.create(user=driver, kind="web", endpoint="https://push.example.com/" + "x" * 100)
    MaintenanceWindow.objects.create(
        operator=operator, charge_point=charge_point, starts_at=now, ends_at=now + dt.timedelta(hours=2)
    )
    Outage.objects.create(charge_point=charge_point, cause="faulted", opened_at=now, confirm_at=now)
    return {"endpoint": endpoint, "delivery": delivery, "notification": notification}


def _url(model, view, *args):
    return reverse(f"admin:alerts_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_pages_load(admin_client, everything, model):
    response = admin_client.get(_url(model, "changelist"))
    assert response.status_code == 200

    obj = model.objects.first()
    assert admin_client.get(_url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_search_works(admin_client, everything, model):
    assert admin_client.get(_url(model, "changelist"), {"q": "VW"}).status_code == 200


@pytest.mark.parametrize("model", [Alert, Notification, Delivery])
def test_logs_cannot_be_added_or_changed(admin_client, everything, model):
    obj = model.objects.first()

    assert admin_client.get(_url(model, "add")).status_code == 403
    response = admin_client.post(_url(model, "change", obj.pk), {})
    assert response.status_code == 403


def test_the_webhook_secret_is_never_shown(admin_client, everything):
    endpoint = everything["endpoint"]

    for url in (_url(WebhookEndpoint, "changelist"), _url(WebhookEndpoint, "change", endpoint.pk)):
        assert endpoint.secret not in admin_client.get(url).content.decode()


def test_disable_and_enable_endpoints(admin_client, everything):
    endpoint = everything["endpoint"]
    changelist = _url(WebhookEndpoint, "changelist")

    admin_client.post(changelist, {"action": "disable", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "admin" in endpoint.disabled_reason

    admin_client.post(changelist, {"action": "enable", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.disabled_at is None


def test_rotate_secret_action(admin_client, everything):
    endpoint = everything["endpoint"]
    old = endpoint.secret

    response = admin_client.post(
        _url(WebhookEndpoint, "changelist"),
        {"action": "rotate", "_selected_action": [endpoint.pk]},
        follow=True,
    )

    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert endpoint.secret not in response.content.decode()


def test_mark_notifications_read_action(admin_client, everything):
    notification = everything["notification"]

    admin_client.post(
        _url(Notification, "changelist"), {"action": "mark_read", "_selected_action": [notification.pk]}
    )

    notification.refresh_from_db()
    assert notification.read_at is not None


def test_retry_action_puts_failed_deliveries_back_in_line(admin_client, everything, monkeypatch):
    queued = []
    monkeypatch.setattr("alerts.tasks.deliver.delay", lambda ids: queued.append(ids))
    failed = everything["delivery"]
    other = Delivery.objects.exclude(pk=failed.pk).get()

    admin_client.post(
        _url(Delivery, "changelist"), {"action": "retry", "_selected_action": [failed.pk, other.pk]}
    )

    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.PENDING
    assert queued == [[failed.pk]]


def test_adding_an_endpoint_follows_the_service_rules(admin_client, operator):
    add = _url(WebhookEndpoint, "add")
    form = {"operator": operator.pk, "url": "https://me:pw@hooks.example.com/in", "event_types": "[]"}

    response = admin_client.post(add, form)
    assert response.status_code == 200  # the form again, with the error
    assert not WebhookEndpoint.objects.exists()

    response = admin_client.post(add, {**form, "event_types": '["session_started"]'})
    assert not WebhookEndpoint.objects.exists()

    response = admin_client.post(
        add, {**form, "url": "https://hooks.example.com/in", "event_types": '["fault"]'}
    )
    assert response.status_code == 302
    assert WebhookEndpoint.objects.get().event_types == ["fault"]
