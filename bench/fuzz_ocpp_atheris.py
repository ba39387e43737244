"""Coverage-guided fuzzing (atheris, libFuzzer) of what a charger's text frame goes through
before any database work: the size check, `protocol.parse`, the adapter's `check_allowed`,
`protocol.validate` against the official schemas (of the CALL, or for a CALLRESULT of the
response to each command we send), the charger's dates as the handlers read them, and the
CALLERROR frame we would answer. A `CallError` is the defined outcome; any other exception,
or a refusal that is not a well-formed CALLERROR with a code the spec names, is a crash.

    .venv/bin/python bench/fuzz_ocpp_atheris.py -max_total_time=60   # make fuzz

Without arguments naming a corpus it uses var/fuzz/ocpp-corpus (seeded with valid frames of
every action and the frames that once crashed this path) and a dictionary of the schemas'
names, and writes crash inputs to var/fuzz/. libFuzzer's own flags pass through.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "fuzz"
CORPUS = WORK / "ocpp-corpus"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# django.setup() imports the OCPP modules (the admin imports the command gateway): instrument
# them, and only them, as they load.
with atheris.instrument_imports(include=["stations.ocpp"]):
    import django

    django.setup()
    from stations.ocpp import protocol, v16

from django.conf import settings  # noqa: E402

PROTOCOL = v16.PROTOCOL
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
# The commands whose answers the consumer validates (stations/commands.py sends only these).
COMMANDS = sorted(a for a in v16.CENTRAL_SYSTEM_ACTIONS if protocol.has_schema(PROTOCOL, a + "Response"))
ACCEPTED = v16.Context(1, "FUZZ-CP", 1, "Accepted")
PENDING = v16.Context(1, "FUZZ-CP", 1, "Pending")
MAX_FRAME = settings.OCPP_MAX_FRAME_BYTES


class Crash(AssertionError):
    pass


def refused(error: protocol.CallError, unique_id: str) -> None:
    """What the consumer would send back must be a CALLERROR the charger can read."""
    answer = json.loads(error.frame())
    if answer[0] != protocol.CALLERROR or answer[2] not in SPEC_ERROR_CODES:
        raise Crash(f"not a spec CALLERROR: {answer!r}")
    if answer[1] not in (unique_id, protocol.UNKNOWN_ID):
        raise Crash(f"CALLERROR to {answer[1]!r}, not to {unique_id!r}")


def dates(payload: dict) -> None:
    """The handlers' reading of the charger's dates (a CallError if unreadable)."""
    if isinstance(payload.get("timestamp"), str):
        v16.parse_time(ACCEPTED, payload["timestamp"])
    for value in payload.get("meterValue") or []:
        v16.parse_time(ACCEPTED, value["timestamp"], "meterValue/timestamp")


def call(frame: protocol.Frame) -> None:
    uid = frame.unique_id
    for ctx in (PENDING, ACCEPTED):
        ctx.unique_id = uid  # as the consumer sets it
        try:
            v16.check_allowed(ctx, frame.action)
        except protocol.CallError as error:
            refused(error, uid)
    try:
        # Called for any action, not only the known ones the consumer lets through: validate()
        # must itself refuse an action name from the wire.
        protocol.validate(PROTOCOL, frame.action, frame.payload, unique_id=uid)
        if frame.action in v16.HANDLERS:
            dates(frame.payload)
    except protocol.CallError as error:
        refused(error, uid)


def answer(frame: protocol.Frame) -> None:
    if frame.message_type == protocol.CALLERROR:
        # Stored with the command (error_code[:50], the description as text).
        if not isinstance(frame.error_code, str) or not isinstance(frame.error_description, str):
            raise Crash(f"CALLERROR read as {frame!r}")
        return
    for action in COMMANDS:
        try:
            protocol.validate(PROTOCOL, action, frame.payload, response=True)
        except protocol.CallError as error:
            refused(error, protocol.UNKNOWN_ID)


def TestOneInput(data: bytes) -> None:
    if data[:1] == NESTED:
        text = nested_frame(data[1:])
    else:
        # A WebSocket text frame is valid UTF-8 (the server closes the connection on one that
        # is not): decoded as the server would accept it, or latin-1, each byte a character.
        text = data.decode("utf-8") if _utf8(data) else data.decode("latin-1")
    if len(text) > MAX_FRAME:  # the consumer refuses it unparsed
        return
    try:
        frame = protocol.parse(text)
    except protocol.CallError as error:
        refused(error, error.unique_id)
        return
    if frame.message_type == protocol.CALL:
        call(frame)
    else:
        answer(frame)


# An input starting with this byte (never the start of JSON) is a frame built around one value
# nested up to past orjson's limit: how deep a frame goes opens no new code, so coverage alone
# would not lead the fuzzer to depths near Python's recursion limit.
NESTED = b"\x01"
NAMES = sorted(set(v16.HANDLERS) | v16.CENTRAL_SYSTEM_ACTIONS | SPEC_ERROR_CODES)


def nested_frame(data: bytes) -> str:
    fdp = atheris.FuzzedDataProvider(data)
    message_type = fdp.PickValueInList([protocol.CALL, protocol.CALLRESULT, protocol.CALLERROR])
    depth = fdp.ConsumeIntInRange(0, 1100)
    opener, closer = fdp.PickValueInList([("[", "]"), ('{"a":', "}")])
    name = fdp.PickValueInList(NAMES)
    inner = json.dumps(fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes()))
    value = opener * depth + inner + closer * depth
    if message_type == protocol.CALLRESULT:
        return f'[3, "nested", {value}]'
    return f'[{message_type}, "nested", "{name}", {value}]'


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- Seeds and dictionary ---------------------------------------------------------------------


def _schema(name: str) -> dict:
    return json.loads((protocol.SCHEMA_DIRS[PROTOCOL] / f"{name}.json").read_text(encoding="utf-8-sig"))


VALID_CALLS = {
    "BootNotification": {"chargePointVendor": "Voltway", "chargePointModel": "VW-22"},
    "Heartbeat": {},
    "StatusNotification": {
        "connectorId": 1,
        "errorCode": "NoError",
        "status": "Available",
        "timestamp": "2026-11-25T10:00:00Z",
    },
    "Authorize": {"idTag": "04A2C81B7F5E80"},
    "StartTransaction": {
        "connectorId": 1,
        "idTag": "04A2C81B7F5E80",
        "meterStart": 0,
        "timestamp": "2026-11-25T10:00:00.123+01:00",
    },
    "StopTransaction": {"transactionId": 1, "meterStop": 1200, "timestamp": "2026-11-25T11:00:00Z"},
    "MeterValues": {
        "connectorId": 1,
        "transactionId": 1,
        "meterValue": [
            {
                "timestamp": "2026-11-25T10:30:00Z",
                "sampledValue": [{"value": "600", "measurand": "Energy.Active.Import.Register"}],
            }
        ],
    },
    "DataTransfer": {"vendorId": "voltway", "messageId": "x", "data": "y"},
    "DiagnosticsStatusNotification": {"status": "Uploaded"},
    "FirmwareStatusNotification": {"status": "Installed"},
}
DEPTH = 1000  # past Python's recursion limit, within orjson's 1024
SEEDS = [
    *(json.dumps([2, f"seed-{i}", a, p]) for i, (a, p) in enumerate(VALID_CALLS.items())),
    '[3, "cmd-1", {"status": "Accepted"}]',
    '[3, "cmd-2", {"configurationKey": [{"key": "HeartbeatInterval", "readonly": false, "value": "300"}]}]',
    '[4, "cmd-3", "NotSupported", "no vendor extensions", {}]',
    '[2, "x", "ClearCache", {}]',
    '[2, "x", "NoSuchAction", {}]',
    "[5]",
    "\x01" + "\x00" * 8 + "text",  # a nested frame (NESTED)
    # Crashes this harness (and a review of it) found, kept as regression seeds:
    # _has_nul recursed once a level (RecursionError), a frame nested 1000 deep with a NUL;
    '[2, "deep", "Heartbeat", ' + "[" * DEPTH + '"\\u0000"' + "]" * DEPTH + "]",
    # str() of a non-string ErrorDescription nested 1000 deep (RecursionError);
    '[4, "deep", "GenericError", ' + "[" * DEPTH + "]" * DEPTH + ", {}]",
    # an action name too long for a file name reached Path.exists() (OSError ENAMETOOLONG).
    '[2, "long", "' + "A" * 300 + '", {}]',
]


def _dictionary() -> list[str]:
    words = {'[2, "', '[3, "', '[4, "', '", {', "}]", "\\u0000", "\\ud800", "null", "true", "1e999"}
    words |= {"2147483648", "-1", "99999999999999999999", "2026-11-25T10:00:00Z"}
    for path in protocol.SCHEMA_DIRS[PROTOCOL].glob("*.json"):
        words.add(path.stem)
        stack = [_schema(path.stem)]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                words.update(k for k in node.get("properties", {}))
                words.update(str(v) for v in node.get("enum", []))
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    # libFuzzer's dictionary format: one quoted token a line, \\ and \" escaped.
    return ['"' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in sorted(words)]


def prepare() -> list[str]:
    CORPUS.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(SEEDS):
        (CORPUS / f"seed-{i:02d}").write_text(seed, encoding="utf-8")
    dictionary = WORK / "ocpp.dict"
    dictionary.write_text("\n".join(_dictionary()) + "\n", encoding="utf-8")
    args = sys.argv[1:]
    if not any(not a.startswith("-") for a in args):  # no corpus named: ours
        args.append(str(CORPUS))
    defaults = {
        "-dict": str(dictionary),
        "-artifact_prefix": f"{WORK}/",
        "-max_len": "4096",
        "-print_final_stats": "1",
        "-timeout": "10",
    }
    named = {a.split("=", 1)[0] for a in args if a.startswith("-")}
    args = [f"{k}={v}" for k, v in defaults.items() if k not in named] + args
    return [sys.argv[0], *args]


if __name__ == "__main__":
    argv = prepare()
    # The seeds go through once before any fuzzing: a regression fails here, named.
    for seed in SEEDS:
        TestOneInput(seed.encode())
    print(f"{len(SEEDS)} seed frames pass; fuzzing {', '.join(argv[1:])}", flush=True)
    atheris.Setup(argv, TestOneInput)
    atheris.Fuzz()
