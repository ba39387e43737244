"""How long one full diagnostic sweep takes over a large fleet, and how many SQL queries it
runs: at 1,000 chargers and at 10,000 in the same run, to show the count does not grow.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chargedesk_bench \\
        .venv/bin/python bench/diagnostics_sweep.py [--chargers 10000] [--small 1000]

It runs on a throw-away database made by Django's test machinery (``test_<name>``: created,
migrated, dropped at the end). The fleet is built by ``INSERT … SELECT generate_series`` (no
rows go through Python): each charger has one connector, a session running for the last 24
hours with an energy reading every 5 minutes and a power reading every 5 minutes of the last
hour; one in a hundred is silent, faulted, has a meter that goes backwards, under-delivers
or reboots in a loop, so that every detector has work. PostgreSQL only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

from diagnostics.models import Finding, Incident  # noqa: E402
from diagnostics.sweeps import run_sweep  # noqa: E402
from sessions.models import MeterSample  # noqa: E402

SAMPLE_MINUTES = 5


def build(first: int, count: int, now) -> None:
    """Chargers ``first`` … ``first + count - 1`` with their site rows, connectors, sessions and a
    day of samples, all in a few set-based statements."""
    last = first + count - 1
    day = 24 * 60 // SAMPLE_MINUTES
    with connection.cursor() as c:
        c.execute("SELECT id FROM stations_operator WHERE slug = 'bench'")
        row = c.fetchone()
        if row is None:
            c.execute(
                "INSERT INTO stations_operator (name, slug, legal_name, vat_number, email, phone, address, "
                "country, currency, accept_unknown_chargers, created_at) "
                "VALUES ('Bench', 'bench', '', '', '', '', '', 'NL', 'EUR', false, %s) RETURNING id",
                [now],
            )
            row = c.fetchone()
        op = row[0]
        # A site every 10 chargers.
        c.execute(
            """INSERT INTO stations_site (operator_id, name, address, city, postal_code, country, latitude,
                   longitude, time_zone, is_public, created_at, updated_at)
               SELECT %s, 'Site ' || s, s || ' Main Street', 'Amsterdam', '', 'NL', 52.37, 4.89, 'UTC', true,
                   %s, %s
               FROM generate_series(%s::int, %s::int) s""",
            [op, now, now, first // 10, last // 10],
        )
        # Every 100th charger (offset 1) is silent for an hour; every 100th (offset 2) reboots.
        c.execute(
            """INSERT INTO stations_chargepoint (operator_id, site_id, identity, name, vendor, model,
                   serial_number, firmware_version, iccid, imsi, meter_type, meter_serial_number, protocol,
                   password_hash, registration_status, is_connected, connected_at, last_seen_at, last_boot_at,
                   heartbeat_interval, firmware_status, diagnostics_status, status, error_code, created_at,
                   updated_at)
               SELECT %s,
                   (SELECT id FROM stations_site WHERE operator_id = %s AND name = 'Site ' || (s / 10)),
                   'BENCH-' || lpad(s::text, 6, '0'), '', 'Alfen', 'Eve', '',
                   CASE WHEN s %% 3 = 0 THEN '6.1.0' ELSE '6.0.2' END, '', '', '', '', 'ocpp1.6', '',
                   'Accepted', s %% 100 <> 1, %s,
                   CASE WHEN s %% 100 = 1 THEN %s::timestamptz - interval '1 hour' ELSE %s END, %s,
                   300, '', '', 'Available', '', %s, %s
               FROM generate_series(%s::int, %s::int) s""",
            [op, op, now, now, now, now, now, now, first, last],
        )
        c.execute(
            """INSERT INTO stations_evse (charge_point_id, evse_id)
               SELECT id, 1 FROM stations_chargepoint WHERE identity >= %s AND identity <= %s""",
            [f"BENCH-{first:06d}", f"BENCH-{last:06d}"],
        )
        # Every 100th (offset 3) connector is Faulted with a ground fault.
        c.execute(
            """INSERT INTO stations_connector (charge_point_id, evse_id, connector_id, standard, power_type,
                   max_power_kw, status, error_code, status_info, vendor_error_code, status_updated_at)
               SELECT cp.id, e.id, 1, 'IEC_62196_T2', 'AC_3_PHASE', 22,
                   CASE WHEN substr(cp.identity, 7)::int %% 100 = 3 THEN 'Faulted' ELSE 'Charging' END,
                   CASE WHEN substr(cp.identity, 7)::int %% 100 = 3 THEN 'GroundFailure' ELSE '' END,
                   '', '', %s::timestamptz - interval '1 day'
               FROM stations_chargepoint cp JOIN stations_evse e ON e.charge_point_id = cp.id
               WHERE cp.identity >= %s AND cp.identity <= %s""",
            [now, f"BENCH-{first:06d}", f"BENCH-{last:06d}"],
        )
        c.execute(
            """INSERT INTO stations_statuschange (charge_point_id, connector_id, connector_number, status,
                   error_code, info, vendor_id, vendor_error_code, source, timestamp, received_at)
               SELECT charge_point_id, id, 1, 'Faulted', 'GroundFailure', '', '', '', 'charger',
                   %s::timestamptz - interval '10 minutes', %s
               FROM stations_connector WHERE status = 'Faulted' AND charge_point_id IN
                   (SELECT id FROM stations_chargepoint WHERE identity >= %s AND identity <= %s)""",
            [now, now, f"BENCH-{first:06d}", f"BENCH-{last:06d}"],
        )
        c.execute(
            """INSERT INTO stations_ocppmessage (charge_point_id, direction, message_type, unique_id, action,
                   raw, created_at)
               SELECT cp.id, 'in', 2, 'b' || k, 'BootNotification', '[]',
                   %s::timestamptz - k * interval '5 minutes'
               FROM stations_chargepoint cp CROSS JOIN generate_series(1, 8) k
               WHERE cp.identity >= %s AND cp.identity <= %s AND substr(cp.identity, 7)::int %% 100 = 2""",
            [now, f"BENCH-{first:06d}", f"BENCH-{last:06d}"],
        )
        c.execute(
            """INSERT INTO charging_transaction (charge_point_id, connector_id, connector_number, id_tag,
                   started_at, meter_start, energy_anomaly, start_auth_status, stop_id_tag, stop_auth_status,
                   stop_reason, status, last_meter_wh, last_power_w, last_meter_at, created_at, updated_at)
               SELECT cp.id, cn.id, 1, 'TAG-' || cp.id, %s::timestamptz - interval '1 day', 0, '', 'Accepted',
                   '', '', '', 'active', 0, 0, %s, %s, %s
               FROM stations_chargepoint cp JOIN stations_connector cn ON cn.charge_point_id = cp.id
               WHERE cp.identity >= %s AND cp.identity <= %s""",
            [now, now, now, now, f"BENCH-{first:06d}", f"BENCH-{last:06d}"],
        )
        # The samples go in without their two indexes, which are built once afterwards (as a
        # bulk load would do); row by row index upkeep would triple the load time.
        with connection.schema_editor() as editor:
            for index in MeterSample._meta.indexes:
                editor.remove_index(MeterSample, index)
            for constraint in MeterSample._meta.constraints:
                editor.remove_constraint(MeterSample, constraint)
        # Nor do the foreign keys get checked row by row (the rows come from the parents above).
        c.execute("SET session_replication_role = replica")
        # Energy every 5 minutes for a day: 11 kW (offset 4: 2 kW, under-delivering; offset 5: the
        # register steps back 5 kWh half an hour ago).
        c.execute(
            """INSERT INTO charging_metersample (charge_point_id, connector_number, transaction_id, timestamp,
                   measurand, phase, unit, context, location, format, value_raw, value, energy_wh)
               SELECT t.charge_point_id, 1, t.id, t.started_at + k * interval '5 minutes',
                   'Energy.Active.Import.Register', '', 'Wh', 'Sample.Periodic', 'Outlet', 'Raw',
                   v::text, v, v
               FROM charging_transaction t
               JOIN stations_chargepoint cp ON cp.id = t.charge_point_id
               CROSS JOIN generate_series(0, %s::int) k
               CROSS JOIN LATERAL (SELECT (
                   CASE WHEN substr(cp.identity, 7)::int %% 100 = 4 THEN 2000 ELSE 11000 END * k * 5 / 60.0
                   - CASE WHEN substr(cp.identity, 7)::int %% 100 = 5 AND k >= %s::int - 6
                       THEN 5000 ELSE 0 END
               )::numeric(24, 3) AS v) val
               WHERE cp.identity >= %s AND cp.identity <= %s""",
            [day, day, f"BENCH-{first:06d}", f"BENCH-{last:06d}"],
        )
        c.execute(
            """INSERT INTO charging_metersample (charge_point_id, connector_number, transaction_id, timestamp,
                   measurand, phase, unit, context, location, format, value_raw, value, power_w)
               SELECT t.charge_point_id, 1, t.id, t.started_at + k * interval '5 minutes',
                   'Power.Active.Import', '', 'W', 'Sample.Periodic', 'Outlet', 'Raw', '11000', 11000, 11000
               FROM charging_transaction t
               JOIN stations_chargepoint cp ON cp.id = t.charge_point_id
               CROSS JOIN generate_series(%s::int, %s::int) k
               WHERE cp.identity >= %s AND cp.identity <= %s""",
            [day - 12, day, f"BENCH-{first:06d}", f"BENCH-{last:06d}"],
        )
        c.execute("SET session_replication_role = DEFAULT")
        with connection.schema_editor() as editor:
            for index in MeterSample._meta.indexes:
                editor.add_index(MeterSample, index)
            for constraint in MeterSample._meta.constraints:
                editor.add_constraint(MeterSample, constraint)
        c.execute(
            "UPDATE charging_transaction SET last_meter_at = %s WHERE charge_point_id IN "
            "(SELECT id FROM stations_chargepoint WHERE identity >= %s AND identity <= %s)",
            [now, f"BENCH-{first:06d}", f"BENCH-{last:06d}"],
        )
        c.execute("ANALYZE")


def measure(label: str, now) -> tuple[list[str], float]:
    Finding.objects.all().delete()
    Incident.objects.all().delete()
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        report = run_sweep(now=now, heal=False)
        took = time.perf_counter() - started
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM stations_chargepoint")
        chargers = c.fetchone()[0]
        c.execute("SELECT count(*) FROM charging_metersample")
        samples = c.fetchone()[0]
    kinds = dict(sorted(Counter(Incident.objects.values_list("kind", flat=True)).items()))
    print(
        f"{label}: {chargers:>6} chargers, {samples:>9} meter samples: sweep {took:6.2f} s, "
        f"{len(queries.captured_queries)} SQL queries, {report.opened} incidents opened {kinds}"
    )
    return [q["sql"] for q in queries.captured_queries], took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000)
    args = parser.parse_args()

    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        if connection.vendor != "postgresql":
            sys.exit("PostgreSQL only (set DATABASE_URL=postgres://…)")
        with connection.cursor() as c:
            c.execute("SHOW server_version")
            print(f"PostgreSQL {c.fetchone()[0]}")
        now = timezone.now()
        started = time.perf_counter()
        build(0, args.small, now)
        print(f"built {args.small} chargers in {time.perf_counter() - started:.1f} s")
        small_queries, _ = measure("small", now)
        started = time.perf_counter()
        build(args.small, args.chargers - args.small, now)
        print(f"built {args.chargers - args.small} more in {time.perf_counter() - started:.1f} s")
        large_queries, _ = measure("large", now)
        if os.environ.get("BENCH_SHOW_QUERIES"):
            for a, b in zip(small_queries, large_queries, strict=False):
                print("S", a[:150], "\nL", b[:150])
        small_queries, large_queries = len(small_queries), len(large_queries)
        verdict = "does not grow" if large_queries <= small_queries else "GROWS"
        sizes = f"{small_queries} at {args.small} chargers, {large_queries} at {args.chargers}"
        print(f"queries: {sizes}: {verdict}")
    finally:
        teardown_databases(old_config, verbosity=0)


if __name__ == "__main__":
    main()
