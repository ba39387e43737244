"""Likely causes: error codes through the fault rules, and the reasoning across units.

``RuleBook`` holds every active ``FaultRule`` (one query a sweep) and picks the best one for a
report: the operator's own rule beats the default, and a rule naming the vendor (and the
vendor's code) beats a generic one. The cross-unit functions refine the rule's cause with what
other cars and other units show: several different cars failing at one connector point at the
cable, one car failing where others charge fine at the car.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from .models import Cause, FaultRule, Severity

NO_ERROR = ("", "NoError")
EV_COMM = "EVCommunicationError"
SOFTWARE_CODES = frozenset({"InternalError", "ResetFailure"})
GRID_CODES = frozenset({"UnderVoltage", "OverVoltage"})
CONNECTIVITY_CODES = frozenset({"WeakSignal"})
# EV communication errors with this many different cars at one connector: the cable.
CABLE_MIN_CARS = 2


@dataclass(frozen=True)
class RuleMatch:
    rule_id: int | None
    cause: str
    severity: str
    title: str
    recommended_action: str
    tools: tuple[str, ...]
    spare_parts: tuple[str, ...]
    self_heal: bool

    def as_evidence(self) -> dict:
        return {
            "rule_id": self.rule_id,
            "recommended_action": self.recommended_action,
            "tools": list(self.tools),
            "spare_parts": list(self.spare_parts),
        }


def _as_list(value) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return ()


class RuleBook:
    """The active fault rules, indexed by error code."""

    def __init__(self, rules: Iterable[FaultRule]):
        self._by_code: dict[str, list[FaultRule]] = defaultdict(list)
        for rule in rules:
            self._by_code[rule.error_code.lower()].append(rule)

    @classmethod
    def load(cls) -> RuleBook:
        return cls(FaultRule.objects.filter(is_active=True).order_by("pk"))

    def match(
        self, *, operator_id: int | None, error_code: str, vendor_id: str = "", vendor_error_code: str = ""
    ) -> RuleMatch:
        vendor_id = (vendor_id or "").strip().lower()
        vendor_code = (vendor_error_code or "").strip().lower()
        best, best_score = None, None
        for rule in self._by_code.get((error_code or "").lower(), ()):
            if rule.operator_id is not None and rule.operator_id != operator_id:
                continue
            rule_vendor = rule.vendor_id.strip().lower()
            rule_code = rule.vendor_error_code.strip().lower()
            if rule_vendor and rule_vendor != vendor_id:
                continue
            if rule_code and rule_code != vendor_code:
                continue
            score = (rule.operator_id is not None, bool(rule_code), bool(rule_vendor), -rule.pk)
            if best_score is None or score > best_score:
                best, best_score = rule, score
        if best is None:
            return RuleMatch(
                None,
                Cause.UNKNOWN,
                Severity.MAJOR,
                f"{error_code or 'Fault'} reported",
                "",
                (),
                (),
                False,
            )
        return RuleMatch(
            best.pk,
            best.cause,
            best.severity,
            best.title,
            best.recommended_action,
            _as_list(best.tools),
            _as_list(best.spare_parts),
            best.self_heal,
        )


def is_error(code: str | None) -> bool:
    return (code or "") not in NO_ERROR


@dataclass(frozen=True)
class CarVerdict:
    cause: str
    reason: str


def ev_comm_verdict(*, failing_tags: set[str], fine_tags: set[str]) -> CarVerdict | None:
    """EV communication errors at one connector: different cars → cable; one car failing where
    others charge fine → the vehicle. ``None`` when the cars say nothing either way."""
    failing = {t for t in failing_tags if t}
    if len(failing) >= CABLE_MIN_CARS:
        return CarVerdict(Cause.CABLE, f"{len(failing)} different cars failed at this connector")
    if len(failing) == 1 and (fine_tags - failing):
        return CarVerdict(
            Cause.VEHICLE,
            f"only one car failed here while {len(fine_tags - failing)} other car(s) charged fine",
        )
    return None


def code_cause(error_code: str) -> str | None:
    """Causes some codes name on their own, whatever the rule says."""
    if error_code in SOFTWARE_CODES:
        return Cause.SOFTWARE
    if error_code in GRID_CODES:
        return Cause.GRID
    if error_code in CONNECTIVITY_CODES:
        return Cause.CONNECTIVITY
    return None
