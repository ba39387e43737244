"""ID tokens (RFID cards, app tokens) that drivers charge with, and what they charge:
transactions (charging sessions), their meter samples and reservations.

Energy is in Wh and power in W, as ``Decimal`` with three decimals: OCPP 1.6 reports
integer Wh for meterStart/meterStop but decimal strings in sampled values (and 2.0.1 only
decimals), so one type holds both without loss.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone


class IdTokenType(models.TextChoices):
    RFID = "rfid", "RFID card"
    APP = "app", "App token"
    EMAID = "emaid", "Contract id (eMAID)"


class IdTokenStatus(models.TextChoices):
    """OCPP 1.6 AuthorizationStatus values a token can hold."""

    ACCEPTED = "Accepted", "Accepted"
    BLOCKED = "Blocked", "Blocked"
    EXPIRED = "Expired", "Expired"
    INVALID = "Invalid", "Invalid"


class IdToken(models.Model):
    """An identifier a charger sends in Authorize/StartTransaction (the OCPP idTag)."""

    token = models.CharField(max_length=36, unique=True, help_text="The idTag as the charger reads it.")
    type = models.CharField(max_length=8, choices=IdTokenType.choices, default=IdTokenType.RFID)
    label = models.CharField(
        max_length=100, blank=True, help_text="The driver's name for it, e.g. “Blue card”."
    )
    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="id_tokens"
    )
    status = models.CharField(max_length=10, choices=IdTokenStatus.choices, default=IdTokenStatus.ACCEPTED)
    expires_at = models.DateTimeField(null=True, blank=True)
    parent_token = models.CharField(
        max_length=36, blank=True, help_text="Group id (OCPP parentIdTag), e.g. a fleet's cards."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["token"]
        verbose_name = "ID token"
        constraints = [
            # idTags are case-insensitive (OCPP CiString): "04ab" and "04AB" are one card, and
            # lookups compare UPPER(token) through this constraint's index.
            models.UniqueConstraint(
                Upper("token"),
                name="idtoken_token_upper_unique",
                violation_error_message="An ID token with this idTag (in any letter case) exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.token

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def effective_status(self) -> str:
        if self.status == IdTokenStatus.ACCEPTED and self.is_expired:
            return IdTokenStatus.EXPIRED
        return self.status


# --- Transactions ---------------------------------------------------------------------------

ENERGY = {"max_digits": 18, "decimal_places": 3}  # Wh (or W) to the mWh: up to 10^15 Wh


class AuthorizationStatus(models.TextChoices):
    """OCPP 1.6 AuthorizationStatus: what a charger is told of an idTag."""

    ACCEPTED = "Accepted", "Accepted"
    BLOCKED = "Blocked", "Blocked"
    EXPIRED = "Expired", "Expired"
    INVALID = "Invalid", "Invalid"
    CONCURRENT_TX = "ConcurrentTx", "In use in another transaction"


class TransactionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"


class EnergyAnomaly(models.TextChoices):
    """Why a session's energy figure is doubtful. It is kept as reported, never corrected."""

    NONE = "", "None"
    NEGATIVE = "negative", "Meter went backwards"
    IMPLAUSIBLE = "implausible", "Implausibly large for the connector and the time"
    CLOCK = "clock", "Stopped before it started"


