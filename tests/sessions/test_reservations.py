"""Reservations: created before ReserveNow, moved on by the charger's answers and by use."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from sessions.models import IdTokenStatus, Reservation, ReservationStatus
from sessions.services import (
    reservation_create,
    reservation_set_status,
    reservations_expire,
    transaction_start,
)
from tests.factories import IdTokenFactory
from tests.sessions.factories import ReservationFactory

pytestmark = pytest.mark.django_db

TAG = "04A1B2C3D4"
T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def token(db, driver):
    return IdTokenFactory(token=TAG, driver=driver, parent_token="FLEET-7")


def in_minutes(n):
    return timezone.now() + dt.timedelta(minutes=n)


def reserve(charge_point, **kwargs):
    args = {"connector_id": 1, "id_tag": TAG, "expiry_date": in_minutes(30)}
    return reservation_create(charge_point=charge_point, **{**args, **kwargs})


def start(charge_point, reservation, id_tag=TAG, connector_id=1):
    return transaction_start(
        charge_point=charge_point,
        connector_id=connector_id,
        id_tag=id_tag,
        meter_start=1000,
        timestamp=T0,
        reservation_id=reservation.pk,
    )


def test_create_records_a_pending_reservation_for_the_token(charge_point, token):
    expiry = in_minutes(30)

    reservation = reserve(charge_point, id_tag=TAG.lower(), expiry_date=expiry, parent_id_tag="FLEET-7")

    stored = Reservation.objects.get()
    assert stored == reservation
    assert stored.status == ReservationStatus.PENDING
    assert (stored.charge_point, stored.connector_number) == (charge_point, 1)
    assert (stored.id_token, stored.id_tag, stored.parent_id_tag) == (token, TAG.lower(), "FLEET-7")
    assert stored.expires_at == expiry
    assert stored.is_active


def test_a_tag_that_is_not_ours_and_any_connector_can_be_reserved(charge_point):
    reservation = reserve(charge_point, id_tag="ROAMING-1", connector_id=0)

    assert (reservation.id_token, reservation.connector_number) == (None, 0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"connector_id": 9}, "connector_id"),
        ({"connector_id": -1}, "connector_id"),
        ({"expiry_date": in_minutes(-1)}, "expiry_date"),
        ({"id_tag": ""}, "id_tag"),
        ({"id_tag": "X" * 21}, "id_tag"),
        ({"parent_id_tag": "P" * 21}, "parent_id_tag"),
    ],
)
def test_create_refuses_what_the_charger_could_not_hold(charge_point, kwargs, field):
    with pytest.raises(ValidationError) as error:
        reserve(charge_point, **kwargs)

    assert field in error.value.message_dict
    assert not Reservation.objects.exists()


def test_a_connector_is_reserved_once_at_a_time(charge_point, token):
    reserve(charge_point)
    ReservationFactory(charge_point=charge_point, connector_number=2, expires_at=in_minutes(-5))

    with pytest.raises(ValidationError):
        reserve(charge_point, id_tag="OTHER")
    assert reserve(charge_point, connector_id=2).status == ReservationStatus.PENDING  # the old one expired


def test_the_chargers_answer_moves_it_on(charge_point, token):
    reservation = reserve(charge_point)

    assert reservation_set_status(reservation=reservation, status="Accepted") is reservation

    assert reservation.status == ReservationStatus.ACCEPTED
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.ACCEPTED


@pytest.mark.parametrize("answer", ["Faulted", "Occupied", "Rejected", "Unavailable"])
def test_a_refusal_is_final(charge_point, token, answer):
    reservation = reserve(charge_point)
    reservation_set_status(reservation=reservation, status=answer)

    reservation_set_status(reservation=reservation, status="Accepted")

    reservation.refresh_from_db()
    assert reservation.status == answer
    assert not reservation.is_active


def test_a_start_naming_the_reservation_uses_it(charge_point, token):
    reservation = reserve(charge_point)
    reservation_set_status(reservation=reservation, status="Accepted")

    tx, info = start(charge_point, reservation)

    assert info.status == "Accepted"
    assert tx.reservation == reservation
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.USED


def test_a_reservation_for_any_connector_is_used_on_any(charge_point, token):
    reservation = reserve(charge_point, connector_id=0)

    tx, _ = start(charge_point, reservation, connector_id=2)

    assert tx.reservation == reservation
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.USED


def test_a_reservation_of_the_group_is_used_by_a_card_of_the_group(charge_point, token):
    reservation = ReservationFactory(
        charge_point=charge_point, id_token=None, id_tag="OTHER-CARD", parent_id_tag="fleet-7"
    )

    tx, _ = start(charge_point, reservation)

    assert tx.reservation == reservation


@pytest.mark.parametrize(
    "case", ["another token", "another connector", "another charge point", "refused token", "already used"]
)
def test_a_start_that_may_not_use_the_reservation_leaves_it(charge_point, other_charge_point, token, case):
    reservation = ReservationFactory(charge_point=charge_point, id_token=token)
    id_tag, connector_id, on = TAG, 1, charge_point
    if case == "another token":
        id_tag = IdTokenFactory(token="05FFFF").token
    elif case == "another connector":
        connector_id = 2
    elif case == "another charge point":
        on = other_charge_point
    elif case == "refused token":
        token.status = IdTokenStatus.BLOCKED
        token.save()
    else:
        reservation.status = ReservationStatus.USED
        reservation.save()
    before = reservation.status

    tx, _ = start(on, reservation, id_tag=id_tag, connector_id=connector_id)

    assert tx.reservation is None
    reservation.refresh_from_db()
    assert reservation.status == before


def test_the_same_start_re_sent_leaves_the_used_reservation_alone(charge_point, token):
    reservation = ReservationFactory(charge_point=charge_point, id_token=token)
    first, _ = start(charge_point, reservation)

    again, _ = start(charge_point, reservation)

    assert again.pk == first.pk
    assert again.reservation == reservation


def test_a_late_answer_does_not_undo_the_use(charge_point, token):
    reservation = reserve(charge_point)
    start(charge_point, reservation)  # the charger used it before its answer was recorded

    reservation_set_status(reservation=reservation, status="Accepted")

    assert reservation.status == ReservationStatus.USED
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.USED


def test_cancel_then_cancel_again(charge_point, token):
    reservation = ReservationFactory(charge_point=charge_point, id_token=token)

    reservation_set_status(reservation=reservation, status="Cancelled")
    reservation_set_status(reservation=reservation, status="Cancelled")

    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED


def test_an_unknown_status_is_refused(charge_point, token):
    reservation = ReservationFactory(charge_point=charge_point, id_token=token)

    with pytest.raises(ValidationError):
        reservation_set_status(reservation=reservation, status="Bogus")


def test_the_sweep_expires_active_reservations_past_their_expiry(charge_point, token):
    past_pending = ReservationFactory(charge_point=charge_point, status="Pending", expires_at=in_minutes(-1))
    past_accepted = ReservationFactory(
        charge_point=charge_point, expires_at=in_minutes(-1), connector_number=2
    )
    future = ReservationFactory(charge_point=charge_point, expires_at=in_minutes(10))
    used = ReservationFactory(charge_point=charge_point, status="Used", expires_at=in_minutes(-1))

    assert reservations_expire() == 2
    assert reservations_expire() == 0

    statuses = {r.pk: r.status for r in Reservation.objects.all()}
    assert statuses == {
        past_pending.pk: "Expired",
        past_accepted.pk: "Expired",
        future.pk: "Accepted",
        used.pk: "Used",
    }
