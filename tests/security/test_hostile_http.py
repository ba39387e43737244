"""Hostile HTTP and WebSocket input through the real request path: a body over the upload limit
is a JSON 413 and stores nothing; an unexpected error is a 500 that shows no traceback and no
settings (JSON under /api/, the plain page elsewhere); over a real uvicorn process, a WebSocket
message past the server's limit closes the connection with 1009, and an OCPP frame past our
frame limit but under the server's gets its CALLERROR on a connection that lives on."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.test import Client

from stations import api as stations_api
from stations import views as stations_views
from stations.models import OcppMessage, Site
from tests.factories import CHARGER_PASSWORD, ChargePointFactory, ConnectorFactory
from tests.live import ROOT, stack_env, start_asgi, stop_process

SITES = "/api/v1/operator/sites/"
NEW_SITE = {
    "name": "Schiphol P3",
    "address": "Evert van de Beekstraat 202",
    "city": "Schiphol",
    "postal_code": "1118 CP",
    "country": "nl",
    "latitude": "52.308600",
    "longitude": "4.763889",
    "time_zone": "Europe/Amsterdam",
}
# In what the view raises: it must not reach the client.
SECRET = "boom-the-database-password-is-hunter2"


# --- Oversized bodies -------------------------------------------------------------------------


def _oversized_site(settings) -> dict:
    return {**NEW_SITE, "address": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024)}


@pytest.mark.django_db
def test_an_oversized_json_body_to_the_api_is_a_json_413_and_stores_nothing(api_as, operator_admin, settings):
    body = json.dumps(_oversized_site(settings))
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = api_as(operator_admin).post(SITES, body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert "larger than" in response.json()["detail"]
    assert not Site.objects.exists()


@pytest.mark.django_db
def test_an_oversized_form_body_from_a_signed_in_browser_is_a_json_413_and_stores_nothing(
    login, operator_admin, settings
):
    # Session authentication reads the form for its CSRF check, before the view parses it.
    client = login(operator_admin)
    response = client.post(SITES, _oversized_site(settings))
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert "larger than" in response.json()["detail"]
    assert not Site.objects.exists()


# --- Unexpected errors ------------------------------------------------------------------------


def _boom(*args, **kwargs):
    raise RuntimeError(SECRET)


@pytest.fixture
def unraised(settings):
    """A client as a browser is: it gets the 500 response, not the exception."""
    settings.DEBUG = False
    return Client(raise_request_exception=False)


def _shows_nothing_inside(response, settings):
    body = response.content.decode()
    for leak in (SECRET, "Traceback", "RuntimeError", settings.SECRET_KEY, "DATABASES", str(ROOT)):
        assert leak not in body, f"{leak!r} in the 500 response"


@pytest.mark.django_db
def test_an_error_in_an_api_view_is_a_generic_json_500(unraised, monkeypatch, settings, caplog):
    monkeypatch.setattr(stations_api.StationViewSet, "list", _boom)
    response = unraised.get("/api/v1/stations/", {"latitude": 52.37, "longitude": 4.89})
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"detail": "Server error."}
    _shows_nothing_inside(response, settings)
    # The operator sees it, with its traceback, in the log.
    assert any(r.name == "django.request" and r.exc_info for r in caplog.records)


@pytest.mark.django_db
def test_an_error_in_a_page_is_the_plain_html_500(
    unraised, monkeypatch, settings, operator_admin, charge_point
):
    monkeypatch.setattr(stations_views.DashboardView, "get_queryset", _boom)
    unraised.force_login(operator_admin)
    response = unraised.get("/dashboard/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert "<" in response.content.decode()
    _shows_nothing_inside(response, settings)


# --- WebSocket messages over a real server ----------------------------------------------------

IDENTITY = "HOSTILE-WS-1"


@pytest.fixture
def served(transactional_db, settings):
    """ChargeDesk on a real uvicorn process with the WebSocket message limit `manage.py serve`
    gives it (--ws-max-size OCPP_WS_MAX_BYTES), on the test's PostgreSQL database. Yields the
    OCPP URL."""
    from tests.conftest import _need

    _need(settings.USING_POSTGRES, "needs PostgreSQL (set DATABASE_URL=postgres://…)")
    assert settings.OCPP_MAX_FRAME_BYTES < settings.OCPP_WS_MAX_BYTES
    cp = ChargePointFactory(identity=IDENTITY, is_connected=False)
    ConnectorFactory(charge_point=cp, connector_id=1)
    base, proc = start_asgi(stack_env(settings.REDIS_URL or ""))  # as manage.py serve runs it
    try:
        yield f"{base.replace('http', 'ws', 1)}/ocpp/{IDENTITY}", cp
    finally:
        stop_process(proc)


async def _connect(url: str):
    from websockets.asyncio.client import connect

    from stations.simulator.charger import basic_auth_header

    return await connect(
        url,
        subprotocols=["ocpp1.6"],
        additional_headers={"Authorization": basic_auth_header(IDENTITY, CHARGER_PASSWORD)},
        max_size=None,
        compression=None,
        open_timeout=10,
    )


def _data_transfer(size: int) -> str:
    """A DataTransfer CALL of exactly `size` bytes (ASCII)."""
    head, tail = '[2, "big", "DataTransfer", {"vendorId": "hostile", "data": "', '"}]'
    return head + "A" * (size - len(head) - len(tail)) + tail


async def _call(ws, unique_id: str, action: str, payload: dict) -> list:
    await ws.send(json.dumps([2, unique_id, action, payload]))
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


@pytest.mark.postgres
@pytest.mark.live
def test_a_websocket_message_past_the_server_limit_closes_the_connection_with_1009(served, settings):
    from websockets.exceptions import ConnectionClosed

    url, _cp = served
    frame = _data_transfer(settings.OCPP_WS_MAX_BYTES + 1)

    async def scenario():
        ws = await _connect(url)
        assert (await _call(ws, "hb-1", "Heartbeat", {}))[0] == 3
        await ws.send(frame)
        with pytest.raises(ConnectionClosed) as closing:
            await asyncio.wait_for(ws.recv(), 10)
        closed = closing.value.rcvd  # the close frame the server sent
        # The server still takes the charger back.
        again = await _connect(url)
        beat = await _call(again, "hb-2", "Heartbeat", {})
        await again.close()
        return closed, beat

    closed, beat = asyncio.run(scenario())
    assert closed is not None and closed.code == 1009, closed
    assert beat[:2] == [3, "hb-2"]


@pytest.mark.postgres
@pytest.mark.live
def test_a_frame_past_the_ocpp_limit_but_under_the_server_limit_gets_a_callerror(served, settings):
    url, cp = served
    size = settings.OCPP_MAX_FRAME_BYTES + 1
    assert size < settings.OCPP_WS_MAX_BYTES
    frame = _data_transfer(size)

    async def scenario():
        ws = await _connect(url)
        await ws.send(frame)
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
        beat = await _call(ws, "hb-1", "Heartbeat", {})
        await ws.close()
        return error, beat

    error, beat = asyncio.run(scenario())
    assert error[0] == 4 and error[2] == "FormationViolation", error
    assert f"larger than {settings.OCPP_MAX_FRAME_BYTES} bytes" in error[3]
    assert beat[:2] == [3, "hb-1"]
    # Logged cut short, not whole.
    refused = OcppMessage.objects.get(charge_point=cp, direction="in", message_type=0)
    assert len(refused.raw) <= 1000
