"""Authorize: what a charger is told of an idTag."""

import datetime as dt

import pytest
from django.utils import timezone

from sessions.models import IdTokenStatus
from sessions.services import IdTagInfo, authorize
from tests.factories import IdTokenFactory

pytestmark = pytest.mark.django_db


def test_unknown_tag_is_invalid(charge_point):
    info = authorize(charge_point=charge_point, id_tag="DEADBEEF")

    assert info == IdTagInfo(status="Invalid")
    assert info.to_ocpp() == {"status": "Invalid"}


def test_accepted_tag_gets_its_expiry_and_parent(charge_point):
    IdTokenFactory(
        token="04A1B2C3D4",
        expires_at=dt.datetime(2031, 1, 31, 23, 59, 59, 500_000, tzinfo=dt.UTC),
        parent_token="FLEET-7",
    )

    info = authorize(charge_point=charge_point, id_tag="04A1B2C3D4")

    assert info.is_accepted
    assert info.to_ocpp() == {
        "status": "Accepted",
        "expiryDate": "2031-01-31T23:59:59Z",
        "parentIdTag": "FLEET-7",
    }


def test_accepted_tag_without_expiry_or_parent_gets_status_only(charge_point):
    IdTokenFactory(token="04A1B2C3D4")

    assert authorize(charge_point=charge_point, id_tag="04A1B2C3D4").to_ocpp() == {"status": "Accepted"}


@pytest.mark.parametrize("status", [IdTokenStatus.BLOCKED, IdTokenStatus.EXPIRED, IdTokenStatus.INVALID])
def test_refused_tag_gets_its_status_and_nothing_else(charge_point, status):
    IdTokenFactory(token="04A1B2C3D4", status=status, parent_token="FLEET-7")

    assert authorize(charge_point=charge_point, id_tag="04A1B2C3D4").to_ocpp() == {"status": str(status)}


def test_accepted_tag_past_its_expiry_is_expired(charge_point):
    IdTokenFactory(token="04A1B2C3D4", expires_at=timezone.now() - dt.timedelta(seconds=1))

    assert authorize(charge_point=charge_point, id_tag="04A1B2C3D4").to_ocpp() == {"status": "Expired"}


def test_id_tags_compare_case_insensitively(charge_point):
    IdTokenFactory(token="04a1b2c3d4")

    assert authorize(charge_point=charge_point, id_tag="04A1B2C3D4").status == "Accepted"


def test_two_tags_differing_only_in_case_cannot_both_exist(charge_point):
    from django.db import IntegrityError, transaction

    IdTokenFactory(token="04a1b2c3d4", status=IdTokenStatus.BLOCKED)
    with pytest.raises(IntegrityError), transaction.atomic():
        IdTokenFactory(token="04A1B2C3D4")

    assert authorize(charge_point=charge_point, id_tag="04A1B2C3D4").status == "Blocked"


def test_id_tag_info_to_ocpp_leaves_out_what_is_none():
    expiry = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))

    assert IdTagInfo(status="Accepted", expiry_date=expiry).to_ocpp() == {
        "status": "Accepted",
        "expiryDate": "2030-06-01T10:00:00Z",
    }
    assert IdTagInfo(status="ConcurrentTx").to_ocpp() == {"status": "ConcurrentTx"}
