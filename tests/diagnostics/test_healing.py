"""Self-healing at the service level: soft before hard, the daily cap, the policy; the
commands go to a stand-in for the gateway that answers like a charger."""

import datetime as dt

import pytest
from django.utils import timezone

from diagnostics import sweeps
from diagnostics.models import HealingAttempt, HealingOutcome, Incident, IncidentStatus, ResetKind
from diagnostics.services import healing
from stations.models import Command, CommandStatus, ConnectorStatus
from tests.factories import ConnectorFactory, HealingPolicyFactory, StatusChangeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def gateway(monkeypatch):
    """Records the resets; answers with ``gateway.status`` (accepted unless told otherwise)."""

    class Gateway:
        status = CommandStatus.ACCEPTED
        sent: list[tuple[str, str]] = []

    def send_command_many(charge_points, action, payload, **kwargs):
        out = []
        for cp in charge_points:
            Gateway.sent.append((cp.identity, payload["type"]))
            out.append(
                Command.objects.create(
                    charge_point=cp, action=action, payload=payload, status=Gateway.status,
                    response={"status": "Accepted"} if Gateway.status == CommandStatus.ACCEPTED else None,
                )
            )  # fmt: skip
        return out

    Gateway.sent = []
    monkeypatch.setattr(healing, "send_command_many", send_command_many)
    return Gateway


def fault(code="InternalError"):
    """A connector Faulted with a code whose default rule allows self-healing."""
    connector = ConnectorFactory(connector_id=1)
    at = timezone.now() - dt.timedelta(minutes=1)
    StatusChangeFactory(connector=connector, error_code=code, timestamp=at)
    connector.status, connector.error_code, connector.status_updated_at = ConnectorStatus.FAULTED, code, at
    connector.save()
    return connector


def later(minutes):
    return timezone.now() + dt.timedelta(minutes=minutes)


def test_soft_reset_first_then_hard_when_the_fault_outlives_it(gateway):
    connector = fault()
    sweeps.run_sweep()
    assert gateway.sent == [(connector.charge_point.identity, "Soft")]
    sweeps.run_sweep(now=later(5))  # still within wait_minutes: nothing
    assert len(gateway.sent) == 1
    connector.charge_point.last_seen_at = later(11)
    connector.charge_point.save()
    sweeps.run_sweep(now=later(11))
    assert [kind for _, kind in gateway.sent] == ["Soft", "Hard"]
    soft, hard = HealingAttempt.objects.order_by("created_at", "pk")
    assert (soft.kind, soft.outcome) == (ResetKind.SOFT, HealingOutcome.NOT_RECOVERED)
    assert (hard.kind, hard.outcome) == (ResetKind.HARD, HealingOutcome.SENT)
    assert hard.command.payload == {"type": "Hard"}


def test_a_reset_that_cleared_the_fault_is_recorded_as_recovered(gateway):
    connector = fault()
    sweeps.run_sweep()
    connector.status, connector.error_code = ConnectorStatus.AVAILABLE, ""
    connector.save()
    sweeps.run_sweep(now=later(sweeps.FAULT_HOLD_MINUTES + 1))
    (attempt,) = HealingAttempt.objects.all()
    assert attempt.outcome == HealingOutcome.RECOVERED
    assert attempt.incident.status == IncidentStatus.RESOLVED


def test_no_more_resets_a_day_than_the_policy_allows(gateway):
    connector = fault()
    HealingPolicyFactory(operator=connector.charge_point.operator, max_attempts_per_day=1)
    sweeps.run_sweep()
    sweeps.run_sweep(now=later(30))
    assert gateway.sent == [(connector.charge_point.identity, "Soft")]
    # Resolved and faulted again: a new incident, still the same charge point's day.
    Incident.objects.update(status=IncidentStatus.RESOLVED)
    sweeps.run_sweep(now=later(31))
    assert len(gateway.sent) == 1
    assert HealingAttempt.objects.count() == 1


def test_faults_without_self_heal_in_their_rule_are_left_alone(gateway):
    fault("GroundFailure")  # the default rule says: take it out of service, no reset
    sweeps.run_sweep()
    assert gateway.sent == [] and not HealingAttempt.objects.exists()


def test_a_disabled_policy_sends_nothing(gateway):
    connector = fault()
    HealingPolicyFactory(operator=connector.charge_point.operator, enabled=False)
    sweeps.run_sweep()
    assert gateway.sent == []


def test_a_refused_reset_is_recorded_and_counts_against_the_cap(gateway):
    gateway.status = CommandStatus.REJECTED
    connector = fault()
    sweeps.run_sweep()
    (attempt,) = HealingAttempt.objects.all()
    assert attempt.outcome == HealingOutcome.REFUSED and attempt.finished_at is not None
    sweeps.run_sweep(now=later(11))
    sweeps.run_sweep(now=later(30))
    assert [kind for _, kind in gateway.sent] == ["Soft", "Hard"]  # the default cap: 2 a day
    assert HealingAttempt.objects.filter(charge_point=connector.charge_point).count() == 2


def test_an_offline_charger_gets_a_refused_attempt_from_the_real_gateway():
    connector = fault()
    connector.charge_point.is_connected = False
    connector.charge_point.save()
    healing.run()
    sweeps.run_sweep(heal=False)
    healing.run()
    (attempt,) = HealingAttempt.objects.all()
    assert attempt.outcome == HealingOutcome.REFUSED
    assert "offline" in attempt.detail.lower()
