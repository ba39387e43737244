"""The issue's "done when": simulated chargers over a real socket to a real ASGI server
(PostgreSQL, Redis) driven into each fault; the sweep finds each with the right likely
cause, opens one incident (however the connector flaps) and closes it on recovery; the
self-healing sends a soft reset before a hard one and keeps to its daily cap.

The chargers run on an event loop of their own in a thread; the sweeps run in the test's
thread. Timestamps are backdated in the database instead of waiting.
"""

import asyncio
import datetime as dt
import time

import pytest
from django.utils import timezone
from ocpp.v16 import call

from diagnostics import sweeps
from diagnostics.defaults import DEFAULT_RULES
from diagnostics.models import (
    Cause,
    ConnectivityEvent,
    FaultRule,
    FindingKind,
    HealingAttempt,
    HealingOutcome,
    Incident,
    IncidentStatus,
)
from sessions.models import Transaction
from stations.models import ChargePoint
from tests.chargers import Chargers
from tests.factories import ChargePointFactory, IdTokenFactory, SiteFactory

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.live]


@pytest.fixture(autouse=True)
def default_rules(transactional_db):
    """The seeded default fault rules (a transactional test empties the tables after itself)."""
    for rule in DEFAULT_RULES:
        codes = {"error_code": rule["error_code"], "vendor_id": "", "vendor_error_code": ""}
        FaultRule.objects.get_or_create(operator=None, **codes, defaults=rule)


@pytest.fixture
def chargers(asgi_process):
    base, _ = asgi_process
    fleet = Chargers(base)
    yield fleet
    fleet.close()


def provision(identity, site=None, **fields):
    fields.setdefault("is_connected", False)
    fields.setdefault("last_seen_at", None)
    return ChargePointFactory(identity=identity, **({"site": site} if site else {}), **fields)


def sweep(minutes_later=0, heal=False):
    return sweeps.run_sweep(now=timezone.now() + dt.timedelta(minutes=minutes_later), heal=heal)


def open_of(kind, **filters):
    return list(Incident.objects.filter(status=IncidentStatus.OPEN, kind=kind, **filters))


def backdate_seen(identities, minutes):
    ChargePoint.objects.filter(identity__in=identities).update(
        last_seen_at=timezone.now() - dt.timedelta(minutes=minutes)
    )


def test_cable_fault_with_different_cars_flapping_connector_one_incident_closed_on_recovery(chargers):
    cp_row = provision("DIAG-CABLE")
    tags = ["CAR-0001", "CAR-0002", "CAR-0003"]
    for tag in tags:
        IdTokenFactory(token=tag)
    cp = chargers.start("DIAG-CABLE")

    async def cars_fail_one_after_another():
        for tag in tags:
            await cp.start_session(1, tag)
            await cp.fault(1, "EVCommunicationError", vendor_error_code="CP-STATE-E")
            await cp.recover(1)
            await cp.unplug(1)

    chargers.do(cars_fail_one_after_another())
    # The connector flaps: Faulted, Available, Faulted, with sweeps in between.
    chargers.do(cp.fault(1, "EVCommunicationError"))
    sweep()
    chargers.do(cp.recover(1))
    sweep()
    chargers.do(cp.fault(1, "EVCommunicationError"))
    sweep()

    (incident,) = open_of(FindingKind.FAULTED, charge_point=cp_row)
    assert Incident.objects.filter(kind=FindingKind.FAULTED).count() == 1
    assert incident.cause == Cause.CABLE
    assert incident.rule.error_code == "EVCommunicationError"  # the rule alone says: the vehicle
    assert incident.evidence["cars_failing"] == tags
    # The evidence of the first sweep (the flaps after it changed nothing worth a finding).
    assert incident.evidence["error_counts_24h"]["EVCommunicationError"] == 4
    assert incident.findings.count() == 1
    assert "3 different cars" in incident.findings.order_by("detected_at").first().summary

    chargers.do(cp.recover(1))
    sweep(minutes_later=sweeps.FAULT_HOLD_MINUTES + 1)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED and incident.resolution


