"""Simulated chargers over real sockets for the end-to-end tests: each on an event loop of its
own (a thread), driven from the test's synchronous code, quick to boot and to reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from stations.simulator import SimulatedChargePoint
from tests.factories import CHARGER_PASSWORD

FAST = {
    "meter_interval": 3600,  # meter values only when a test sends them
    "step_delay": 0.05,
    "reconnect_initial": 0.05,
    "reconnect_max": 0.2,
    "boot_retry_interval": 0.1,
    "response_timeout": 10,
    "seed": 3,
    "connectors": 1,
}


class Chargers:
    """Simulated chargers on their own event loop (a thread), driven from the test."""

    def __init__(self, base_url: str):
        self.url = base_url.replace("http://", "ws://") + "/ocpp"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.running: list[SimulatedChargePoint] = []

    def do(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, identity: str, **options) -> SimulatedChargePoint:
        async def go():
            cp = SimulatedChargePoint(
                identity=identity, password=CHARGER_PASSWORD, url=self.url, **{**FAST, **options}
            )
            await cp.__aenter__()
            await cp.wait_booted(timeout=20)
            return cp

        cp = self.do(go())
        self.running.append(cp)
        return cp

    def close(self):
        async def stop_all():
            for cp in self.running:
                # A charger that will not stop must not fail the test.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(cp.__aexit__(None, None, None), 10)

        try:
            self.do(stop_all(), timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
