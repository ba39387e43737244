"""Who hears what: domain events through alerts' rules to alerts, notifications and
deliveries (stored; sending is the delivery engine's and tested apart)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts import rules, sweep
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
from alerts.services import maintenance
from alerts.services.notify import raise_alert
from stations.models import ConnectorStatus
from tests.factories import ChargePointFactory, ConnectorFactory, DriverFactory, SiteFactory
from tests.sessions.factories import IdTokenFactory, TransactionFactory

pytestmark = pytest.mark.django_db


def _fault(cp, connector=1, at=None):
    rules.handle(
        "connector.faulted",
        {
            "charge_point_id": cp.pk,
            "operator_id": cp.operator_id,
            "connector_id": connector,
            "error_code": "GroundFailure",
            "at": (at or timezone.now()).isoformat(),
        },
    )


def _recover(cp, connector=1, at=None):
    rules.handle(
        "connector.recovered",
        {
            "charge_point_id": cp.pk,
            "operator_id": cp.operator_id,
            "connector_id": connector,
            "status": "Available",
            "at": (at or timezone.now()).isoformat(),
        },
    )


def _driver_of(cp, **tx):
    driver = DriverFactory()
    token = IdTokenFactory(driver=driver)
    TransactionFactory(charge_point=cp, id_token=token, **tx)
    return driver


@pytest.fixture
def nearby(site, operator):
    """A second public station 1 km away with a free Type 2 connector on a connected charger."""
    other = SiteFactory(
        operator=operator,
        name="Market Square",
        latitude=site.latitude + Decimal("0.009"),
        longitude=site.longitude,
    )
    cp = ChargePointFactory(site=other, identity="VW-0100")
    ConnectorFactory(charge_point=cp, connector_id=1, status=ConnectorStatus.AVAILABLE)
    return cp


def test_a_fault_mid_session_tells_its_driver_it_was_interrupted_with_the_nearest_alternative(
    charge_point, nearby
):
    driver = _driver_of(charge_point)
    PushSubscription.objects.create(
        user=driver, kind="web", endpoint="https://push.example/1", p256dh="k", auth="a"
    )
    PushSubscription.objects.create(user=driver, kind="mobile", endpoint="device-token", platform="android")
    _fault(charge_point)
    n = Notification.objects.get(user=driver)
    assert n.event_type == "session_interrupted"
    assert "interrupted" in n.title
    assert "Market Square" in n.body and "1.0 km" in n.body
    assert n.all_data["alternatives"][0]["name"] == "Market Square"
    channels = set(Delivery.objects.filter(notification=n).values_list("channel", flat=True))
    assert channels == {Channel.INAPP, Channel.EMAIL, Channel.PUSH, Channel.MOBILE}


def test_push_and_sms_go_only_where_there_is_somewhere_to_send_them(charge_point):
    driver = _driver_of(charge_point)  # no browser subscribed, no app, no phone number
    _fault(charge_point)
    channels = set(Delivery.objects.filter(user=driver).values_list("channel", flat=True))
    assert channels == {Channel.INAPP, Channel.EMAIL}


def test_a_session_the_charger_ended_itself_as_it_faulted_counts_as_interrupted(charge_point):
    now = timezone.now()
    driver = _driver_of(
        charge_point, status="Completed", stopped_at=now - dt.timedelta(seconds=5), stop_reason="PowerLoss"
    )
    calm = _driver_of(
        charge_point, connector_number=2, status="Completed", stopped_at=now, stop_reason="Local"
    )
    _fault(charge_point, connector=0, at=now)
    assert Notification.objects.get(user=driver).event_type == "session_interrupted"
    assert not Notification.objects.filter(user=calm, event_type="session_interrupted").exists()


def test_drivers_who_use_a_station_hear_it_is_out_of_service_and_back_once_despite_flaps(
    charge_point, settings
):
    fan = DriverFactory()
    AlertProfile.objects.create(user=fan).favourites.add(charge_point)
    regular = _driver_of(charge_point, stopped=True)
    neighbour = DriverFactory()
    AlertProfile.objects.create(
        user=neighbour,
        home_latitude=charge_point.site.latitude,
        home_longitude=charge_point.site.longitude,
        radius_km=Decimal("5"),
    )
    far = DriverFactory()
    AlertProfile.objects.create(user=far, home_latitude=Decimal("40"), home_longitude=Decimal("3"))

    t0 = timezone.now()
    _fault(charge_point, at=t0)
    _recover(charge_point, at=t0 + dt.timedelta(seconds=20))
    _fault(charge_point, at=t0 + dt.timedelta(seconds=40))
    _recover(charge_point, at=t0 + dt.timedelta(seconds=60))

    out = Alert.objects.get(event_type="station_out_of_service")
    told = set(out.notifications.values_list("user_id", flat=True))
    assert told == {fan.pk, regular.pk, neighbour.pk}
    assert Outage.objects.count() == 1

    # Not back yet: it must stay back for ALERTS_BACK_AFTER_SECONDS.
    sweep.run(now=t0 + dt.timedelta(seconds=120))
    assert not Alert.objects.filter(event_type="station_back_in_service").exists()
    sweep.run(now=t0 + dt.timedelta(seconds=60 + settings.ALERTS_BACK_AFTER_SECONDS + 1))
    back = Alert.objects.get(event_type="station_back_in_service")
    assert set(back.notifications.values_list("user_id", flat=True)) == told
    sweep.run(now=t0 + dt.timedelta(hours=2))
    assert Alert.objects.filter(event_type="station_back_in_service").count() == 1


def test_an_offline_blip_tells_nobody_but_a_lasting_one_does(charge_point, settings):
    driver = _driver_of(charge_point)
    t0 = timezone.now()
    charge_point.is_connected = False
    charge_point.save()
    rules.handle(
        "charge_point.offline", {"charge_point_id": charge_point.pk, "operator_id": 1, "at": t0.isoformat()}
    )
    assert not Notification.objects.exists()
    charge_point.is_connected = True
    charge_point.save()
    rules.handle(
        "charge_point.online", {"charge_point_id": charge_point.pk, "operator_id": 1, "at": t0.isoformat()}
    )
    sweep.run(now=t0 + dt.timedelta(seconds=settings.ALERTS_OFFLINE_GRACE_SECONDS + 1))
    assert not Notification.objects.exists()

    charge_point.is_connected = False
    charge_point.save()
    rules.handle(
        "charge_point.offline", {"charge_point_id": charge_point.pk, "operator_id": 1, "at": t0.isoformat()}
    )
    sweep.run(now=t0 + dt.timedelta(seconds=settings.ALERTS_OFFLINE_GRACE_SECONDS + 1))
    n = Notification.objects.get(user=driver)
    assert n.event_type == "session_interrupted"
    assert "lost its connection" in n.body


def test_interruption_carries_the_end_of_maintenance_under_way_as_eta(charge_point, operator):
    driver = _driver_of(charge_point)
    now = timezone.now()
    window = maintenance.create_window(
        operator=operator,
        charge_point=charge_point,
        starts_at=now - dt.timedelta(minutes=5),
        ends_at=now + dt.timedelta(hours=2),
        reason="Replacing the cable",
    )
    maintenance.publish_window(window=window)
    rules.handle(
        "connector.status_changed",
        {
            "charge_point_id": charge_point.pk,
            "operator_id": operator.pk,
            "connector_id": 1,
            "status": "Unavailable",
            "previous_status": "Charging",
            "at": now.isoformat(),
        },
    )
    n = Notification.objects.get(user=driver, event_type="session_interrupted")
    assert n.alert.eta == window.ends_at
    assert "expected back around" in n.body


def test_interruption_eta_comes_from_an_open_incident(charge_point, operator):
    from diagnostics.models import Incident

    driver = _driver_of(charge_point)
    back = timezone.now() + dt.timedelta(hours=3)
    Incident.objects.create(
        operator=operator,
        charge_point=charge_point,
        kind="faulted",
        key="x",
        title="Faulted",
        opened_at=timezone.now(),
        last_seen_at=timezone.now(),
        expected_back_at=back,
    )
    _fault(charge_point)
    assert Notification.objects.get(user=driver).alert.eta == back


def test_maintenance_published_tells_affected_drivers_once_and_cancel_tells_them_again(
    charge_point, operator
):
    fan = DriverFactory()
    AlertProfile.objects.create(user=fan).favourites.add(charge_point)
    now = timezone.now()
    window = maintenance.create_window(
        operator=operator,
        site=charge_point.site,
        starts_at=now + dt.timedelta(days=1),
        ends_at=now + dt.timedelta(days=1, hours=4),
    )
    assert maintenance.publish_window(window=window) == 1
    assert maintenance.publish_window(window=window) == 0
    n = Notification.objects.get(user=fan)
    assert n.event_type == "maintenance_planned" and "Central Station" in n.title
    maintenance.cancel_window(window=window)
    assert Notification.objects.filter(user=fan, title__contains="cancelled").count() == 1
    assert MaintenanceWindow.objects.get().cancelled_at is not None


def test_a_window_of_another_operator_or_backwards_is_refused(charge_point, other_operator, operator):
    from django.core.exceptions import ValidationError

    now = timezone.now()
    with pytest.raises(ValidationError):
        maintenance.create_window(
            operator=other_operator,
            charge_point=charge_point,
            starts_at=now,
            ends_at=now + dt.timedelta(hours=1),
        )
    with pytest.raises(ValidationError):
        maintenance.create_window(
            operator=operator, charge_point=charge_point, starts_at=now, ends_at=now - dt.timedelta(hours=1)
        )


def test_session_started_and_finished_tell_the_driver(charge_point):
    driver = DriverFactory()
    tx = TransactionFactory(charge_point=charge_point, id_token=IdTokenFactory(driver=driver), stopped=True)
    data = {"transaction_id": tx.pk, "charge_point_id": charge_point.pk, "driver_id": driver.pk}
    rules.handle("session.started", data)
    rules.handle("session.stopped", data)
    rules.handle("session.stopped", data)  # the charger re-sent its StopTransaction
    finished = Notification.objects.get(user=driver, event_type="session_finished")
    assert "7.40 kWh" in finished.title
    assert finished.all_data["duration_minutes"] == 60
    assert Notification.objects.filter(user=driver).count() == 2


def test_a_car_done_charging_but_still_plugged_in_gets_one_idle_warning(charge_point, settings):
    driver = _driver_of(charge_point)
    c = charge_point.connectors.get(connector_id=1)
    c.status = ConnectorStatus.SUSPENDED_EV
    c.status_updated_at = timezone.now() - dt.timedelta(minutes=settings.ALERTS_IDLE_WARNING_MINUTES + 1)
    c.save()
    assert sweep.run().idle_warnings == 1
    assert sweep.run().idle_warnings == 0
    assert Notification.objects.get(user=driver).event_type == "idle_fee_warning"


def test_a_reservation_about_to_expire_is_reminded_once(charge_point):
    from sessions.models import Reservation, ReservationStatus

    driver = DriverFactory()
    token = IdTokenFactory(driver=driver)
    Reservation.objects.create(
        charge_point=charge_point,
        connector_number=1,
        id_token=token,
        id_tag=token.token,
        expires_at=timezone.now() + dt.timedelta(minutes=5),
        status=ReservationStatus.ACCEPTED,
    )
    assert sweep.run().reservation_reminders == 1
    assert sweep.run().reservation_reminders == 0
    assert "ends in 5 minutes" in Notification.objects.get(user=driver).title


def test_operator_staff_hear_incidents_and_the_assignee_hears_of_a_ticket(
    charge_point, operator_admin, technician
):
    from diagnostics.models import Ticket

    base = {
        "incident_id": 7,
        "operator_id": charge_point.operator_id,
        "charge_point_id": charge_point.pk,
        "kind": "faulted",
        "cause": "hardware",
        "title": "VW-0001 connector 1 faulted",
        "severity": "major",
    }
    rules.handle("diagnostics.incident_opened", {**base, "summary": "GroundFailure"})
    rules.handle("diagnostics.incident_opened", {**base, "summary": "GroundFailure"})
    alert = Alert.objects.get(event_type="fault")
    assert set(alert.notifications.values_list("user_id", flat=True)) == {operator_admin.pk, technician.pk}
    ticket = Ticket.objects.create(
        operator=charge_point.operator, charge_point=charge_point, title="Swap cable"
    )
    rules.handle(
        "diagnostics.ticket_assigned",
        {
            "ticket_id": ticket.pk,
            "operator_id": ticket.operator_id,
            "assignee_id": technician.pk,
            "charge_point_id": charge_point.pk,
        },
    )
    assert Notification.objects.get(event_type="ticket_assigned").user == technician


def test_preferences_quiet_hours_and_webhooks_shape_the_deliveries(
    charge_point, driver, other_driver, operator
):
    Preference.objects.create(
        user=driver, event_type="session_interrupted", channel=Channel.EMAIL, enabled=False
    )
    now = timezone.now()
    AlertProfile.objects.create(
        user=other_driver,
        quiet_hours_start=(now - dt.timedelta(hours=1)).time(),
        quiet_hours_end=(now + dt.timedelta(hours=1)).time(),
        time_zone="UTC",
    )
    for user in (driver, other_driver):
        PushSubscription.objects.create(user=user, kind="web", endpoint=f"https://push.example/{user.pk}")
    hook = WebhookEndpoint.objects.create(operator=operator, url="https://example.invalid/hook")
    WebhookEndpoint.objects.create(
        operator=operator, url="https://example.invalid/other", event_types=["fault"]
    )
    alert = raise_alert(
        event_type="session_interrupted",
        dedup_key="k1",
        title="t",
        recipients=[driver.pk, other_driver.pk],
        operator_id=operator.pk,
        now=now,
    )
    mine = {d.channel: d for d in Delivery.objects.filter(user=driver)}
    assert Channel.EMAIL not in mine and Channel.PUSH in mine
    theirs = {d.channel: d for d in Delivery.objects.filter(user=other_driver)}
    assert theirs[Channel.PUSH].status == DeliveryStatus.HELD
    assert theirs[Channel.PUSH].next_attempt_at.replace(second=0, microsecond=0) == (
        now + dt.timedelta(hours=1)
    ).replace(second=0, microsecond=0)
    assert theirs[Channel.EMAIL].status == DeliveryStatus.PENDING
    assert list(Delivery.objects.filter(channel=Channel.WEBHOOK).values_list("endpoint", flat=True)) == [
        hook.pk
    ]
    assert (
        raise_alert(event_type="session_interrupted", dedup_key="k1", title="t", recipients=[driver.pk])
        is None
    )
    assert alert.notifications.count() == 2


def test_an_operator_over_the_hourly_limit_gets_the_rest_in_a_digest(operator_admin):
    AlertProfile.objects.create(user=operator_admin, max_per_hour=2)
    for i in range(4):
        raise_alert(event_type="fault", dedup_key=f"f{i}", title=f"fault {i}", recipients=[operator_admin.pk])
    statuses = list(
        Delivery.objects.filter(channel=Channel.EMAIL).order_by("pk").values_list("status", flat=True)
    )
    assert statuses == ["pending", "pending", "digest", "digest"]


def test_fan_out_to_many_drivers_is_a_fixed_number_of_queries(charge_point, django_assert_max_num_queries):
    drivers = [DriverFactory() for _ in range(30)]
    for d in drivers:
        AlertProfile.objects.create(user=d).favourites.add(charge_point)
    with django_assert_max_num_queries(40):
        _fault(charge_point)
    assert Notification.objects.filter(event_type="station_out_of_service").count() == 30


def test_a_priced_session_is_told_finished_with_its_cost_once_billing_priced_it(charge_point):
    from billing.models import ComponentType, PriceComponent, Tariff, TariffAssignment, TariffElement

    tariff = Tariff.objects.create(operator=charge_point.operator, name="Standard", tax_rate=Decimal("21"))
    element = TariffElement.objects.create(tariff=tariff)
    PriceComponent.objects.create(element=element, type=ComponentType.ENERGY, price=Decimal("0.35"))
    TariffAssignment.objects.create(tariff=tariff, operator=charge_point.operator)
    driver = DriverFactory()
    tx = TransactionFactory(charge_point=charge_point, id_token=IdTokenFactory(driver=driver), stopped=True)
    data = {"transaction_id": tx.pk, "charge_point_id": charge_point.pk, "driver_id": driver.pk}
    rules.handle("session.stopped", data)
    assert not Notification.objects.filter(user=driver).exists()  # billing will tell, with the cost
    rules.handle("billing.session_priced", {**data, "total": "2.59", "currency": "EUR"})
    finished = Notification.objects.get(user=driver, event_type="session_finished")
    assert "2.59 EUR" in finished.body
    assert finished.all_data["cost"] == {"amount": "2.59", "currency": "EUR"}