def test_firmware_wide_fault_blames_the_software_while_other_versions_are_fine(chargers):
    site = SiteFactory()
    new = [f"DIAG-FW-NEW-{i}" for i in range(3)]
    old = [f"DIAG-FW-OLD-{i}" for i in range(2)]
    for identity in new + old:
        provision(identity, site=site)
    sims = [chargers.start(i, firmware_version="2.1.0", vendor="Alfen", model="Eve") for i in new]
    sims += [chargers.start(i, firmware_version="2.0.4", vendor="Alfen", model="Eve") for i in old]

    async def new_ones_fail():
        for sim in sims[:3]:
            await sim.fault(1, "OtherError", vendor_error_code="FW-0xE1")

    chargers.do(new_ones_fail())
    sweep()
    (fw,) = open_of(FindingKind.FIRMWARE_WIDE)
    assert fw.cause == Cause.SOFTWARE
    assert fw.evidence["firmware_version"] == "2.1.0"
    assert fw.evidence["failing_units"] == new
    assert fw.evidence["failing_on_other_versions"] == 0
    units = open_of(FindingKind.FAULTED)
    assert len(units) == 3 and {u.cause for u in units} == {Cause.SOFTWARE}

    async def recover_all():
        for sim in sims[:3]:
            await sim.recover(1)

    chargers.do(recover_all())
    sweep(minutes_later=sweeps.FAULT_HOLD_MINUTES + 1)
    fw.refresh_from_db()
    assert fw.status == IncidentStatus.RESOLVED


def test_site_power_drop_and_a_silent_charger_found_and_closed_when_back(chargers):
    site, elsewhere = SiteFactory(), SiteFactory()
    at_site = [f"DIAG-SITE-{i}" for i in range(3)]
    for identity in at_site:
        provision(identity, site=site)
    provision("DIAG-SILENT", site=elsewhere)
    provision("DIAG-FINE", site=elsewhere)
    sims = [chargers.start(i) for i in at_site]
    silent = chargers.start("DIAG-SILENT")
    chargers.start("DIAG-FINE")

    async def power_cut():
        await asyncio.gather(*(sim.go_offline(abrupt=True) for sim in sims))

    chargers.do(power_cut())
    backdate_seen(at_site, minutes=20)  # the cut was 20 minutes ago
    backdate_seen(["DIAG-SILENT"], minutes=45)  # its socket is open, but nothing came for 45 min
    sweep()

    (site_incident,) = open_of(FindingKind.SITE_POWER)
    assert site_incident.site == site and site_incident.cause == Cause.GRID
    assert site_incident.evidence["offline"] == at_site
    offline = {i.charge_point.identity: i for i in open_of(FindingKind.OFFLINE)}
    assert set(offline) == {*at_site, "DIAG-SILENT"}
    assert {offline[i].cause for i in at_site} == {Cause.GRID}
    assert offline["DIAG-SILENT"].cause == Cause.CONNECTIVITY
    assert offline["DIAG-SILENT"].evidence["socket_connected"] is True

    async def power_back():
        await asyncio.gather(*(sim.come_back() for sim in sims))
        await silent.heartbeat()

    chargers.do(power_back())
    sweep()
    site_incident.refresh_from_db()
    assert site_incident.status == IncidentStatus.RESOLVED
    assert open_of(FindingKind.OFFLINE) == []


