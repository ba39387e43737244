"""How many MeterValues messages a second ``meter_values_record`` stores on the configured database,
next to a naive baseline (one ``MeterSample.objects.create`` a sampled value) in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chargedesk_bench \\
        .venv/bin/python bench/meter_values_store.py [--messages 2000] [--samples 10] [--workers 2]

It runs on a throw-away database made by Django's test machinery (``test_<name>``: created,
migrated, dropped at the end), so it never touches real data. The messages are what the OCPP
adapter hands over: dicts as received, ISO timestamps as strings, so parsing is included.
``--workers`` forks processes that store at once, each for its own chargers, as the ASGI
processes do (PostgreSQL only; SQLite's test database lives in one process's memory).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import connection, connections  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases  # noqa: E402

from sessions import services  # noqa: E402
from sessions.models import IdToken, MeterSample  # noqa: E402
from sessions.services import meter_values_record, transaction_start  # noqa: E402
from stations.models import ChargePoint, Operator  # noqa: E402
from stations.services import charge_points_provision  # noqa: E402

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)

# Ten sampled values, as a three-phase AC charger sends them every period.
TEMPLATE = [
    ("Energy.Active.Import.Register", None, "Wh", None),
    ("Power.Active.Import", None, "W", None),
    ("Current.Import", "L1", "A", None),
    ("Current.Import", "L2", "A", None),
    ("Current.Import", "L3", "A", None),
    ("Voltage", "L1-N", "V", None),
    ("Voltage", "L2-N", "V", None),
    ("Voltage", "L3-N", "V", None),
    ("SoC", None, "Percent", "EV"),
    ("Temperature", None, "Celsius", "Body"),
]


def message(n: int, samples: int, start: dt.datetime) -> list[dict]:
    timestamp = (start + dt.timedelta(seconds=60 * n)).isoformat().replace("+00:00", "Z")
    values = []
    for i in range(samples):
        measurand, phase, unit, location = TEMPLATE[i % len(TEMPLATE)]
        sampled = {"value": f"{1000 + n * 120 + i}.{i}", "measurand": measurand, "unit": unit}
        sampled["context"] = "Sample.Periodic"
        if phase or i >= len(TEMPLATE):
            sampled["phase"] = phase or f"L{i % 3 + 1}"  # beyond ten: more phases, still unique
            if i >= len(TEMPLATE):
                sampled["location"] = ("Outlet", "Inlet", "Cable", "Body", "EV")[i // len(TEMPLATE) % 5]
        if location:
            sampled["location"] = location
        values.append(sampled)
    return [{"timestamp": timestamp, "sampledValue": values}]


def workload(chargers: list[tuple[ChargePoint, int]], messages: int, samples: int, start: dt.datetime):
    """(charge point, transaction id, meterValue) for each message, round-robin over chargers."""
    return [
        (chargers[n % len(chargers)][0], chargers[n % len(chargers)][1], message(n, samples, start))
        for n in range(messages)
    ]


def store(work) -> int:
    stored = 0
    for charge_point, tx_id, meter_values in work:
        stored += meter_values_record(
            charge_point=charge_point, connector_id=1, transaction_id=tx_id, meter_values=meter_values
        )
    return stored


def store_with_orm(work) -> int:
    """The service's portable path (bulk_create), which PostgreSQL does not take: for comparison."""
    stored = 0
    for charge_point, tx_id, meter_values in work:
        parsed = services._parse_meter_values(meter_values)
        stored += services._record_with_orm(parsed, charge_point.pk, 1, tx_id)
    return stored


def store_naively(work) -> int:
    """The baseline: what one would write first. One INSERT (one commit) a sampled value."""
    stored = 0
    for charge_point, tx_id, meter_values in work:
        for meter_value in meter_values:
            timestamp = dt.datetime.fromisoformat(meter_value["timestamp"])
            for sampled in meter_value["sampledValue"]:
                MeterSample.objects.create(
                    charge_point=charge_point,
                    connector_number=1,
                    transaction_id=tx_id,
                    timestamp=timestamp,
                    measurand=sampled.get("measurand", "Energy.Active.Import.Register"),
                    phase=sampled.get("phase", ""),
                    unit=sampled.get("unit", "Wh"),
                    context=sampled.get("context", "Sample.Periodic"),
                    location=sampled.get("location", "Outlet"),
                    format=sampled.get("format", "Raw"),
                    value_raw=sampled["value"],
                    value=sampled["value"],
                )
                stored += 1
    return stored


def _child(work, queue) -> None:
    connections.close_all()  # never share the parent's socket
    try:
        queue.put(store(work))
    finally:
        connections.close_all()


