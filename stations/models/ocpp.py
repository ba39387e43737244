"""What chargers said (the raw OCPP log), what we asked of them (commands) and the
configuration they reported."""

import uuid

from django.conf import settings
from django.db import models


class Direction(models.TextChoices):
    IN = "in", "Charger → ChargeDesk"
    OUT = "out", "ChargeDesk → charger"


class OcppMessage(models.Model):
    """One OCPP-J frame as it went over the wire, kept verbatim."""

    charge_point = models.ForeignKey(
        "stations.ChargePoint", on_delete=models.CASCADE, related_name="messages"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    message_type = models.PositiveSmallIntegerField(help_text="2 CALL, 3 CALLRESULT, 4 CALLERROR")
    unique_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=50, blank=True)
    raw = models.TextField()
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["charge_point", "created_at"])]

    def __str__(self) -> str:
        return f"{self.direction} {self.action or self.message_type} {self.unique_id}"


class CommandStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the charger"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    ERROR = "error", "Error"
    TIMEOUT = "timeout", "Timed out"
    OFFLINE = "offline", "Charger offline"


class Command(models.Model):
    """A request ChargeDesk sent (or tried to send) to a charger, with its outcome.

    The primary key is also the OCPP uniqueId of the CALL.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    charge_point = models.ForeignKey(
        "stations.ChargePoint", on_delete=models.CASCADE, related_name="commands"
    )
    action = models.CharField(max_length=50, db_index=True)
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=CommandStatus.choices, default=CommandStatus.PENDING, db_index=True
    )
    response = models.JSONField(null=True, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    error_description = models.CharField(max_length=255, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    batch = models.UUIDField(null=True, blank=True, db_index=True, help_text="Commands sent together.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["charge_point", "created_at"])]

    def __str__(self) -> str:
        return f"{self.action} → {self.charge_point_id}: {self.status}"

    @property
    def is_final(self) -> bool:
        return self.status != CommandStatus.PENDING

    @property
    def outcome(self) -> str:
        """A line for people: the charger's own status word, or why there is none."""
        if self.status == CommandStatus.ERROR:
            return f"{self.error_code}: {self.error_description}".strip(": ")
        if isinstance(self.response, dict) and "status" in self.response:
            return str(self.response["status"])
        return self.get_status_display()


class ConfigurationKey(models.Model):
    """A configuration key as the charger last reported it (GetConfiguration) or we set it."""

    charge_point = models.ForeignKey(
        "stations.ChargePoint", on_delete=models.CASCADE, related_name="configuration"
    )
    key = models.CharField(max_length=50)
    value = models.TextField(blank=True, null=True)
    readonly = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["charge_point", "key"], name="config_key_unique")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"
