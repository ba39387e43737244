"""Hypothesis strategies for OCPP 1.6J frames a hostile or broken charger might send.

Valid payloads are drawn from the official JSON schemas (the ones the `ocpp` library ships
and the server validates against), then some are mutated: a field of the wrong type, a
required one missing, an extra one, huge or negative numbers, long strings, NUL and lone
surrogate characters, bad dates. Around them: unknown and central-system actions, wrong
message type ids, frames that are not arrays, deep nesting, text that is not JSON.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from stations.ocpp import protocol, v16

PROTOCOL = "ocpp1.6"
CHARGER_ACTIONS = sorted(v16.HANDLERS)
# Every error code OCPP-J 1.6 §4.2.3 names; InternalError is ours to avoid, so not among them.
SPEC_ERROR_CODES = frozenset(
    {
        "NotImplemented",
        "NotSupported",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
    }
)


def schema(action: str) -> dict:
    path = protocol.SCHEMA_DIRS[PROTOCOL] / f"{action}.json"
    return json.loads(path.read_text(encoding="utf-8-sig"))


def is_valid(action: str, payload: Any) -> bool:
    return protocol._validator(PROTOCOL, action).is_valid(payload)


# --- Values --------------------------------------------------------------------------------

dates = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(
        [
            "2026-11-25T10:00:00Z",
            "2026-11-25T10:00:00.123+01:00",
            "2026-02-30T10:00:00Z",  # no such day
            "9999-12-31T23:59:59-12:00",  # past the end of the calendar in UTC
            "0001-01-01T00:00:00+14:00",  # before its start
            "yesterday",
            "",
            "2026-11-25",
            "2026-11-25T25:61:61Z",
        ]
    ),
)
nasty_text = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=600),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "’", "' OR 1=1 --", "<script>", "\\u0000", "%s%n"]),
    st.integers(min_value=256, max_value=20_000).map(lambda n: "x" * n),
)
huge_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, -1e308, 0.1, 1.5]),
)
any_json = st.recursive(
    st.none() | st.booleans() | huge_numbers | nasty_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def from_schema(node: dict) -> st.SearchStrategy:
    """Values valid for one (OCPP 1.6: simple, reference-free) JSON schema node."""
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties", {})
        required = set(node.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v) for k, v in props.items() if k in required},
            optional={k: from_schema(v) for k, v in props.items() if k not in required},
        )
    if kind == "array":
        return st.lists(from_schema(node.get("items", {})), min_size=node.get("minItems", 0), max_size=3)
    if kind == "string":
        if node.get("format") == "date-time":
            return dates
        return st.text(max_size=min(node.get("maxLength", 40), 40))
    if kind == "integer":
        return st.integers(min_value=-5, max_value=2**31 - 1) | st.integers(0, 3)
    if kind == "number":
        step = node.get("multipleOf")
        if step:
            return st.integers(0, 10_000).map(lambda n: round(n * step, 1))
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if kind == "boolean":
        return st.booleans()
    return any_json


@st.composite
def mutated(draw, value: Any) -> Any:
    """The value with one thing somewhere in it wrong (or, now and then, nothing)."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        choice = draw(st.integers(0, 3))
        out = dict(value)
        if choice == 0:
            del out[key]
        elif choice == 1:
            out[draw(st.text(min_size=1, max_size=10))] = draw(any_json)
        else:
            out[key] = draw(mutated(value[key]))
        return out
    if isinstance(value, list) and value and draw(st.booleans()):
        i = draw(st.integers(0, len(value) - 1))
        out = list(value)
        out[i] = draw(mutated(value[i]))
        return out if draw(st.integers(0, 4)) else []
    return draw(st.one_of(any_json, huge_numbers, nasty_text, dates))


# --- Frames --------------------------------------------------------------------------------

unique_ids = st.one_of(
    st.uuids().map(str),
    st.text(min_size=1, max_size=36),
)
bad_unique_ids = st.one_of(
    st.just(""),
    st.text(min_size=37, max_size=60),
    st.integers(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def call_frames(draw) -> tuple[str, str, str, Any]:
    """(kind, unique id, action, payload) of a CALL of an action a charger may send: valid by
    the schema, or mutated."""
    action = draw(st.sampled_from(CHARGER_ACTIONS))
    payload = draw(from_schema(schema(action)))
    if draw(st.booleans()):
        payload = draw(mutated(payload))
    return "call", draw(unique_ids), action, payload


@st.composite
def other_calls(draw) -> tuple[str, str, str, Any]:
    """CALLs the server cannot take: unknown actions, actions only a central system sends."""
    action = draw(
        st.one_of(
            st.sampled_from(sorted(v16.CENTRAL_SYSTEM_ACTIONS - set(v16.HANDLERS))),
            st.text(max_size=40).filter(lambda a: a not in v16.HANDLERS),
        )
    )
    kind = "central" if action in v16.CENTRAL_SYSTEM_ACTIONS - set(v16.HANDLERS) else "unknown"
    return kind, draw(unique_ids), action, draw(st.dictionaries(st.text(max_size=8), any_json, max_size=3))


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


garbage = st.one_of(
    st.text(max_size=200).filter(lambda t: not _is_json(t)),
    st.sampled_from(["", " ", "null", "{}", "[]", "[2]", '"text"', "42", "[2, 1]", "[[[", "\x00"]),
    any_json.map(json.dumps),
    st.integers(100, 5000).map(_nested),
    st.integers(100, 2000).map(lambda d: '[2, "u1", "Heartbeat", {' + '"a":{' * d + "}" * d + "}]"),
    st.builds(
        lambda t, uid, rest: json.dumps([t, uid, *rest]),
        st.one_of(st.integers(-3, 10), st.just(2.0), st.text(max_size=3), st.none(), st.booleans()),
        st.one_of(unique_ids, bad_unique_ids),
        st.lists(any_json, max_size=4),
    ),
    st.builds(
        lambda uid, action, payload: json.dumps([2, uid, action, payload]),
        bad_unique_ids,
        st.sampled_from(CHARGER_ACTIONS),
        st.just({}),
    ),
)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
