"""The live view: the /ws/live/ socket (who may open it, what it delivers) fed by the domain
events, and the pages' hooks for static/js/live.js, end to end in a real browser."""

import asyncio
import base64
import json
import threading

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from config import events
from config.asgi import application
from stations import live, services
from stations.models import ConnectorStatus
from stations.ocpp import v16
from tests.factories import CHARGER_PASSWORD, PASSWORD, ChargePointFactory, ConnectorFactory
from tests.sessions.factories import TransactionFactory
from tests.stations.test_commands_ui import (
    connected,
    in_thread,
    play,
)

pytestmark = pytest.mark.django_db(transaction=True)


def session_cookie(user) -> bytes:
    """The portal's session cookie of a signed-in user (each in a browser of their own)."""
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def live_socket(cookie: bytes | None = None, query: str = "", origin: str | None = None):
    headers = [(b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie))
    if origin:
        headers.append((b"origin", origin.encode()))
    return WebsocketCommunicator(application, "/ws/live/" + (f"?{query}" if query else ""), headers=headers)


def test_live_socket_refuses_anonymous_users_and_drivers(driver):
    cookie = session_cookie(driver)

    async def scenario():
        anonymous = live_socket()
        refused_anonymous, _ = await anonymous.connect()
        as_driver = live_socket(cookie)
        refused_driver, _ = await as_driver.connect()
        # Let the refused consumers finish, or their teardown may wait on the channel layer.
        await anonymous.disconnect()
        await as_driver.disconnect()
        return refused_anonymous, refused_driver

    assert play(scenario) == (False, False)


def test_live_socket_refuses_a_page_of_another_site(technician):
    cookie = session_cookie(technician)

    async def scenario():
        foreign = live_socket(cookie, origin="https://evil.example")
        refused, _ = await foreign.connect()
        await foreign.disconnect()
        ours = live_socket(cookie, origin="http://testserver")
        accepted, _ = await ours.connect()
        await ours.disconnect()
        return refused, accepted

    assert play(scenario) == (False, True)


def test_status_change_reaches_the_operators_sockets_only(
    client, technician, other_operator_admin, charge_point, other_charge_point
):
    ours, theirs = session_cookie(technician), session_cookie(other_operator_admin)

    async def scenario():
        mine, other = live_socket(ours), live_socket(theirs)
        assert (await mine.connect())[0] and (await other.connect())[0]
        await in_thread(
            services.status_record,
            charge_point=charge_point,
            connector_id=1,
            status="Faulted",
            error_code="GroundFailure",
        )
        message = await mine.receive_json_from(timeout=5)
        nothing = await other.receive_nothing(timeout=0.3)
        await mine.disconnect()
        await other.disconnect()
        return message, nothing

    message, nothing = play(scenario)
    assert nothing
    assert message["event"] == "connector.status_changed"
    assert message["charge_point_id"] == charge_point.pk and message["connector_id"] == 1
    assert message["status"] == "Faulted" and message["label"] == "Faulted"
    assert message["previous_status"] == "Available" and message["error_code"] == "GroundFailure"
    assert message["at"]


def test_superuser_without_operator_sees_every_network(charge_point, other_charge_point):
    from stations.models import User

    cookie = session_cookie(User.objects.create_superuser(email="root@example.com", password=PASSWORD))

    async def scenario():
        socket = live_socket(cookie)
        assert (await socket.connect())[0]
        await in_thread(
            services.status_record, charge_point=other_charge_point, connector_id=1, status="Charging"
        )
        message = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return message

    assert play(scenario)["charge_point_id"] == other_charge_point.pk


def test_charger_going_online_and_offline_reaches_the_dashboard(operator_admin, charge_point):
    charge_point.is_connected = False
    charge_point.save()
    cookie = session_cookie(operator_admin)

    async def scenario():
        socket = live_socket(cookie)
        assert (await socket.connect())[0]
        charger = await connected(charge_point.identity)
        online = await socket.receive_json_from(timeout=5)
        await charger.close()
        offline = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return online, offline

    online, offline = play(scenario)
    assert (online["event"], online["charge_point_id"]) == ("charge_point.online", charge_point.pk)
    assert (offline["event"], offline["charge_point_id"]) == ("charge_point.offline", charge_point.pk)


