"""Incidents from findings: events for the alerts app, connector.faulted/recovered."""

import datetime as dt

import pytest
from django.utils import timezone

from config.events import _subscribers
from diagnostics import sweeps
from diagnostics.models import FindingKind, Incident, IncidentStatus
from diagnostics.services import incidents
from stations.services import status_record
from tests.factories import ChargePointFactory, ConnectorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def received():
    got: list[tuple[str, dict]] = []
    names = [
        "diagnostics.incident_opened",
        "diagnostics.incident_resolved",
        "connector.faulted",
        "connector.recovered",
    ]
    listeners = {}
    for name in names:
        listeners[name] = lambda _n=name, **kw: got.append((_n, kw))
        _subscribers[name].append(listeners[name])
    yield got
    for name, fn in listeners.items():
        _subscribers[name].remove(fn)


def test_opening_and_resolving_publish_events_with_the_unit_and_cause(
    received, django_capture_on_commit_callbacks
):
    cp = ChargePointFactory(is_connected=False, last_seen_at=timezone.now() - dt.timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        sweeps.run_sweep(heal=False)
    ((name, opened),) = [(n, kw) for n, kw in received if n.startswith("diagnostics.")]
    assert name == "diagnostics.incident_opened"
    assert opened["charge_point_id"] == cp.pk and opened["operator_id"] == cp.operator_id
    assert opened["cause"] == "connectivity" and opened["kind"] == FindingKind.OFFLINE
    incident = Incident.objects.get(pk=opened["incident_id"])
    cp.is_connected, cp.last_seen_at = True, timezone.now()
    cp.save()
    with django_capture_on_commit_callbacks(execute=True):
        sweeps.run_sweep(heal=False)
    resolved = [kw for n, kw in received if n == "diagnostics.incident_resolved"]
    assert resolved and resolved[0]["incident_id"] == incident.pk and resolved[0]["resolution"]
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED


def test_a_connector_going_faulted_and_back_publishes_faulted_then_recovered(
    received, django_capture_on_commit_callbacks
):
    connector = ConnectorFactory(connector_id=1)
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        status_record(
            charge_point=connector.charge_point, connector_id=1, status="Faulted", error_code="GroundFailure",
            timestamp=now + dt.timedelta(seconds=1),
        )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        status_record(
            charge_point=connector.charge_point,
            connector_id=1,
            status="Available",
            timestamp=now + dt.timedelta(seconds=2),
        )
    kinds = [(n, kw.get("error_code") or kw.get("status")) for n, kw in received]
    assert kinds == [("connector.faulted", "GroundFailure"), ("connector.recovered", "Available")]
    assert (
        received[0][1]["connector_id"] == 1 and received[0][1]["charge_point_id"] == connector.charge_point_id
    )


def test_only_the_kinds_swept_are_resolved_for_want_of_a_finding():
    cp = ChargePointFactory()
    now = timezone.now()
    incident = Incident.objects.create(
        operator=cp.operator, charge_point=cp, kind=FindingKind.REBOOT_LOOP, key=f"reboot_loop:cp:{cp.pk}",
        title="loop", opened_at=now, last_seen_at=now,
    )  # fmt: skip
    incidents.sync(findings=[], swept_kinds={FindingKind.OFFLINE}, now=now)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.OPEN
    incidents.sync(findings=[], swept_kinds={FindingKind.REBOOT_LOOP}, now=now)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED and "rebooting" in incident.resolution


def test_a_failing_detector_leaves_its_open_incidents_alone(monkeypatch):
    cp = ChargePointFactory(is_connected=False, last_seen_at=timezone.now() - dt.timedelta(hours=1))
    sweeps.run_sweep(heal=False)
    (incident,) = Incident.objects.filter(charge_point=cp)

    def broken(ctx):
        raise ValueError("odd data")

    monkeypatch.setitem(sweeps.DETECTORS, FindingKind.OFFLINE, broken)
    cp.is_connected, cp.last_seen_at = True, timezone.now()
    cp.save()
    sweeps.run_sweep(heal=False)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.OPEN
