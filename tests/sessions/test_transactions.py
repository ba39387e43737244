"""Start and stop of charging sessions, as the OCPP 1.6 adapter calls them."""

import contextlib
import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse

from sessions import services
from sessions.models import (
    EnergyAnomaly,
    IdTokenStatus,
    MeterSample,
    Reservation,
    Transaction,
    TransactionStatus,
)
from sessions.selectors import (
    active_transaction,
    recent_samples,
    transactions_for_driver,
    transactions_for_operator_user,
)
from sessions.services import IdTagInfo, meter_values_record, transaction_start, transaction_stop
from stations.models import ChargePoint, Role
from tests.factories import (
    PASSWORD,
    IdTokenFactory,
    UserFactory,
)
from tests.sessions.factories import MeterSampleFactory, ReservationFactory, TransactionFactory

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
TAG = "04A1B2C3D4"


@pytest.fixture
def token(db, driver):
    return IdTokenFactory(token=TAG, driver=driver, parent_token="FLEET-7")


@pytest.fixture
def published(monkeypatch):
    """Domain events the services publish (delivered after commit in real life)."""
    seen = []
    monkeypatch.setattr(services, "publish", lambda name, **data: seen.append((name, data)))
    return seen


def start(charge_point, **kwargs):
    args = {"connector_id": 1, "id_tag": TAG, "meter_start": 1000, "timestamp": T0}
    return transaction_start(charge_point=charge_point, **{**args, **kwargs})


def stop(charge_point, transaction_id, **kwargs):
    args = {"meter_stop": 8400, "timestamp": T0 + dt.timedelta(hours=1)}
    return transaction_stop(charge_point=charge_point, transaction_id=transaction_id, **{**args, **kwargs})


# --- Start ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_start_records_the_transaction_and_answers_its_id(charge_point, token, driver):
    tx, info = start(charge_point)

    assert info.to_ocpp() == {"status": "Accepted", "parentIdTag": "FLEET-7"}
    stored = Transaction.objects.get()
    assert stored.pk == tx.pk
    assert stored.charge_point == charge_point
    assert stored.connector == charge_point.connectors.get(connector_id=1)
    assert stored.connector_number == 1
    assert stored.id_token == token
    assert stored.id_tag == TAG
    assert stored.driver == driver
    assert stored.started_at == T0
    assert stored.meter_start == 1000
    assert stored.start_auth_status == "Accepted"
    assert stored.is_active
    assert stored.last_meter_wh == 1000
    assert stored.energy_kwh == 0


@pytest.mark.django_db
def test_start_with_an_unknown_tag_is_recorded_and_answered_invalid(charge_point):
    tx, info = start(charge_point, id_tag="NOBODY")

    assert info == IdTagInfo(status="Invalid")
    tx.refresh_from_db()
    assert tx.start_auth_status == "Invalid"
    assert tx.id_token is None
    assert tx.driver is None
    assert tx.is_active  # the charger started it; it stops on the answer and reports the stop


@pytest.mark.django_db
def test_start_with_a_blocked_tag_is_recorded_with_the_token(charge_point, driver):
    blocked = IdTokenFactory(token=TAG, driver=driver, status=IdTokenStatus.BLOCKED)

    tx, info = start(charge_point, id_tag=TAG.lower())

    assert info.to_ocpp() == {"status": "Blocked"}
    assert (tx.id_token, tx.driver, tx.start_auth_status, tx.id_tag) == (
        blocked,
        driver,
        "Blocked",
        TAG.lower(),
    )


@pytest.mark.django_db
def test_same_start_twice_is_one_transaction_with_the_same_id(charge_point, token, published):
    first, first_info = start(charge_point)
    updated_at = Transaction.objects.get().updated_at

    again, again_info = start(charge_point)

    assert again.pk == first.pk
    assert again_info == first_info
    assert Transaction.objects.count() == 1
    assert Transaction.objects.get().updated_at == updated_at
    assert [name for name, _ in published] == ["session.started"]


@pytest.mark.django_db
def test_same_tag_at_another_time_is_a_new_transaction(charge_point, token):
    first, _ = start(charge_point)
    transaction_stop(charge_point=charge_point, transaction_id=first.pk, meter_stop=2000, timestamp=T0)

    second, info = start(charge_point, timestamp=T0 + dt.timedelta(minutes=5), meter_start=2000)

    assert second.pk != first.pk
    assert info.status == "Accepted"


@pytest.mark.django_db
def test_token_in_another_active_transaction_is_concurrent_tx(charge_point, other_charge_point, token):
    start(charge_point, connector_id=1)

    tx, info = start(other_charge_point, connector_id=1, timestamp=T0 + dt.timedelta(minutes=1))

    assert info.to_ocpp() == {"status": "ConcurrentTx"}
    assert tx.start_auth_status == "ConcurrentTx"
    assert Transaction.objects.count() == 2


