"""The charger network: operators, sites, charge points, EVSEs, connectors and their status."""

from __future__ import annotations

import zoneinfo
from decimal import Decimal

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone


class ProtocolVersion(models.TextChoices):
    OCPP16 = "ocpp1.6", "OCPP 1.6J"
    OCPP201 = "ocpp2.0.1", "OCPP 2.0.1"


class RegistrationStatus(models.TextChoices):
    ACCEPTED = "Accepted", "Accepted"
    PENDING = "Pending", "Pending approval"
    REJECTED = "Rejected", "Rejected"


class ConnectorStatus(models.TextChoices):
    """OCPP 1.6 ChargePointStatus, plus 2.0.1's Occupied and our Unknown (never reported)."""

    AVAILABLE = "Available", "Available"
    PREPARING = "Preparing", "Preparing"
    CHARGING = "Charging", "Charging"
    SUSPENDED_EVSE = "SuspendedEVSE", "Suspended by charger"
    SUSPENDED_EV = "SuspendedEV", "Suspended by vehicle"
    FINISHING = "Finishing", "Finishing"
    OCCUPIED = "Occupied", "Occupied"
    RESERVED = "Reserved", "Reserved"
    UNAVAILABLE = "Unavailable", "Unavailable"
    FAULTED = "Faulted", "Faulted"
    UNKNOWN = "Unknown", "Unknown"


ChargePointStatus = ConnectorStatus

# Statuses in which a car is plugged in or a session runs.
OCCUPIED_STATUSES = frozenset(
    {
        ConnectorStatus.PREPARING,
        ConnectorStatus.CHARGING,
        ConnectorStatus.SUSPENDED_EVSE,
        ConnectorStatus.SUSPENDED_EV,
        ConnectorStatus.FINISHING,
        ConnectorStatus.OCCUPIED,
    }
)


class ErrorCode(models.TextChoices):
    """OCPP 1.6 ChargePointErrorCode."""

    NO_ERROR = "NoError", "No error"
    CONNECTOR_LOCK_FAILURE = "ConnectorLockFailure", "Connector lock failure"
    EV_COMMUNICATION_ERROR = "EVCommunicationError", "EV communication error"
    GROUND_FAILURE = "GroundFailure", "Ground failure"
    HIGH_TEMPERATURE = "HighTemperature", "High temperature"
    INTERNAL_ERROR = "InternalError", "Internal error"
    LOCAL_LIST_CONFLICT = "LocalListConflict", "Local list conflict"
    OTHER_ERROR = "OtherError", "Other error"
    OVER_CURRENT_FAILURE = "OverCurrentFailure", "Over-current failure"
    OVER_VOLTAGE = "OverVoltage", "Over-voltage"
    POWER_METER_FAILURE = "PowerMeterFailure", "Power meter failure"
    POWER_SWITCH_FAILURE = "PowerSwitchFailure", "Power switch failure"
    READER_FAILURE = "ReaderFailure", "Reader failure"
    RESET_FAILURE = "ResetFailure", "Reset failure"
    UNDER_VOLTAGE = "UnderVoltage", "Under-voltage"
    WEAK_SIGNAL = "WeakSignal", "Weak signal"


class ConnectorStandard(models.TextChoices):
    """Connector standards, named as in OCPI 2.2.1 ConnectorType."""

    TYPE2 = "IEC_62196_T2", "Type 2"
    TYPE2_CABLE = "IEC_62196_T2_CABLE", "Type 2 (tethered cable)"
    CCS2 = "IEC_62196_T2_COMBO", "CCS (Combo 2)"
    TYPE1 = "IEC_62196_T1", "Type 1"
    CCS1 = "IEC_62196_T1_COMBO", "CCS (Combo 1)"
    CHADEMO = "CHADEMO", "CHAdeMO"
    NACS = "NACS", "NACS (SAE J3400)"
    GB_T_DC = "GBT_DC", "GB/T DC"
    DOMESTIC_F = "DOMESTIC_F", "Schuko (CEE 7/4)"


class PowerType(models.TextChoices):
    AC_1_PHASE = "AC_1_PHASE", "AC single phase"
    AC_3_PHASE = "AC_3_PHASE", "AC three phase"
    DC = "DC", "DC"


class Availability(models.TextChoices):
    """What a driver needs to know of a connector."""

    AVAILABLE = "available", "Available"
    OCCUPIED = "occupied", "Occupied"
    RESERVED = "reserved", "Reserved"
    OUT_OF_SERVICE = "out_of_service", "Out of service"
    OFFLINE = "offline", "Offline"
    UNKNOWN = "unknown", "Unknown"


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known IANA time zone (e.g. Europe/Amsterdam).")


