"""The diagnostic sweeps: set-based queries over the whole fleet that find what is wrong.

Each detector runs a fixed number of queries, however many chargers there are (the rows it
reads grow only with the problems found), and returns ``Detected`` problems. ``run_sweep``
runs them all, hands the problems to the incidents service (open, update, resolve) and then
lets self-healing act. Safe to run twice: a second sweep at once waits for the first (an
advisory lock on PostgreSQL), and a sweep that finds the same problems changes nothing.

Thresholds are module constants; a setting ``DIAGNOSTICS_<NAME>`` (e.g.
``DIAGNOSTICS_REBOOT_LOOP_MIN = 8``) overrides one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Max, Min, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from sessions.models import MeterSample, Transaction, TransactionStatus
from stations.models import (
    ChargePoint,
    Command,
    CommandStatus,
    Connector,
    ConnectorStatus,
    OcppMessage,
    PowerType,
    RegistrationStatus,
    StatusChange,
)

from .causes import EV_COMM, NO_ERROR, RuleBook, code_cause, ev_comm_verdict
from .models import Cause, ConnectivityEvent, FindingKind, Severity

logger = logging.getLogger(__name__)

# --- Thresholds -------------------------------------------------------------------------------
OFFLINE_GRACE_MINUTES = 5  # a disconnected charger gets this long to come back
SITE_MIN_UNITS = 2  # a "site" drop needs at least this many chargers at the site
SITE_DOWN_SHARE = 0.75  # … and this share of them offline or reporting grid errors
SITE_TOGETHER_MINUTES = 15  # … having gone silent within this many minutes of each other
FAULT_HOLD_MINUTES = 15  # a connector must stay clear this long before its fault counts as gone
EVIDENCE_HOURS = 24  # errors and sessions looked at for the likely cause
STUCK_NO_METER_MINUTES = 45  # an active session without meter values for this long is stuck
STUCK_AFTER_LEFT_MINUTES = 30  # … or with the connector Available/Finishing this long
UNDERPERF_WINDOW_MINUTES = 30
UNDERPERF_MIN_SPAN_MINUTES = 10  # samples must cover at least this much of the window
UNDERPERF_RATIO = 0.5  # delivered below this share of the expected power is under-performance
TAPER_FROM_SOC = 80  # the car's own taper starts here …
FULL_SOC = 97  # … and from here the battery is full: never under-performance
TAPER_FLOOR = 0.15  # the share of full power a car still takes just below FULL_SOC
PROFILE_LOOKBACK_DAYS = 7
AC_VOLTAGE = 230
DC_VOLTAGE = 400
METER_WINDOW_HOURS = 3
METER_JUMP_FACTOR = 1.5  # a step above this times the connector's maximum for the time is a jump
METER_JUMP_SLACK_WH = 1000
REBOOT_WINDOW_MINUTES = 60
REBOOT_LOOP_MIN = 5
ERROR_STORM_WINDOW_MINUTES = 60
ERROR_STORM_MIN = 10
STUCK_STATUS_MINUTES = 120
FIRMWARE_MIN_UNITS = 3  # units on one firmware with the same fault
FIRMWARE_MIN_SHARE = 0.5  # … this share of that firmware's units
FIRMWARE_OTHERS_MAX_SHARE = 0.2  # … while other versions of the same model are at most this bad
DISCONNECTS_WINDOW_HOURS = 24
DISCONNECTS_MIN = 6  # connection drops in the window that make a connection unstable
CONNECTIVITY_KEEP_DAYS = 400  # older connectivity events are deleted (uptime reports read a year back)
LOCK_ID = 0x43445357  # "CDSW": the sweep's advisory lock

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
SOC = "SoC"


def threshold(name: str):
    return getattr(settings, f"DIAGNOSTICS_{name}", globals()[name])


@dataclass
class Detected:
    """One problem of one unit as a sweep sees it now."""

    kind: str
    key: str
    operator_id: int
    title: str
    summary: str
    cause: str = Cause.UNKNOWN
    severity: str = Severity.MAJOR
    site_id: int | None = None
    charge_point_id: int | None = None
    connector_pk: int | None = None
    connector_number: int | None = None
    rule_id: int | None = None
    self_heal: bool = False
    evidence: dict = field(default_factory=dict)
    # What must differ for an open incident to get a new Finding (volatile figures left out).
    change_key: str = ""


@dataclass
class Context:
    now: dt.datetime
    rules: RuleBook
    found: list[Detected] = field(default_factory=list)
    # Shared between detectors: charge points offline, connectors faulted, errors of the day.
    offline: dict[int, dict] = field(default_factory=dict)
    site_down: dict[int, dict] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    faulted: dict[tuple[int, int], dict] = field(default_factory=dict)

    def add(self, detected: Detected) -> None:
        self.found.append(detected)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _minutes(delta: dt.timedelta) -> int:
    return max(0, int(delta.total_seconds() // 60))


def _cp_fields(prefix: str = "") -> dict:
    p = prefix
    return {
        "cp_id": f"{p}id" if p else "pk",
        "identity": f"{p}identity",
        "operator_id": f"{p}operator_id",
        "site_id": f"{p}site_id",
        "vendor": f"{p}vendor",
        "model": f"{p}model",
        "firmware": f"{p}firmware_version",
    }


def _values(qs, fields: dict, *extra: str) -> list[dict]:
    """Rows with the fields renamed (``{name: lookup}``), plus ``extra`` under their own names."""
    lookups = list(fields.values()) + list(extra)
    out = []
    names = list(fields.keys()) + list(extra)
    for row in qs.values_list(*lookups):
        out.append(dict(zip(names, row, strict=True)))
    return out


# --- Shared reads -----------------------------------------------------------------------------


def _load_errors(ctx: Context) -> None:
    """Every error report of the last day (rows grow with errors, not with chargers)."""
    since = ctx.now - dt.timedelta(hours=threshold("EVIDENCE_HOURS"))
    qs = (
        StatusChange.objects.filter(timestamp__gte=since, timestamp__lte=ctx.now + dt.timedelta(minutes=5))
        .exclude(error_code__in=NO_ERROR)
        .order_by("timestamp", "id")
    )
    ctx.errors = _values(
        qs,
        {"cp_id": "charge_point_id", "connector_number": "connector_number"},
        "status",
        "error_code",
        "vendor_id",
        "vendor_error_code",
        "timestamp",
    )


# --- Offline units and whole sites --------------------------------------------------------------


def detect_offline(ctx: Context) -> None:
    now = ctx.now
    factor = settings.CHARGEDESK_OFFLINE_AFTER_HEARTBEATS
    grace = dt.timedelta(minutes=threshold("OFFLINE_GRACE_MINUTES"))
    known = ChargePoint.objects.filter(
        registration_status=RegistrationStatus.ACCEPTED, last_seen_at__isnull=False
    )
    silent = Q(is_connected=False, last_seen_at__lt=now - grace)
    # One condition per heartbeat interval in use (a fleet has few): the database does the work.
    for interval in known.order_by().values_list("heartbeat_interval", flat=True).distinct():
        allowed = max(dt.timedelta(seconds=interval * factor), grace)
        silent |= Q(heartbeat_interval=interval, last_seen_at__lt=now - allowed)
    rows = _values(known.filter(silent), _cp_fields(), "last_seen_at", "is_connected", "heartbeat_interval")
    ctx.offline = {r["cp_id"]: r for r in rows}

    # Grid errors reported right now, by charge point (connector 0 or any connector).
    grid_codes = ["UnderVoltage", "OverVoltage"]
    grid_cps = set(
        Connector.objects.filter(error_code__in=grid_codes).values_list("charge_point_id", flat=True)
    ) | set(ChargePoint.objects.filter(error_code__in=grid_codes).values_list("pk", flat=True))

    site_ids_down = {r["site_id"] for r in rows if r["site_id"]}
    if grid_cps:
        site_ids_down |= set(
            ChargePoint.objects.filter(pk__in=grid_cps, site__isnull=False).values_list("site_id", flat=True)
        )
    if site_ids_down:
        units = _values(
            ChargePoint.objects.filter(
                registration_status=RegistrationStatus.ACCEPTED, site_id__in=site_ids_down
            ).order_by("pk"),
            _cp_fields(),
            "site__name",
        )
    else:
        units = []
    by_site: dict[int, list[dict]] = defaultdict(list)
    for unit in units:
        by_site[unit["site_id"]].append(unit)
    together = dt.timedelta(minutes=threshold("SITE_TOGETHER_MINUTES"))
    for site_id, members in by_site.items():
        if len(members) < threshold("SITE_MIN_UNITS"):
            continue
        off = [m for m in members if m["cp_id"] in ctx.offline]
        grid = [m for m in members if m["cp_id"] in grid_cps]
        down_ids = {m["cp_id"] for m in off} | {m["cp_id"] for m in grid}
        if len(down_ids) / len(members) < threshold("SITE_DOWN_SHARE"):
            continue
        seen = sorted(ctx.offline[m["cp_id"]]["last_seen_at"] for m in off)
        if len(seen) >= 2 and seen[-1] - seen[0] > together and not grid:
            continue  # they drifted off one by one: each its own problem, not the site's power
        first = members[0]
        evidence = {
            "site": first["site__name"],
            "units": len(members),
            "offline": sorted(m["identity"] for m in off),
            "grid_errors": sorted(m["identity"] for m in grid),
            "went_silent_between": [_iso(seen[0]), _iso(seen[-1])] if seen else None,
        }
        ctx.site_down[site_id] = evidence
        ctx.add(
            Detected(
                kind=FindingKind.SITE_POWER,
                key=f"site_power:site:{site_id}",
                operator_id=first["operator_id"],
                site_id=site_id,
                cause=Cause.GRID,
                severity=Severity.CRITICAL,
                title=f"Site {first['site__name']} down: {len(down_ids)} of {len(members)} chargers",
                summary=(
                    f"{len(off)} of {len(members)} chargers at {first['site__name']} went offline together"
                    + (f", {len(grid)} report grid errors" if grid else "")
                    + ": likely a power cut at the site or the grid."
                ),
                evidence=evidence,
                change_key=f"{len(down_ids)}/{len(members)}",
            )
        )

    weak = Counter(e["cp_id"] for e in ctx.errors if e["error_code"] == "WeakSignal")
    for cp_id, row in ctx.offline.items():
        silent_for = now - row["last_seen_at"]
        evidence = {
            "identity": row["identity"],
            "last_seen_at": _iso(row["last_seen_at"]),
            "silent_minutes": _minutes(silent_for),
            "heartbeat_interval": row["heartbeat_interval"],
            "socket_connected": row["is_connected"],
            "weak_signal_reports_24h": weak.get(cp_id, 0),
        }
        if row["site_id"] in ctx.site_down:
            cause, why = Cause.GRID, "the whole site went down at the same time"
        elif weak.get(cp_id):
            cause, why = Cause.CONNECTIVITY, f"it reported WeakSignal {weak[cp_id]} time(s) in the last day"
        else:
            cause, why = Cause.CONNECTIVITY, "it stopped talking while the rest of its site is fine"
        evidence["reason"] = why
        ctx.add(
            Detected(
                kind=FindingKind.OFFLINE,
                key=f"offline:cp:{cp_id}",
                operator_id=row["operator_id"],
                site_id=row["site_id"],
                charge_point_id=cp_id,
                cause=cause,
                severity=Severity.MAJOR,
                title=f"{row['identity']} offline",
                summary=f"{row['identity']} silent for {_minutes(silent_for)} min; likely {cause}: {why}.",
                evidence=evidence,
                change_key=cause,
            )
        )


# --- Faults, their causes, firmware-wide faults --------------------------------------------------


def detect_faults(ctx: Context) -> None:
    now = ctx.now
    hold_since = now - dt.timedelta(minutes=threshold("FAULT_HOLD_MINUTES"))
    current = _values(
        Connector.objects.filter(status=ConnectorStatus.FAULTED),
        _cp_fields("charge_point__"),
        "pk",
        "connector_id",
        "error_code",
        "vendor_error_code",
        "status_updated_at",
    )
    whole = _values(
        ChargePoint.objects.filter(status=ConnectorStatus.FAULTED),
        _cp_fields(),
        "error_code",
        "status_updated_at",
    )
    # Faulted a short while ago and Available now: the same fault until it stays clear (flaps).
    recent = _values(
        StatusChange.objects.filter(status=ConnectorStatus.FAULTED, timestamp__gte=hold_since).order_by(
            "timestamp", "id"
        ),
        _cp_fields("charge_point__"),
        "connector_number",
        "connector_id",
        "error_code",
        "vendor_id",
        "vendor_error_code",
        "timestamp",
    )
    faulted: dict[tuple[int, int], dict] = {}
    for r in recent:
        r["connector_pk"] = r.pop("connector_id")
        r["faulted_now"] = False
        faulted[(r["cp_id"], r["connector_number"])] = r
    for r in current:
        r["connector_pk"] = r.pop("pk")
        r["connector_number"] = r.pop("connector_id")
        r["faulted_now"] = True
        r.setdefault("vendor_id", "")
        faulted[(r["cp_id"], r["connector_number"])] = r
    for r in whole:
        r["connector_pk"], r["connector_number"], r["vendor_error_code"] = None, 0, ""
        r["faulted_now"] = True
        faulted[(r["cp_id"], 0)] = r
    ctx.faulted = faulted
    if not faulted:
        return

    errors_at: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for e in ctx.errors:
        errors_at[(e["cp_id"], e["connector_number"])].append(e)

    # Cars at connectors with EV communication errors: which failed, which charged fine.
    ev_comm_units = {k for k in faulted if any(e["error_code"] == EV_COMM for e in errors_at.get(k, ()))}
    sessions: dict[tuple[int, int], list[dict]] = defaultdict(list)
    if ev_comm_units:
        since = now - dt.timedelta(hours=threshold("EVIDENCE_HOURS"))
        qs = Transaction.objects.filter(
            Q(started_at__gte=since) | Q(status=TransactionStatus.ACTIVE),
            charge_point_id__in=sorted({cp for cp, _ in ev_comm_units}),
        ).order_by("started_at")
        for t in qs.values(
            "charge_point_id", "connector_number", "id_tag", "started_at", "stopped_at", "energy_wh"
        ):
            sessions[(t["charge_point_id"], t["connector_number"])].append(t)

    firmware_candidates: dict[tuple, set[int]] = defaultdict(set)
    for f in faulted.values():
        code = f["error_code"] or "OtherError"
        firmware_candidates[(f["operator_id"], f["vendor"], f["model"], f["firmware"], code)].add(f["cp_id"])
    firmware_wide = _firmware_wide(ctx, firmware_candidates)

    for (cp_id, number), f in faulted.items():
        code = f["error_code"] or "OtherError"
        history = errors_at.get((cp_id, number), [])
        vendor_id = f.get("vendor_id") or next(
            (e["vendor_id"] for e in reversed(history) if e["vendor_id"]), ""
        )
        match = ctx.rules.match(
            operator_id=f["operator_id"],
            error_code=code,
            vendor_id=vendor_id or f["vendor"],
            vendor_error_code=f["vendor_error_code"],
        )
        cause, reasons = match.cause, [f"rule: {match.title}"]
        if match.rule_id is None and code_cause(code):
            cause = code_cause(code)
            reasons = [f"{code} points at {cause}"]
        evidence = {
            "identity": f["identity"],
            "connector": number,
            "error_code": code,
            "vendor_id": vendor_id,
            "vendor_error_code": f["vendor_error_code"],
            "firmware_version": f["firmware"],
            "faulted_now": f["faulted_now"],
            "error_counts_24h": dict(Counter(e["error_code"] for e in history)),
            "first_error_at": _iso(history[0]["timestamp"]) if history else None,
            "last_error_at": _iso(history[-1]["timestamp"]) if history else None,
            **match.as_evidence(),
        }
        if (cp_id, number) in ev_comm_units:
            failing, fine = _cars(history, sessions.get((cp_id, number), []), now)
            evidence["cars_failing"] = sorted(failing)
            evidence["cars_fine"] = sorted(fine)
            verdict = ev_comm_verdict(failing_tags=failing, fine_tags=fine)
            if verdict:
                cause = verdict.cause
                reasons.append(verdict.reason)
        fw = firmware_wide.get((f["operator_id"], f["vendor"], f["model"], f["firmware"], code))
        if fw and cp_id in fw:
            cause = Cause.SOFTWARE
            reasons.append(f"the same {code} on {len(fw)} units with firmware {f['firmware']}")
        evidence["reasons"] = reasons
        title = f"{f['identity']}"
        title += f" #{number}" if number else ""
        title += f": {match.title}"
        ctx.add(
            Detected(
                kind=FindingKind.FAULTED,
                key=f"faulted:cp:{cp_id}:{number}",
                operator_id=f["operator_id"],
                site_id=f["site_id"],
                charge_point_id=cp_id,
                connector_pk=f["connector_pk"],
                connector_number=number,
                cause=cause,
                severity=match.severity,
                title=title[:200],
                summary=f"{code} at {f['identity']}"
                + (f" connector {number}" if number else "")
                + f"; likely {cause}: {'; '.join(reasons)}.",
                rule_id=match.rule_id,
                self_heal=match.self_heal,
                evidence=evidence,
                change_key=f"{code}|{f['vendor_error_code']}|{cause}|{match.rule_id}",
            )
        )


def _cars(history: list[dict], sessions: list[dict], now: dt.datetime) -> tuple[set[str], set[str]]:
    """Cars (id tags) whose session met an EV communication error, and cars that charged fine."""
    margin = dt.timedelta(minutes=2)
    times = [e["timestamp"] for e in history if e["error_code"] == EV_COMM]
    failing, fine = set(), set()
    for s in sessions:
        end = (s["stopped_at"] or now) + margin
        if any(s["started_at"] - margin <= t <= end for t in times):
            failing.add(s["id_tag"])
        elif s["energy_wh"] and s["energy_wh"] > 0:
            fine.add(s["id_tag"])
    return failing, fine - failing


def _firmware_wide(ctx: Context, candidates: dict[tuple, set[int]]) -> dict[tuple, set[int]]:
    """The same fault on most units of one firmware version while other versions are fine."""
    min_units = threshold("FIRMWARE_MIN_UNITS")
    heavy = {k: v for k, v in candidates.items() if len(v) >= min_units}
    if not heavy:
        return {}
    operators = sorted({k[0] for k in heavy})
    totals = {
        (r["operator_id"], r["vendor"], r["model"], r["firmware_version"]): r["n"]
        for r in ChargePoint.objects.filter(
            operator_id__in=operators, registration_status=RegistrationStatus.ACCEPTED
        )
        .values("operator_id", "vendor", "model", "firmware_version")
        .annotate(n=Count("pk"))
        .order_by()
    }
    out = {}
    for key, units in heavy.items():
        op, vendor, model, fw, code = key
        total = totals.get((op, vendor, model, fw), 0)
        if not total or len(units) / total < threshold("FIRMWARE_MIN_SHARE"):
            continue
        others_total = sum(
            n for (o, v, m, f), n in totals.items() if (o, v, m) == (op, vendor, model) and f != fw
        )
        if not others_total:
            continue  # nothing to compare with: it may be the model, not the firmware
        others_bad = sum(
            len(u)
            for (o, v, m, f, c), u in candidates.items()
            if (o, v, m, c) == (op, vendor, model, code) and f != fw
        )
        if others_bad / others_total > threshold("FIRMWARE_OTHERS_MAX_SHARE"):
            continue
        out[key] = units
        identities = sorted(ctx.faulted[(cp, n)]["identity"] for (cp, n) in ctx.faulted if cp in units)
        evidence = {
            "vendor": vendor,
            "model": model,
            "firmware_version": fw,
            "error_code": code,
            "failing_units": sorted(set(identities)),
            "units_on_version": total,
            "units_on_other_versions": others_total,
            "failing_on_other_versions": others_bad,
        }
        ctx.add(
            Detected(
                kind=FindingKind.FIRMWARE_WIDE,
                key=f"firmware_wide:op:{op}:{vendor}:{model}:{fw}:{code}"[:120],
                operator_id=op,
                cause=Cause.SOFTWARE,
                severity=Severity.CRITICAL,
                title=f"{code} on {len(units)} of {total} {vendor} {model} units with firmware {fw}"[:200],
                summary=(
                    f"{len(units)} of {total} units on firmware {fw} report {code}, "
                    f"{others_bad} of {others_total} on other versions: likely the firmware."
                )[:255],
                evidence=evidence,
                change_key=f"{len(units)}/{total}",
            )
        )
    return out


# --- Sessions -------------------------------------------------------------------------------------


def detect_stuck_sessions(ctx: Context) -> None:
    now = ctx.now
    no_meter_since = now - dt.timedelta(minutes=threshold("STUCK_NO_METER_MINUTES"))
    left_since = now - dt.timedelta(minutes=threshold("STUCK_AFTER_LEFT_MINUTES"))
    active = Transaction.objects.filter(status=TransactionStatus.ACTIVE)
    fields = _cp_fields("charge_point__")
    extra = ("pk", "connector_number", "connector_id", "id_tag", "started_at", "last_meter_at")
    silent = _values(
        active.annotate(last_sign=Coalesce("last_meter_at", "started_at")).filter(
            last_sign__lt=no_meter_since
        ),
        fields,
        *extra,
    )
    left = _values(
        active.filter(
            connector__status__in=[ConnectorStatus.AVAILABLE, ConnectorStatus.FINISHING],
            connector__status_updated_at__lt=left_since,
            connector__status_updated_at__gt=F("started_at"),
        ),
        fields,
        *extra,
        "connector__status",
        "connector__status_updated_at",
    )
    rows: dict[int, dict] = {r["pk"]: r for r in silent}
    for r in left:
        rows[r["pk"]] = {**rows.get(r["pk"], {}), **r}
    for tx_id, r in rows.items():
        number = r["connector_number"]
        evidence = {
            "identity": r["identity"],
            "transaction_id": tx_id,
            "connector": number,
            "id_tag": r["id_tag"],
            "started_at": _iso(r["started_at"]),
            "last_meter_at": _iso(r["last_meter_at"]),
            "charger_offline": r["cp_id"] in ctx.offline,
        }
        if r.get("connector__status"):
            evidence["connector_status"] = r["connector__status"]
            evidence["connector_status_since"] = _iso(r["connector__status_updated_at"])
            went = r["connector__status_updated_at"]
            why = (
                f"the connector went {r['connector__status']} at {went:%H:%M} UTC but no StopTransaction came"
            )
        else:
            last = r["last_meter_at"] or r["started_at"]
            why = f"no meter values for {_minutes(now - last)} min"
        # Offline, the StopTransaction may sit in the charger's queue; online, it lost track.
        cause = Cause.CONNECTIVITY if r["cp_id"] in ctx.offline else Cause.SOFTWARE
        evidence["reason"] = why
        ctx.add(
            Detected(
                kind=FindingKind.STUCK_SESSION,
                key=f"stuck_session:cp:{r['cp_id']}:{number}",
                operator_id=r["operator_id"],
                site_id=r["site_id"],
                charge_point_id=r["cp_id"],
                connector_pk=r["connector_id"],
                connector_number=number,
                cause=cause,
                severity=Severity.WARNING,
                title=f"{r['identity']} #{number}: session {tx_id} stuck",
                summary=f"Session {tx_id} at {r['identity']} #{number} looks stuck: {why}.",
                evidence=evidence,
                change_key=f"{tx_id}|{'left' if r.get('connector__status') else 'silent'}|{cause}",
            )
        )


def _dec(value) -> float | None:
    if value is None:
        return None
    try:
        return float(Decimal(value))
    except (InvalidOperation, ValueError, TypeError):
        return None


def _profile_limit_w(
    payload: dict, *, power_type: str, started_at: dt.datetime, at: dt.datetime, now: dt.datetime
):
    """The limit (W) a SetChargingProfile payload puts on a connector now, or None. Bad payloads
    (a charger accepted something odd) are ignored, never raised."""
    try:
        profile = payload["csChargingProfiles"]
        schedule = profile["chargingSchedule"]
        unit = schedule.get("chargingRateUnit", "W")
        periods = sorted(schedule["chargingSchedulePeriod"], key=lambda p: p.get("startPeriod", 0))
        valid_to = profile.get("validTo")
        if valid_to and dt.datetime.fromisoformat(valid_to.replace("Z", "+00:00")) <= now:
            return None
        if profile.get("chargingProfilePurpose") == "TxProfile" and at < started_at:
            return None  # it was for an earlier session
        kind = profile.get("chargingProfileKind", "Absolute")
        if kind == "Relative":
            start = started_at
        elif schedule.get("startSchedule"):
            start = dt.datetime.fromisoformat(schedule["startSchedule"].replace("Z", "+00:00"))
        else:
            start = started_at if profile.get("chargingProfilePurpose") == "TxProfile" else at
        elapsed = (now - start).total_seconds()
        if kind == "Recurring":
            elapsed %= 604_800 if profile.get("recurrencyKind") == "Weekly" else 86_400
        duration = schedule.get("duration")
        if duration and elapsed > duration:
            return None
        if elapsed < 0:
            return None  # not in force yet
        current = None
        for p in periods:
            if p.get("startPeriod", 0) <= elapsed:
                current = p
        if current is None:
            return None
        limit = float(current["limit"])
        if unit == "A":
            if power_type == PowerType.DC:
                limit *= DC_VOLTAGE
            else:
                phases = int(current.get("numberPhases") or (1 if power_type == PowerType.AC_1_PHASE else 3))
                limit *= AC_VOLTAGE * phases
        return limit
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def detect_under_performance(ctx: Context) -> None:
    now = ctx.now
    window = dt.timedelta(minutes=threshold("UNDERPERF_WINDOW_MINUTES"))
    since = now - window
    charging = Transaction.objects.filter(
        status=TransactionStatus.ACTIVE,
        connector__status=ConnectorStatus.CHARGING,
        started_at__lte=now - dt.timedelta(minutes=threshold("UNDERPERF_MIN_SPAN_MINUTES")),
    )
    txs = {
        r["pk"]: r
        for r in _values(
            charging,
            _cp_fields("charge_point__"),
            "pk",
            "connector_number",
            "connector_id",
            "connector__max_power_kw",
            "connector__power_type",
            "id_tag",
            "started_at",
        )
    }
    if not txs:
        return
    figures = {
        r["transaction_id"]: r
        for r in MeterSample.objects.filter(
            transaction__status=TransactionStatus.ACTIVE,
            transaction__connector__status=ConnectorStatus.CHARGING,
            timestamp__gte=since,
            timestamp__lte=now,
            phase="",
        )
        .values("transaction_id")
        .annotate(
            wh_min=Min("energy_wh", filter=Q(measurand=ENERGY)),
            wh_max=Max("energy_wh", filter=Q(measurand=ENERGY)),
            t_min=Min("timestamp", filter=Q(measurand=ENERGY, energy_wh__isnull=False)),
            t_max=Max("timestamp", filter=Q(measurand=ENERGY, energy_wh__isnull=False)),
            n=Count("pk", filter=Q(measurand=ENERGY)),
            soc=Max("value", filter=Q(measurand=SOC)),
        )
        .order_by()
    }
    profiles: dict[tuple[int, int], tuple[dt.datetime, dict | None]] = {}
    commands = (
        Command.objects.filter(
            action__in=["SetChargingProfile", "ClearChargingProfile"],
            status=CommandStatus.ACCEPTED,
            created_at__gte=now - dt.timedelta(days=threshold("PROFILE_LOOKBACK_DAYS")),
            charge_point_id__in=charging.values("charge_point_id"),
        )
        .order_by("created_at")
        .values_list("charge_point_id", "action", "payload", "created_at")
    )
    for cp_id, action, payload, created in commands:
        payload = payload if isinstance(payload, dict) else {}
        number = payload.get("connectorId", payload.get("connector_id", 0))
        if action == "ClearChargingProfile":
            if number in (None, 0) and "connectorId" not in payload:
                for k in [k for k in profiles if k[0] == cp_id]:
                    profiles[k] = (created, None)
            else:
                profiles[(cp_id, number or 0)] = (created, None)
        else:
            profiles[(cp_id, number if isinstance(number, int) else 0)] = (created, payload)

    span_min = dt.timedelta(minutes=threshold("UNDERPERF_MIN_SPAN_MINUTES"))
    for tx_id, t in txs.items():
        fig = figures.get(tx_id)
        if not fig or fig["n"] < 3 or fig["t_min"] is None or fig["t_max"] - fig["t_min"] < span_min:
            continue
        hours = (fig["t_max"] - fig["t_min"]).total_seconds() / 3600
        delivered_w = (_dec(fig["wh_max"]) - _dec(fig["wh_min"])) / hours
        max_w = (_dec(t["connector__max_power_kw"]) or 0) * 1000
        if max_w <= 0:
            continue
        expected_w, limits = max_w, {"connector_max_w": round(max_w)}
        for number in (0, t["connector_number"]):
            created_payload = profiles.get((t["cp_id"], number))
            if created_payload and created_payload[1]:
                limit = _profile_limit_w(
                    created_payload[1],
                    power_type=t["connector__power_type"],
                    started_at=t["started_at"],
                    at=created_payload[0],
                    now=now,
                )
                if limit is not None:
                    limits[f"profile_limit_w_connector_{number}"] = round(limit)
                    expected_w = min(expected_w, limit)
        soc = _dec(fig["soc"])
        if soc is not None:
            limits["soc"] = soc
            if soc >= threshold("FULL_SOC"):
                continue  # a full battery takes (almost) nothing: that is no fault
            taper_from = threshold("TAPER_FROM_SOC")
            if soc > taper_from:
                share = (soc - taper_from) / (threshold("FULL_SOC") - taper_from)
                taper = 1 - share * (1 - threshold("TAPER_FLOOR"))
                limits["taper_factor"] = round(taper, 3)
                expected_w = min(expected_w, max_w * taper)
        if delivered_w >= threshold("UNDERPERF_RATIO") * expected_w:
            continue
        evidence = {
            "identity": t["identity"],
            "connector": t["connector_number"],
            "transaction_id": tx_id,
            "id_tag": t["id_tag"],
            "delivered_kw": round(delivered_w / 1000, 2),
            "expected_kw": round(expected_w / 1000, 2),
            "window": [_iso(fig["t_min"]), _iso(fig["t_max"])],
            **limits,
        }
        ctx.add(
            Detected(
                kind=FindingKind.UNDER_PERFORMANCE,
                key=f"under_performance:cp:{t['cp_id']}:{t['connector_number']}",
                operator_id=t["operator_id"],
                site_id=t["site_id"],
                charge_point_id=t["cp_id"],
                connector_pk=t["connector_id"],
                connector_number=t["connector_number"],
                cause=Cause.HARDWARE,
                severity=Severity.WARNING,
                title=f"{t['identity']} #{t['connector_number']} delivers {delivered_w / 1000:.1f} kW "
                f"of {expected_w / 1000:.1f} kW expected",
                summary=(
                    f"Session {tx_id} gets {delivered_w / 1000:.1f} kW where {expected_w / 1000:.1f} kW is "
                    "expected after profile limits and the car's taper: likely derating of the power stage."
                )[:255],
                evidence=evidence,
                change_key=str(tx_id),
            )
        )


# --- Meter anomalies ------------------------------------------------------------------------------


def _meter_sql() -> str:
    if connection.vendor == "postgresql":
        seconds = "EXTRACT(EPOCH FROM (s.timestamp - s.prev_ts))"
        biggest = "GREATEST"
    else:
        seconds = "((julianday(s.timestamp) - julianday(s.prev_ts)) * 86400.0)"
        biggest = "MAX"
    ms = MeterSample._meta.db_table
    tx = Transaction._meta.db_table
    conn = Connector._meta.db_table
    # Only table names from the models and fixed SQL go into the text; values are parameters.
    return f"""
        SELECT s.transaction_id, s.timestamp, s.energy_wh, s.prev_wh, s.prev_ts
        FROM (
            SELECT m.transaction_id, m.timestamp, m.energy_wh,
                   LAG(m.energy_wh) OVER (PARTITION BY m.transaction_id ORDER BY m.timestamp) AS prev_wh,
                   LAG(m.timestamp) OVER (PARTITION BY m.transaction_id ORDER BY m.timestamp) AS prev_ts
            FROM {ms} m
            WHERE m.measurand = %s AND m.phase = '' AND m.transaction_id IS NOT NULL
              AND m.energy_wh IS NOT NULL AND m.timestamp >= %s AND m.timestamp <= %s
        ) s
        JOIN {tx} t ON t.id = s.transaction_id
        LEFT JOIN {conn} c ON c.id = t.connector_id
        WHERE s.prev_wh IS NOT NULL AND (
            s.energy_wh < s.prev_wh
            OR s.energy_wh - s.prev_wh >
               {biggest}({seconds}, 1) * COALESCE(c.max_power_kw, 350) / 3.6 * %s + %s
        )
        ORDER BY s.transaction_id, s.timestamp
    """  # noqa: S608


def detect_meter_anomalies(ctx: Context) -> None:
    now = ctx.now
    since = now - dt.timedelta(hours=threshold("METER_WINDOW_HOURS"))
    jumps: dict[int, list[dict]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(
            _meter_sql(),
            [ENERGY, since, now, threshold("METER_JUMP_FACTOR"), threshold("METER_JUMP_SLACK_WH")],
        )
        for tx_id, ts, wh, prev_wh, prev_ts in cursor.fetchall():
            jumps[tx_id].append({"at": ts, "wh": _dec(wh), "prev_wh": _dec(prev_wh), "prev_at": prev_ts})
    flagged_stops = dict(
        Transaction.objects.filter(stopped_at__gte=since)
        .exclude(energy_anomaly="")
        .values_list("pk", "energy_anomaly")
    )
    ids = set(jumps) | set(flagged_stops)
    if not ids:
        return
    txs = _values(
        Transaction.objects.filter(pk__in=sorted(ids)),
        _cp_fields("charge_point__"),
        "pk",
        "connector_number",
        "connector_id",
        "id_tag",
        "meter_start",
        "meter_stop",
    )
    by_unit: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for t in txs:
        by_unit[(t["cp_id"], t["connector_number"])].append(t)
    for (cp_id, number), unit_txs in by_unit.items():
        steps = []
        backwards = jumps_up = 0
        for t in unit_txs:
            for j in jumps.get(t["pk"], []):
                going_back = j["wh"] < j["prev_wh"]
                backwards += going_back
                jumps_up += not going_back
                steps.append(
                    {
                        "transaction_id": t["pk"],
                        "at": _iso(_aware(j["at"])),
                        "from_wh": j["prev_wh"],
                        "to_wh": j["wh"],
                        "kind": "backwards" if going_back else "jump",
                    }
                )
            if t["pk"] in flagged_stops:
                if flagged_stops[t["pk"]] == "negative":
                    backwards += 1
                else:
                    jumps_up += 1
        first = unit_txs[0]
        what = []
        if backwards:
            what.append(f"went backwards {backwards} time(s)")
        if jumps_up:
            what.append(f"jumped implausibly {jumps_up} time(s)")
        evidence = {
            "identity": first["identity"],
            "connector": number,
            "transactions": sorted(t["pk"] for t in unit_txs),
            "steps": steps[:20],
            "stop_anomalies": {
                str(k): v for k, v in flagged_stops.items() if k in {t["pk"] for t in unit_txs}
            },
            "meter_start_stop": {
                str(t["pk"]): [_dec(t["meter_start"]), _dec(t["meter_stop"])] for t in unit_txs
            },
        }
        ctx.add(
            Detected(
                kind=FindingKind.METER_ANOMALY,
                key=f"meter_anomaly:cp:{cp_id}:{number}",
                operator_id=first["operator_id"],
                site_id=first["site_id"],
                charge_point_id=cp_id,
                connector_pk=first["connector_id"],
                connector_number=number,
                cause=Cause.HARDWARE,
                severity=Severity.MAJOR,
                title=f"{first['identity']} #{number}: energy register " + " and ".join(what),
                summary=(
                    f"The energy register of {first['identity']} #{number} "
                    + " and ".join(what)
                    + " within a session: likely a faulty or reset meter (check billing)."
                )[:255],
                evidence=evidence,
                change_key=f"{backwards}|{jumps_up}",
            )
        )


def _aware(value):
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value is not None and timezone.is_naive(value):
        value = value.replace(tzinfo=dt.UTC)
    return value


# --- Reboot loops, error storms, stuck statuses ---------------------------------------------------


def _frequent(events, time_field: str, at_least: int) -> tuple[list[dict], dict[int, dict]]:
    """Charge points with at least ``at_least`` of these events (count, first and last time
    each), and those charge points' fields: two queries, none when there are no such units."""
    rows = list(
        events.values("charge_point_id")
        .annotate(n=Count("pk"), first=Min(time_field), last=Max(time_field))
        .filter(n__gte=at_least)
        .order_by()
    )
    if not rows:
        return [], {}
    found = ChargePoint.objects.filter(pk__in=[r["charge_point_id"] for r in rows])
    return rows, {u["cp_id"]: u for u in _values(found, _cp_fields())}


