import asyncio
import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor

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


WORKERS = 4


@pytest.fixture
def run():
    """Run a scenario on a fresh event loop. The consumer's database work runs in the loop's
    executor threads, each holding a connection: close them all at the end (a barrier makes
    every thread take one closing task), so the test database can be dropped."""
    from django.db import connections

    def _run(coro):
        async def main():
            loop = asyncio.get_running_loop()
            executor = ThreadPoolExecutor(max_workers=WORKERS)
            loop.set_default_executor(executor)
            barrier = threading.Barrier(WORKERS)

            def close():
                barrier.wait(timeout=10)
                connections.close_all()

            try:
                return await coro
            finally:
                await asyncio.gather(*(loop.run_in_executor(executor, close) for _ in range(WORKERS)))

        return asyncio.run(main())

    return _run