class Operator(models.Model):
    """An organisation that runs a charging network (a CPO)."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    legal_name = models.CharField(max_length=200, blank=True)
    vat_number = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True)
    address = models.TextField(blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2 code.")
    currency = models.CharField(max_length=3, default="EUR", help_text="ISO 4217 code.")
    accept_unknown_chargers = models.BooleanField(
        default=False,
        help_text="Admit charge points that are not provisioned yet as pending, for approval, "
        "instead of refusing them.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Site(models.Model):
    """A location with one or more charge points (an OCPI Location)."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="sites")
    name = models.CharField(max_length=200)
    address = models.CharField(max_length=255)
    city = models.CharField(max_length=100)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code.")
    latitude = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        validators=[MinValueValidator(Decimal("-90")), MaxValueValidator(Decimal("90"))],
    )
    longitude = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        validators=[MinValueValidator(Decimal("-180")), MaxValueValidator(Decimal("180"))],
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    is_public = models.BooleanField(default=True, help_text="Shown to drivers in the station finder.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["operator", "name"]
        indexes = [models.Index(fields=["latitude", "longitude"])]
        constraints = [
            models.UniqueConstraint(fields=["operator", "name"], name="site_unique_name_per_operator"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def full_address(self) -> str:
        return ", ".join(
            p for p in (self.address, f"{self.postal_code} {self.city}".strip(), self.country) if p
        )


SITE_OF_OTHER_OPERATOR = "The site belongs to another operator."

identity_validator = RegexValidator(
    r"^[A-Za-z0-9._:*@+\-]{1,48}$",
    "Use 1–48 letters, digits or . _ : * @ + - (it is the last part of the charger's OCPP URL).",
)


class ChargerPasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2 with a cost fit for machine passwords of 16–40 characters.

    Chargers reconnect by the thousand after an outage; the default 1,000,000 iterations
    would cost minutes of CPU for a fleet. The OCPP security profile's minimum length gives
    the entropy instead.
    """

    algorithm = "charger_pbkdf2_sha256"
    iterations = 5_000


class ChargePoint(models.Model):
    """A charging station as it speaks OCPP: one WebSocket connection, one identity."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="charge_points")
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, null=True, blank=True, related_name="charge_points"
    )
    identity = models.CharField(
        max_length=48,
        unique=True,
        validators=[identity_validator],
        help_text="The charge point id as it appears in the OCPP URL /ocpp/<identity>.",
    )
    name = models.CharField(max_length=100, blank=True)
    vendor = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=50, blank=True)
    serial_number = models.CharField(max_length=50, blank=True)
    firmware_version = models.CharField(max_length=50, blank=True)
    iccid = models.CharField("ICCID", max_length=20, blank=True)
    imsi = models.CharField("IMSI", max_length=20, blank=True)
    meter_type = models.CharField(max_length=50, blank=True)
    meter_serial_number = models.CharField(max_length=50, blank=True)
    protocol = models.CharField(
        max_length=12, choices=ProtocolVersion.choices, default=ProtocolVersion.OCPP16
    )
    password_hash = models.CharField(max_length=200, blank=True, editable=False)
    registration_status = models.CharField(
        max_length=10, choices=RegistrationStatus.choices, default=RegistrationStatus.ACCEPTED, db_index=True
    )
    is_connected = models.BooleanField(default=False, db_index=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_boot_at = models.DateTimeField(null=True, blank=True)
    heartbeat_interval = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(10), MaxValueValidator(86400)], help_text="Seconds."
    )
    local_list_version = models.IntegerField(
        null=True, blank=True, help_text="Version of the local authorisation list the charger holds."
    )
    firmware_status = models.CharField(max_length=30, blank=True)
    firmware_status_at = models.DateTimeField(null=True, blank=True)
    diagnostics_status = models.CharField(max_length=30, blank=True)
    diagnostics_status_at = models.DateTimeField(null=True, blank=True)
    # The status the charger reports for connector 0: the charge point as a whole.
    status = models.CharField(max_length=16, choices=ConnectorStatus.choices, default=ConnectorStatus.UNKNOWN)
    error_code = models.CharField(max_length=30, blank=True)
    status_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["identity"]
        indexes = [models.Index(fields=["operator", "is_connected"])]

    def __str__(self) -> str:
        return self.identity

    def get_absolute_url(self) -> str:
        return reverse("stations:charge-point", args=[self.identity])

    def clean(self) -> None:
        super().clean()
        if self.site_id and self.operator_id and self.site.operator_id != self.operator_id:
            raise ValidationError({"site": SITE_OF_OTHER_OPERATOR})

    def set_password(self, raw_password: str) -> None:
        self.password_hash = ChargerPasswordHasher().encode(raw_password, ChargerPasswordHasher().salt())

    def check_password(self, raw_password: str) -> bool:
        if not self.password_hash or not raw_password:
            return False
        return ChargerPasswordHasher().verify(raw_password, self.password_hash)

    @property
    def has_password(self) -> bool:
        return bool(self.password_hash)

    @property
    def display_name(self) -> str:
        return self.name or self.identity

    @property
    def max_power_kw(self) -> Decimal:
        return sum((c.max_power_kw for c in self.connectors.all()), Decimal("0"))