def detect_reboot_loops(ctx: Context) -> None:
    since = ctx.now - dt.timedelta(minutes=threshold("REBOOT_WINDOW_MINUTES"))
    boots = OcppMessage.objects.filter(
        action="BootNotification", direction="in", message_type=2, created_at__gte=since
    )
    rows, units = _frequent(boots, "created_at", threshold("REBOOT_LOOP_MIN"))
    for r in rows:
        u = units.get(r["charge_point_id"])
        if u is None:
            continue
        minutes = threshold("REBOOT_WINDOW_MINUTES")
        ctx.add(
            Detected(
                kind=FindingKind.REBOOT_LOOP,
                key=f"reboot_loop:cp:{u['cp_id']}",
                operator_id=u["operator_id"],
                site_id=u["site_id"],
                charge_point_id=u["cp_id"],
                cause=Cause.SOFTWARE,
                severity=Severity.MAJOR,
                title=f"{u['identity']} reboots over and over",
                summary=(
                    f"{u['identity']} sent {r['n']} BootNotifications in {minutes} min "
                    f"(firmware {u['firmware'] or 'unknown'}): likely a firmware or controller fault."
                )[:255],
                evidence={
                    "identity": u["identity"],
                    "boots": r["n"],
                    "window_minutes": minutes,
                    "first_boot_at": _iso(r["first"]),
                    "last_boot_at": _iso(r["last"]),
                    "firmware_version": u["firmware"],
                },
                change_key="",
            )
        )


