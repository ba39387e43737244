"""Pricing sessions: a finished session priced once and stored, a running one estimated.

``price_session`` freezes what a session cost (``SessionCharge`` and its lines) so that
payment capture and invoices read the same figures whatever happens to the tariff later.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.db import IntegrityError
from django.db import transaction as db_transaction
from django.utils import timezone

from config.events import publish
from sessions.models import MeterSample, Transaction

from ..models import ChargeLine, SessionCharge, Tariff
from ..pricing import IDLE_POWER_W, Priced, Sample, price
from ..tariffs import tariff_for

logger = logging.getLogger(__name__)

ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER_IMPORT = "Power.Active.Import"


SAMPLE_FIELDS = ("timestamp", "measurand", "phase", "energy_wh", "power_w")


def _sample_rows(transaction_ids):
    return MeterSample.objects.filter(
        transaction_id__in=transaction_ids, measurand__in=(ENERGY_REGISTER, POWER_IMPORT), location="Outlet"
    ).order_by("timestamp")


def _samples(transaction: Transaction, rows=None) -> list[Sample]:
    """The session's register and power readings, one query (or the ``rows`` given), one
    figure per timestamp: the total (no phase) where the charger sent one, else the sum of
    its phases."""
    if rows is None:
        rows = _sample_rows([transaction.pk]).values_list(*SAMPLE_FIELDS)
    by_time: dict[dt.datetime, dict[str, dict[str, Decimal]]] = {}
    for timestamp, measurand, phase, energy_wh, power_w in rows:
        value = energy_wh if measurand == ENERGY_REGISTER else power_w
        if value is None:
            continue
        by_time.setdefault(timestamp, {}).setdefault(measurand, {})[phase] = value

    def figure(readings: dict[str, Decimal] | None) -> Decimal | None:
        if not readings:
            return None
        return readings[""] if "" in readings else sum(readings.values(), Decimal(0))

    samples: list[Sample] = [
        (
            timestamp,
            figure(by_time[timestamp].get(ENERGY_REGISTER)),
            figure(by_time[timestamp].get(POWER_IMPORT)),
        )
        for timestamp in sorted(by_time)
    ]
    # meter_start is the registers' baseline when they agree with it; some chargers send a
    # meterStart of 0 with absolute registers, and then the first reading is the baseline.
    start = transaction.meter_start
    if start is not None:
        top = Decimal(start) + max(_session_energy_wh(transaction), Decimal(0)) + 1
        if all(Decimal(start) <= e <= top for _, e, _ in samples if e is not None):
            samples.insert(0, (transaction.started_at, Decimal(start), None))
    return samples


def _charging_ended_at(samples: list[Sample], stopped_at: dt.datetime) -> dt.datetime:
    """When the car stopped taking energy: the later of the last power reading above ~0 and
    the reading where the register reached its final value (energy flowed until then, whatever
    an instantaneous power reading said); the stop while the last power reading is above ~0 or
    nothing tells."""
    powers = [(ts, p) for ts, _, p in samples if p is not None and ts <= stopped_at]
    registers = [(ts, e) for ts, e, _ in samples if e is not None and ts <= stopped_at]
    if powers and powers[-1][1] > IDLE_POWER_W:
        return stopped_at
    candidates = []
    if powers:
        charging = [ts for ts, p in powers if p > IDLE_POWER_W]
        candidates.append(charging[-1] if charging else powers[0][0])
    if len(registers) > 1:
        final = registers[-1][1]
        candidates.append(next(ts for ts, e in registers if e >= final))
    return max(candidates) if candidates else stopped_at


def _session_energy_wh(transaction: Transaction) -> Decimal:
    energy = transaction.session_energy_wh
    if energy is None or energy < 0:
        # A meter that went backwards is kept as reported (energy_anomaly) but not priced.
        return Decimal(0)
    return Decimal(energy)


def _price_transaction(
    transaction: Transaction, *, stopped_at: dt.datetime, tariff: Tariff | None = None, rows=None
) -> tuple[Tariff, Priced] | None:
    """The tariff that applied when the session started, for its driver, and the price."""
    charge_point = transaction.charge_point
    if tariff is None:
        tariff = tariff_for(
            charge_point=charge_point,
            connector_number=transaction.connector_number,
            user=transaction.driver,
            at=transaction.started_at,
        )
    if tariff is None:
        return None
    samples = _samples(transaction, rows)
    site = charge_point.site
    priced = price(
        tariff,
        started_at=transaction.started_at,
        stopped_at=stopped_at,
        energy_wh=_session_energy_wh(transaction),
        samples=samples,
        charging_ended_at=_charging_ended_at(samples, stopped_at),
        time_zone=site.time_zone if site else "UTC",
    )
    return tariff, priced


def _loaded(transaction: Transaction) -> Transaction:
    return (
        Transaction.objects.select_related("charge_point__site", "driver").filter(pk=transaction.pk).first()
    ) or transaction


def price_session(transaction: Transaction) -> SessionCharge | None:
    """Price a finished session once and store it; the stored charge when already priced.

    None when no tariff applies. Safe when two workers price the same session at once: the
    one-to-one key admits one charge, and the loser returns the winner's.
    """
    existing = SessionCharge.objects.filter(transaction_id=transaction.pk).first()
    if existing is not None:
        return existing
    transaction = _loaded(transaction)
    if transaction.stopped_at is None:
        raise ValueError(f"session {transaction.pk} is still running: estimate() it instead")
    result = _price_transaction(transaction, stopped_at=transaction.stopped_at)
    if result is None:
        logger.info("no tariff applies to session %s", transaction.pk)
        return None
    tariff, priced = result
    try:
        (charge,) = _store([(transaction, tariff, priced)])
    except IntegrityError:
        return SessionCharge.objects.get(transaction_id=transaction.pk)
    return charge


def _store(
    results: list[tuple[Transaction, Tariff, Priced]], *, announce: bool = True
) -> list[SessionCharge]:
    """Write the priced sessions (charges and their lines) in one transaction and, after it
    commits, tell others each session's cost (``billing.session_priced``)."""
    with db_transaction.atomic():
        charges = SessionCharge.objects.bulk_create(
            [
                SessionCharge(
                    transaction=t,
                    tariff=tariff,
                    currency=p.currency,
                    net=p.net,
                    tax=p.tax,
                    total=p.total,
                    energy_kwh=(p.energy_wh / 1000).quantize(Decimal("0.001")),
                )
                for t, tariff, p in results
            ]
        )
        ChargeLine.objects.bulk_create(
            [
                ChargeLine(
                    charge=charge,
                    kind=line.kind,
                    description=line.description,
                    quantity=line.quantity,
                    unit=line.unit,
                    unit_price=line.unit_price,
                    net=line.net,
                    tax_rate=line.tax_rate,
                    tax=line.tax,
                    total=line.total,
                )
                for charge, (_, _, p) in zip(charges, results, strict=True)
                for line in p.lines
            ],
            batch_size=2000,
        )
        if announce:
            for charge, (t, _, _) in zip(charges, results, strict=True):
                publish(
                    "billing.session_priced",
                    transaction_id=t.pk,
                    operator_id=t.charge_point.operator_id,
                    driver_id=t.driver_id,
                    total=str(charge.total),
                    currency=charge.currency,
                )
    return charges