def test_meter_values_reach_the_charge_point_page_with_power_and_energy(
    technician, charge_point, monkeypatch
):
    monkeypatch.setattr(v16, "METER_EVENT_EVERY", 0.0)  # the adapter's throttle: not under test here
    tx = TransactionFactory(charge_point=charge_point, connector_number=2, meter_start=10_000)
    cookie = session_cookie(technician)
    at = timezone.now().replace(microsecond=0)
    meter_values = {
        "connectorId": 2,
        "transactionId": tx.pk,
        "meterValue": [
            {
                "timestamp": at.isoformat(),
                "sampledValue": [
                    {"value": "13.25", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
                    {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"},
                ],
            }
        ],
    }

    async def scenario():
        page = live_socket(cookie, query=f"charge_point={charge_point.pk}")
        dashboard = live_socket(cookie)
        assert (await page.connect())[0] and (await dashboard.connect())[0]
        charger = await connected(charge_point.identity)
        await dashboard.receive_nothing(timeout=0.2)  # (it was online already: no event)
        reply = await charger.call("MeterValues", meter_values)
        message = await page.receive_json_from(timeout=5)
        dashboard_quiet = await dashboard.receive_nothing(timeout=0.3)
        await charger.close()
        for socket in (page, dashboard):
            await socket.disconnect()
        return reply, message, dashboard_quiet

    reply, message, dashboard_quiet = play(scenario)
    assert reply[0] == 3
    assert message == {
        "event": "meter_values.recorded",
        "charge_point_id": charge_point.pk,
        "connector_id": 2,
        "transaction_id": tx.pk,
        "power_w": 7400.0,
        "energy_kwh": 3.25,
        "at": at.isoformat(),
    }
    assert dashboard_quiet


def test_watching_another_operators_charge_point_is_refused(technician, other_charge_point):
    cookie = session_cookie(technician)

    async def scenario():
        socket = live_socket(cookie, query=f"charge_point={other_charge_point.pk}")
        accepted, _ = await socket.connect()
        await socket.disconnect()
        return accepted

    assert play(scenario) is False


def test_subscribers_are_registered_and_cheap_when_nothing_matches(
    charge_point, django_assert_max_num_queries
):
    for name, subscriber in live.SUBSCRIPTIONS.items():
        assert subscriber in events._subscribers[name]
    with django_assert_max_num_queries(1):
        live.meter_values_recorded(
            charge_point_id=charge_point.pk,
            operator_id=charge_point.operator_id,
            connector_id=1,
            transaction_id=987,
        )
    with django_assert_max_num_queries(0):
        live.connector_status_changed(
            charge_point_id=charge_point.pk, operator_id=None, connector_id=1, status="Bogus", at=None
        )
        live.charge_point_offline(charge_point_id=charge_point.pk, operator_id=charge_point.operator_id)


def test_dashboard_counts_as_json_for_operator_staff_only(login, technician, driver, charge_point):
    counts = login(technician).get(reverse("stations:dashboard-counts")).json()
    assert counts["charge_points"] == 1 and counts["available"] == 2
    assert login(driver).get(reverse("stations:dashboard-counts")).status_code == 403


def test_pages_carry_the_hooks_of_the_live_script(login, technician, charge_point):
    client = login(technician)
    dashboard = client.get(reverse("stations:dashboard")).content.decode()
    page = client.get(charge_point.get_absolute_url()).content.decode()
    pk = charge_point.pk
    for html in (dashboard, page):
        assert 'src="/static/js/live.js"' in html
        assert f'data-connector-status="{pk}:1"' in html and "data-live " in html
    assert f'data-connectivity="{pk}"' in dashboard and 'data-tile="faulted"' in dashboard
    assert f'data-live-charge-point="{pk}"' in page
    assert f'data-power="{pk}:2"' in page and f'data-energy="{pk}:2"' in page
    assert f'data-connectivity-badge="{pk}"' in page
    script = b"".join(client.get("/static/js/live.js").streaming_content).decode()
    assert "/ws/live/" in script and "http://" not in script and "https://" not in script


def test_charge_point_page_shows_running_power_and_energy(login, technician, charge_point):
    tx = TransactionFactory(
        charge_point=charge_point, connector_number=1, meter_start=5000, last_power_w=11_000
    )
    tx.last_meter_wh = 6234
    tx.save()
    html = login(technician).get(charge_point.get_absolute_url()).content.decode()
    assert "11.0 kW" in html and "1.23 kWh" in html


# --- End to end: a browser on the real server, a charger on a real socket ----------------------


def _charger_reports_a_fault(base_url: str, identity: str, done: threading.Event, errors: list) -> None:
    """A charger on a real WebSocket: connects (online), reports connector 1 faulted, and stays
    connected until the test is done."""
    import websockets

    async def run():
        url = base_url.replace("http://", "ws://") + f"/ocpp/{identity}"
        auth = base64.b64encode(f"{identity}:{CHARGER_PASSWORD}".encode()).decode()
        async with websockets.connect(
            url, subprotocols=["ocpp1.6"], additional_headers={"Authorization": f"Basic {auth}"}
        ) as socket:
            await asyncio.sleep(0.5)
            status = {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted"}
            await socket.send(json.dumps([2, "s1", "StatusNotification", status]))
            reply = json.loads(await socket.recv())
            assert reply[0] == 3, reply
            while not done.is_set():
                await asyncio.sleep(0.1)

    try:
        asyncio.run(run())
    except Exception as exc:  # reported by the test
        errors.append(exc)


@pytest.mark.browser
@pytest.mark.live
def test_dashboard_follows_a_charger_without_a_reload(asgi_server, browser_page, operator_admin, site):
    cp = ChargePointFactory(site=site, identity="VW-LIVE-1", is_connected=False)
    ConnectorFactory(charge_point=cp, connector_id=1, status=ConnectorStatus.AVAILABLE)
    page = browser_page
    page.goto(f"{asgi_server}/accounts/login/")
    page.fill("input[name=username]", operator_admin.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url("**/dashboard/**")
    page.wait_for_selector('[data-live][data-live-state="open"]')
    assert page.inner_text(f'[data-connectivity="{cp.pk}"] .conn') == "Offline"
    assert page.inner_text('[data-tile="faulted"] .tile-value') == "0"
    page.evaluate("window.__notReloaded = true")

    done, errors = threading.Event(), []
    charger = threading.Thread(target=_charger_reports_a_fault, args=(asgi_server, cp.identity, done, errors))
    charger.start()
    try:
        page.wait_for_selector(f'[data-connectivity="{cp.pk}"] .conn-online')
        page.wait_for_selector(f'[data-connector-status="{cp.pk}:1"] .badge-faulted')
        page.wait_for_function(
            "() => document.querySelector('[data-tile=\"faulted\"] .tile-value').textContent === '1'"
        )
    finally:
        done.set()
        charger.join(timeout=10)
    assert not errors, errors
    assert page.text_content(f'[data-connector-status="{cp.pk}:1"]') == "#1Faulted"
    assert page.evaluate("window.__notReloaded") is True


def test_an_update_for_a_page_gone_meanwhile_is_dropped(monkeypatch):
    from channels.generic.websocket import AsyncWebsocketConsumer

    async def gone(self, text_data=None, bytes_data=None, close=False):
        raise OSError("connection closed")

    monkeypatch.setattr(AsyncWebsocketConsumer, "send", gone)
    consumer = live.LiveConsumer()
    asyncio.run(consumer.live_event({"type": "live.event", "data": {"event": "x"}}))  # no exception
