"""Pricing stored sessions: once, from their meter samples and the site's time zone, with an
event after commit; a live estimate of a running session; the hand-off when a session stops."""

import datetime as dt
import threading
from decimal import Decimal as D

import pytest
from django.db import connection

from billing.models import ChargeLine, SessionCharge, TariffAssignment
from billing.services.charges import estimate, price_session
from billing.subscribers import on_session_stopped, register
from config.celery import app as celery_app
from config.events import publish, subscribe
from sessions.models import TransactionStatus
from tests.billing.test_pricing import comp, make_tariff
from tests.sessions.factories import MeterSampleFactory, TransactionFactory

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 6, 3, 5, 0, tzinfo=dt.UTC)  # 07:00 in Amsterdam (the site's zone)
PRICED_EVENTS: list[dict] = []


@subscribe("billing.session_priced")
def _record_priced(**data):
    PRICED_EVENTS.append(data)


@pytest.fixture
def tariff(operator, charge_point):
    peak = {"start_time": dt.time(8), "end_time": dt.time(20), "components": [comp("ENERGY", "0.50")]}
    base = {"components": [comp("ENERGY", "0.30"), comp("FLAT", "1.00"), comp("PARKING_TIME", "6.00")]}
    tariff = make_tariff(operator, [peak, base], name="City", tax_rate=D("21"))
    TariffAssignment.objects.create(tariff=tariff, operator=operator, charge_point=charge_point)
    return tariff


def stopped_session(charge_point, *, hours=3, meter_start=D("100000"), energy=D("20000")):
    return TransactionFactory(
        charge_point=charge_point,
        started_at=START,
        stopped_at=START + dt.timedelta(hours=hours),
        status=TransactionStatus.COMPLETED,
        meter_start=meter_start,
        meter_stop=meter_start + energy,
        energy_wh=energy,
        last_meter_wh=meter_start + energy,
    )


def sample(tx, minutes, *, energy=None, power=None):
    at = tx.started_at + dt.timedelta(minutes=minutes)
    if energy is not None:
        MeterSampleFactory(
            transaction=tx,
            timestamp=at,
            value=energy,
            energy_wh=energy,
            measurand="Energy.Active.Import.Register",
        )
    if power is not None:
        MeterSampleFactory(
            transaction=tx,
            timestamp=at,
            value=power,
            energy_wh=None,
            power_w=power,
            unit="W",
            measurand="Power.Active.Import",
        )


def test_a_session_is_priced_from_its_samples_in_the_site_time_zone(tariff, charge_point):
    tx = stopped_session(charge_point)
    # 15 kWh in the first hour (before 08:00 local), 5 kWh in the second, then parked for an hour.
    sample(tx, 60, energy=D("115000"), power=D("15000"))
    sample(tx, 120, energy=D("120000"), power=D("0"))
    sample(tx, 150, energy=D("120000"), power=D("0"))
    charge = price_session(tx)
    lines = list(charge.lines.values_list("kind", "quantity", "total"))
    assert lines == [
        ("energy", D("15.0000"), D("4.50")),
        ("energy", D("5.0000"), D("2.50")),
        ("parking", D("1.0000"), D("6.00")),  # the register stopped at 07:00 UTC, stopped at 08:00
        ("flat", D("1.0000"), D("1.00")),
    ]
    assert (charge.total, charge.currency, charge.energy_kwh, charge.tariff) == (
        D("14.00"),
        "EUR",
        D("20.000"),
        tariff,
    )
    assert charge.net + charge.tax == charge.total == sum(t for *_, t in lines)


def test_without_samples_energy_spreads_over_the_session(tariff, charge_point):
    charge = price_session(stopped_session(charge_point, hours=2))
    assert list(charge.lines.values_list("quantity", "total")) == [
        (D("10.0000"), D("3.00")),
        (D("10.0000"), D("5.00")),
        (D("1.0000"), D("1.00")),
    ]


def test_priced_once_and_announced_after_commit(
    tariff, charge_point, driver, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    tx = stopped_session(charge_point, hours=2)
    for minute in range(0, 120, 10):
        sample(tx, minute, energy=D("100000") + minute * 100, power=D("7000"))
    PRICED_EVENTS.clear()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, django_assert_max_num_queries(10):
        charge = price_session(tx)
    assert callbacks  # the event waits for the commit
    assert [
        {
            "transaction_id": tx.pk,
            "operator_id": charge_point.operator_id,
            "driver_id": tx.driver_id,
            "total": str(charge.total),
            "currency": "EUR",
        }
    ] == PRICED_EVENTS
    with django_capture_on_commit_callbacks(execute=True) as callbacks, django_assert_max_num_queries(1):
        again = price_session(tx)
    assert again == charge and len(PRICED_EVENTS) == 1
    assert SessionCharge.objects.count() == 1
    assert ChargeLine.objects.filter(charge=charge).count() == len(charge.lines.all())


def test_no_tariff_no_charge(charge_point):
    assert price_session(stopped_session(charge_point)) is None
    assert not SessionCharge.objects.exists()


def test_a_running_session_is_estimated_not_stored(tariff, charge_point):
    tx = TransactionFactory(
        charge_point=charge_point,
        started_at=START,
        meter_start=D("50000"),
        last_meter_wh=D("56000"),
        last_meter_at=START + dt.timedelta(minutes=30),
    )
    with pytest.raises(ValueError, match="still running"):
        price_session(tx)
    priced = estimate(tx, now=START + dt.timedelta(minutes=30))
    assert [(line.kind, line.quantity, line.total) for line in priced.lines] == [
        ("energy", D("6.0000"), D("1.80")),
        ("flat", D("1.0000"), D("1.00")),
    ]
    assert priced.total == D("2.80") and not SessionCharge.objects.exists()


def test_a_meter_that_went_backwards_is_not_priced_for_energy(tariff, charge_point):
    charge = price_session(stopped_session(charge_point, energy=D("-500")))
    assert list(charge.lines.values_list("kind", flat=True)) == ["flat"]


def test_a_stopped_session_is_handed_to_settlement(
    operator, charge_point, monkeypatch, django_capture_on_commit_callbacks
):
    free = make_tariff(operator, [{"components": [comp("ENERGY", "0")]}], name="Free")
    TariffAssignment.objects.create(tariff=free, operator=operator)
    tx = stopped_session(charge_point)
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    register()
    register()  # twice subscribes once
    with django_capture_on_commit_callbacks(execute=True):
        publish(
            "session.stopped", transaction_id=tx.pk, charge_point_id=charge_point.pk, operator_id=operator.pk
        )
    charge = SessionCharge.objects.get(transaction=tx)
    assert charge.total == D("0.00")
    on_session_stopped(transaction_id=tx.pk)  # the same news twice changes nothing
    assert SessionCharge.objects.filter(transaction=tx).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_pricing_one_session_store_one_charge(tariff, charge_point):
    tx = stopped_session(charge_point)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def work():
        try:
            barrier.wait()
            results.append(price_session(tx).pk)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(results)) == 1 and SessionCharge.objects.filter(transaction=tx).count() == 1


def test_absolute_registers_with_a_zero_meter_start_still_shape_the_energy(tariff, charge_point):
    tx = stopped_session(charge_point, hours=2, meter_start=D("0"))
    sample(tx, 0, energy=D("500000"))
    sample(tx, 60, energy=D("515000"))
    sample(tx, 120, energy=D("520000"))
    charge = price_session(tx)
    assert list(charge.lines.values_list("kind", "quantity")) == [
        ("energy", D("15.0000")),
        ("energy", D("5.0000")),
        ("flat", D("1.0000")),
    ]
