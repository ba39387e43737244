import asyncio
import base64
import json
import threading

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from tests.factories import CHARGER_PASSWORD


def basic(identity: str, password: str = CHARGER_PASSWORD) -> tuple[bytes, bytes]:
    return (b"authorization", b"Basic " + base64.b64encode(f"{identity}:{password}".encode()))


class Charger:
    """A hand-played charger on the real consumer, in process (channels' communicator)."""

    def __init__(self, identity, password=CHARGER_PASSWORD, subprotocols=("ocpp1.6",), path=None):
        headers = [basic(identity, password)] if password is not None else []
        self.comm = WebsocketCommunicator(
            application, path or f"/ocpp/{identity}", headers=headers, subprotocols=list(subprotocols)
        )
        self.counter = 0

    async def connect(self):
        return await self.comm.connect(timeout=10)

    async def call(self, action, payload, unique_id=None):
        self.counter += 1
        uid = unique_id or f"m{self.counter}"
        await self.comm.send_to(text_data=json.dumps([2, uid, action, payload]))
        return await self.receive()

    async def raw(self, text):
        await self.comm.send_to(text_data=text)
        return await self.receive()

    async def receive(self, timeout=10):
        return json.loads(await self.comm.receive_from(timeout=timeout))

    async def close(self):
        await self.comm.disconnect()


def close_thread_connections(executor) -> None:
    """Close the database connection each thread of ``executor`` holds (a barrier makes every
    thread take one closing task), so the test database can be dropped afterwards."""
    from django.db import connections

    threads = len(executor._threads)
    if not threads:
        return
    barrier = threading.Barrier(threads)

    def close():
        barrier.wait(timeout=10)
        connections.close_all()

    for future in [executor.submit(close) for _ in range(threads)]:
        future.result(timeout=15)


@pytest.fixture
def run():
    """Run a scenario on a fresh event loop, then close the connections of the consumer's
    database threads."""
    from stations.ocpp import consumer

    def _run(coro):
        try:
            return asyncio.run(coro)
        finally:
            close_thread_connections(consumer._executor)

    return _run