def store_in_processes(work, workers: int) -> tuple[int, float]:
    """Store with ``workers`` processes at once, each taking whole chargers. (stored, seconds)"""
    by_charger: dict[int, list] = {}
    for item in work:
        by_charger.setdefault(item[0].pk, []).append(item)
    slices: list[list] = [[] for _ in range(workers)]
    for n, items in enumerate(by_charger.values()):
        slices[n % workers].extend(items)
    connections.close_all()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    processes = [context.Process(target=_child, args=(s, queue)) for s in slices]
    started = time.perf_counter()
    for p in processes:
        p.start()
    stored = sum(queue.get() for _ in processes)
    for p in processes:
        p.join()
    return stored, time.perf_counter() - started


def timed(fn, *args) -> tuple[int, float]:
    global last_cpu
    started, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    last_cpu = time.process_time() - cpu
    return result, time.perf_counter() - started


last_cpu = 0.0  # this process's CPU seconds in the last timed() run: the rest is the database


def line(label: str, messages: int, stored: int, seconds: float) -> str:
    rates = f"{messages / seconds:>8,.0f} msg/s  {stored / seconds:>9,.0f} samples/s"
    return f"  {label:<48} {rates}  ({messages:,} in {seconds:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=10, help="sampled values a message")
    parser.add_argument("--naive", type=int, default=500, help="messages for the naive baseline")
    parser.add_argument("--chargers", type=int, default=50, help="charge points, one transaction each")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes for the parallel run (PostgreSQL)"
    )
    args = parser.parse_args()

    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        vendor = connection.vendor
        postgres = vendor == "postgresql"
        version = ""
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                version = cursor.fetchone()[0]
        operator = Operator.objects.create(name="Bench", slug="bench")
        identities = [f"BENCH-{n:05d}" for n in range(args.chargers)]
        charge_points_provision(
            operator=operator, identities=identities, password="bench-password-0123456789", connectors=1
        )
        chargers = []
        for n, charge_point in enumerate(ChargePoint.objects.filter(identity__in=identities)):
            IdToken.objects.create(token=f"BENCH{n:06d}")
            tx, _ = transaction_start(
                charge_point=charge_point, connector_id=1, id_tag=f"BENCH{n:06d}", meter_start=0, timestamp=T0
            )
            chargers.append((charge_point, tx.pk))

        n = args.messages
        print(f"database: {vendor} {version} ({connection.settings_dict['NAME']}), {os.cpu_count()} CPUs")
        print(f"workload: {n:,} MeterValues of {args.samples} sampled values, {len(chargers)} chargers")

        naive_n = min(n, args.naive)  # it is slow: a sample of it tells its rate
        naive_work = workload(chargers, naive_n, args.samples, T0 + dt.timedelta(days=100))
        stored, seconds = timed(store_naively, naive_work)
        print(line("naive MeterSample.objects.create loop", naive_n, stored, seconds))
        baseline = naive_n / seconds

        work = workload(chargers, n, args.samples, T0)
        with CaptureQueriesContext(connection) as queries:
            meter_values_record(
                charge_point=work[0][0], connector_id=1, transaction_id=work[0][1], meter_values=work[0][2]
            )
        stored, seconds = timed(store, work[1:])
        stored += args.samples
        print(line("meter_values_record, 1 process", n - 1, stored, seconds))
        single = (n - 1) / seconds
        print(f"    of which Python (parse, encode, send): {last_cpu / (n - 1) * 1e6:,.0f} µs CPU a message")

        if postgres:
            orm_work = workload(chargers, n, args.samples, T0 + dt.timedelta(days=300))
            stored, seconds = timed(store_with_orm, orm_work)
            print(line("  the same through bulk_create (not used on PG)", n, stored, seconds))

        resent, seconds = timed(store, work)
        print(line("meter_values_record, all re-sent (stores 0)", n, resent, seconds))

        parallel = None
        if postgres and args.workers > 1:
            more = workload(chargers, n, args.samples, T0 + dt.timedelta(days=200))
            stored, seconds = store_in_processes(more, args.workers)
            print(line(f"meter_values_record, {args.workers} processes at once", n, stored, seconds))
            parallel = n / seconds

        print(f"queries a message: {len(queries)} ({'; '.join(q['sql'].split(' ')[0] for q in queries)})")
        print(f"speed-up over the naive loop: {single / baseline:.1f}x in one process", end="")
        print(f", {parallel / baseline:.1f}x with {args.workers}" if parallel else "")
        print(f"samples stored: {MeterSample.objects.count():,}")
    finally:
        connections.close_all()
        teardown_databases(old_config, verbosity=0)


if __name__ == "__main__":
    main()
