"""Writes on charging sessions: authorisation, transactions, meter samples and reservations.

Called by the OCPP adapters (``stations/ocpp/v16.py``), views, the API and tasks alike. The
adapter has validated the payload against the OCPP schema, so the types are right, but the
values are the charger's: unknown transaction ids, meters that run backwards and connectors
the charger does not have are stored or answered, never raised on. Only a start that cannot
be stored at all (a connector id beyond 32 bits, a meter start beyond 10^15 Wh, a naive
timestamp) and MeterValues of such a connector raise ``ValidationError``.

Chargers re-send after reconnects and send offline transactions late, so every charger
message is idempotent: the same StartTransaction gives the same transaction, the same
StopTransaction or MeterValues twice changes nothing the second time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Value
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from config.events import publish
from stations.models import ChargePoint, Connector, ProtocolVersion

from .models import (
    ACTIVE_RESERVATION_STATUSES,
    ENERGY,
    AuthorizationStatus,
    EnergyAnomaly,
    IdToken,
    IdTokenStatus,
    IdTokenType,
    MeterSample,
    Reservation,
    ReservationStatus,
    Transaction,
    TransactionStatus,
)

logger = logging.getLogger(__name__)

INT32_LIMIT = 2**31
INT64_LIMIT = 2**63
ENERGY_LIMIT = Decimal(10) ** 15  # what Transaction's Wh fields hold
SAMPLE_LIMIT = Decimal(10) ** 18  # what MeterSample.value holds
DEFAULT_STOP_REASON = "Local"  # OCPP 1.6: an absent reason means Local
# For the plausibility check where the connector (and so its rating) is unknown.
DEFAULT_MAX_POWER_KW = Decimal("400")
PLAUSIBLE_MARGIN = Decimal("1.25")
PLAUSIBLE_SLACK_WH = Decimal("1000")

DEFAULT_MEASURAND = "Energy.Active.Import.Register"
DEFAULT_CONTEXT = "Sample.Periodic"
DEFAULT_FORMAT = "Raw"
DEFAULT_LOCATION = "Outlet"
SIGNED_DATA = "SignedData"
ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER_IMPORT = "Power.Active.Import"
ENERGY_SCALE = {"Wh": Decimal(1), "kWh": Decimal(1000)}
POWER_SCALE = {"W": Decimal(1), "kW": Decimal(1000)}
# Per-phase readings that add up to the total when a charger reports no phase-less one.
PHASE_OF = {"L1": "L1", "L2": "L2", "L3": "L3", "L1-N": "L1", "L2-N": "L2", "L3-N": "L3"}

RESERVATION_TRANSITIONS = {
    ReservationStatus.PENDING: {
        ReservationStatus.ACCEPTED,
        ReservationStatus.FAULTED,
        ReservationStatus.OCCUPIED,
        ReservationStatus.REJECTED,
        ReservationStatus.UNAVAILABLE,
        ReservationStatus.CANCELLED,
        ReservationStatus.EXPIRED,
        # The charger may start on it before its ReserveNow answer is recorded.
        ReservationStatus.USED,
    },
    ReservationStatus.ACCEPTED: {
        ReservationStatus.USED,
        ReservationStatus.CANCELLED,
        ReservationStatus.EXPIRED,
    },
}


# --- Authorisation --------------------------------------------------------------------------


@dataclass(frozen=True)
class IdTagInfo:
    """OCPP 1.6 IdTagInfo: the answer about an idTag in Authorize, Start and StopTransaction."""

    status: str
    expiry_date: dt.datetime | None = None
    parent_id_tag: str | None = None

    @property
    def is_accepted(self) -> bool:
        return self.status == AuthorizationStatus.ACCEPTED

    def to_ocpp(self) -> dict[str, str]:
        data = {"status": str(self.status)}
        if self.expiry_date is not None:
            data["expiryDate"] = _ocpp_datetime(self.expiry_date)
        if self.parent_id_tag:
            data["parentIdTag"] = self.parent_id_tag
        return data


def _ocpp_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _token_for(id_tag: str, *, lock: bool = False) -> IdToken | None:
    """The IdToken of an idTag, compared case-insensitively (OCPP CiString).

    Tokens are unique only as written; should two differ only in case, the exact one wins.
    """
    qs = IdToken.objects.alias(token_upper=Upper("token")).filter(token_upper=Upper(Value(id_tag)))
    if lock:
        qs = qs.select_for_update()
    tokens = list(qs.order_by("pk")[:10])
    return next((t for t in tokens if t.token == id_tag), tokens[0] if tokens else None)


def _token_status(token: IdToken | None) -> str:
    return AuthorizationStatus.INVALID if token is None else token.effective_status


def _tag_info(token: IdToken | None, status: str) -> IdTagInfo:
    if status != AuthorizationStatus.ACCEPTED or token is None:
        return IdTagInfo(status=status)
    return IdTagInfo(status=status, expiry_date=token.expires_at, parent_id_tag=token.parent_token or None)


def authorize(*, charge_point: ChargePoint, id_tag: str) -> IdTagInfo:
    """Answer an Authorize: Invalid for unknown tags, the token's status otherwise.

    Tokens are valid across the whole network; ``charge_point`` is for rules to come (an
    operator's own cards, roaming).
    """
    token = _token_for(id_tag)
    return _tag_info(token, _token_status(token))


# --- Transactions ---------------------------------------------------------------------------


def _check_int32(value: int, name: str) -> None:
    if not -INT32_LIMIT <= value < INT32_LIMIT:
        raise ValidationError({name: f"{value} is out of range."})


def _check_aware(value: dt.datetime, name: str) -> None:
    if timezone.is_naive(value):
        raise ValidationError({name: "Timestamps must carry a time zone."})


def _meter_wh(value: int | Decimal) -> Decimal | None:
    """A meter reading in Wh as stored, or None if no column could hold it."""
    value = Decimal(value)
    return value if value.is_finite() and abs(value) < ENERGY_LIMIT else None


def transaction_start(
    *,
    charge_point: ChargePoint,
    connector_id: int,
    id_tag: str,
    meter_start: int,
    timestamp: dt.datetime,
    reservation_id: int | None = None,
) -> tuple[Transaction, IdTagInfo]:
    """Record a StartTransaction and answer it.

    The charger has started already, so the transaction is recorded whatever the tag's
    status; the answer's status (Invalid, Blocked, Expired, ConcurrentTx) tells the charger
    to stop. ConcurrentTx: the token is in another active transaction (one on this same
    connector does not count: a new start there proves the old one over, its stop lost).
    The same start re-sent returns the same transaction and answer and changes nothing.
    """
    _check_int32(connector_id, "connector_id")
    _check_aware(timestamp, "timestamp")
    meter = _meter_wh(meter_start)
    if meter is None:
        raise ValidationError({"meter_start": f"{meter_start} is out of range."})
    key = {
        "charge_point": charge_point,
        "connector_number": connector_id,
        "id_tag": id_tag,
        "started_at": timestamp,
        "meter_start": meter,
    }
    with transaction.atomic():
        # Locking the token serialises the starts of one token, so two chargers starting
        # with the same card at once cannot both pass the ConcurrentTx check.
        token = _token_for(id_tag, lock=True)
        existing = Transaction.objects.filter(**key).first()
        if existing is not None:
            return existing, _tag_info(token, existing.start_auth_status)

        status = _token_status(token)
        if (
            status == AuthorizationStatus.ACCEPTED
            and Transaction.objects.filter(id_token=token, status=TransactionStatus.ACTIVE)
            .exclude(charge_point=charge_point, connector_number=connector_id)
            .exists()
        ):
            status = AuthorizationStatus.CONCURRENT_TX
        reservation = None
        if reservation_id is not None and status == AuthorizationStatus.ACCEPTED:
            reservation = _reservation_to_use(charge_point, connector_id, id_tag, token, reservation_id)
        connector = Connector.objects.filter(charge_point=charge_point, connector_id=connector_id).first()
        # Unknown tokens have no row to lock: the unique start decides between racing twins.
        tx, created = Transaction.objects.get_or_create(
            **key,
            defaults={
                "connector": connector,
                "id_token": token,
                "driver_id": token.driver_id if token else None,
                "reservation": reservation,
                "start_auth_status": status,
                "last_meter_wh": meter,
                "last_meter_at": timestamp,
            },
        )
        if not created:
            return tx, _tag_info(token, tx.start_auth_status)
        if reservation is not None:
            reservation.status = ReservationStatus.USED
            reservation.save(update_fields=["status", "updated_at"])
        publish(
            "session.started",
            transaction_id=tx.pk,
            charge_point_id=charge_point.pk,
            operator_id=charge_point.operator_id,
            connector_id=connector_id,
            driver_id=tx.driver_id,
            auth_status=status,
        )
    return tx, _tag_info(token, status)


def _reservation_to_use(
    charge_point: ChargePoint, connector_id: int, id_tag: str, token: IdToken | None, reservation_id: int
) -> Reservation | None:
    """The active reservation a start names, if it is this token's (or its group's)."""
    reservation = (
        Reservation.objects.select_for_update()
        .filter(pk=reservation_id, charge_point=charge_point, status__in=ACTIVE_RESERVATION_STATUSES)
        .first()
    )
    if reservation is None or reservation.connector_number not in (0, connector_id):
        return None
    if reservation.id_tag.upper() == id_tag.upper():
        return reservation
    parent = token.parent_token if token else ""
    if reservation.parent_id_tag and parent and reservation.parent_id_tag.upper() == parent.upper():
        return reservation
    return None


def _energy_anomaly(tx: Transaction, energy_wh: Decimal | None, stopped_at: dt.datetime) -> str:
    if energy_wh is None:
        return EnergyAnomaly.IMPLAUSIBLE
    if energy_wh < 0:
        return EnergyAnomaly.NEGATIVE
    seconds = (stopped_at - tx.started_at).total_seconds()
    if seconds < 0:
        return EnergyAnomaly.CLOCK
    max_kw = tx.connector.max_power_kw if tx.connector is not None else DEFAULT_MAX_POWER_KW
    limit = max_kw * Decimal(seconds) / 3600 * 1000 * PLAUSIBLE_MARGIN + PLAUSIBLE_SLACK_WH
    return EnergyAnomaly.IMPLAUSIBLE if energy_wh > limit else EnergyAnomaly.NONE


def _stop_info(tx: Transaction) -> IdTagInfo | None:
    if not tx.stop_id_tag:
        return None
    token = _token_for(tx.stop_id_tag) if tx.stop_auth_status == AuthorizationStatus.ACCEPTED else None
    return _tag_info(token, tx.stop_auth_status)


def transaction_stop(
    *,
    charge_point: ChargePoint,
    transaction_id: int,
    meter_stop: int,
    timestamp: dt.datetime,
    id_tag: str | None = None,
    reason: str | None = None,
    transaction_data: list[dict] | None = None,
) -> tuple[Transaction | None, IdTagInfo | None]:
    """Record a StopTransaction and answer it (the idTagInfo of ``id_tag``, if given).

    An unknown transaction id (or another charge point's) changes nothing and is answered
    with the tag's status. The energy is stored as reported; a negative or implausible
    figure is flagged in ``energy_anomaly``. A second stop changes nothing and gets the
    first one's answer.
    """
    _check_aware(timestamp, "timestamp")
    with transaction.atomic():
        tx = (
            Transaction.objects.select_for_update(of=("self",))
            .select_related("connector")
            .filter(pk=transaction_id, charge_point=charge_point)
            .first()
        )
        if tx is None:
            logger.info("StopTransaction of unknown transaction %s from %s", transaction_id, charge_point)
            return None, (authorize(charge_point=charge_point, id_tag=id_tag) if id_tag else None)
        if tx.status == TransactionStatus.COMPLETED:
            return tx, _stop_info(tx)

        info = authorize(charge_point=charge_point, id_tag=id_tag) if id_tag else None
        meter = _meter_wh(meter_stop)
        energy = meter - tx.meter_start if meter is not None else None
        tx.status = TransactionStatus.COMPLETED
        tx.stopped_at = timestamp
        tx.meter_stop = meter
        tx.energy_wh = energy
        tx.energy_anomaly = _energy_anomaly(tx, energy, timestamp)
        tx.stop_reason = reason or DEFAULT_STOP_REASON
        tx.stop_id_tag = id_tag or ""
        tx.stop_auth_status = info.status if info else ""
        if transaction_data:
            parsed = _parse_meter_values(transaction_data)
            _insert_samples(parsed, charge_point.pk, tx.connector_number, tx.pk)
            _apply_latest(tx, parsed)
        if meter is not None and (tx.last_meter_at is None or tx.last_meter_at <= timestamp):
            tx.last_meter_wh = meter
            tx.last_meter_at = timestamp
        tx.save()
        publish(
            "session.stopped",
            transaction_id=tx.pk,
            charge_point_id=charge_point.pk,
            operator_id=charge_point.operator_id,
            connector_id=tx.connector_number,
            driver_id=tx.driver_id,
        )
    return tx, info


# --- Meter values ---------------------------------------------------------------------------

# MeterSample's own fields, in the order of the rows ``_parse_meter_values`` makes.
SAMPLE_FIELDS = (
    "timestamp",
    "measurand",
    "phase",
    "unit",
    "context",
    "location",
    "format",
    "value_raw",
    "value",
    "energy_wh",
    "power_w",
)
RUNNING_FIGURES = ("last_meter_at", "last_meter_wh", "last_power_w")


@dataclass
class _ParsedSamples:
    rows: list[dict[str, Any]]  # one a sampled value, keyed by SAMPLE_FIELDS
    # (time, value) of the newest total energy register (Wh) and import power (W)
    energy: tuple[dt.datetime, Decimal] | None = None
    power: tuple[dt.datetime, Decimal] | None = None


def _parse_timestamp(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        try:
            parsed = dt.datetime.fromisoformat(value)
        except (TypeError, ValueError):
            try:
                parsed = parse_datetime(value)
            except (TypeError, ValueError):
                parsed = None
    if parsed is None:
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed


def _decimal(raw: str) -> Decimal | None:
    try:
        value = Decimal(raw)
    except (InvalidOperation, ValueError, TypeError):
        return None
    return value if value.is_finite() and abs(value) < SAMPLE_LIMIT else None


def _default_unit(measurand: str) -> str:
    # OCPP 1.6: "Wh" if the measurand is an Energy one; the power measurands come in W.
    if measurand.startswith("Energy."):
        return "Wh"
    if measurand.startswith("Power.Active.") or measurand == "Power.Offered":
        return "W"
    return ""


def _total(readings: list[tuple[str, str, Decimal]]) -> Decimal | None:
    """The total of (location, phase, value) readings: the phase-less one, else the phases'
    sum; at the outlet (the meter of meterStart/meterStop) when the charger reports there."""
    if not readings:
        return None
    at_outlet = [r for r in readings if r[0] == DEFAULT_LOCATION] or readings
    for _location, phase, value in at_outlet:
        if not phase:
            return value
    phases = {PHASE_OF[phase]: value for _location, phase, value in at_outlet if phase in PHASE_OF}
    return sum(phases.values(), Decimal(0)) if phases else None


def _newest(
    current: tuple[dt.datetime, Decimal] | None, timestamp: dt.datetime, value: Decimal | None
) -> tuple[dt.datetime, Decimal] | None:
    if value is None or abs(value) >= ENERGY_LIMIT:  # no Transaction column could hold it
        return current
    if current is not None and timestamp < current[0]:
        return current
    return (timestamp, value)


def _parse_meter_values(meter_values: Iterable[dict]) -> _ParsedSamples:
    """The rows to store for OCPP meterValue/transactionData, with the spec's defaults for
    what the charger left out, and the newest energy register and power among them."""
    parsed = _ParsedSamples(rows=[])
    rows = parsed.rows
    for meter_value in meter_values:
        timestamp = _parse_timestamp(meter_value.get("timestamp"))
        if timestamp is None:
            logger.warning("meter value without a usable timestamp skipped: %r", meter_value.get("timestamp"))
            continue
        energies: list[tuple[str, str, Decimal]] = []
        powers: list[tuple[str, str, Decimal]] = []
        for sampled in meter_value.get("sampledValue") or ():
            raw = sampled.get("value")
            if raw is None:
                continue
            raw = str(raw)
            if "\x00" in raw:  # no database text holds NUL; keep the rest of the value
                raw = raw.replace("\x00", "\ufffd")
            measurand = sampled.get("measurand") or DEFAULT_MEASURAND
            unit = sampled.get("unit") or _default_unit(measurand)
            fmt = sampled.get("format") or DEFAULT_FORMAT
            phase = sampled.get("phase") or ""
            location = sampled.get("location") or DEFAULT_LOCATION
            value = None if fmt == SIGNED_DATA else _decimal(raw)
            energy_wh = power_w = None
            if value is not None:
                if measurand.startswith("Energy.Active.") and unit in ENERGY_SCALE:
                    energy_wh = value * ENERGY_SCALE[unit]
                    if measurand == ENERGY_REGISTER:
                        energies.append((location, phase, energy_wh))
                elif (measurand.startswith("Power.Active.") or measurand == "Power.Offered") and (
                    unit in POWER_SCALE
                ):
                    power_w = value * POWER_SCALE[unit]
                    if measurand == POWER_IMPORT:
                        powers.append((location, phase, power_w))
            rows.append(
                {
                    "timestamp": timestamp,
                    "measurand": measurand,
                    "phase": phase,
                    "unit": unit,
                    "context": sampled.get("context") or DEFAULT_CONTEXT,
                    "location": location,
                    "format": fmt,
                    "value_raw": raw,
                    "value": value,
                    "energy_wh": energy_wh,
                    "power_w": power_w,
                }
            )
        parsed.energy = _newest(parsed.energy, timestamp, _total(energies))
        parsed.power = _newest(parsed.power, timestamp, _total(powers))
    return parsed


def _apply_latest(tx: Transaction, parsed: _ParsedSamples) -> None:
    """Move a transaction's running figures to the newest samples (in memory)."""
    for reading, field in ((parsed.energy, "last_meter_wh"), (parsed.power, "last_power_w")):
        if reading is None:
            continue
        when, value = reading
        if tx.last_meter_at is None or tx.last_meter_at <= when:
            setattr(tx, field, value)
            tx.last_meter_at = when


class _RowCounter:
    """Counts the rows the wrapped statements touched: with ON CONFLICT DO NOTHING (or
    SQLite's INSERT OR IGNORE) that is the rows newly inserted."""

    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        rowcount = context["cursor"].rowcount
        if rowcount and rowcount > 0:
            self.rows += rowcount
        return result


def _insert_samples(
    parsed: _ParsedSamples, charge_point_id: int, connector_number: int, transaction_id: int | None
) -> int:
    """One INSERT of the samples, skipping those stored already; returns how many are new."""
    samples = [
        MeterSample(
            charge_point_id=charge_point_id,
            connector_number=connector_number,
            transaction_id=transaction_id,
            **row,
        )
        for row in parsed.rows
    ]
    counter = _RowCounter()
    with connection.execute_wrapper(counter):
        MeterSample.objects.bulk_create(samples, ignore_conflicts=True)
    return counter.rows


# The statements below are written out, not built with the ORM, because they run for every
# MeterValues message: compiling them with the ORM cost more than all the rest of the call.
# Only quoted names from the models' meta are formatted into them; values are parameters.


@functools.cache
def _running_figures_sql(energy: bool, power: bool) -> str:
    """UPDATE of a charge point's transaction's running figures, where the readings are newer."""
    opts = Transaction._meta
    qn = connection.ops.quote_name
    col = {name: qn(opts.get_field(name).column) for name in RUNNING_FIGURES}
    newer = f"({col['last_meter_at']} IS NULL OR {col['last_meter_at']} <= %s)"
    sets = [f"{col['last_meter_at']} = CASE WHEN {newer} THEN %s ELSE {col['last_meter_at']} END"]
    if energy:
        sets.append(f"{col['last_meter_wh']} = CASE WHEN {newer} THEN %s ELSE {col['last_meter_wh']} END")
    if power:
        sets.append(f"{col['last_power_w']} = CASE WHEN {newer} THEN %s ELSE {col['last_power_w']} END")
    return (
        f"UPDATE {qn(opts.db_table)} SET {', '.join(sets)} "  # noqa: S608
        f"WHERE {qn(opts.pk.column)} = %s AND {qn(opts.get_field('charge_point').column)} = %s"
    )


@functools.cache
def _transaction_exists_sql() -> str:
    opts = Transaction._meta
    qn = connection.ops.quote_name
    return (
        f"SELECT {qn(opts.pk.column)} FROM {qn(opts.db_table)} "  # noqa: S608
        f"WHERE {qn(opts.pk.column)} = %s AND {qn(opts.get_field('charge_point').column)} = %s"
    )


def _transaction_query(
    parsed: _ParsedSamples, charge_point_id: int, transaction_id: int
) -> tuple[str, list[Any]]:
    """The statement finding the charge point's transaction, moving its running figures to
    the newest readings if the samples have any, and its parameters."""
    if parsed.energy is None and parsed.power is None:
        return _transaction_exists_sql(), [transaction_id, charge_point_id]
    ops = connection.ops
    when = ops.adapt_datetimefield_value(max(r[0] for r in (parsed.energy, parsed.power) if r is not None))
    params = [when, when]
    for reading in (parsed.energy, parsed.power):
        if reading is not None:
            params += [when, ops.adapt_decimalfield_value(reading[1], **ENERGY)]
    sql = _running_figures_sql(parsed.energy is not None, parsed.power is not None)
    return sql, [*params, transaction_id, charge_point_id]


def _record_with_orm(
    parsed: _ParsedSamples, charge_point_id: int, connector_number: int, transaction_id: int | None
) -> int:
    """Other databases (SQLite): find/update the transaction, then one bulk INSERT."""
    with transaction.atomic(savepoint=False):
        tx_id = None
        if transaction_id is not None:
            sql, params = _transaction_query(parsed, charge_point_id, transaction_id)
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                found = cursor.fetchone() if sql.startswith("SELECT") else cursor.rowcount
            tx_id = transaction_id if found else None
        return _insert_samples(parsed, charge_point_id, connector_number, tx_id)


# --- Meter values of many messages in one statement (the OCPP writer's group commit) --------

_deferred = threading.local()


@contextlib.contextmanager
def meter_values_deferred():
    """Within this block (on PostgreSQL), ``meter_values_record`` only queues its samples;
    when the block ends they are all stored, and their transactions' running figures moved,
    in one statement, still inside the caller's transaction. The OCPP writer wraps a batch
    of frames in it: one statement for a hundred chargers' MeterValues instead of a hundred.
    If the block raises, nothing queued is stored."""
    if connection.vendor != "postgresql" or getattr(_deferred, "queue", None) is not None:
        yield
        return
    _deferred.queue = []
    try:
        yield
        queue = _deferred.queue
    finally:
        _deferred.queue = None
    _record_many(queue)


@functools.cache
def _record_many_sql() -> str:
    """PostgreSQL: the samples of many messages (one JSON array, each row naming its charge
    point, connector and transaction) inserted, their transactions found, and the running
    figures moved where newer (a second JSON array, one row a transaction), in one statement.
    It answers how many samples were new and the moved transactions' figures."""
    opts, tx_opts = MeterSample._meta, Transaction._meta
    qn = connection.ops.quote_name
    fields = [opts.get_field(name) for name in SAMPLE_FIELDS]
    record = ", ".join(f"{qn(f.column)} {f.db_type(connection)}" for f in fields)
    columns = ", ".join(
        qn(opts.get_field(name).column)
        for name in ("charge_point", "connector_number", "transaction", *SAMPLE_FIELDS)
    )
    tx_table, tx_pk = qn(tx_opts.db_table), qn(tx_opts.pk.column)
    tx_cp = qn(tx_opts.get_field("charge_point").column)
    at, wh, w = (qn(tx_opts.get_field(name).column) for name in RUNNING_FIGURES)
    start = qn(tx_opts.get_field("meter_start").column)
    newer = f"(t.{at} IS NULL OR t.{at} <= f.at)"
    return (
        f"WITH s AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) "  # noqa: S608 (names from the models)
        f"AS r(cd_cp bigint, cd_connector integer, cd_tx bigint, {record})), "
        f"f AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS r(tx bigint, cp bigint, at timestamptz, "
        f"wh numeric, w numeric)), "
        f"moved AS (UPDATE {tx_table} t SET {at} = CASE WHEN {newer} THEN f.at ELSE t.{at} END, "
        f"{wh} = CASE WHEN f.wh IS NOT NULL AND {newer} THEN f.wh ELSE t.{wh} END, "
        f"{w} = CASE WHEN f.w IS NOT NULL AND {newer} THEN f.w ELSE t.{w} END "
        f"FROM f WHERE t.{tx_pk} = f.tx AND t.{tx_cp} = f.cp RETURNING t.{tx_pk}, t.{start}, t.{at}, "
        f"t.{wh}, t.{w}), "
        f"found AS (SELECT t.{tx_pk} AS id, t.{tx_cp} AS cp FROM {tx_table} t "
        f"JOIN (SELECT DISTINCT cd_tx, cd_cp FROM s WHERE cd_tx IS NOT NULL) k "
        f"ON t.{tx_pk} = k.cd_tx AND t.{tx_cp} = k.cd_cp), "
        f"stored AS (INSERT INTO {qn(opts.db_table)} ({columns}) "
        f"SELECT s.cd_cp, s.cd_connector, found.id, {', '.join(f's.{qn(f.column)}' for f in fields)} "
        f"FROM s LEFT JOIN found ON found.id = s.cd_tx AND found.cp = s.cd_cp ON CONFLICT DO NOTHING "
        f"RETURNING 1) "
        f"SELECT (SELECT count(*) FROM stored), moved.* FROM (SELECT 1) one LEFT JOIN moved ON true"
    )


def _record_many(queue: list[tuple]) -> int:
    if not queue:
        return 0
    rows: list[dict[str, Any]] = []
    figures: dict[int, dict[str, Any]] = {}
    for parsed, charge_point, connector_number, transaction_id, _told in queue:
        where = {"cd_cp": charge_point.pk, "cd_connector": connector_number, "cd_tx": transaction_id}
        rows.extend({**where, **row} for row in parsed.rows)
        if transaction_id is None or (parsed.energy is None and parsed.power is None):
            continue
        when = max(r[0] for r in (parsed.energy, parsed.power) if r is not None)
        current = figures.get(transaction_id)
        if current is None or current["at"] <= when:
            figures[transaction_id] = {
                "tx": transaction_id,
                "cp": charge_point.pk,
                "at": when,
                "wh": parsed.energy[1] if parsed.energy else None,
                "w": parsed.power[1] if parsed.power else None,
            }
    dump = functools.partial(orjson.dumps, default=str)
    with connection.cursor() as cursor:
        cursor.execute(_record_many_sql(), [dump(rows).decode(), dump(list(figures.values())).decode()])
        result = cursor.fetchall()
    moved = {
        row[1]: dict(
            zip(("meter_start", "last_meter_at", "last_meter_wh", "last_power_w"), row[2:], strict=True)
        )
        for row in result
        if row[1] is not None
    }
    for _parsed, charge_point, connector_number, transaction_id, announce in queue:
        if announce:
            _announce(charge_point, connector_number, transaction_id, moved.get(transaction_id))
    return result[0][0]


def _announce(charge_point: ChargePoint, connector_id: int, transaction_id: int | None, figures) -> None:
    """Tell live pages the session's running figures (after commit); with ``figures`` (the
    transaction's meter start and newest readings) when the store already knows them."""
    publish(
        "meter_values.recorded",
        charge_point_id=charge_point.pk,
        operator_id=charge_point.operator_id,
        connector_id=connector_id,
        transaction_id=transaction_id,
        figures=figures,
    )


def meter_values_record(
    *,
    charge_point: ChargePoint,
    connector_id: int,
    transaction_id: int | None,
    meter_values: Sequence[dict],
    announce: bool = False,
) -> int:
    """Store a MeterValues message: one MeterSample per sampledValue, in one INSERT.
    With ``announce``, a "meter_values.recorded" event tells live pages the running figures.

    Samples naming an unknown transaction (or another charge point's) are stored without
    one. Re-sent samples are not stored again. The transaction's running energy and power
    move to the newest samples (the UPDATE that also finds the transaction). On PostgreSQL
    all of it is one statement; elsewhere two. Returns how many samples were newly stored.
    """
    _check_int32(connector_id, "connector_id")
    parsed = _parse_meter_values(meter_values)
    if not parsed.rows:
        return 0
    if transaction_id is not None and not -INT64_LIMIT <= transaction_id < INT64_LIMIT:
        transaction_id = None  # no transaction has such an id
    queue = getattr(_deferred, "queue", None)
    if queue is not None:  # stored with the rest of the batch (meter_values_deferred)
        queue.append((parsed, charge_point, connector_id, transaction_id, announce))
        return len(parsed.rows)
    if connection.vendor == "postgresql":  # the batch's statement, for a batch of one
        return _record_many([(parsed, charge_point, connector_id, transaction_id, announce)])
    stored = _record_with_orm(parsed, charge_point.pk, connector_id, transaction_id)
    if announce:
        _announce(charge_point, connector_id, transaction_id, None)
    return stored


# --- Reservations ---------------------------------------------------------------------------


@transaction.atomic
def reservation_create(
    *,
    charge_point: ChargePoint,
    connector_id: int,
    id_tag: str,
    expiry_date: dt.datetime,
    parent_id_tag: str | None = None,
) -> Reservation:
    """Record a reservation before its ReserveNow goes out (status Pending).

    The id tag need not be one of ours (a roaming driver's card); the connector must be
    the charge point's (0: any) and not already reserved.
    """
    _check_aware(expiry_date, "expiry_date")
    errors: dict[str, str] = {}
    max_tag = 20 if charge_point.protocol == ProtocolVersion.OCPP16 else 36  # CiString20 in 1.6
    if not id_tag or len(id_tag) > max_tag:
        errors["id_tag"] = f"An id tag has 1 to {max_tag} characters."
    if parent_id_tag and len(parent_id_tag) > max_tag:
        errors["parent_id_tag"] = f"A parent id tag has at most {max_tag} characters."
    if expiry_date <= timezone.now():
        errors["expiry_date"] = "The expiry must be in the future."
    if connector_id < 0 or (
        connector_id > 0
        and not Connector.objects.filter(charge_point=charge_point, connector_id=connector_id).exists()
    ):
        errors["connector_id"] = f"{charge_point} has no connector {connector_id}."
    elif Reservation.objects.filter(
        charge_point=charge_point,
        connector_number=connector_id,
        status__in=ACTIVE_RESERVATION_STATUSES,
        expires_at__gt=timezone.now(),
    ).exists():
        errors["connector_id"] = "The connector is reserved already."
    if errors:
        raise ValidationError(errors)
    return Reservation.objects.create(
        charge_point=charge_point,
        connector_number=connector_id,
        id_token=_token_for(id_tag),
        id_tag=id_tag,
        parent_id_tag=parent_id_tag or "",
        expires_at=expiry_date,
    )


@transaction.atomic
def reservation_set_status(*, reservation: Reservation, status: str) -> Reservation:
    """Move a reservation on: the charger's ReserveNow answer, its use, a cancel, expiry.

    Pending → Accepted or a refusal (Faulted, Occupied, Rejected, Unavailable); Pending or
    Accepted → Used, Cancelled, Expired. Anything else is a late or repeated report (the
    ReserveNow answer arriving after the charger used the reservation, a cancel after it
    expired) and changes nothing. Returns ``reservation`` updated in place with the status
    it has now: compare it with ``status`` to see whether the move took.
    """
    if status not in ReservationStatus.values:
        raise ValidationError({"status": f"Unknown reservation status “{status}”."})
    current = Reservation.objects.select_for_update().get(pk=reservation.pk)
    if current.status != status:
        if status in RESERVATION_TRANSITIONS.get(current.status, ()):
            current.status = status
            current.save(update_fields=["status", "updated_at"])
        else:
            logger.info("reservation %s is %s; %s ignored", current.pk, current.status, status)
    reservation.status = current.status
    reservation.updated_at = current.updated_at
    return reservation


def reservations_expire(*, now: dt.datetime | None = None) -> int:
    """Mark active reservations past their expiry Expired (a sweep; safe to run twice)."""
    now = now or timezone.now()
    return Reservation.objects.filter(status__in=ACTIVE_RESERVATION_STATUSES, expires_at__lte=now).update(
        status=ReservationStatus.EXPIRED, updated_at=now
    )


# --- ID tokens ---------------------------------------------------------------------------------

ID_TAG_MAX = 20  # OCPP 1.6 IdToken is CiString20


def id_tokens_provision(
    *,
    tokens: Iterable[str],
    driver=None,
    type: str = IdTokenType.RFID,
    status: str = IdTokenStatus.ACCEPTED,
    expires_at: dt.datetime | None = None,
    parent_token: str = "",
) -> tuple[int, int]:
    """Create or update many ID tokens at once (idempotent). Returns (created, updated).

    A token already owned by another driver is not taken over: that is an error naming it.
    """
    tokens = list(dict.fromkeys(t.strip() for t in tokens if t.strip()))
    too_long = [t for t in tokens if len(t) > ID_TAG_MAX]
    if too_long:
        raise ValidationError(
            {"token": f"An idTag has at most {ID_TAG_MAX} characters: {', '.join(too_long[:5])}"}
        )
    if status not in IdTokenStatus.values or type not in IdTokenType.values:
        raise ValidationError({"status": "Unknown token type or status."})
    with transaction.atomic():
        # idTags are case-insensitive: "04ab" provisions the card "04AB" if that exists.
        wanted = {t.upper(): t for t in tokens}
        found = IdToken.objects.select_for_update().annotate(key=Upper("token")).filter(key__in=list(wanted))
        existing = {wanted[t.key]: t for t in found}
        foreign = sorted(
            t for t, obj in existing.items() if driver and obj.driver_id not in (None, driver.pk)
        )
        if foreign:
            raise ValidationError({"token": f"Owned by another driver: {', '.join(foreign[:10])}"})
        fields = {"type": type, "status": status, "expires_at": expires_at, "parent_token": parent_token}
        if driver is not None:
            fields["driver"] = driver
        IdToken.objects.bulk_create(
            [IdToken(token=t, **fields) for t in tokens if t not in existing], batch_size=1000
        )
        IdToken.objects.filter(pk__in=[t.pk for t in existing.values()]).update(**fields)
    return len(tokens) - len(existing), len(existing)
