"""The group-commit writer: frames of many connections in one transaction, each failure its own."""

import asyncio
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from stations.models import Direction, OcppMessage
from stations.ocpp import writer
from stations.ocpp.protocol import CALL, CallError
from tests.ocpp.conftest import close_thread_connections

pytestmark = pytest.mark.django_db(transaction=True)


def logged(charge_point_id: int, unique_id: str):
    now = dt.datetime.now(dt.UTC)
    writer.log_rows(charge_point_id, (Direction.IN, CALL, unique_id, "Heartbeat", "[2]", now))
    return unique_id


def refused(charge_point_id: int, unique_id: str):
    logged(charge_point_id, unique_id)  # written, then rolled back with the failure
    raise CallError("PropertyConstraintViolation", "bad value")


def play(scenario, threads=1):
    executor = ThreadPoolExecutor(max_workers=threads)
    try:
        return asyncio.run(scenario(executor))
    finally:
        close_thread_connections(executor)
        executor.shutdown()


def test_calls_queued_meanwhile_share_one_transaction_and_a_failure_stays_its_own(charge_point):
    release = threading.Event()
    transactions = []

    def first():
        release.wait(timeout=10)  # holds the only database thread while the others queue
        return "first"

    def spy(fn):
        def call(*args):
            from django.db import connection

            transactions.append(connection.in_atomic_block)
            return fn(*args)

        return call

    async def scenario(executor):
        w = writer.BatchWriter(asyncio.get_running_loop(), executor, threads=1)
        head = asyncio.ensure_future(w.run(first))
        await asyncio.sleep(0.05)
        calls = [
            w.run(spy(logged), charge_point.pk, "a"),
            w.run(spy(refused), charge_point.pk, "bad"),
            w.run(spy(logged), charge_point.pk, "b"),
        ]
        tasks = [asyncio.ensure_future(c) for c in calls]
        await asyncio.sleep(0.05)
        queued = len(w.queue)
        release.set()
        results = await asyncio.gather(head, *tasks, return_exceptions=True)
        return queued, results

    queued, results = play(scenario)

    assert queued == 3  # all three waited for the thread, then went as one batch
    assert results[:2] == ["first", "a"]
    assert isinstance(results[2], CallError) and results[2].code == "PropertyConstraintViolation"
    assert results[3] == "b"
    assert sorted(OcppMessage.objects.values_list("unique_id", flat=True)) == ["a", "b"]
    assert all(transactions)  # every call ran inside a transaction


def test_a_lone_call_is_not_held_back(charge_point):
    async def scenario(executor):
        w = writer.BatchWriter(asyncio.get_running_loop(), executor, threads=2)
        return await asyncio.wait_for(w.run(logged, charge_point.pk, "solo"), timeout=5)

    assert play(scenario, threads=2) == "solo"
    assert OcppMessage.objects.get().unique_id == "solo"


def test_a_caller_gone_meanwhile_does_not_break_the_others(charge_point):
    release = threading.Event()

    async def scenario(executor):
        w = writer.BatchWriter(asyncio.get_running_loop(), executor, threads=1)
        head = asyncio.ensure_future(w.run(release.wait, 10))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(w.run(logged, charge_point.pk, "gone"))
        kept = asyncio.ensure_future(w.run(logged, charge_point.pk, "kept"))
        await asyncio.sleep(0.05)
        gone.cancel()  # its connection closed while it waited
        release.set()
        return await asyncio.gather(head, kept)

    assert play(scenario) == [True, "kept"]
    # What a caller that went away asked for is stored all the same: it was received.
    assert sorted(OcppMessage.objects.values_list("unique_id", flat=True)) == ["gone", "kept"]
