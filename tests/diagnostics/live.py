"""Helpers of the end-to-end diagnostics tests: ORM work off the event loop, polling the
database for what the server stored, and a simulated charger aimed at the test's server."""

from __future__ import annotations

import asyncio

from django.db import connections

from tests.factories import CHARGER_PASSWORD


def in_thread(fn, *args, **kwargs):
    """Run ORM work off the event loop, closing the thread's connection afterwards."""

    def run():
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return asyncio.to_thread(run)


async def poll(fn, *, timeout: float = 30.0, interval: float = 0.2):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await in_thread(fn)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(interval)


def simulator(identity: str, base: str, **kwargs):
    from stations.simulator import SimulatedChargePoint

    return SimulatedChargePoint(
        identity=identity,
        password=CHARGER_PASSWORD,
        url=base.replace("http://", "ws://") + "/ocpp",
        connectors=1,
        step_delay=0.2,
        seed=3,
        **kwargs,
    )
