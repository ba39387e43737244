"""MeterValues: every sampled value stored once, as the charger sent it."""

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError

from sessions.models import MeterSample, Transaction
from sessions.services import meter_values_record, transaction_start, transaction_stop
from tests.factories import IdTokenFactory
from tests.sessions.factories import TransactionFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
POSTGRES = settings.USING_POSTGRES
SIGNED = (
    'OCMF|{"FV":"1.0","GI":"KEBA_KCP30","GS":"17619300","PG":"T1","RD":[{"TM":'
    '"2026-03-01T08:15:00,000+0000 S","TX":"B","RV":0.21,"RI":"1-b:1.8.0","RU":"kWh"}]}'
    '|{"SA":"ECDSA-secp256r1-SHA256","SD":"3045022100D3DB7B3B…"}'
)


@pytest.fixture
def tx(charge_point):
    IdTokenFactory(token="04A1B2C3D4")
    tx, _ = transaction_start(
        charge_point=charge_point, connector_id=1, id_tag="04A1B2C3D4", meter_start=1000, timestamp=T0
    )
    return tx


def record(charge_point, meter_values, *, transaction_id=None, connector_id=1):
    return meter_values_record(
        charge_point=charge_point,
        connector_id=connector_id,
        transaction_id=transaction_id,
        meter_values=meter_values,
    )


