"""MeterValues of many chargers stored in one statement (the OCPP writer's group commit)."""

import datetime as dt
from decimal import Decimal

import pytest

from config import events
from sessions.models import MeterSample
from sessions.services import meter_values_deferred, meter_values_record, transaction_start
from tests.factories import ChargePointFactory, ConnectorFactory, IdTokenFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def at(minutes, energy_wh=None, power_w=None, voltage=None):
    sampled = []
    if energy_wh is not None:
        sampled.append({"value": str(energy_wh)})
    if power_w is not None:
        sampled.append({"value": str(power_w), "measurand": "Power.Active.Import", "unit": "W"})
    if voltage is not None:
        sampled.append({"value": str(voltage), "measurand": "Voltage", "unit": "V", "phase": "L1-N"})
    return {"timestamp": (T0 + dt.timedelta(minutes=minutes)).isoformat(), "sampledValue": sampled}


@pytest.fixture
def chargers(site):
    IdTokenFactory(token="BATCHTAG")
    found = []
    for n in range(3):
        cp = ChargePointFactory(site=site, identity=f"BATCH-{n}")
        ConnectorFactory(charge_point=cp, connector_id=1)
        tx, _ = transaction_start(
            charge_point=cp, connector_id=1, id_tag="BATCHTAG", meter_start=1000, timestamp=T0
        )
        found.append((cp, tx))
    return found


def record(cp, tx_id, *meter_values, announce=False):
    return meter_values_record(
        charge_point=cp,
        connector_id=1,
        transaction_id=tx_id,
        meter_values=list(meter_values),
        announce=announce,
    )


def test_many_chargers_messages_are_one_statement(chargers, django_assert_num_queries):
    with django_assert_num_queries(1), meter_values_deferred():
        for n, (cp, tx) in enumerate(chargers):
            record(cp, tx.pk, at(5, energy_wh=2000 + n, power_w=7000 + n, voltage=230))
            record(cp, tx.pk, at(6, energy_wh=2100 + n, power_w=7100 + n))

    assert MeterSample.objects.count() == 3 * 5
    for n, (cp, tx) in enumerate(chargers):
        assert set(MeterSample.objects.filter(charge_point=cp).values_list("transaction", flat=True)) == {
            tx.pk
        }
        tx.refresh_from_db()
        assert (tx.last_meter_wh, tx.last_power_w) == (2100 + n, 7100 + n)
        assert tx.last_meter_at == T0 + dt.timedelta(minutes=6)


def test_re_sent_and_late_samples_change_nothing_that_is_newer(chargers):
    cp, tx = chargers[0]
    with meter_values_deferred():
        record(cp, tx.pk, at(10, energy_wh=5000, power_w=7000))
    with meter_values_deferred():
        record(cp, tx.pk, at(10, energy_wh=5000, power_w=7000))  # re-sent after a reconnect
        record(cp, tx.pk, at(8, energy_wh=4000, power_w=6000))  # delivered late

    assert MeterSample.objects.count() == 4
    tx.refresh_from_db()
    assert (tx.last_meter_wh, tx.last_power_w) == (5000, 7000)
    assert tx.last_meter_at == T0 + dt.timedelta(minutes=10)


def test_unknown_or_foreign_transactions_are_not_linked(chargers):
    (cp, tx), (other_cp, _other_tx) = chargers[0], chargers[1]
    with meter_values_deferred():
        record(other_cp, tx.pk, at(5, energy_wh=9999))  # another charger's transaction
        record(cp, 987654, at(5, energy_wh=9999))  # no such transaction
        record(cp, None, at(5, voltage=231))

    assert list(MeterSample.objects.values_list("transaction", flat=True)) == [None, None, None]
    tx.refresh_from_db()
    assert (tx.last_meter_wh, tx.last_meter_at) == (1000, T0)  # as the start left them


def test_a_message_without_energy_or_power_is_linked_and_moves_nothing(chargers):
    cp, tx = chargers[0]
    with meter_values_deferred():
        record(cp, tx.pk, at(5, voltage=229))

    assert MeterSample.objects.get().transaction_id == tx.pk
    tx.refresh_from_db()
    assert (tx.last_meter_wh, tx.last_meter_at) == (1000, T0)


def test_nothing_queued_is_stored_when_the_block_fails(chargers):
    cp, tx = chargers[0]
    with pytest.raises(RuntimeError), meter_values_deferred():
        record(cp, tx.pk, at(5, energy_wh=2000))
        raise RuntimeError("a later frame of the batch failed")

    assert not MeterSample.objects.exists()
    with meter_values_deferred():  # and the next block starts empty
        pass
    assert not MeterSample.objects.exists()


def test_announced_messages_carry_the_running_figures(chargers, django_capture_on_commit_callbacks):
    (cp, tx), (quiet_cp, quiet_tx) = chargers[0], chargers[1]
    heard = []
    subscriber = events.subscribe("meter_values.recorded")(lambda **data: heard.append(data))
    try:
        with django_capture_on_commit_callbacks(execute=True), meter_values_deferred():
            record(cp, tx.pk, at(5, energy_wh=3500, power_w=7400), announce=True)
            record(quiet_cp, quiet_tx.pk, at(5, energy_wh=3500), announce=False)
    finally:
        events._subscribers["meter_values.recorded"].remove(subscriber)

    assert len(heard) == 1
    event = heard[0]
    assert (event["charge_point_id"], event["transaction_id"], event["connector_id"]) == (cp.pk, tx.pk, 1)
    assert event["figures"] == {
        "meter_start": 1000,
        "last_meter_at": T0 + dt.timedelta(minutes=5),
        "last_meter_wh": Decimal("3500.000"),
        "last_power_w": Decimal("7400.000"),
    }
