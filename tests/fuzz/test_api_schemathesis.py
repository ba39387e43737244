"""The REST API fuzzed from its own OpenAPI schema (schemathesis): no operation answers a
server error, whatever a driver or an operator admin sends, on the demo network's data.

Each operation gets valid requests (positive), invalid ones (negative: wrong types, missing
fields, bad query strings) and, where its path names a charge point, requests about the demo's
real chargers. Requests go in process to the WSGI application; a failure lists each operation
with the request that broke it and the server's traceback.
"""

import traceback

import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from config.wsgi import application
from stations.models import User
from tests.fuzz.conftest import fuzz_settings

pytestmark = pytest.mark.django_db

# Demo charge points the path parameters may name (Voltway's own, Northgrid's: another operator's).
IDENTITIES = ["VW-AMS-01", "VW-AMS-02", "VW-UTR-07", "NG-GRO-01", "NOPE-1"]
# Operations whose examples would take the run past its budget or leave the process.
SKIPPED = {
    ("GET", "/api/v1/schema/"),  # the schema itself: slow to build, no input
    ("DELETE", "/api/v1/auth/token/"),  # signs the fuzzing client out (tested in tests/sessions)
}


@pytest.fixture
def demo(db, settings):
    settings.DEBUG = False
    settings.CELERY_TASK_ALWAYS_EAGER = True
    call_command("load_demo", stdout=_Null())


class _Null:
    def write(self, *_):
        pass

    def flush(self):
        pass


def _schema():
    generator = SchemaGenerator()
    raw = generator.get_schema(request=None, public=True)
    # The generator hands back lazy strings and enums; schemathesis wants plain JSON.
    import json

    from drf_spectacular.renderers import OpenApiJsonRenderer

    raw = json.loads(OpenApiJsonRenderer().render(raw, renderer_context={}))
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = application
    return schema


def _token(email: str) -> str:
    return Token.objects.get_or_create(user=User.objects.get(email=email))[0].key


def _strategy(operation):
    strategies = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    names = {p.name for p in operation.path_parameters}
    if "identity" in names:
        strategies += [
            operation.as_strategy(generation_mode=mode, path_parameters={"identity": identity})
            for identity in IDENTITIES
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        ]
    elif "id" in names:
        strategies += [
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters={"id": pk})
            for pk in (1, 2, 3)
        ]
    return st.one_of(strategies)


def _fuzz_every_operation(token: str, quick_examples: int) -> list[str]:
    schema = _schema()
    failures: list[str] = []
    server_errors: list[str] = []

    def record(sender, request=None, **kwargs):
        server_errors.append(traceback.format_exc())

    got_request_exception.connect(record)
    # As Django's test client does: the WSGI handler would otherwise close the test's
    # connection at each request (it is inside the test's transaction, so never autocommit).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) in SKIPPED:
                continue

            @fuzz_settings(quick_examples)
            @given(case=_strategy(operation))
            def check(case):
                server_errors.clear()
                response = case.call(headers={"Authorization": f"Token {token}"})
                try:
                    case.validate_response(response, checks=[not_a_server_error])
                except Exception as exc:
                    trace = server_errors[-1] if server_errors else ""
                    raise AssertionError(
                        f"{operation.method.upper()} {operation.path}: {exc}\n{case.as_curl_command()}\n{trace}"
                    ) from None

            try:
                check()
            except AssertionError as exc:
                failures.append(str(exc)[:4000])
    finally:
        got_request_exception.disconnect(record)
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return failures


def test_no_api_operation_gives_a_driver_a_server_error(demo):
    failures = _fuzz_every_operation(_token("alice@example.com"), quick_examples=6)
    assert not failures, "\n\n".join(failures)


def test_no_api_operation_gives_an_operator_admin_a_server_error(demo):
    failures = _fuzz_every_operation(_token("ops@voltway.example"), quick_examples=6)
    assert not failures, "\n\n".join(failures)