@pytest.mark.django_db
def test_new_start_on_the_same_connector_is_not_concurrent_with_the_old(charge_point, token):
    start(charge_point, connector_id=1)  # its stop never arrived

    _tx, info = start(charge_point, connector_id=1, timestamp=T0 + dt.timedelta(hours=3), meter_start=9000)

    assert info.status == "Accepted"


@pytest.mark.django_db
def test_start_on_a_connector_the_charger_does_not_have(charge_point, token):
    tx, info = start(charge_point, connector_id=7)

    assert info.status == "Accepted"
    assert (tx.connector, tx.connector_number) == (None, 7)
    assert active_transaction(charge_point, 7) == tx


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timestamp": dt.datetime(2026, 3, 1, 8, 0)}, "timestamp"),
        ({"connector_id": 2**31}, "connector_id"),
        ({"meter_start": 10**16}, "meter_start"),
    ],
)
def test_start_that_cannot_be_stored_is_refused(charge_point, token, kwargs, field):
    with pytest.raises(ValidationError) as error:
        start(charge_point, **kwargs)

    assert field in error.value.message_dict
    assert not Transaction.objects.exists()


@pytest.mark.django_db
def test_start_publishes_session_started(charge_point, token, published):
    tx, _ = start(charge_point)

    assert published == [
        (
            "session.started",
            {
                "transaction_id": tx.pk,
                "charge_point_id": charge_point.pk,
                "operator_id": charge_point.operator_id,
                "connector_id": 1,
                "driver_id": token.driver_id,
                "auth_status": "Accepted",
            },
        )
    ]


def _race(n, fn):
    """Run fn in n threads at once; each thread gets (and then closes) its own connection."""
    barrier = threading.Barrier(n)
    results, errors = [], []

    def run():
        try:
            barrier.wait(timeout=10)
            results.append(fn())
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


@pytest.fixture
def both_past_the_lookup(monkeypatch):
    """Hold each racing start after its "already there?" lookup until the other got there too
    (or 2 s passed, where a lock keeps the other out), so both try to insert."""
    barrier = threading.Barrier(2, timeout=2)
    real = services.Connector

    class Connector:
        class objects:
            @staticmethod
            def filter(**kwargs):
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait()
                return real.objects.filter(**kwargs)

    monkeypatch.setattr(services, "Connector", Connector)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("id_tag", [TAG, "NOT-OURS"], ids=["known-token", "unknown-token"])
def test_concurrent_double_start_makes_one_transaction(charge_point, token, both_past_the_lookup, id_tag):
    results = _race(2, lambda: start(charge_point, id_tag=id_tag))

    assert Transaction.objects.count() == 1
    (tx1, info1), (tx2, info2) = results
    assert tx1.pk == tx2.pk
    assert info1 == info2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_of_one_token_on_two_connectors_one_is_concurrent_tx(charge_point, token):
    connector_ids = iter([1, 2])
    lock = threading.Lock()

    def start_next():
        with lock:
            connector_id = next(connector_ids)
        return start(charge_point, connector_id=connector_id)

    results = _race(2, start_next)

    assert sorted(info.status for _tx, info in results) == ["Accepted", "ConcurrentTx"]


# --- Stop -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_stop_records_meter_time_reason_and_energy(charge_point, token, published):
    tx, _ = start(charge_point)

    stopped, info = stop(charge_point, tx.pk, id_tag=TAG, reason="EVDisconnected")

    assert info.to_ocpp() == {"status": "Accepted", "parentIdTag": "FLEET-7"}
    tx.refresh_from_db()
    assert stopped.pk == tx.pk
    assert tx.status == TransactionStatus.COMPLETED
    assert not tx.is_active
    assert tx.stopped_at == T0 + dt.timedelta(hours=1)
    assert tx.duration == dt.timedelta(hours=1)
    assert tx.meter_stop == 8400
    assert tx.energy_wh == 7400
    assert tx.energy_kwh == Decimal("7.4")
    assert tx.energy_anomaly == EnergyAnomaly.NONE
    assert tx.stop_reason == "EVDisconnected"
    assert (tx.stop_id_tag, tx.stop_auth_status) == (TAG, "Accepted")
    assert (tx.last_meter_wh, tx.last_meter_at) == (8400, T0 + dt.timedelta(hours=1))
    assert [name for name, _ in published] == ["session.started", "session.stopped"]


@pytest.mark.django_db
def test_stop_without_reason_or_tag(charge_point, token):
    tx, _ = start(charge_point)

    _stopped, info = stop(charge_point, tx.pk)

    assert info is None
    tx.refresh_from_db()
    assert (tx.stop_reason, tx.stop_id_tag, tx.stop_auth_status) == ("Local", "", "")


