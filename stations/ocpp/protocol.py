"""OCPP-J framing and validation, independent of any charger or database.

Frames are parsed with orjson and validated against the official JSON schemas that ship in
the `ocpp` library, compiled once per action with jsonschema-rs (about a hundred times faster
than the library's own per-frame jsonschema validation).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
import ocpp
import orjson

CALL, CALLRESULT, CALLERROR = 2, 3, 4
UNKNOWN_ID = "-1"

SCHEMA_DIRS = {"ocpp1.6": Path(ocpp.__file__).parent / "v16" / "schemas"}


class CallError(Exception):
    """An error the other side must hear about as a CALLERROR frame."""

    def __init__(
        self, code: str, description: str = "", details: dict | None = None, unique_id: str = UNKNOWN_ID
    ):
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description[:255]
        self.details = details or {}
        self.unique_id = unique_id

    def frame(self) -> str:
        return dumps([CALLERROR, self.unique_id, self.code, self.description, self.details])


# OCPP-J 1.6 §4.2.3 error codes, by the JSON-schema keyword that failed.
_SCHEMA_ERROR_CODES = {
    "Required": "ProtocolError",  # "Payload for Action is incomplete"
    "Type": "TypeConstraintViolation",
    "AdditionalProperties": "FormationViolation",
    "MinItems": "OccurenceConstraintViolation",
    "MaxItems": "OccurenceConstraintViolation",
    "Minimum": "TypeConstraintViolation",  # only the 32-bit bounds of an integer (INT32)
    "Maximum": "TypeConstraintViolation",
}
_DEFAULT_SCHEMA_ERROR = "PropertyConstraintViolation"  # enum, maxLength, minimum, format, …


@dataclass
class Frame:
    message_type: int
    unique_id: str
    action: str = ""
    payload: Any = field(default_factory=dict)
    error_code: str = ""
    error_description: str = ""
    error_details: Any = None


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def parse(text: str) -> Frame:
    """Turn a text frame into a Frame, or raise the CallError its sender must get."""
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CallError("FormationViolation", f"Frame is not valid JSON: {exc}") from exc
    if not isinstance(msg, list) or len(msg) < 3:
        raise CallError("FormationViolation", "A frame is a JSON array [MessageTypeId, UniqueId, …].")
    message_type, unique_id = msg[0], msg[1]
    if not isinstance(unique_id, str) or not 0 < len(unique_id) <= 36 or "\x00" in unique_id:
        raise CallError("FormationViolation", "UniqueId must be a string of at most 36 characters.")
    # A NUL character (sent escaped, \u0000) is in no OCPP string, and PostgreSQL text cannot
    # hold one: refused here rather than failing where the value is stored.
    if message_type in (CALL, CALLRESULT, CALLERROR) and "\\u0000" in text and _has_nul(msg):
        raise CallError(
            "PropertyConstraintViolation", "Strings must not contain NUL characters.", unique_id=unique_id
        )
    if message_type == CALL:
        if len(msg) != 4 or not isinstance(msg[2], str) or not isinstance(msg[3], dict):
            raise CallError(
                "FormationViolation", "A CALL is [2, UniqueId, Action, {payload}].", unique_id=unique_id
            )
        return Frame(CALL, unique_id, msg[2], msg[3])
    if message_type == CALLRESULT:
        if len(msg) != 3 or not isinstance(msg[2], dict):
            raise CallError(
                "FormationViolation", "A CALLRESULT is [3, UniqueId, {payload}].", unique_id=unique_id
            )
        return Frame(CALLRESULT, unique_id, payload=msg[2])
    if message_type == CALLERROR:
        if len(msg) < 4 or not isinstance(msg[2], str):
            raise CallError(
                "FormationViolation",
                "A CALLERROR is [4, UniqueId, ErrorCode, ErrorDescription, {details}].",
                unique_id=unique_id,
            )
        # Not a string, as the spec wants: kept as its JSON (str() of a list nested a thousand
        # deep, which orjson reads, would exhaust Python's recursion limit).
        description = msg[3] if isinstance(msg[3], str) else _json_text(msg[3])
        details = msg[4] if len(msg) > 4 else {}
        return Frame(
            CALLERROR, unique_id, error_code=msg[2], error_description=description, error_details=details
        )
    raise CallError("FormationViolation", f"Unknown MessageTypeId {message_type!r}.", unique_id=unique_id)


# OCPP 1.6 §7: an "integer" is 32 bits. The schemas leave it unbounded, and a larger one would
# only fail later, in the database.
INT32 = {"minimum": -(2**31), "maximum": 2**31 - 1}


def _bounded(node):
    if isinstance(node, dict):
        node = {k: _bounded(v) for k, v in node.items()}
        if node.get("type") == "integer":
            node = INT32 | node
    elif isinstance(node, list):
        node = [_bounded(v) for v in node]
    return node


def _has_nul(value: Any) -> bool:
    # A loop, not recursion: orjson reads arrays nested up to 1024 deep, past Python's
    # recursion limit.
    pending = [value]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value)  # the keys
            pending.extend(value.values())
    return False


def _json_text(value: Any) -> str:
    try:
        return dumps(value)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (254 levels)
        return "(not a string)"


@functools.cache
def _schema_names(protocol: str) -> frozenset[str]:
    return frozenset(path.stem for path in SCHEMA_DIRS[protocol].glob("*.json"))


def _validator(protocol: str, schema_name: str):
    # An action name from the wire is looked up, never made into a path (one too long for the
    # file system raised OSError) nor cached (any number of distinct names would be kept).
    if schema_name not in _schema_names(protocol):
        return None
    return _compiled(protocol, schema_name)


@functools.cache
def _compiled(protocol: str, schema_name: str):
    path = SCHEMA_DIRS[protocol] / f"{schema_name}.json"
    schema = json.loads(path.read_text(encoding="utf-8-sig"))
    return jsonschema_rs.validator_for(_bounded(schema))


def has_schema(protocol: str, action: str) -> bool:
    return _validator(protocol, action) is not None


def validate(
    protocol: str, action: str, payload: dict, *, response: bool = False, unique_id: str = UNKNOWN_ID
):
    """Check a payload against the official schema of the action (or of its response)."""
    validator = _validator(protocol, f"{action}Response" if response else action)
    if validator is None:
        raise CallError("NotImplemented", f"Unknown action {action!r}.", unique_id=unique_id)
    try:
        error = next(validator.iter_errors(payload), None)
    except ValueError as exc:  # nested deeper than the validator goes (about 255 levels)
        raise CallError("FormationViolation", f"payload: {exc}", unique_id=unique_id) from exc
    if error is None:
        return
    code = _SCHEMA_ERROR_CODES.get(type(error.kind).__name__, _DEFAULT_SCHEMA_ERROR)
    where = "/".join(str(p) for p in error.instance_path) or "payload"
    raise CallError(code, f"{where}: {error.message}"[:255], unique_id=unique_id)
