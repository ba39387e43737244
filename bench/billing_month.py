"""A month of billing: price 100,000 finished sessions from their meter samples and issue the
postpaid accounts' monthly invoices for them; prints the time and the SQL query count of each
step, at a tenth of the size and at full size in the same run, so that the growth shows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chargedesk_bench \\
        .venv/bin/python bench/billing_month.py [--sessions 100000] [--small 10000]

It runs on a throw-away PostgreSQL database made by Django's test machinery. The month is
built with set-based SQL (no rows through Python): 1,000 charge points on 100 sites, 1,000
postpaid accounts each with one RFID card, the sessions spread over last month (an hour or
two each, 5–40 kWh) with four meter samples each (two energy registers, two power readings).
The operator's tariff has time-of-use energy prices in the site's zone, a session fee, an
idle fee after a grace period with a cap, and 21 % VAT included. Pricing goes through
``billing.services.charges.price_sessions`` (the batch path: what pricing each session on
its own gives, tested so), without the per-session "priced" events; invoicing through
``billing.accounts.run_monthly`` (one invoice per account, numbered without gaps).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.pop("REDIS_URL", None)

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.querycount import QueryCounter  # noqa: E402
from billing.accounts import previous_month, run_monthly  # noqa: E402
from billing.models import (  # noqa: E402
    ComponentType,
    Invoice,
    InvoiceLine,
    PriceComponent,
    Tariff,
    TariffAssignment,
    TariffElement,
)
from billing.services.charges import price_sessions  # noqa: E402
from sessions.models import Transaction  # noqa: E402
from stations.models import Operator  # noqa: E402


def build_network(tag: str, now: dt.datetime) -> Operator:
    operator = Operator.objects.create(name=f"Bench {tag}", slug=f"bench-{tag}", currency="EUR")
    tariff = Tariff.objects.create(
        operator=operator,
        name="City",
        tax_rate=Decimal("21"),
        prices_include_tax=True,
        idle_grace_minutes=30,
        idle_fee_cap=Decimal("18.00"),
    )
    peak = TariffElement.objects.create(
        tariff=tariff, order=0, start_time=dt.time(8), end_time=dt.time(20), day_of_week=[]
    )
    PriceComponent.objects.create(element=peak, type=ComponentType.ENERGY, price=Decimal("0.45"))
    base = TariffElement.objects.create(tariff=tariff, order=1)
    PriceComponent.objects.create(element=base, type=ComponentType.ENERGY, price=Decimal("0.30"))
    PriceComponent.objects.create(element=base, type=ComponentType.FLAT, price=Decimal("1.00"))
    PriceComponent.objects.create(element=base, type=ComponentType.PARKING_TIME, price=Decimal("6.00"))
    TariffAssignment.objects.create(tariff=tariff, operator=operator)
    op = operator.pk
    with connection.cursor() as c:
        c.execute(
            """INSERT INTO stations_site (operator_id, name, address, city, postal_code, country, latitude,
                   longitude, time_zone, is_public, created_at, updated_at)
               SELECT %s, 'Site ' || s, s || ' Main Street', 'Amsterdam', '', 'NL', 52.37, 4.89,
                   'Europe/Amsterdam', true, %s, %s
               FROM generate_series(0, 99) s""",
            [op, now, now],
        )
        c.execute(
            """INSERT INTO stations_chargepoint (operator_id, site_id, identity, name, vendor, model,
                   serial_number, firmware_version, iccid, imsi, meter_type, meter_serial_number, protocol,
                   password_hash, registration_status, is_connected, heartbeat_interval, firmware_status,
                   diagnostics_status, status, error_code, created_at, updated_at)
               SELECT %s,
                   (SELECT id FROM stations_site WHERE operator_id = %s AND name = 'Site ' || (s / 10)),
                   'B' || %s || '-' || lpad(s::text, 4, '0'), '', 'Alfen', 'Eve', '', '6.0', '', '', '', '',
                   'ocpp1.6', '', 'Accepted', true, 300, '', '', 'Available', '', %s, %s
               FROM generate_series(0, 999) s""",
            [op, op, tag, now, now],
        )
        c.execute(
            """INSERT INTO charging_idtoken (token, type, label, driver_id, status, parent_token, created_at)
               SELECT 'B' || %s || 'T' || lpad(s::text, 5, '0'), 'RFID', '', NULL, 'Accepted', '', %s
               FROM generate_series(0, 999) s""",
            [tag, now],
        )
        c.execute(
            """INSERT INTO billing_billingaccount (operator_id, name, owner_id, email, address, vat_number,
                   payment_terms_days, status, created_at)
               SELECT %s, 'Fleet ' || s, NULL, 'fleet' || s || '@bench.example', '', '', 14, 'active', %s
               FROM generate_series(0, 999) s""",
            [op, now],
        )
        c.execute(
            """INSERT INTO billing_accounttoken (account_id, id_token_id)
               SELECT a.id, t.id
               FROM (SELECT id, row_number() OVER (ORDER BY id) n FROM billing_billingaccount
                     WHERE operator_id = %s) a
               JOIN (SELECT id, row_number() OVER (ORDER BY id) n FROM charging_idtoken
                     WHERE token LIKE %s) t ON a.n = t.n""",
            [op, f"B{tag}T%"],
        )
    return operator


def build_sessions(
    operator: Operator, tag: str, count: int, month_start: dt.datetime, now: dt.datetime
) -> None:
    """``count`` sessions over the month: session s on charger s % 1000 with card s % 1000,
    starting every (month / count * 1000) on its charger, 1–2 h long, 5–40 kWh."""
    seconds = 28 * 24 * 3600
    with connection.cursor() as c:
        c.execute(
            """INSERT INTO charging_transaction (charge_point_id, connector_id, connector_number,
                   id_token_id, id_tag, driver_id, reservation_id, started_at, stopped_at, meter_start,
                   meter_stop, energy_wh,
                   energy_anomaly, start_auth_status, stop_id_tag, stop_auth_status, stop_reason, status,
                   last_meter_wh, last_power_w, last_meter_at, created_at, updated_at)
               SELECT cp.id, NULL, 1, t.id, t.token, NULL, NULL,
                   %(start)s::timestamptz + make_interval(secs => (s / 1000) * (%(secs)s / (%(n)s / 1000.0))),
                   %(start)s::timestamptz + make_interval(secs => (s / 1000) * (%(secs)s / (%(n)s / 1000.0))
                       + 3600 + (s %% 3600)),
                   1000000, 1000000 + 5000 + (s * 37 %% 35000), 5000 + (s * 37 %% 35000),
                   '', 'Accepted', '', '', 'Local', 'Completed',
                   1000000 + 5000 + (s * 37 %% 35000), 0, NULL, %(now)s, %(now)s
               FROM generate_series(0, %(n)s - 1) s
               JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 n FROM stations_chargepoint
                     WHERE operator_id = %(op)s) cp ON cp.n = s %% 1000
               JOIN (SELECT id, token, row_number() OVER (ORDER BY id) - 1 n FROM charging_idtoken
                     WHERE token LIKE %(like)s) t ON t.n = s %% 1000""",
            {
                "start": month_start,
                "secs": seconds,
                "n": count,
                "now": now,
                "op": operator.pk,
                "like": f"B{tag}T%",
            },
        )
        # Two register readings (half-way and final, when charging ended) and two power
        # readings (11 kW half-way, 0 at the end) per session.
        c.execute(
            """INSERT INTO charging_metersample (charge_point_id, connector_number, transaction_id, timestamp,
                   measurand, phase, unit, context, location, format, value_raw, value, energy_wh, power_w)
               SELECT tx.charge_point_id, 1, tx.id, tx.started_at + (tx.stopped_at - tx.started_at) * k.f,
                   k.measurand, '', k.unit, 'Sample.Periodic', 'Outlet', 'Raw', '0', 0,
                   CASE WHEN k.measurand LIKE 'Energy%%' THEN tx.meter_start + tx.energy_wh * k.share END,
                   CASE WHEN k.measurand LIKE 'Power%%' THEN k.power END
               FROM charging_transaction tx
               JOIN stations_chargepoint cp ON cp.id = tx.charge_point_id AND cp.operator_id = %s
               CROSS JOIN (VALUES (0.4, 'Energy.Active.Import.Register', 'Wh', 0.5, NULL::numeric),
                                  (0.7, 'Energy.Active.Import.Register', 'Wh', 1.0, NULL),
                                  (0.41, 'Power.Active.Import', 'W', NULL, 11000),
                                  (0.71, 'Power.Active.Import', 'W', NULL, 0))
                    AS k(f, measurand, unit, share, power)""",
            [operator.pk],
        )


def measure(operator: Operator, count: int, month_start: dt.datetime, today: dt.date) -> None:
    ids = list(Transaction.objects.filter(charge_point__operator=operator).values_list("pk", flat=True))
    with QueryCounter() as q:
        started = time.perf_counter()
        priced = price_sessions(ids, announce=False)
        pricing = time.perf_counter() - started
    print(
        f"  pricing:   {priced:,} sessions in {pricing:.1f} s "
        f"({pricing / max(priced, 1) * 1e3:.2f} ms each), "
        f"{q.count:,} SQL queries"
    )
    with QueryCounter() as q:
        started = time.perf_counter()
        invoices = run_monthly(today)
        invoicing = time.perf_counter() - started
    lines = InvoiceLine.objects.filter(invoice__operator=operator).count()
    numbers = sorted(Invoice.objects.filter(operator=operator).values_list("sequence_number", flat=True))
    gap_free = numbers == list(range(1, len(numbers) + 1))
    print(
        f"  invoicing: {invoices:,} monthly invoices with {lines:,} lines in {invoicing:.1f} s, "
        f"{q.count:,} SQL queries; numbers 1–{len(numbers)} {'without gaps' if gap_free else 'WITH GAPS'}"
    )
    print(f"  total:     {pricing + invoicing:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("PostgreSQL only: set DATABASE_URL=postgres://…")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        now = timezone.now()
        today = timezone.localdate(now)
        first, _ = previous_month(today)
        month_start = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
        for n, size in enumerate((args.small, args.sessions)):
            tag = str(n)
            operator = build_network(tag, now)
            started = time.perf_counter()
            build_sessions(operator, tag, size, month_start, now)
            with connection.cursor() as c:
                c.execute("ANALYZE")  # as autovacuum would have by the end of a month
            print(f"\n{size:,} sessions of last month (built in {time.perf_counter() - started:.1f} s)")
            measure(operator, size, month_start, today)
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