@pytest.mark.django_db
def test_stop_twice_changes_nothing_the_second_time(charge_point, token, published):
    tx, _ = start(charge_point)
    first = stop(charge_point, tx.pk, id_tag=TAG, reason="Remote")
    before = Transaction.objects.filter(pk=tx.pk).values().get()
    token.status = IdTokenStatus.BLOCKED  # even if the card was blocked in between
    token.save()

    again = stop(
        charge_point,
        tx.pk,
        id_tag=TAG,
        meter_stop=9999,
        timestamp=T0 + dt.timedelta(hours=2),
        transaction_data=[{"timestamp": "2026-03-01T10:00:00Z", "sampledValue": [{"value": "9999"}]}],
    )

    assert again[0].pk == first[0].pk
    assert again[1] == first[1]
    assert Transaction.objects.filter(pk=tx.pk).values().get() == before
    assert not MeterSample.objects.exists()
    assert [name for name, _ in published] == ["session.started", "session.stopped"]


@pytest.mark.django_db
@pytest.mark.parametrize("transaction_id", [424242, -1, 0, 2**70])
def test_stop_of_an_unknown_transaction_is_harmless(charge_point, token, transaction_id):
    tx, _ = start(charge_point)

    assert stop(charge_point, transaction_id) == (None, None)
    accepted = services.authorize(charge_point=charge_point, id_tag=TAG)
    assert stop(charge_point, transaction_id, id_tag=TAG) == (None, accepted)
    assert stop(charge_point, transaction_id, id_tag="NOBODY") == (None, IdTagInfo(status="Invalid"))
    tx.refresh_from_db()
    assert tx.is_active


@pytest.mark.django_db
def test_stop_of_another_charge_points_transaction_changes_nothing(charge_point, other_charge_point, token):
    tx, _ = start(charge_point)

    assert stop(other_charge_point, tx.pk) == (None, None)
    tx.refresh_from_db()
    assert tx.is_active


@pytest.mark.django_db
def test_meter_going_backwards_is_kept_and_flagged(charge_point, token):
    tx, _ = start(charge_point, meter_start=50_000)

    stop(charge_point, tx.pk, meter_stop=1_200)

    tx.refresh_from_db()
    assert tx.energy_wh == -48_800
    assert tx.energy_anomaly == EnergyAnomaly.NEGATIVE
    assert tx.status == TransactionStatus.COMPLETED


@pytest.mark.django_db
def test_more_energy_than_the_connector_can_deliver_is_flagged(charge_point, token):
    tx, _ = start(charge_point, meter_start=0)  # a 22 kW connector, one hour

    stop(charge_point, tx.pk, meter_stop=500_000)

    tx.refresh_from_db()
    assert (tx.energy_wh, tx.energy_anomaly) == (500_000, EnergyAnomaly.IMPLAUSIBLE)


@pytest.mark.django_db
def test_stop_before_start_is_flagged(charge_point, token):
    tx, _ = start(charge_point)

    stop(charge_point, tx.pk, timestamp=T0 - dt.timedelta(minutes=5))

    tx.refresh_from_db()
    assert tx.energy_anomaly == EnergyAnomaly.CLOCK
    assert tx.energy_wh == 7400


@pytest.mark.django_db
def test_stop_with_a_meter_no_column_holds_is_kept_as_a_completed_anomaly(charge_point, token):
    tx, _ = start(charge_point)

    stop(charge_point, tx.pk, meter_stop=10**20)

    tx.refresh_from_db()
    assert (tx.status, tx.meter_stop, tx.energy_wh) == (TransactionStatus.COMPLETED, None, None)
    assert tx.energy_anomaly == EnergyAnomaly.IMPLAUSIBLE


@pytest.mark.django_db
def test_stop_stores_transaction_data_as_samples_of_the_transaction(charge_point, token):
    tx, _ = start(charge_point)
    data = [
        {
            "timestamp": "2026-03-01T08:00:00Z",
            "sampledValue": [{"value": "1000", "context": "Transaction.Begin"}],
        },
        {
            "timestamp": "2026-03-01T08:59:59Z",
            "sampledValue": [
                {"value": "8.4", "unit": "kWh", "context": "Transaction.End"},
                {"value": "0", "measurand": "Power.Active.Import", "unit": "W", "context": "Transaction.End"},
            ],
        },
    ]

    stop(charge_point, tx.pk, transaction_data=data)

    samples = MeterSample.objects.filter(transaction=tx).order_by("timestamp", "measurand")
    assert [(s.context, s.measurand, s.energy_wh, s.power_w) for s in samples] == [
        ("Transaction.Begin", "Energy.Active.Import.Register", 1000, None),
        ("Transaction.End", "Energy.Active.Import.Register", 8400, None),
        ("Transaction.End", "Power.Active.Import", None, 0),
    ]
    assert {s.connector_number for s in samples} == {1}
    tx.refresh_from_db()
    assert (tx.last_meter_wh, tx.last_power_w, tx.last_meter_at) == (8400, 0, T0 + dt.timedelta(hours=1))


