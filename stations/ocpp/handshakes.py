"""A bound on the charger handshakes one process works on at once.

After a restart a whole fleet knocks within a second. Admitting them all at once puts
thousands of password checks and status writes in front of the database threads that the
connected chargers' frames and the dashboard also wait for, and every thread more contends
for the one interpreter lock. Handshakes past the bound wait here, in arrival order, with
their socket open (a charger sees a slower handshake, not a refusal); the rest of the process
keeps its pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref

from django.conf import settings

# One semaphore per event loop: an asyncio primitive belongs to the loop it first waited on
# (tests run each scenario on a new loop).
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def slot():
    """Hold one of OCPP_HANDSHAKE_CONCURRENCY places while the handshake runs (0: no bound)."""
    limit = settings.OCPP_HANDSHAKE_CONCURRENCY
    if limit <= 0:
        yield
        return
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(limit)
    async with gate:
        yield
