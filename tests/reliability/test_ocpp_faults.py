"""Fault tests on the OCPP path, on real processes and sockets: a server a test stops and starts
in the middle of charger traffic, then the check that every message a charger got an answer for
is stored exactly once, the chargers are back online and commands still reach them."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.chargers import Chargers
from tests.reliability.conftest import ROOT, assert_nothing_answered_lost, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.live]

IDENTITIES = ("FAULT-R1", "FAULT-R2", "FAULT-R3")
TRAFFIC = {"meter_interval": 0.2, "energy_speedup": 50, "record_answers": True, "response_timeout": 5}


def _provision(identities):
    from tests.factories import ChargePointFactory, ConnectorFactory, IdTokenFactory

    for identity in identities:
        cp = ChargePointFactory(identity=identity, is_connected=False)
        ConnectorFactory(charge_point=cp, connector_id=1)
        # One card per charger: a card already charging elsewhere is refused (ConcurrentTx).
        IdTokenFactory(token=_tag(identity))


def _tag(identity: str) -> str:
    return f"04{identity.encode().hex().upper()[-12:]}"


def _answered_meter_values(cp) -> int:
    return sum(1 for action, _ in cp.answered if action == "MeterValues")


def _ocpp_command(env, identity, action="ClearCache", check=True) -> str:
    """A command through the channel layer from another process, as an operator would send it."""
    done = subprocess.run(
        [sys.executable, "manage.py", "ocpp_command", identity, "--action", action, "--timeout", "10"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 or not check, done.stdout + done.stderr
    return done.stdout


def test_redis_restart_mid_traffic_loses_no_answered_meter_value_and_commands_work_after(redis_stack):
    from stations.models import ChargePoint

    base, env, redis_server = redis_stack
    _provision(IDENTITIES)
    chargers = Chargers(base)
    try:
        cps = [chargers.start(identity, **TRAFFIC) for identity in IDENTITIES]
        for cp in cps:
            chargers.do(cp.start_session(1, _tag(cp.id)))
        wait_until(
            lambda: all(_answered_meter_values(cp) >= 3 for cp in cps), 15, "meter values before the fault"
        )

        redis_server.stop()
        time.sleep(1.0)  # traffic goes on against a server whose Redis is gone
        redis_server.start()

        # Traffic resumes: every charger gets new MeterValues answered after the restart.
        after = [_answered_meter_values(cp) for cp in cps]
        wait_until(
            lambda: all(_answered_meter_values(cp) >= n + 3 for cp, n in zip(cps, after, strict=True)),
            20,
            "meter values answered after the Redis restart",
        )
        # Nothing a charger says needs Redis: its socket outlived the outage (the consumer waits
        # the channel layer out instead of dying with it).
        assert [cp.connects for cp in cps] == [1] * len(cps), "a charger's socket was dropped"
        assert all(cp.online and cp.booted for cp in cps)
        wait_until(
            lambda: (
                ChargePoint.objects.filter(identity__in=IDENTITIES, is_connected=True).count() == len(cps)
            ),
            10,
            "every charger shown connected",
        )
        # The channel layer works again: a command from another process reaches each charger
        # (its consumer joined the group the restarted Redis had forgotten).
        # A consumer notices the restart at its next channel-layer call; until it has joined
        # again a command may time out (bounded here).
        tries = {}
        for identity in IDENTITIES:
            tries[identity] = []
            wait_until(
                lambda identity=identity: (
                    tries[identity].append(_ocpp_command(env, identity, check=False))
                    or "Accepted" in tries[identity][-1]
                ),
                30,
                f"a command answered by {identity} after the Redis restart",
                interval=1,
            )
        print(f"\ncommands after the Redis restart: {tries}")
        for cp in cps:
            chargers.do(cp.stop_session(1, reason="Local"))
    finally:
        chargers.close()

    assert_nothing_answered_lost(cps)
    # The server records a charger's goodbye after the socket has closed: poll, with a deadline.
    wait_until(
        lambda: not ChargePoint.objects.filter(identity__in=IDENTITIES, is_connected=True).exists(),
        10,
        "the chargers that closed shown disconnected",
    )


def test_a_charger_connecting_while_redis_is_down_is_admitted_and_reachable_once_it_is_back(redis_stack):
    from stations.models import ChargePoint

    base, env, redis_server = redis_stack
    identity = "FAULT-R4"
    _provision([identity])
    chargers = Chargers(base)
    redis_server.stop()
    try:
        # No cache (password fingerprints, failure counts) and no channel layer: the password is
        # checked the slow way, the charger is admitted and what it says is stored.
        cp = chargers.start(identity, **TRAFFIC)
        assert cp.online and cp.booted
        started = chargers.do(cp.start_session(1, _tag(identity)))
        assert started.accepted and started.transaction_id, started
        wait_until(lambda: _answered_meter_values(cp) >= 3, 15, "meter values while Redis is down")
        assert ChargePoint.objects.get(identity=identity).is_connected

        redis_server.start()
        # Its consumer joins the charger's group once Redis answers: commands reach it.
        wait_until(
            lambda: "Accepted" in _ocpp_command(env, identity, check=False),
            20,
            "a command answered after Redis came back",
            interval=1,
        )
        chargers.do(cp.stop_session(1, reason="Local"))
        assert any(action == "StopTransaction" for action, _ in cp.answered), "StopTransaction unanswered"
        assert cp.connects == 1
    finally:
        chargers.close()

    assert_nothing_answered_lost([cp])
    wait_until(
        lambda: not ChargePoint.objects.filter(identity=identity, is_connected=True).exists(),
        10,
        "the charger that closed shown disconnected",
    )


class Balancer:
    """A tiny TCP balancer: each new connection goes to the first backend that accepts it, as a
    load balancer whose health check has not noticed a dead backend yet."""

    def __init__(self, backends: list[int]):
        import asyncio
        import threading

        from tests.conftest import _free_port

        self.backends = backends
        self.port = _free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(10)

    async def _serve(self):
        import asyncio

        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader, writer):
        import asyncio
        import contextlib

        for port in self.backends:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        else:
            writer.close()
            return

        async def pipe(src, dst):
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_asgi_process_killed_its_chargers_reconnect_to_another_marked_connected_nothing_lost(
    transactional_db, settings, private_redis
):
    import signal

    from stations.models import ChargePoint
    from tests.conftest import _need
    from tests.reliability.conftest import stack_env, start_asgi, stop_process

    _need(settings.USING_POSTGRES, "needs PostgreSQL")
    identities = ("FAULT-K1", "FAULT-K2")
    _provision(identities)
    env = stack_env(private_redis.url)
    first, first_proc = start_asgi(env)
    second, second_proc = start_asgi(env)
    balancer = Balancer([int(first.rsplit(":", 1)[1]), int(second.rsplit(":", 1)[1])])
    chargers = Chargers(f"http://127.0.0.1:{balancer.port}")
    try:
        cps = [chargers.start(identity, **TRAFFIC) for identity in identities]
        for cp in cps:
            chargers.do(cp.start_session(1, _tag(cp.id)))
        wait_until(
            lambda: all(_answered_meter_values(cp) >= 3 for cp in cps), 15, "meter values before the kill"
        )

        # SIGKILL: the process never runs disconnect(), so nothing marks its chargers offline.
        first_proc.send_signal(signal.SIGKILL)
        first_proc.wait(10)
        after = [_answered_meter_values(cp) for cp in cps]
        wait_until(
            lambda: all(_answered_meter_values(cp) >= n + 3 for cp, n in zip(cps, after, strict=True)),
            20,
            "meter values answered by the surviving process",
        )
        wait_until(lambda: all(cp.online and cp.booted for cp in cps), 15, "every charger reconnected")
        assert ChargePoint.objects.filter(identity__in=identities, is_connected=True).count() == len(cps)
        out = _ocpp_command(env, identities[0])
        assert "Accepted" in out, out
        for cp in cps:
            chargers.do(cp.stop_session(1, reason="Local"))
    finally:
        chargers.close()
        balancer.close()
        stop_process(second_proc)
        stop_process(first_proc)

    assert_nothing_answered_lost(cps)