# --- Reads ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_active_transaction_of_a_connector(charge_point, token):
    assert active_transaction(charge_point, 1) is None
    tx, _ = start(charge_point)

    assert active_transaction(charge_point, 1) == tx
    assert active_transaction(charge_point, 2) is None
    stop(charge_point, tx.pk)
    assert active_transaction(charge_point, 1) is None


@pytest.mark.django_db
def test_drivers_see_their_own_transactions_newest_first(driver, other_driver, charge_point):
    card = IdTokenFactory(driver=driver)
    older = TransactionFactory(charge_point=charge_point, id_token=card, started_at=T0)
    newer = TransactionFactory(charge_point=charge_point, id_token=card, started_at=T0 + dt.timedelta(days=1))
    TransactionFactory(charge_point=charge_point, id_token=IdTokenFactory(driver=other_driver))

    assert list(transactions_for_driver(driver)) == [newer, older]


@pytest.mark.django_db
def test_operator_staff_see_their_operators_transactions(
    operator_admin, technician, other_operator_admin, driver, charge_point, other_charge_point
):
    ours = TransactionFactory(charge_point=charge_point)
    theirs = TransactionFactory(charge_point=other_charge_point)
    superuser = UserFactory(is_superuser=True, is_staff=True, role=Role.OPERATOR_ADMIN)

    assert list(transactions_for_operator_user(operator_admin)) == [ours]
    assert list(transactions_for_operator_user(technician)) == [ours]
    assert list(transactions_for_operator_user(other_operator_admin)) == [theirs]
    assert list(transactions_for_operator_user(driver)) == []
    assert set(transactions_for_operator_user(superuser)) == {ours, theirs}


@pytest.mark.django_db
def test_transaction_lists_take_a_fixed_number_of_queries(
    django_assert_num_queries, operator_admin, driver, charge_point
):
    card = IdTokenFactory(driver=driver)
    for n in range(5):
        TransactionFactory(charge_point=charge_point, id_token=card, started_at=T0 + dt.timedelta(hours=n))

    with django_assert_num_queries(1):
        rows = [(t.charge_point, t.connector, t.id_token, t.driver) for t in transactions_for_driver(driver)]
    with django_assert_num_queries(1):
        rows += [(t.charge_point.site, t.driver) for t in transactions_for_operator_user(operator_admin)]
    assert len(rows) == 10


@pytest.mark.django_db
def test_recent_samples_newest_first(charge_point):
    tx = TransactionFactory(charge_point=charge_point)
    samples = [MeterSampleFactory(transaction=tx, timestamp=T0 + dt.timedelta(minutes=n)) for n in range(5)]
    MeterSampleFactory(timestamp=T0 + dt.timedelta(hours=1))  # another transaction's

    assert recent_samples(tx, limit=3) == samples[::-1][:3]


# --- Admin ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Transaction, MeterSample, Reservation], ids=lambda m: m.__name__)
def test_admin_shows_sessions_samples_and_reservations_read_only(client, charge_point, model):
    superuser = UserFactory(is_superuser=True, is_staff=True, role=Role.OPERATOR_ADMIN)
    client.login(email=superuser.email, password=PASSWORD)
    tx = TransactionFactory(charge_point=charge_point, stopped=True)
    MeterSampleFactory(transaction=tx)
    ReservationFactory(charge_point=charge_point)
    opts = model._meta
    obj = model.objects.get()

    changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    change = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    add = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))

    assert changelist.status_code == 200
    assert changelist.context["cl"].result_count == 1
    assert change.status_code == 200
    assert change.context["has_change_permission"] is False
    assert add.status_code == 403


@pytest.mark.django_db
def test_services_work_with_the_adapters_light_charge_point(charge_point, token):
    light = ChargePoint(
        pk=charge_point.pk, identity=charge_point.identity, operator_id=charge_point.operator_id
    )

    tx, _ = start(light)
    stored = meter_values_record(
        charge_point=light,
        connector_id=1,
        transaction_id=tx.pk,
        meter_values=[{"timestamp": "2026-03-01T08:30:00Z", "sampledValue": [{"value": "4000"}]}],
    )
    stopped, _ = stop(light, tx.pk)

    assert stored == 1
    assert stopped.pk == tx.pk
    assert Transaction.objects.get().connector == charge_point.connectors.get(connector_id=1)