def detect_error_storms(ctx: Context) -> None:
    since = ctx.now - dt.timedelta(minutes=threshold("ERROR_STORM_WINDOW_MINUTES"))
    by_cp: dict[int, Counter] = defaultdict(Counter)
    for e in ctx.errors:
        if e["timestamp"] >= since:
            by_cp[e["cp_id"]][e["error_code"]] += 1
    stormy = {cp: c for cp, c in by_cp.items() if sum(c.values()) >= threshold("ERROR_STORM_MIN")}
    if not stormy:
        return
    units = {r["cp_id"]: r for r in _values(ChargePoint.objects.filter(pk__in=sorted(stormy)), _cp_fields())}
    for cp_id, counts in stormy.items():
        u = units.get(cp_id)
        if u is None:
            continue
        code = counts.most_common(1)[0][0]
        window = threshold("ERROR_STORM_WINDOW_MINUTES")
        match = ctx.rules.match(operator_id=u["operator_id"], error_code=code, vendor_id=u["vendor"])
        cause = match.cause if match.rule_id else (code_cause(code) or Cause.UNKNOWN)
        # A faulted connector of this unit already has its cause worked out across units: use it.
        cause = next(
            (d.cause for d in ctx.found if d.kind == FindingKind.FAULTED and d.charge_point_id == cp_id),
            cause,
        )
        total = sum(counts.values())
        ctx.add(
            Detected(
                kind=FindingKind.ERROR_STORM,
                key=f"error_storm:cp:{cp_id}",
                operator_id=u["operator_id"],
                site_id=u["site_id"],
                charge_point_id=cp_id,
                cause=cause,
                severity=Severity.MAJOR,
                title=f"{u['identity']}: {total} error reports in {window} min",
                summary=f"{u['identity']} reported {total} errors, mostly {code}; likely {cause}.",
                rule_id=match.rule_id,
                evidence={"identity": u["identity"], "error_counts": dict(counts), **match.as_evidence()},
                change_key=f"{code}|{cause}",
            )
        )


