import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from stations.models import ChargePoint, Connector, ConnectorStatus, ErrorCode, StatusChange
from stations.services import status_record

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def connector(charge_point):
    connector = charge_point.connectors.get(connector_id=1)
    # As if nothing was reported yet: the factories stamp "now".
    Connector.objects.filter(pk=connector.pk).update(status=ConnectorStatus.UNKNOWN, status_updated_at=None)
    connector.refresh_from_db()
    return connector


def test_status_report_is_stored_in_history_and_becomes_current(charge_point, connector):
    row = status_record(
        charge_point=charge_point,
        connector_id=1,
        status=ConnectorStatus.FAULTED,
        error_code=ErrorCode.GROUND_FAILURE,
        info="RCD tripped",
        vendor_error_code="E42",
        timestamp=T0,
    )

    assert row is not None
    stored = StatusChange.objects.get()
    assert (stored.charge_point, stored.connector, stored.connector_number) == (charge_point, connector, 1)
    assert (stored.status, stored.error_code, stored.timestamp) == ("Faulted", "GroundFailure", T0)
    assert (stored.info, stored.vendor_error_code) == ("RCD tripped", "E42")
    connector.refresh_from_db()
    assert connector.status == ConnectorStatus.FAULTED
    assert connector.error_code == ErrorCode.GROUND_FAILURE
    assert connector.status_info == "RCD tripped"
    assert connector.vendor_error_code == "E42"
    assert connector.status_updated_at == T0
    assert connector.has_error


def test_same_report_twice_stores_one_row(charge_point, connector):
    first = status_record(charge_point=charge_point, connector_id=1, status="Charging", timestamp=T0)
    second = status_record(charge_point=charge_point, connector_id=1, status="Charging", timestamp=T0)

    assert first is not None
    assert second is None
    assert StatusChange.objects.filter(charge_point=charge_point).count() == 1


def test_late_older_report_is_kept_but_does_not_overwrite_newer_status(charge_point, connector):
    status_record(charge_point=charge_point, connector_id=1, status="Charging", timestamp=T0)
    late = status_record(
        charge_point=charge_point,
        connector_id=1,
        status="Available",
        timestamp=T0 - dt.timedelta(minutes=5),
    )

    assert late is not None
    assert list(StatusChange.objects.values_list("status", flat=True)) == ["Charging", "Available"]
    connector.refresh_from_db()
    assert connector.status == ConnectorStatus.CHARGING
    assert connector.status_updated_at == T0


def test_newer_report_moves_the_current_status_forward(charge_point, connector):
    status_record(charge_point=charge_point, connector_id=1, status="Charging", timestamp=T0)
    status_record(
        charge_point=charge_point, connector_id=1, status="Finishing", timestamp=T0 + dt.timedelta(1)
    )

    connector.refresh_from_db()
    assert connector.status == ConnectorStatus.FINISHING
    assert StatusChange.objects.count() == 2


def test_naive_timestamp_is_rejected(charge_point, connector):
    with pytest.raises(ValidationError) as exc:
        status_record(
            charge_point=charge_point, connector_id=1, status="Available", timestamp=dt.datetime(2025, 3, 1)
        )

    assert "timestamp" in exc.value.message_dict
    assert not StatusChange.objects.exists()


def test_unknown_status_is_rejected(charge_point, connector):
    with pytest.raises(ValidationError):
        status_record(charge_point=charge_point, connector_id=1, status="Exploded", timestamp=T0)
    assert not StatusChange.objects.exists()


def test_report_for_unknown_connector_creates_it(charge_point):
    status_record(charge_point=charge_point, connector_id=3, status="Available", timestamp=T0)

    connector = Connector.objects.get(charge_point=charge_point, connector_id=3)
    assert connector.status == ConnectorStatus.AVAILABLE
    assert connector.evse.evse_id == 3
    assert StatusChange.objects.get().connector == connector


def test_connector_zero_is_the_charge_point_as_a_whole(charge_point, connector):
    status_record(
        charge_point=charge_point, connector_id=0, status="Unavailable", error_code="NoError", timestamp=T0
    )

    cp = ChargePoint.objects.get(pk=charge_point.pk)
    assert (cp.status, cp.error_code, cp.status_updated_at) == ("Unavailable", "NoError", T0)
    row = StatusChange.objects.get()
    assert row.connector is None and row.connector_number == 0
    connector.refresh_from_db()
    assert connector.status == ConnectorStatus.UNKNOWN


def test_default_timestamp_is_now(charge_point, connector):
    before = timezone.now()
    row = status_record(charge_point=charge_point, connector_id=1, status="Available")

    assert before <= row.timestamp <= timezone.now()