class Transaction(models.Model):
    """A charging session as the charger reports it (StartTransaction … StopTransaction).

    The primary key is the OCPP transactionId the charger gets back. ``connector_number`` is
    the OCPP connectorId as sent (``connector`` the matching row, if the charger has it; the
    name ``connector_id`` is the foreign key's column). Times and meter readings are the
    charger's own. ``last_meter_wh``/``last_power_w``/``last_meter_at`` follow the
    meter samples, so a live view shows a running session without reading samples.
    """

    charge_point = models.ForeignKey(
        "stations.ChargePoint", on_delete=models.PROTECT, related_name="transactions"
    )
    connector = models.ForeignKey(
        "stations.Connector",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="transactions",
        help_text="Empty when the charger named a connector it does not have.",
    )
    connector_number = models.IntegerField(help_text="The OCPP connectorId as the charger sent it.")
    id_token = models.ForeignKey(
        IdToken, on_delete=models.SET_NULL, null=True, blank=True, related_name="transactions"
    )
    id_tag = models.CharField(max_length=36, help_text="The idTag as the charger sent it.")
    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="transactions",
    )
    reservation = models.ForeignKey(
        "Reservation", on_delete=models.SET_NULL, null=True, blank=True, related_name="transactions"
    )
    started_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    meter_start = models.DecimalField(**ENERGY, help_text="Wh")
    meter_stop = models.DecimalField(**ENERGY, null=True, blank=True, help_text="Wh")
    energy_wh = models.DecimalField(
        **ENERGY, null=True, blank=True, help_text="meter_stop − meter_start, as reported."
    )
    energy_anomaly = models.CharField(
        max_length=12, choices=EnergyAnomaly.choices, default=EnergyAnomaly.NONE, blank=True
    )
    start_auth_status = models.CharField(
        max_length=12,
        choices=AuthorizationStatus.choices,
        help_text="The idTagInfo status the charger got for the start.",
    )
    stop_id_tag = models.CharField(max_length=36, blank=True)
    stop_auth_status = models.CharField(max_length=12, choices=AuthorizationStatus.choices, blank=True)
    stop_reason = models.CharField(max_length=32, blank=True)
    status = models.CharField(
        max_length=10, choices=TransactionStatus.choices, default=TransactionStatus.ACTIVE
    )
    last_meter_wh = models.DecimalField(**ENERGY, null=True, blank=True, help_text="Latest register, Wh.")
    last_power_w = models.DecimalField(**ENERGY, null=True, blank=True, help_text="Latest power, W.")
    last_meter_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        get_latest_by = "started_at"
        indexes = [
            models.Index(
                fields=["charge_point", "connector_number"],
                condition=models.Q(status=TransactionStatus.ACTIVE),
                name="transaction_active_connector",
            ),
            models.Index(
                fields=["id_token"],
                condition=models.Q(status=TransactionStatus.ACTIVE),
                name="transaction_active_token",
            ),
            models.Index(fields=["driver", "-started_at"], name="transaction_driver_started"),
            models.Index(fields=["charge_point", "-started_at"], name="transaction_cp_started"),
        ]
        constraints = [
            # A StartTransaction re-sent after a reconnect is the same transaction.
            models.UniqueConstraint(
                fields=["charge_point", "connector_number", "id_tag", "started_at", "meter_start"],
                name="transaction_unique_start",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.charge_point_id}/{self.connector_number} {self.id_tag}"

    @property
    def is_active(self) -> bool:
        return self.status == TransactionStatus.ACTIVE

    @property
    def duration(self) -> dt.timedelta:
        """Charger time from start to stop; to now while the session runs."""
        return (self.stopped_at or timezone.now()) - self.started_at

    @property
    def session_energy_wh(self) -> Decimal | None:
        """The stored energy once stopped; while running, what the meter added so far."""
        if self.energy_wh is not None:
            return self.energy_wh
        if self.last_meter_wh is not None and self.meter_start is not None:
            return self.last_meter_wh - self.meter_start
        return None

    @property
    def energy_kwh(self) -> Decimal | None:
        wh = self.session_energy_wh
        return None if wh is None else Decimal(wh) / 1000


class MeterSample(models.Model):
    """One sampledValue of a MeterValues (or StopTransaction transactionData) message.

    ``value_raw`` is the string as received (signed data verbatim); ``value`` its number, empty
    for signed or non-numeric data. ``energy_wh``/``power_w`` hold the value in Wh/W where the
    unit is an active energy or power unit (Wh/kWh, W/kW). Optional OCPP fields are stored with
    their spec defaults; a missing phase is "" so that the uniqueness below holds.
    """

    charge_point = models.ForeignKey(
        "stations.ChargePoint", on_delete=models.CASCADE, related_name="meter_samples", db_index=False
    )
    connector_number = models.IntegerField(help_text="The OCPP connectorId; 0 is the charge point.")
    transaction = models.ForeignKey(
        Transaction,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="meter_samples",
        db_index=False,  # covered by the (transaction, timestamp) index
    )
    timestamp = models.DateTimeField()
    measurand = models.CharField(max_length=40, default="Energy.Active.Import.Register")
    phase = models.CharField(max_length=8, blank=True)
    unit = models.CharField(max_length=20, blank=True)
    context = models.CharField(max_length=24, default="Sample.Periodic")
    location = models.CharField(max_length=8, default="Outlet")
    format = models.CharField(max_length=12, default="Raw")
    value_raw = models.TextField()
    value = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    energy_wh = models.DecimalField(max_digits=24, decimal_places=3, null=True, blank=True)
    power_w = models.DecimalField(max_digits=24, decimal_places=3, null=True, blank=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        get_latest_by = "timestamp"
        indexes = [models.Index(fields=["transaction", "timestamp"], name="metersample_tx_time")]
        constraints = [
            # MeterValues re-sent after a reconnect add nothing. It leads with charge_point
            # and holds the timestamp, so it serves reads per charger and time partitioning.
            models.UniqueConstraint(
                fields=[
                    "charge_point",
                    "connector_number",
                    "timestamp",
                    "measurand",
                    "phase",
                    "location",
                    "context",
                ],
                name="metersample_unique_reading",
            ),
        ]

    def __str__(self) -> str:
        phase = f" {self.phase}" if self.phase else ""
        return f"{self.measurand}{phase} = {self.value_raw} {self.unit}".rstrip()


# --- Reservations ---------------------------------------------------------------------------


class ReservationStatus(models.TextChoices):
    PENDING = "Pending", "Pending (sent, no answer yet)"
    ACCEPTED = "Accepted", "Accepted"
    FAULTED = "Faulted", "Faulted"
    OCCUPIED = "Occupied", "Occupied"
    REJECTED = "Rejected", "Rejected"
    UNAVAILABLE = "Unavailable", "Unavailable"
    USED = "Used", "Used"
    CANCELLED = "Cancelled", "Cancelled"
    EXPIRED = "Expired", "Expired"


ACTIVE_RESERVATION_STATUSES = (ReservationStatus.PENDING, ReservationStatus.ACCEPTED)


class Reservation(models.Model):
    """A ReserveNow: a connector (0: any) held for an idTag until ``expires_at``.

    The primary key is the OCPP reservationId sent to the charger.
    """

    charge_point = models.ForeignKey(
        "stations.ChargePoint", on_delete=models.CASCADE, related_name="reservations"
    )
    connector_number = models.IntegerField(default=0, help_text="The OCPP connectorId; 0 reserves any.")
    id_token = models.ForeignKey(
        IdToken, on_delete=models.SET_NULL, null=True, blank=True, related_name="reservations"
    )
    id_tag = models.CharField(max_length=36)
    parent_id_tag = models.CharField(max_length=36, blank=True)
    expires_at = models.DateTimeField()
    status = models.CharField(
        max_length=12, choices=ReservationStatus.choices, default=ReservationStatus.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["charge_point", "connector_number"],
                condition=models.Q(status__in=ACTIVE_RESERVATION_STATUSES),
                name="reservation_active_connector",
            ),
            models.Index(
                fields=["expires_at"],
                condition=models.Q(status__in=ACTIVE_RESERVATION_STATUSES),
                name="reservation_active_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"Reservation #{self.pk} {self.charge_point_id}/{self.connector_number} {self.id_tag}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RESERVATION_STATUSES and self.expires_at > timezone.now()