def detect_stuck_status(ctx: Context) -> None:
    before = ctx.now - dt.timedelta(minutes=threshold("STUCK_STATUS_MINUTES"))
    rows = _values(
        Connector.objects.filter(
            status__in=[ConnectorStatus.FAULTED, ConnectorStatus.UNAVAILABLE], status_updated_at__lt=before
        ),
        _cp_fields("charge_point__"),
        "pk",
        "connector_id",
        "status",
        "error_code",
        "vendor_error_code",
        "status_updated_at",
    )
    for r in rows:
        faulted = r["status"] == ConnectorStatus.FAULTED
        if faulted:
            match = ctx.rules.match(
                operator_id=r["operator_id"],
                error_code=r["error_code"] or "OtherError",
                vendor_id=r["vendor"],
                vendor_error_code=r["vendor_error_code"],
            )
            cause = next(
                (
                    d.cause
                    for d in ctx.found
                    if d.kind == FindingKind.FAULTED
                    and d.key == f"faulted:cp:{r['cp_id']}:{r['connector_id']}"
                ),
                match.cause,
            )
            rule_id, extra = match.rule_id, match.as_evidence()
        else:
            cause, rule_id, extra = Cause.UNKNOWN, None, {}
        minutes = _minutes(ctx.now - r["status_updated_at"])
        ctx.add(
            Detected(
                kind=FindingKind.STUCK_STATUS,
                key=f"stuck_status:cp:{r['cp_id']}:{r['connector_id']}",
                operator_id=r["operator_id"],
                site_id=r["site_id"],
                charge_point_id=r["cp_id"],
                connector_pk=r["pk"],
                connector_number=r["connector_id"],
                cause=cause,
                severity=Severity.MAJOR if faulted else Severity.WARNING,
                title=f"{r['identity']} #{r['connector_id']} {r['status']} for {minutes // 60} h or more",
                summary=(
                    f"{r['identity']} #{r['connector_id']} has been {r['status']}"
                    + (f" ({r['error_code']})" if r["error_code"] else "")
                    + f" since {r['status_updated_at']:%Y-%m-%d %H:%M} UTC."
                )[:255],
                rule_id=rule_id,
                evidence={
                    "identity": r["identity"],
                    "connector": r["connector_id"],
                    "status": r["status"],
                    "error_code": r["error_code"],
                    "since": _iso(r["status_updated_at"]),
                    **extra,
                },
                change_key=f"{r['status']}|{r['error_code']}",
            )
        )


