"""A reconnect storm on the real stack: a few hundred simulated chargers on a real uvicorn
process (PostgreSQL, Redis) reconnect at once after the process is killed and started again;
all come back within a bound, and the dashboard answers meanwhile."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
import urllib.request

import pytest
from django.test import Client

from stations.models import ChargePoint
from stations.simulator import SimulatedChargePoint
from tests.chargers import FAST
from tests.conftest import _need
from tests.factories import CHARGER_PASSWORD, OperatorAdminFactory, OperatorFactory
from tests.live import free_port, stack_env, start_asgi, stop_process

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.live]

CHARGERS = 300
# Generous: on a loaded 2-core machine 300 chargers come back in a few seconds.
STORM_BOUND_S = 45


class Server:
    """ChargeDesk on a uvicorn process of its own, on a fixed port, that can crash and restart."""

    def __init__(self, env: dict):
        self.env, self.port = env, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        _, self.proc = start_asgi(self.env, self.port, extra=("--backlog", "2048"))

    def crash(self) -> None:
        """SIGKILL: nothing drained, no disconnect handled, every socket gone at once."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)


@pytest.fixture
def server(transactional_db, settings):
    _need(settings.USING_POSTGRES and bool(settings.REDIS_URL), "needs PostgreSQL and Redis")
    srv = Server(stack_env())
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def fleet(transactional_db):
    """CHARGERS provisioned charge points, and a loop (a thread) to run their simulators on."""
    operator = OperatorFactory(slug="stormnet")
    probe = ChargePoint(identity="probe")
    probe.set_password(CHARGER_PASSWORD)  # one hash for all: provisioning stays quick
    ChargePoint.objects.bulk_create(
        ChargePoint(operator=operator, identity=f"STORM-{n:04d}", password_hash=probe.password_hash)
        for n in range(CHARGERS)
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    chargers: list[SimulatedChargePoint] = []
    yield operator, loop, chargers

    async def stop_all():
        await asyncio.gather(
            *(asyncio.wait_for(cp.__aexit__(None, None, None), 10) for cp in chargers), return_exceptions=True
        )

    asyncio.run_coroutine_threadsafe(stop_all(), loop).result(60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def _on(loop, coro, timeout=60):
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)


def _dashboard_get(base: str, session_id: str) -> tuple[int, float]:
    request = urllib.request.Request(f"{base}/dashboard/", headers={"Cookie": f"sessionid={session_id}"})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        return response.status, time.monotonic() - started


def test_all_chargers_come_back_after_a_crash_and_the_dashboard_answers_meanwhile(server, fleet):
    operator, loop, chargers = fleet
    client = Client()
    client.force_login(OperatorAdminFactory(operator=operator))
    session_id = client.cookies["sessionid"].value

    async def connect_all():
        url = server.base.replace("http://", "ws://") + "/ocpp"
        options = {**FAST, "reconnect_initial": 0.2, "reconnect_max": 1.0, "connect_timeout": 30}
        for n in range(CHARGERS):
            chargers.append(
                SimulatedChargePoint(identity=f"STORM-{n:04d}", password=CHARGER_PASSWORD, url=url, **options)
            )
        await asyncio.gather(*(cp.__aenter__() for cp in chargers))
        await asyncio.gather(*(cp.wait_booted(timeout=60) for cp in chargers))

    _on(loop, connect_all(), timeout=90)
    assert ChargePoint.objects.filter(is_connected=True).count() == CHARGERS
    # A charger sends BootNotification after a reboot, not after a reconnect: count admissions.
    connects_before = [cp.connects for cp in chargers]

    server.crash()
    server.start()
    restarted = time.monotonic()
    answers = []
    while True:
        back = sum(
            cp.connects > before and cp.online for cp, before in zip(chargers, connects_before, strict=True)
        )
        if back == CHARGERS or time.monotonic() - restarted > STORM_BOUND_S:
            break
        answers.append(_dashboard_get(server.base, session_id))
        time.sleep(0.1)
    took = time.monotonic() - restarted

    assert back == CHARGERS, f"{back} of {CHARGERS} chargers came back within {STORM_BOUND_S} s"
    assert answers, "the storm ended before the dashboard could be asked"
    assert all(status == 200 for status, _ in answers)
    slowest = max(seconds for _, seconds in answers)
    assert slowest < 10, f"the dashboard took {slowest:.1f} s during the storm"
    # Every one of them is known to be online again (and the dashboard counts them so).
    assert ChargePoint.objects.filter(is_connected=True).count() == CHARGERS
    print(f"{CHARGERS} chargers back in {took:.1f} s; dashboard slowest {slowest * 1000:.0f} ms")