def price_sessions(transaction_ids, *, chunk: int = 1000, announce: bool = True) -> int:
    """Price many finished sessions (a backlog, a month): per chunk, the sessions, their
    samples, the tariffs and the drivers' groups are read in a few queries and the charges
    written in bulk; already priced ones are left as they are. Returns how many were priced.
    ``announce``: publish ``billing.session_priced`` for each (drivers are told the cost)."""
    from ..tariffs import TariffBook

    ids = sorted(set(transaction_ids))
    priced_count = 0
    for start in range(0, len(ids), chunk):
        txs = list(
            Transaction.objects.filter(
                pk__in=ids[start : start + chunk], stopped_at__isnull=False, charge__isnull=True
            )
            .select_related("charge_point__site")
            .order_by("pk")
        )
        if not txs:
            continue
        book = TariffBook(
            operator_ids={t.charge_point.operator_id for t in txs},
            user_ids={t.driver_id for t in txs if t.driver_id},
        )
        rows: dict[int, list] = {}
        for row in _sample_rows([t.pk for t in txs]).values_list("transaction_id", *SAMPLE_FIELDS):
            rows.setdefault(row[0], []).append(row[1:])
        results = []
        for t in txs:
            tariff = book.tariff_for(
                charge_point=t.charge_point,
                connector_number=t.connector_number,
                user_id=t.driver_id,
                at=t.started_at,
            )
            if tariff is None:
                continue
            _, priced = _price_transaction(t, stopped_at=t.stopped_at, tariff=tariff, rows=rows.get(t.pk, []))
            results.append((t, tariff, priced))
        _store(results, announce=announce)
        priced_count += len(results)
    return priced_count


def estimate(transaction: Transaction, *, now: dt.datetime | None = None) -> Priced | None:
    """What a session costs so far (a running one up to ``now``); nothing is stored."""
    transaction = _loaded(transaction)
    stopped_at = transaction.stopped_at or now or timezone.now()
    result = _price_transaction(transaction, stopped_at=max(stopped_at, transaction.started_at))
    return None if result is None else result[1]