def detect_unstable_connections(ctx: Context) -> None:
    since = ctx.now - dt.timedelta(hours=threshold("DISCONNECTS_WINDOW_HOURS"))
    drops = ConnectivityEvent.objects.filter(online=False, at__gte=since, at__lte=ctx.now)
    rows, units = _frequent(drops, "at", threshold("DISCONNECTS_MIN"))
    weak = Counter(e["cp_id"] for e in ctx.errors if e["error_code"] == "WeakSignal")
    hours = threshold("DISCONNECTS_WINDOW_HOURS")
    for r in rows:
        u = units.get(r["charge_point_id"])
        if u is None:
            continue
        why = f"{r['n']} disconnects in {hours} h"
        if weak.get(u["cp_id"]):
            why += f" and {weak[u['cp_id']]} WeakSignal report(s)"
        ctx.add(
            Detected(
                kind=FindingKind.UNSTABLE_CONNECTION,
                key=f"unstable_connection:cp:{u['cp_id']}",
                operator_id=u["operator_id"],
                site_id=u["site_id"],
                charge_point_id=u["cp_id"],
                cause=Cause.CONNECTIVITY,
                severity=Severity.WARNING,
                title=f"{u['identity']}: connection keeps dropping",
                summary=f"{u['identity']}: {why}; likely the mobile signal or the network.",
                evidence={
                    "identity": u["identity"],
                    "disconnects": r["n"],
                    "window_hours": hours,
                    "first_at": _iso(r["first"]),
                    "last_at": _iso(r["last"]),
                    "weak_signal_reports_24h": weak.get(u["cp_id"], 0),
                },
                change_key="",
            )
        )