class Evse(models.Model):
    """An EVSE: the part of a charge point that charges one car at a time (OCPP 2.0.1 evseId).

    Under OCPP 1.6 each connector is its own EVSE with the same number.
    """

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="evses")
    evse_id = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["charge_point", "evse_id"]
        verbose_name = "EVSE"
        verbose_name_plural = "EVSEs"
        constraints = [
            models.UniqueConstraint(fields=["charge_point", "evse_id"], name="evse_unique_per_charge_point"),
        ]

    def __str__(self) -> str:
        return f"{self.charge_point.identity} EVSE {self.evse_id}"


class Connector(models.Model):
    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="connectors")
    evse = models.ForeignKey(Evse, on_delete=models.CASCADE, related_name="connectors")
    connector_id = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1)],
        help_text="The OCPP 1.6 connectorId: numbered from 1 across the charge point.",
    )
    standard = models.CharField(
        max_length=24, choices=ConnectorStandard.choices, default=ConnectorStandard.TYPE2
    )
    power_type = models.CharField(max_length=12, choices=PowerType.choices, default=PowerType.AC_3_PHASE)
    max_power_kw = models.DecimalField(
        max_digits=7,
        decimal_places=2,
        default=Decimal("22"),
        validators=[MinValueValidator(Decimal("0.1")), MaxValueValidator(Decimal("2000"))],
    )
    status = models.CharField(
        max_length=16, choices=ConnectorStatus.choices, default=ConnectorStatus.UNKNOWN, db_index=True
    )
    error_code = models.CharField(max_length=30, blank=True)
    status_info = models.CharField(max_length=50, blank=True)
    vendor_error_code = models.CharField(max_length=50, blank=True)
    status_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["charge_point", "connector_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["charge_point", "connector_id"], name="connector_unique_per_charge_point"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.charge_point.identity} #{self.connector_id}"

    def clean(self) -> None:
        super().clean()
        if self.evse_id and self.charge_point_id and self.evse.charge_point_id != self.charge_point_id:
            raise ValidationError({"evse": "The EVSE belongs to another charge point."})

    @property
    def has_error(self) -> bool:
        return bool(self.error_code) and self.error_code != ErrorCode.NO_ERROR

    def availability(self, charge_point_online: bool | None = None) -> str:
        """The connector as a driver sees it; an offline charger makes every connector offline."""
        online = self.charge_point.is_connected if charge_point_online is None else charge_point_online
        if not online:
            return Availability.OFFLINE
        if self.status == ConnectorStatus.AVAILABLE:
            return Availability.AVAILABLE
        if self.status in OCCUPIED_STATUSES:
            return Availability.OCCUPIED
        if self.status == ConnectorStatus.RESERVED:
            return Availability.RESERVED
        if self.status in (ConnectorStatus.FAULTED, ConnectorStatus.UNAVAILABLE):
            return Availability.OUT_OF_SERVICE
        return Availability.UNKNOWN


class StatusSource(models.TextChoices):
    CHARGER = "charger", "Reported by the charger"
    SYSTEM = "system", "Recorded by ChargeDesk"


class StatusChange(models.Model):
    """One status report, kept for the status timeline and uptime reports.

    ``timestamp`` is the charger's own time of the change; ``received_at`` ours.
    """

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="status_changes")
    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, null=True, blank=True, related_name="status_changes"
    )
    connector_number = models.PositiveSmallIntegerField(
        default=0, help_text="The OCPP connectorId; 0 is the charge point as a whole."
    )
    status = models.CharField(max_length=16, choices=ConnectorStatus.choices)
    error_code = models.CharField(max_length=30, blank=True)
    info = models.CharField(max_length=50, blank=True)
    vendor_id = models.CharField(max_length=255, blank=True)
    vendor_error_code = models.CharField(max_length=50, blank=True)
    source = models.CharField(max_length=8, choices=StatusSource.choices, default=StatusSource.CHARGER)
    timestamp = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        get_latest_by = "timestamp"
        indexes = [
            models.Index(fields=["charge_point", "timestamp"]),
            models.Index(fields=["connector", "timestamp"]),
            # The diagnostics sweeps read the whole network's recent changes by time.
            models.Index(fields=["timestamp"], name="statuschange_time"),
        ]
        constraints = [
            # A charger that re-sends the same StatusNotification after a reconnect adds nothing.
            models.UniqueConstraint(
                fields=["charge_point", "connector_number", "timestamp", "status", "error_code"],
                name="status_change_unique_report",
            ),
        ]

    def __str__(self) -> str:
        when = f"{self.timestamp:%Y-%m-%d %H:%M:%S}"
        return f"{self.charge_point_id}/{self.connector_number} {self.status} @ {when}"
