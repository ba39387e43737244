"""How long it takes to fan an outage alert out to the drivers of a station, and how many SQL
queries it runs: at 1,000 and at 10,000 affected drivers in the same run, so that the query
count can be seen not to grow.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chargedesk_bench \\
        .venv/bin/python bench/alerts_fanout.py [--drivers 10000] [--small 1000] [--send]

It runs on a throw-away database made by Django's test machinery (created, migrated, dropped
at the end); SQLite works too without DATABASE_URL. The drivers use the faulted station in the
three ways alerts look for: a third keep it as a favourite, a third charged there lately, a
third live within their radius of it. The fan-out is everything from the fault to the stored
alert, notifications and deliveries (in-app, email, web and mobile push by default) and the
Celery messages handing them to workers. ``--send`` then sends the in-app and email
deliveries in this process (locmem email backend, in-memory channel layer) and times that too.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.pop("REDIS_URL", None)  # deliveries are counted, not sent to a broker

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

from alerts.models import AlertProfile, Delivery, Notification, Outage, PushSubscription  # noqa: E402
from alerts.services import notify, outages  # noqa: E402
from bench.querycount import QueryCounter  # noqa: E402
from sessions.models import IdToken, Transaction  # noqa: E402
from stations.models import ChargePoint, Connector, Evse, Operator, Site  # noqa: E402
from stations.models.accounts import Role, User  # noqa: E402


def build_station(tag: str) -> ChargePoint:
    operator, _ = Operator.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    site = Site.objects.create(
        operator=operator,
        name=f"Bench {tag}",
        address="1 Main Street",
        city="Amsterdam",
        country="NL",
        latitude=Decimal("52.370216"),
        longitude=Decimal("4.895168"),
        time_zone="Europe/Amsterdam",
    )
    cp = ChargePoint.objects.create(operator=operator, site=site, identity=f"BENCH-{tag}", is_connected=True)
    evse = Evse.objects.create(charge_point=cp, evse_id=1)
    Connector.objects.create(charge_point=cp, evse=evse, connector_id=1, standard="IEC62196Type2")
    return cp


def build_drivers(cp: ChargePoint, count: int, tag: str) -> None:
    password = make_password(None)
    now = timezone.now()
    users = User.objects.bulk_create(
        [User(email=f"d{i}-{tag}@bench.example", password=password, role=Role.DRIVER) for i in range(count)],
        batch_size=2000,
    )
    third = count // 3
    # Half of them let the browser push to them.
    PushSubscription.objects.bulk_create(
        [
            PushSubscription(user=u, endpoint=f"https://push.bench.example/{u.pk}", p256dh="k", auth="a")
            for u in users[::2]
        ],
        batch_size=2000,
    )
    profiles = []
    for i, u in enumerate(users):
        if i < third:  # favourites
            profiles.append(AlertProfile(user=u))
        elif i >= 2 * third:  # near home: 0–3 km away, radius 5 km
            profiles.append(
                AlertProfile(
                    user=u,
                    home_latitude=Decimal("52.370216") + Decimal(i % 30) / 1000,
                    home_longitude=Decimal("4.895168"),
                    radius_km=Decimal("5"),
                )
            )
    profiles = AlertProfile.objects.bulk_create(profiles, batch_size=2000)
    through = AlertProfile.favourites.through
    through.objects.bulk_create(
        [through(alertprofile_id=p.pk, chargepoint_id=cp.pk) for p in profiles[:third]], batch_size=2000
    )
    tokens = IdToken.objects.bulk_create(
        [IdToken(token=f"B{tag}{i:07d}", driver=users[i]) for i in range(third, 2 * third)], batch_size=2000
    )
    Transaction.objects.bulk_create(
        [
            Transaction(
                charge_point=cp,
                connector_number=1,
                id_token=t,
                id_tag=t.token,
                driver_id=t.driver_id,
                started_at=now - timezone.timedelta(days=3),
                stopped_at=now - timezone.timedelta(days=3, hours=-1),
                meter_start=0,
                meter_stop=7400,
                energy_wh=7400,
                status="Completed",
            )
            for t in tokens
        ],
        batch_size=2000,
    )


def fan_out(cp: ChargePoint) -> dict:
    queued: list[int] = []
    real_enqueue = notify.enqueue
    notify.enqueue = queued.extend  # count the Celery hand-over instead of sending
    try:
        with QueryCounter() as queries:
            started = time.perf_counter()
            with transaction.atomic():
                outages.open_outage(charge_point_id=cp.pk, connector_number=1, cause="faulted")
            seconds = time.perf_counter() - started
    finally:
        notify.enqueue = real_enqueue
    outage = Outage.objects.get(charge_point=cp)
    told = Notification.objects.filter(alert__dedup_key=f"outage:{outage.pk}:out")
    return {
        "seconds": seconds,
        "queries": len(queries),
        "drivers": told.count(),
        "deliveries": Delivery.objects.filter(notification__in=told).count(),
        "queued": queued,
    }


def send(ids: list[int]) -> dict:
    from alerts import delivery

    chosen = list(
        Delivery.objects.filter(pk__in=ids, channel__in=["inapp", "email"]).values_list("pk", flat=True)
    )
    with QueryCounter() as queries:
        started = time.perf_counter()
        for start in range(0, len(chosen), notify.TASK_CHUNK):  # as the Celery tasks get them
            delivery.send_many(chosen[start : start + notify.TASK_CHUNK])
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "queries": len(queries), "sent": len(chosen)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--drivers", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--send", action="store_true", help="also send the in-app and email deliveries")
    args = parser.parse_args()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEBUG = False
    logging.getLogger("chargedesk.alerts").setLevel(logging.WARNING)
    old = setup_databases(verbosity=0, interactive=False)
    try:
        print(f"database: {connection.vendor}")
        for size in (args.small, args.drivers):
            cp = build_station(str(size))
            started = time.perf_counter()
            build_drivers(cp, size, str(size))
            print(f"\n{size:,} affected drivers (built in {time.perf_counter() - started:.1f} s)")
            r = fan_out(cp)
            print(
                f"  fan-out: {r['seconds']:.2f} s, {r['queries']} SQL queries, "
                f"{r['drivers']:,} drivers told, "
                f"{r['deliveries']:,} deliveries stored, {len(r['queued']):,} handed to workers "
                f"({r['seconds'] / max(r['drivers'], 1) * 1e6:.0f} µs per driver)"
            )
            if args.send:
                s = send(r["queued"])
                print(
                    f"  sending in-app + email here: {s['seconds']:.2f} s for {s['sent']:,} deliveries, "
                    f"{s['queries']} SQL queries ({s['queries'] / max(s['sent'], 1):.1f} per delivery)"
                )
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