# --- The sweep -----------------------------------------------------------------------------------

# Order matters: later detectors read what earlier ones found (offline units, faults).
DETECTORS: dict[str, Callable[[Context], None]] = {
    FindingKind.OFFLINE: detect_offline,
    FindingKind.FAULTED: detect_faults,
    FindingKind.STUCK_SESSION: detect_stuck_sessions,
    FindingKind.UNDER_PERFORMANCE: detect_under_performance,
    FindingKind.METER_ANOMALY: detect_meter_anomalies,
    FindingKind.REBOOT_LOOP: detect_reboot_loops,
    FindingKind.ERROR_STORM: detect_error_storms,
    FindingKind.STUCK_STATUS: detect_stuck_status,
    FindingKind.UNSTABLE_CONNECTION: detect_unstable_connections,
}
# Kinds a detector also reports besides its own.
EXTRA_KINDS = {
    FindingKind.OFFLINE: {FindingKind.SITE_POWER},
    FindingKind.FAULTED: {FindingKind.FIRMWARE_WIDE},
}
SWEPT_KINDS = set(DETECTORS) | {FindingKind.SITE_POWER, FindingKind.FIRMWARE_WIDE}


def detect(*, now: dt.datetime | None = None) -> tuple[list[Detected], set[str]]:
    """Every problem the fleet shows now (reads only), and the kinds that were swept in full.

    A detector that fails (odd data) is logged and its kind left out, so that its open
    incidents stay as they are instead of being resolved for want of a finding."""
    ctx = Context(now=now or timezone.now(), rules=RuleBook.load())
    _load_errors(ctx)
    swept = set(SWEPT_KINDS)
    for kind, detector in DETECTORS.items():
        before = len(ctx.found)
        try:
            with transaction.atomic():
                detector(ctx)
        except Exception:
            logger.exception("diagnostics detector %s failed", kind)
            del ctx.found[before:]
            swept.discard(kind)
            swept -= EXTRA_KINDS.get(kind, set())
    return ctx.found, swept


def _locked() -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite serialises writers by itself
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK_ID])
        return bool(cursor.fetchone()[0])


@dataclass
class SweepReport:
    found: int = 0
    opened: int = 0
    updated: int = 0
    resolved: int = 0
    skipped: bool = False
    healing: dict = field(default_factory=dict)


def run_sweep(*, now: dt.datetime | None = None, heal: bool = True) -> SweepReport:
    """Detect, then open/update/resolve incidents, then self-heal. Safe to run twice."""
    from .services import healing, incidents

    now = now or timezone.now()
    with transaction.atomic():
        if not _locked():
            return SweepReport(skipped=True)
        keep = dt.timedelta(days=threshold("CONNECTIVITY_KEEP_DAYS"))
        ConnectivityEvent.objects.filter(at__lt=now - keep).delete()
        found, swept = detect(now=now)
        result = incidents.sync(findings=found, swept_kinds=swept, now=now)
    report = SweepReport(
        found=len(found), opened=result.opened, updated=result.updated, resolved=result.resolved
    )
    if heal:
        report.healing = healing.run(now=now)
    return report