def at(minutes, *sampled_values):
    timestamp = (T0 + dt.timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    return {"timestamp": timestamp, "sampledValue": list(sampled_values)}


def test_a_bare_value_is_stored_with_the_spec_defaults(charge_point, tx):
    assert record(charge_point, [at(15, {"value": "4321"})], transaction_id=tx.pk) == 1

    sample = MeterSample.objects.get()
    assert sample.charge_point == charge_point
    assert sample.connector_number == 1
    assert sample.transaction == tx
    assert sample.timestamp == T0 + dt.timedelta(minutes=15)
    assert sample.measurand == "Energy.Active.Import.Register"
    assert sample.unit == "Wh"
    assert sample.context == "Sample.Periodic"
    assert sample.format == "Raw"
    assert sample.location == "Outlet"
    assert sample.phase == ""
    assert sample.value_raw == "4321"
    assert sample.value == 4321
    assert sample.energy_wh == 4321
    assert sample.power_w is None


def test_every_sampled_value_is_a_row_with_its_fields(charge_point, tx):
    message = [
        at(
            15,
            {"value": "230.1", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
            {
                "value": "16.02",
                "measurand": "Current.Import",
                "phase": "L1",
                "unit": "A",
                "location": "Outlet",
            },
            {
                "value": "57",
                "measurand": "SoC",
                "unit": "Percent",
                "location": "EV",
                "context": "Sample.Clock",
            },
            {"value": "31.5", "measurand": "Temperature", "unit": "Celsius", "location": "Body"},
        )
    ]

    assert record(charge_point, message, transaction_id=tx.pk) == 4

    rows = MeterSample.objects.order_by("measurand").values_list(
        "measurand", "phase", "unit", "location", "context", "value"
    )
    assert list(rows) == [
        ("Current.Import", "L1", "A", "Outlet", "Sample.Periodic", Decimal("16.02")),
        ("SoC", "", "Percent", "EV", "Sample.Clock", Decimal("57")),
        ("Temperature", "", "Celsius", "Body", "Sample.Periodic", Decimal("31.5")),
        ("Voltage", "L1-N", "V", "Outlet", "Sample.Periodic", Decimal("230.1")),
    ]


def test_signed_data_is_kept_verbatim_without_a_number(charge_point, tx):
    record(charge_point, [at(15, {"value": SIGNED, "format": "SignedData", "context": "Transaction.End"})])

    sample = MeterSample.objects.get()
    assert sample.value_raw == SIGNED
    assert sample.format == "SignedData"
    assert (sample.value, sample.energy_wh) == (None, None)


@pytest.mark.parametrize("raw", ["abc", "NaN", "Infinity", "", "1e40"])
def test_a_value_that_is_no_usable_number_is_kept_raw(charge_point, raw):
    assert record(charge_point, [at(15, {"value": raw})]) == 1

    sample = MeterSample.objects.get()
    assert (sample.value_raw, sample.value, sample.energy_wh) == (raw, None, None)


def test_re_sent_meter_values_are_not_stored_again(charge_point, tx):
    message = [at(15, {"value": "4321"}, {"value": "7200", "measurand": "Power.Active.Import", "unit": "W"})]
    assert record(charge_point, message, transaction_id=tx.pk) == 2

    assert record(charge_point, message, transaction_id=tx.pk) == 0
    assert MeterSample.objects.count() == 2


def test_a_message_partly_seen_stores_only_the_new_samples(charge_point):
    record(charge_point, [at(15, {"value": "4321"})])

    assert record(charge_point, [at(15, {"value": "4321"}), at(16, {"value": "4400"})]) == 1
    assert MeterSample.objects.count() == 2


def test_a_sample_twice_in_one_message_is_stored_once(charge_point):
    assert record(charge_point, [at(15, {"value": "4321"}, {"value": "4321"})]) == 1


def test_same_reading_on_another_connector_or_phase_is_another_sample(charge_point):
    record(charge_point, [at(15, {"value": "10", "measurand": "Current.Import", "phase": "L1"})])

    assert record(charge_point, [at(15, {"value": "10", "measurand": "Current.Import", "phase": "L2"})]) == 1
    assert record(charge_point, [at(15, {"value": "4321"})], connector_id=2) == 1


@pytest.mark.parametrize("transaction_id", [999_999, 2**70])
def test_samples_of_an_unknown_transaction_are_stored_without_one(charge_point, transaction_id):
    assert record(charge_point, [at(15, {"value": "4321"})], transaction_id=transaction_id) == 1

    assert MeterSample.objects.get().transaction is None


def test_samples_naming_another_charge_points_transaction_are_not_linked_to_it(
    charge_point, other_charge_point
):
    theirs = TransactionFactory(charge_point=other_charge_point)

    record(charge_point, [at(15, {"value": "4321"})], transaction_id=theirs.pk)

    assert MeterSample.objects.get().transaction is None
    theirs.refresh_from_db()
    assert theirs.last_meter_wh == theirs.meter_start


def test_samples_without_a_transaction_id_on_connector_zero(charge_point):
    assert record(charge_point, [at(15, {"value": "123456", "context": "Sample.Clock"})], connector_id=0) == 1

    sample = MeterSample.objects.get()
    assert (sample.connector_number, sample.transaction, sample.context) == (0, None, "Sample.Clock")


def test_kwh_and_kw_are_normalised_to_wh_and_w(charge_point):
    record(
        charge_point,
        [
            at(
                15,
                {"value": "12.3456", "unit": "kWh"},
                {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
                {"value": "11", "measurand": "Power.Offered", "unit": "kW"},
                {"value": "3.5", "measurand": "Energy.Reactive.Import.Register", "unit": "kvarh"},
            )
        ],
    )

    rows = {s.measurand: s for s in MeterSample.objects.all()}
    energy = rows["Energy.Active.Import.Register"]
    assert (energy.value, energy.unit, energy.energy_wh) == (Decimal("12.3456"), "kWh", Decimal("12345.6"))
    assert rows["Power.Active.Import"].power_w == 7200
    assert rows["Power.Offered"].power_w == 11000
    reactive = rows["Energy.Reactive.Import.Register"]
    assert (reactive.value, reactive.energy_wh, reactive.power_w) == (Decimal("3.5"), None, None)


def test_the_transaction_follows_the_newest_energy_and_power(charge_point, tx):
    record(
        charge_point,
        [
            at(14, {"value": "2000"}, {"value": "7000", "measurand": "Power.Active.Import"}),
            at(
                15,
                {"value": "2.5", "unit": "kWh"},
                {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"},
            ),
        ],
        transaction_id=tx.pk,
    )

    tx.refresh_from_db()
    assert (tx.last_meter_wh, tx.last_power_w) == (2500, 7400)
    assert tx.last_meter_at == T0 + dt.timedelta(minutes=15)
    assert tx.energy_kwh == Decimal("1.5")


def test_older_samples_arriving_late_do_not_move_the_transaction_back(charge_point, tx):
    record(charge_point, [at(30, {"value": "5000"})], transaction_id=tx.pk)

    assert record(charge_point, [at(20, {"value": "4000"})], transaction_id=tx.pk) == 1

    tx.refresh_from_db()
    assert (tx.last_meter_wh, tx.last_meter_at) == (5000, T0 + dt.timedelta(minutes=30))


def test_per_phase_readings_add_up_when_there_is_no_total(charge_point, tx):
    power = "Power.Active.Import"
    record(
        charge_point,
        [
            at(
                15,
                {"value": "2400", "measurand": power, "phase": "L1", "unit": "W"},
                {"value": "2500", "measurand": power, "phase": "L2", "unit": "W"},
                {"value": "2.6", "measurand": power, "phase": "L3", "unit": "kW"},
                {"value": "3000", "location": "Inlet"},
                {"value": "3100", "location": "Outlet", "phase": "L1"},
                {"value": "3200", "location": "Outlet", "phase": "L2"},
            )
        ],
        transaction_id=tx.pk,
    )

    tx.refresh_from_db()
    assert (tx.last_power_w, tx.last_meter_wh) == (7500, 6300)


def test_samples_with_no_energy_or_power_leave_the_running_figures_alone(charge_point, tx):
    record(
        charge_point, [at(15, {"value": "57", "measurand": "SoC", "unit": "Percent"})], transaction_id=tx.pk
    )

    assert MeterSample.objects.get().transaction == tx
    tx.refresh_from_db()
    assert (tx.last_meter_wh, tx.last_power_w, tx.last_meter_at) == (1000, None, T0)


def test_a_meter_value_without_a_usable_timestamp_is_skipped(charge_point):
    message = [{"timestamp": "yesterday", "sampledValue": [{"value": "1"}]}, at(15, {"value": "2"})]

    assert record(charge_point, message) == 1
    assert MeterSample.objects.get().value_raw == "2"


def test_timestamps_keep_the_chargers_offset_and_precision(charge_point):
    message = [
        {"timestamp": "2026-03-01T09:15:00.123+01:00", "sampledValue": [{"value": "1"}]},
        {"timestamp": "2026-03-01T08:16:00", "sampledValue": [{"value": "2"}]},  # no offset: UTC
    ]

    record(charge_point, message)

    assert list(MeterSample.objects.order_by("timestamp").values_list("timestamp", flat=True)) == [
        dt.datetime(2026, 3, 1, 8, 15, 0, 123_000, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 1, 8, 16, tzinfo=dt.UTC),
    ]


def test_connector_id_beyond_32_bits_is_refused(charge_point):
    with pytest.raises(ValidationError):
        record(charge_point, [at(15, {"value": "1"})], connector_id=2**31)
    assert not MeterSample.objects.exists()


def test_a_message_with_a_transaction_is_one_statement_on_postgresql_two_elsewhere(
    charge_point, tx, django_assert_num_queries
):
    message = [
        at(
            15,
            *({"value": str(n), "measurand": "Voltage", "phase": f"L{n}"} for n in (1, 2, 3)),
            {"value": "9"},
        )
    ]

    with django_assert_num_queries(1 if POSTGRES else 2):  # find+update the transaction, insert
        assert record(charge_point, message, transaction_id=tx.pk) == 4


def test_a_message_without_energy_or_power_is_as_many_statements(charge_point, tx, django_assert_num_queries):
    with django_assert_num_queries(1 if POSTGRES else 2):  # find the transaction, insert
        record(charge_point, [at(15, {"value": "57", "measurand": "SoC"})], transaction_id=tx.pk)


def test_a_message_without_a_transaction_is_one_query(charge_point, django_assert_num_queries):
    with django_assert_num_queries(1):
        record(charge_point, [at(15, {"value": "1"}), at(16, {"value": "2"})])


def test_samples_of_a_stopped_transaction_still_belong_to_it(charge_point, tx):
    transaction_stop(
        charge_point=charge_point, transaction_id=tx.pk, meter_stop=3000, timestamp=T0 + dt.timedelta(hours=1)
    )

    record(charge_point, [at(59, {"value": "2990"})], transaction_id=tx.pk)

    assert MeterSample.objects.get().transaction == tx
    tx = Transaction.objects.get(pk=tx.pk)
    assert (tx.last_meter_wh, tx.energy_wh) == (3000, 2000)


def test_a_nul_character_in_a_value_does_not_break_the_message(charge_point):
    assert (
        record(charge_point, [at(15, {"value": "12\x0034", "format": "SignedData"}), at(16, {"value": "5"})])
        == 2
    )

    assert MeterSample.objects.order_by("timestamp").first().value_raw == "12\ufffd34"