def test_stuck_session_and_backwards_meter_found_then_closed(chargers):
    provision("DIAG-STUCK")
    provision("DIAG-METER")
    IdTokenFactory(token="CAR-STUCK")
    IdTokenFactory(token="CAR-METER")
    stuck = chargers.start("DIAG-STUCK")
    meter = chargers.start("DIAG-METER")

    started = chargers.do(stuck.start_session(1, "CAR-STUCK"))
    long_ago = timezone.now() - dt.timedelta(hours=2)
    Transaction.objects.filter(pk=started.transaction_id).update(started_at=long_ago, last_meter_at=long_ago)

    metered = chargers.do(meter.start_session(1, "CAR-METER"))

    async def backwards():
        now = dt.datetime.now(dt.UTC)
        for seconds, wh in [(-120, 50_000), (-60, 51_000), (-30, 20_000)]:
            stamp = (now + dt.timedelta(seconds=seconds)).isoformat()
            await meter.call(
                call.MeterValues(
                    connector_id=1,
                    transaction_id=metered.transaction_id,
                    meter_value=[
                        {
                            "timestamp": stamp,
                            "sampledValue": [
                                {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
                            ],
                        }
                    ],
                )
            )

    chargers.do(backwards())
    sweep()

    (stuck_incident,) = open_of(FindingKind.STUCK_SESSION)
    assert stuck_incident.evidence["transaction_id"] == started.transaction_id
    assert stuck_incident.cause == Cause.SOFTWARE
    (meter_incident,) = open_of(FindingKind.METER_ANOMALY)
    assert meter_incident.cause == Cause.HARDWARE
    assert [s["kind"] for s in meter_incident.evidence["steps"]] == ["backwards"]
    assert meter_incident.evidence["steps"][0]["from_wh"] == 51_000

    chargers.do(stuck.stop_session(1))
    sweep()
    stuck_incident.refresh_from_db()
    assert stuck_incident.status == IncidentStatus.RESOLVED
    sweep(minutes_later=sweeps.METER_WINDOW_HOURS * 60 + 5)
    meter_incident.refresh_from_db()
    assert meter_incident.status == IncidentStatus.RESOLVED


def test_self_healing_soft_before_hard_and_no_more_than_the_daily_cap(chargers, settings):
    settings.DIAGNOSTICS_RESET_TIMEOUT = 10
    row = provision("DIAG-HEAL")
    sim = chargers.start("DIAG-HEAL")
    chargers.do(sim.fault(1, "InternalError"))

    sweep(heal=True)
    assert chargers.do(sim.wait_for_command("Reset", 1)) == {"type": "Soft"}
    chargers.do(sim.wait_booted(20))  # it reboots, still faulted
    sweep(minutes_later=5, heal=True)  # within wait_minutes: nothing
    backdate_seen(["DIAG-HEAL"], minutes=-30)  # the clock jumps below: keep it online meanwhile
    sweep(minutes_later=11, heal=True)
    assert chargers.do(sim.wait_for_command("Reset", 2)) == {"type": "Hard"}
    chargers.do(sim.wait_booted(20))
    backdate_seen(["DIAG-HEAL"], minutes=-120)
    sweep(minutes_later=40, heal=True)  # soft and hard both tried: a technician's turn
    (incident,) = open_of(FindingKind.FAULTED, charge_point=row)
    assert incident.cause == Cause.SOFTWARE and incident.rule.self_heal

    # It clears, then faults again the same day: a new incident, but the daily cap (2) is used.
    chargers.do(sim.recover(1))
    sweep(minutes_later=60, heal=True)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    chargers.do(sim.fault(1, "InternalError"))
    sweep(minutes_later=70, heal=True)
    assert len(open_of(FindingKind.FAULTED, charge_point=row)) == 1

    resets = [p for action, p in sim.received if action == "Reset"]
    assert resets == [{"type": "Soft"}, {"type": "Hard"}]
    soft, hard = HealingAttempt.objects.filter(charge_point=row).order_by("created_at", "pk")
    assert (soft.kind, soft.outcome) == ("Soft", HealingOutcome.NOT_RECOVERED)
    assert (hard.kind, hard.outcome) == ("Hard", HealingOutcome.NOT_RECOVERED)
    assert soft.command.status == hard.command.status == "accepted"


def test_a_charger_whose_connection_keeps_dropping_is_a_connectivity_problem(chargers):
    row = provision("DIAG-FLAKY")
    sim = chargers.start("DIAG-FLAKY")

    for n in range(1, sweeps.DISCONNECTS_MIN + 1):
        chargers.do(sim.go_offline())
        # Back only once the server has recorded the drop (a busy machine takes its time).
        deadline = time.monotonic() + 20
        while ConnectivityEvent.objects.filter(charge_point=row, online=False).count() < n:
            assert time.monotonic() < deadline, f"drop {n} was not recorded"
            time.sleep(0.05)
        chargers.do(sim.come_back())
    sweep()
    (incident,) = open_of(FindingKind.UNSTABLE_CONNECTION, charge_point=row)
    assert incident.cause == Cause.CONNECTIVITY
    assert incident.evidence["disconnects"] >= sweeps.DISCONNECTS_MIN
    assert open_of(FindingKind.OFFLINE) == []  # it is online now
