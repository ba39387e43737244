"""The diagnostic sweeps at the service level: each problem found with its likely cause, one
incident a problem and unit, resolved on recovery; the number of queries does not grow with
the fleet. Runs on SQLite and PostgreSQL."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from diagnostics import sweeps
from diagnostics.models import Cause, Finding, FindingKind, Incident, IncidentStatus
from sessions.models import TransactionStatus
from stations.models import Command, CommandStatus, ConnectorStatus, Direction, OcppMessage
from tests.factories import (
    ChargePointFactory,
    ConnectorFactory,
    IdTokenFactory,
    SiteFactory,
    StatusChangeFactory,
)
from tests.sessions.factories import MeterSampleFactory, TransactionFactory

pytestmark = pytest.mark.django_db


def ago(**kw) -> dt.datetime:
    return timezone.now() - dt.timedelta(**kw)


def sweep(now=None):
    return sweeps.run_sweep(now=now or timezone.now(), heal=False)


def open_incidents(kind=None):
    qs = Incident.objects.filter(status=IncidentStatus.OPEN)
    return list(qs.filter(kind=kind) if kind else qs)


def faulted(connector, code="GroundFailure", at=None, vendor_error_code=""):
    """The connector reports Faulted (history row and current status)."""
    at = at or ago(minutes=1)
    StatusChangeFactory(
        connector=connector, error_code=code, timestamp=at, vendor_error_code=vendor_error_code
    )
    connector.status, connector.error_code, connector.status_updated_at = ConnectorStatus.FAULTED, code, at
    connector.vendor_error_code = vendor_error_code
    connector.save()


def available(connector, at=None):
    at = at or ago(seconds=30)
    StatusChangeFactory(
        connector=connector, status=ConnectorStatus.AVAILABLE, error_code="NoError", timestamp=at
    )
    connector.status, connector.error_code, connector.status_updated_at = ConnectorStatus.AVAILABLE, "", at
    connector.save()


# --- Offline and site power ---------------------------------------------------------------------


def test_silent_charger_opens_one_offline_incident_and_resolves_when_back():
    cp = ChargePointFactory(is_connected=True, last_seen_at=ago(hours=1), heartbeat_interval=300)
    ChargePointFactory(site=cp.site, is_connected=True)  # its neighbour is fine
    sweep()
    sweep()
    (incident,) = open_incidents(FindingKind.OFFLINE)
    assert incident.charge_point == cp
    assert incident.cause == Cause.CONNECTIVITY
    assert incident.evidence["silent_minutes"] >= 59
    assert incident.findings.count() == 1  # the second sweep found nothing new

    cp.last_seen_at, cp.is_connected = timezone.now(), True
    cp.save()
    sweep()
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert "online" in incident.resolution
    assert incident.resolved_at is not None


def test_charger_within_its_heartbeat_allowance_is_not_offline():
    ChargePointFactory(is_connected=True, last_seen_at=ago(minutes=10), heartbeat_interval=300)
    ChargePointFactory(is_connected=False, last_seen_at=ago(minutes=2))  # just dropped: grace
    ChargePointFactory(is_connected=False, last_seen_at=None)  # never installed
    sweep()
    assert open_incidents() == []


def test_site_whose_chargers_go_silent_together_is_a_grid_incident():
    site = SiteFactory()
    cps = [
        ChargePointFactory(site=site, is_connected=False, last_seen_at=ago(minutes=40, seconds=i))
        for i in range(4)
    ]
    sweep()
    (site_incident,) = open_incidents(FindingKind.SITE_POWER)
    assert site_incident.site == site and site_incident.cause == Cause.GRID
    assert sorted(site_incident.evidence["offline"]) == sorted(cp.identity for cp in cps)
    units = open_incidents(FindingKind.OFFLINE)
    assert len(units) == 4 and {i.cause for i in units} == {Cause.GRID}


def test_chargers_drifting_offline_hours_apart_are_no_site_drop():
    site = SiteFactory()
    ChargePointFactory(site=site, is_connected=False, last_seen_at=ago(hours=5))
    ChargePointFactory(site=site, is_connected=False, last_seen_at=ago(hours=1))
    sweep()
    assert open_incidents(FindingKind.SITE_POWER) == []
    assert {i.cause for i in open_incidents(FindingKind.OFFLINE)} == {Cause.CONNECTIVITY}


def test_under_voltage_at_most_chargers_of_a_site_is_a_site_power_problem():
    site = SiteFactory()
    for _ in range(3):
        faulted(ConnectorFactory(charge_point=ChargePointFactory(site=site), connector_id=1), "UnderVoltage")
    sweep()
    (incident,) = open_incidents(FindingKind.SITE_POWER)
    assert len(incident.evidence["grid_errors"]) == 3
    assert {i.cause for i in open_incidents(FindingKind.FAULTED)} == {Cause.GRID}


def test_offline_charger_that_reported_weak_signal_is_a_connectivity_problem():
    cp = ChargePointFactory(is_connected=False, last_seen_at=ago(hours=2))
    StatusChangeFactory(
        connector=None, charge_point=cp, connector_number=0, status="Available", error_code="WeakSignal",
        timestamp=ago(hours=3),
    )  # fmt: skip
    sweep()
    (incident,) = open_incidents(FindingKind.OFFLINE)
    assert incident.cause == Cause.CONNECTIVITY
    assert incident.evidence["weak_signal_reports_24h"] == 1


# --- Faults and causes ----------------------------------------------------------------------------


def test_ground_failure_opens_a_cable_incident_with_tools_and_parts():
    connector = ConnectorFactory(connector_id=1)
    faulted(connector, "GroundFailure")
    sweep()
    (incident,) = open_incidents(FindingKind.FAULTED)
    assert incident.connector == connector and incident.cause == Cause.CABLE
    assert incident.rule.error_code == "GroundFailure"
    assert "Insulation resistance tester" in incident.evidence["tools"]
    finding = incident.findings.get()
    assert "GroundFailure" in finding.summary and "cable" in finding.summary


def _session(connector, tag, started, minutes=20, energy=Decimal("5000")):
    token = IdTokenFactory(token=tag)
    return TransactionFactory(
        charge_point=connector.charge_point,
        connector=connector,
        connector_number=connector.connector_id,
        id_token=token,
        id_tag=tag,
        started_at=started,
        stopped=True,
        stopped_at=started + dt.timedelta(minutes=minutes),
        energy_wh=energy,
    )


def test_ev_communication_errors_with_different_cars_blame_the_cable():
    connector = ConnectorFactory(connector_id=1)
    for i, tag in enumerate(["CAR-A", "CAR-B", "CAR-C"]):
        start = ago(hours=6 - i)
        _session(connector, tag, start, energy=Decimal("0"))
        StatusChangeFactory(
            connector=connector, error_code="EVCommunicationError", timestamp=start + dt.timedelta(minutes=5)
        )
    faulted(connector, "EVCommunicationError")
    sweep()
    (incident,) = open_incidents(FindingKind.FAULTED)
    assert incident.cause == Cause.CABLE
    assert incident.evidence["cars_failing"] == ["CAR-A", "CAR-B", "CAR-C"]
    assert "3 different cars" in incident.findings.get().summary


def test_ev_communication_error_of_one_car_where_others_charge_fine_blames_the_vehicle():
    connector = ConnectorFactory(connector_id=1)
    _session(connector, "GOOD-1", ago(hours=8))
    _session(connector, "GOOD-2", ago(hours=6))
    bad = ago(hours=2)
    _session(connector, "BAD-CAR", bad, energy=Decimal("0"))
    StatusChangeFactory(
        connector=connector, error_code="EVCommunicationError", timestamp=bad + dt.timedelta(minutes=3)
    )
    faulted(connector, "EVCommunicationError", at=ago(minutes=5))
    sweep()
    (incident,) = open_incidents(FindingKind.FAULTED)
    assert incident.cause == Cause.VEHICLE
    assert incident.evidence["cars_failing"] == ["BAD-CAR"]
    assert incident.evidence["cars_fine"] == ["GOOD-1", "GOOD-2"]


def test_a_connector_flapping_faulted_available_faulted_keeps_one_incident():
    connector = ConnectorFactory(connector_id=1)
    faulted(connector, at=ago(minutes=6))
    sweep()
    available(connector, at=ago(minutes=5))
    sweep()  # Available now, but the fault is too fresh to call it recovered
    faulted(connector, at=ago(minutes=4))
    sweep()
    available(connector, at=ago(minutes=3))
    sweep()
    assert Incident.objects.count() == 1
    (incident,) = open_incidents(FindingKind.FAULTED)
    assert incident.findings.count() == 1
    # It stays clear past the hold: recovered.
    sweep(now=timezone.now() + dt.timedelta(minutes=sweeps.FAULT_HOLD_MINUTES))
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert Incident.objects.filter(kind=FindingKind.FAULTED).count() == 1


def test_a_changed_error_code_adds_a_finding_to_the_open_incident():
    connector = ConnectorFactory(connector_id=1)
    faulted(connector, "GroundFailure", at=ago(minutes=3))
    sweep()
    faulted(connector, "HighTemperature", at=ago(minutes=1))
    sweep()
    (incident,) = open_incidents(FindingKind.FAULTED)
    assert incident.findings.count() == 2
    assert incident.evidence["error_code"] == "HighTemperature"


def test_same_fault_on_most_units_of_one_firmware_is_a_firmware_wide_software_fault():
    site = SiteFactory()
    bad = [ChargePointFactory(site=site, firmware_version="2.0.0") for _ in range(3)]
    for cp in bad:
        faulted(ConnectorFactory(charge_point=cp, connector_id=1), "OtherError")
    for _ in range(3):
        ConnectorFactory(charge_point=ChargePointFactory(site=site, firmware_version="1.9.4"), connector_id=1)
    sweep()
    (fw,) = open_incidents(FindingKind.FIRMWARE_WIDE)
    assert fw.cause == Cause.SOFTWARE
    assert fw.evidence["firmware_version"] == "2.0.0"
    assert fw.evidence["failing_units"] == sorted(cp.identity for cp in bad)
    assert {i.cause for i in open_incidents(FindingKind.FAULTED)} == {Cause.SOFTWARE}


def test_a_fault_on_every_version_alike_is_not_blamed_on_one_firmware():
    site = SiteFactory()
    for version in ["2.0.0"] * 3 + ["1.9.4"] * 3:
        faulted(
            ConnectorFactory(
                charge_point=ChargePointFactory(site=site, firmware_version=version), connector_id=1
            ),
            "OtherError",
        )
    sweep()
    assert open_incidents(FindingKind.FIRMWARE_WIDE) == []


def test_internal_error_points_at_software():
    faulted(ConnectorFactory(connector_id=1), "InternalError")
    sweep()
    assert open_incidents(FindingKind.FAULTED)[0].cause == Cause.SOFTWARE


# --- Sessions and meters --------------------------------------------------------------------------


def test_session_without_meter_values_for_long_is_stuck_until_it_reports_again():
    connector = ConnectorFactory(connector_id=1, status=ConnectorStatus.CHARGING)
    tx = TransactionFactory(
        charge_point=connector.charge_point, started_at=ago(hours=3), last_meter_at=ago(hours=2)
    )
    sweep()
    (incident,) = open_incidents(FindingKind.STUCK_SESSION)
    assert incident.evidence["transaction_id"] == tx.pk
    assert "no meter values" in incident.findings.get().summary
    tx.last_meter_at = timezone.now()
    tx.save()
    sweep()
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED


def test_session_still_open_long_after_the_car_left_is_stuck():
    connector = ConnectorFactory(connector_id=1)
    TransactionFactory(
        charge_point=connector.charge_point, started_at=ago(hours=2), last_meter_at=ago(minutes=1)
    )
    available(connector, at=ago(hours=1))
    sweep()
    (incident,) = open_incidents(FindingKind.STUCK_SESSION)
    assert incident.evidence["connector_status"] == ConnectorStatus.AVAILABLE
    assert "no StopTransaction" in incident.findings.get().summary


def _charging(max_kw="22", power_type="AC_3_PHASE"):
    connector = ConnectorFactory(
        connector_id=1, status=ConnectorStatus.CHARGING, max_power_kw=Decimal(max_kw), power_type=power_type
    )
    tx = TransactionFactory(
        charge_point=connector.charge_point, started_at=ago(hours=1), meter_start=Decimal(0)
    )
    return connector, tx


def _samples(tx, kw: float, minutes=25, soc=None):
    """A sample every 5 min over the last ``minutes`` at ``kw``."""
    for i, m in enumerate(range(minutes, -1, -5)):
        at = ago(minutes=m)
        wh = Decimal(round(kw * 1000 * (minutes - m) / 60, 3))
        MeterSampleFactory(transaction=tx, timestamp=at, value=wh, energy_wh=wh)
        if soc is not None:
            MeterSampleFactory(
                transaction=tx,
                timestamp=at,
                measurand="SoC",
                unit="Percent",
                value=Decimal(soc + i),
                energy_wh=None,
            )


def test_delivering_far_below_the_connector_maximum_is_under_performance(django_capture_on_commit_callbacks):
    from config.events import _subscribers

    got = []
    _subscribers["diagnostics.under_performance"].append(lambda **kw: got.append(kw))
    try:
        _connector, tx = _charging("22")
        _samples(tx, kw=4)
        with django_capture_on_commit_callbacks(execute=True):
            sweep()
    finally:
        _subscribers["diagnostics.under_performance"].pop()
    (incident,) = open_incidents(FindingKind.UNDER_PERFORMANCE)
    assert incident.evidence["expected_kw"] == 22
    assert 3.5 < incident.evidence["delivered_kw"] < 4.5
    assert got and got[0]["incident_id"] == incident.pk and got[0]["connector_id"] == 1


def _profile(cp, limit, unit="W", connector_id=1, status=CommandStatus.ACCEPTED):
    return Command.objects.create(
        charge_point=cp,
        action="SetChargingProfile",
        status=status,
        payload={
            "connectorId": connector_id,
            "csChargingProfiles": {
                "chargingProfileId": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "chargingRateUnit": unit,
                    "startSchedule": ago(hours=2).isoformat(),
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
                },
            },
        },
    )


def test_a_charging_profile_limit_explains_low_power():
    connector, tx = _charging("22")
    _profile(connector.charge_point, 6 * 230 * 3 / 1, unit="W")  # 4.14 kW
    _samples(tx, kw=4)
    sweep()
    assert open_incidents(FindingKind.UNDER_PERFORMANCE) == []


def test_a_profile_limit_in_amps_is_turned_into_watts():
    connector, tx = _charging("22")
    _profile(connector.charge_point, 16, unit="A")  # 11 kW on three phases
    _samples(tx, kw=2)
    sweep()
    (incident,) = open_incidents(FindingKind.UNDER_PERFORMANCE)
    assert incident.evidence["expected_kw"] == 11.04


def test_a_rejected_profile_does_not_lower_the_expectation():
    connector, tx = _charging("22")
    _profile(connector.charge_point, 4000, status=CommandStatus.REJECTED)
    _samples(tx, kw=4)
    sweep()
    assert open_incidents(FindingKind.UNDER_PERFORMANCE)[0].evidence["expected_kw"] == 22


def test_a_nearly_full_battery_explains_low_power():
    _connector, tx = _charging("50", power_type="DC")
    _samples(tx, kw=5, soc=93)
    sweep()
    assert open_incidents(FindingKind.UNDER_PERFORMANCE) == []


def test_meter_going_backwards_within_a_session_is_a_meter_anomaly():
    connector = ConnectorFactory(connector_id=1, status=ConnectorStatus.CHARGING)
    tx = TransactionFactory(charge_point=connector.charge_point, started_at=ago(hours=1))
    for m, wh in [(30, 10_000), (25, 11_000), (20, 9_000), (15, 9_500)]:
        MeterSampleFactory(transaction=tx, timestamp=ago(minutes=m), value=Decimal(wh), energy_wh=Decimal(wh))
    sweep()
    (incident,) = open_incidents(FindingKind.METER_ANOMALY)
    assert [s["kind"] for s in incident.evidence["steps"]] == ["backwards"]
    assert incident.evidence["steps"][0]["from_wh"] == 11_000
    assert "backwards" in incident.title


def test_meter_jumping_beyond_what_the_connector_can_deliver_is_a_meter_anomaly():
    connector = ConnectorFactory(connector_id=1, max_power_kw=Decimal("22"))
    tx = TransactionFactory(charge_point=connector.charge_point, started_at=ago(hours=1))
    # 5 min at 22 kW is at most ~1.8 kWh; 500 kWh is not a charge.
    for m, wh in [(30, 10_000), (25, 11_500), (20, 511_500)]:
        MeterSampleFactory(transaction=tx, timestamp=ago(minutes=m), value=Decimal(wh), energy_wh=Decimal(wh))
    sweep()
    (incident,) = open_incidents(FindingKind.METER_ANOMALY)
    assert [s["kind"] for s in incident.evidence["steps"]] == ["jump"]


def test_a_normal_meter_is_no_anomaly():
    connector = ConnectorFactory(connector_id=1, status=ConnectorStatus.CHARGING)
    tx = TransactionFactory(charge_point=connector.charge_point, started_at=ago(hours=1))
    for m in range(30, 0, -5):
        wh = Decimal(10_000 + (30 - m) * 300)
        MeterSampleFactory(transaction=tx, timestamp=ago(minutes=m), value=wh, energy_wh=wh)
    sweep()
    assert open_incidents(FindingKind.METER_ANOMALY) == []


# --- Reboots, storms, stuck statuses --------------------------------------------------------------


def _boot(cp, at):
    OcppMessage.objects.create(
        charge_point=cp,
        direction=Direction.IN,
        message_type=2,
        action="BootNotification",
        raw="[]",
        created_at=at,
    )


def test_many_boot_notifications_in_an_hour_are_a_reboot_loop():
    cp = ChargePointFactory()
    calm = ChargePointFactory()
    for i in range(6):
        _boot(cp, ago(minutes=50 - i * 5))
    _boot(calm, ago(minutes=10))
    sweep()
    (incident,) = open_incidents(FindingKind.REBOOT_LOOP)
    assert incident.charge_point == cp and incident.cause == Cause.SOFTWARE
    assert incident.evidence["boots"] == 6


def test_many_error_reports_in_an_hour_are_an_error_storm():
    connector = ConnectorFactory(connector_id=1)
    for i in range(12):
        StatusChangeFactory(
            connector=connector,
            error_code="HighTemperature",
            status="Charging",
            timestamp=ago(minutes=50 - i),
        )
    sweep()
    (incident,) = open_incidents(FindingKind.ERROR_STORM)
    assert incident.evidence["error_counts"] == {"HighTemperature": 12}


def test_a_connector_unavailable_for_hours_is_stuck():
    ConnectorFactory(connector_id=1, status=ConnectorStatus.UNAVAILABLE, status_updated_at=ago(hours=5))
    ConnectorFactory(connector_id=1, status=ConnectorStatus.UNAVAILABLE, status_updated_at=ago(minutes=5))
    sweep()
    (incident,) = open_incidents(FindingKind.STUCK_STATUS)
    assert incident.evidence["status"] == ConnectorStatus.UNAVAILABLE


# --- Robustness and scale ---------------------------------------------------------------------------


def test_a_sweep_run_twice_changes_nothing_the_second_time():
    faulted(ConnectorFactory(connector_id=1))
    ChargePointFactory(is_connected=False, last_seen_at=ago(hours=1))
    first = sweep()
    second = sweep()
    assert first.opened == 2
    assert (second.opened, second.updated, second.resolved) == (0, 0, 0)
    assert Finding.objects.count() == 2
    later = timezone.now() + dt.timedelta(minutes=1)
    ChargePointFactory._meta.model.objects.update(last_seen_at=later)
    sweep(now=later)
    assert {i.last_seen_at for i in open_incidents(FindingKind.FAULTED)} == {later}


def test_the_celery_task_runs_a_sweep_and_reports_what_it_did():
    from diagnostics.tasks import run_diagnostic_sweep

    ChargePointFactory(is_connected=False, last_seen_at=ago(hours=1))
    result = run_diagnostic_sweep.apply().get()
    assert result["opened"] == 1 and result["skipped"] is False
    assert run_diagnostic_sweep.apply().get()["opened"] == 0


def test_odd_charging_profile_payloads_do_not_break_the_sweep():
    connector, tx = _charging("22")
    Command.objects.create(
        charge_point=connector.charge_point, action="SetChargingProfile", status=CommandStatus.ACCEPTED,
        payload={"connectorId": 1, "csChargingProfiles": {"chargingSchedule": "nonsense"}},
    )  # fmt: skip
    _samples(tx, kw=4)
    sweep()
    assert len(open_incidents(FindingKind.UNDER_PERFORMANCE)) == 1


def _fleet(n: int):
    """``n`` chargers, each with one of every kind of problem in turn."""
    site = SiteFactory()
    for i in range(n):
        cp = ChargePointFactory(site=site, last_seen_at=timezone.now(), firmware_version=f"v{i % 2}")
        connector = ConnectorFactory(charge_point=cp, connector_id=1, status=ConnectorStatus.CHARGING)
        tx = TransactionFactory(charge_point=cp, started_at=ago(hours=1), last_meter_at=ago(minutes=1))
        kind = i % 4
        if kind == 0:
            faulted(connector, "EVCommunicationError")
        elif kind == 1:
            cp.is_connected, cp.last_seen_at = False, ago(hours=1)
            cp.save()
        elif kind == 2:
            _samples(tx, kw=1)
        else:
            for m, wh in [(30, 10_000), (25, 9_000)]:
                MeterSampleFactory(
                    transaction=tx, timestamp=ago(minutes=m), value=Decimal(wh), energy_wh=Decimal(wh)
                )
        _boot(cp, ago(minutes=5))


def test_the_number_of_queries_of_a_sweep_does_not_grow_with_the_fleet():
    _fleet(4)
    with CaptureQueriesContext(connection) as small:
        sweep()
    Incident.objects.all().delete()
    _fleet(24)
    with CaptureQueriesContext(connection) as large:
        sweep()
    assert Incident.objects.filter(status=IncidentStatus.OPEN).count() > 24
    assert len(large.captured_queries) <= len(small.captured_queries) + 2, [
        q["sql"][:120] for q in large.captured_queries
    ]
    assert TransactionStatus.ACTIVE  # the fleet's sessions stayed active


def test_a_connection_that_keeps_dropping_is_an_unstable_connection(django_capture_on_commit_callbacks):
    from stations.services import charger_connected, charger_disconnected

    cp = ChargePointFactory(is_connected=False)
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(sweeps.DISCONNECTS_MIN):
            at = ago(minutes=60 - i * 5)
            charger_connected(charge_point_id=cp.pk, operator_id=cp.operator_id, at=at)
            charger_disconnected(
                charge_point_id=cp.pk,
                operator_id=cp.operator_id,
                connected_at=at,
                at=at + dt.timedelta(minutes=1),
            )
        charger_connected(charge_point_id=cp.pk, operator_id=cp.operator_id, at=timezone.now())
    assert cp.connectivity_events.filter(online=False).count() == sweeps.DISCONNECTS_MIN
    sweep()
    (incident,) = open_incidents(FindingKind.UNSTABLE_CONNECTION)
    assert incident.cause == Cause.CONNECTIVITY and incident.evidence["disconnects"] == sweeps.DISCONNECTS_MIN
    # A day later the drops are out of the window: resolved.
    cp.last_seen_at = timezone.now() + dt.timedelta(hours=25)
    cp.save()
    sweep(now=timezone.now() + dt.timedelta(hours=25))
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
