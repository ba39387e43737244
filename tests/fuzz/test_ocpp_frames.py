"""Hostile OCPP 1.6J frames against the real consumer (in process): each CALL gets exactly
one answer, a CALLRESULT or the CALLERROR the spec names (never InternalError); nothing
is logged as an error on the server; the connection stays open and answers a Heartbeat
afterwards; a valid message after the garbage is stored, and every frame is in the log."""

import asyncio
import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stations.models import Connector, OcppMessage
from tests.factories import ChargePointFactory, ConnectorFactory
from tests.fuzz import frames
from tests.fuzz.conftest import fuzz_settings
from tests.ocpp.conftest import Charger, close_thread_connections

pytestmark = pytest.mark.django_db(transaction=True)

IDENTITY = "FUZZ-CP-1"


class Connection:
    """One charger connection held across all the examples of a test, on its own loop."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.charger = Charger(IDENTITY)
        self.beats = 0
        self.sent = 0

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def open(self):
        connected, _ = self.run(self.charger.connect())
        assert connected

    def send(self, text=None, data=None) -> list:
        """Send one frame, then a Heartbeat; return what came back before the Heartbeat's answer
        (checking that one came, to this Heartbeat, on a connection still open)."""
        self.beats += 1
        beat_id = f"hb-{self.beats}"

        async def go():
            # As send_to(), which refuses an empty frame (a charger may well send one).
            frame = {"type": "websocket.receive"}
            frame.update({"text": text} if data is None else {"bytes": data})
            await self.charger.comm.send_input(frame)
            await self.charger.comm.send_to(text_data=json.dumps([2, beat_id, "Heartbeat", {}]))
            answers = []
            while True:
                answer = json.loads(await self.charger.comm.receive_from(timeout=20))
                if answer[:2] == [3, beat_id]:
                    assert "currentTime" in answer[2]
                    return answers
                answers.append(answer)

        self.sent += 2
        return self.run(go())

    def close(self):
        from stations.ocpp import consumer

        try:
            self.run(self.charger.close())
        finally:
            self.loop.close()
            close_thread_connections(consumer._executor)


@pytest.fixture
def connection(transactional_db, caplog):
    cp = ChargePointFactory(identity=IDENTITY, is_connected=False)
    for n in (1, 2):
        ConnectorFactory(charge_point=cp, connector_id=n, status="Available")
    caplog.set_level(logging.INFO, logger="chargedesk")
    conn = Connection()
    conn.open()
    conn.charge_point = cp
    yield conn
    conn.close()


def _server_errors(caplog) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()}\n{r.exc_text or ''}"
        for r in caplog.records
        if r.levelno >= logging.ERROR
    ]


def _utf8(value) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def _check_answer(answers: list, uid: str, *, codes=frames.SPEC_ERROR_CODES, result_ok=True):
    assert len(answers) == 1, f"one answer expected, got {answers}"
    (answer,) = answers
    assert answer[1] == uid, answer
    if answer[0] == 3:
        assert result_ok, f"CALLRESULT to a CALL the schema refuses: {answer}"
        return answer
    assert answer[0] == 4 and answer[2] in codes, f"not a spec CALLERROR: {answer}"
    return answer


def test_every_call_gets_one_answer_the_spec_names_and_the_connection_lives(connection, caplog):
    @fuzz_settings(60)
    @given(call=st.one_of(frames.call_frames(), frames.other_calls()))
    def check(call):
        caplog.clear()
        kind, uid, action, payload = call
        answers = connection.send(json.dumps([2, uid, action, payload]))
        if not _utf8([uid, action, payload]):
            # A lone surrogate (escaped as \ud800) is no Unicode text: the frame is no JSON.
            _check_answer(answers, "-1", codes={"FormationViolation"}, result_ok=False)
        elif "\x00" in uid:
            _check_answer(answers, "-1", codes={"FormationViolation"}, result_ok=False)
        elif frames.has_nul([action, payload]):
            _check_answer(answers, uid, codes={"PropertyConstraintViolation"}, result_ok=False)
        elif kind == "central":
            _check_answer(answers, uid, codes={"NotSupported"}, result_ok=False)
        elif kind == "unknown":
            _check_answer(answers, uid, codes={"NotImplemented"}, result_ok=False)
        else:
            valid = frames.is_valid(action, payload)
            codes = frames.SPEC_ERROR_CODES - {"NotImplemented", "NotSupported", "SecurityError"}
            _check_answer(answers, uid, codes=codes, result_ok=valid)
        assert not _server_errors(caplog)

    check()


def test_garbage_gets_a_formation_violation_and_the_connection_lives(connection, caplog):
    @fuzz_settings(60)
    @given(text=frames.garbage)
    def check(text):
        caplog.clear()
        answers = connection.send(text)
        assert len(answers) <= 1, answers
        try:
            decoded = json.loads(text)
        except (ValueError, RecursionError):
            decoded = None
        if not isinstance(decoded, list) or not decoded or decoded[0] not in (2, 3, 4):
            assert len(answers) == 1 and answers[0][0] == 4, answers
            assert answers[0][2] == "FormationViolation", answers
        for answer in answers:
            assert answer[0] == 3 or answer[2] in frames.SPEC_ERROR_CODES, answer
        assert not _server_errors(caplog)

    check()


def test_binary_frames_are_refused_and_the_connection_lives(connection, caplog):
    @fuzz_settings(10)
    @given(data=st.binary(max_size=300))
    def check(data):
        caplog.clear()
        answers = connection.send(data=data)
        assert [a[0] for a in answers] == [4] and answers[0][2] == "FormationViolation"
        assert not _server_errors(caplog)

    check()


def test_a_valid_message_after_garbage_is_stored_and_every_frame_logged(connection, caplog):
    @fuzz_settings(20)
    @given(
        text=st.one_of(frames.garbage, frames.call_frames().map(lambda c: json.dumps([2, c[1], c[2], c[3]])))
    )
    def check(text):
        connection.send(text)

    check()
    status = {"connectorId": 2, "errorCode": "GroundFailure", "status": "Faulted", "info": "after the fuzz"}
    answers = connection.send(json.dumps([2, "last-status", "StatusNotification", status]))
    assert answers == [[3, "last-status", {}]]
    connector = Connector.objects.get(charge_point=connection.charge_point, connector_id=2)
    assert (connector.status, connector.error_code) == ("Faulted", "GroundFailure")
    received = OcppMessage.objects.filter(charge_point=connection.charge_point, direction="in").count()
    assert received == connection.sent
    assert not _server_errors(caplog)
