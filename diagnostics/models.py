"""Diagnostics: what is wrong with a charger, why, and who goes to fix it.

- ``FaultRule``: the editable mapping from an OCPP error code (and a vendor's own code) to a
  likely cause, severity, recommended action, tools and spare parts. Seeded with defaults.
- ``Incident``: one problem of one unit, opened and closed by the sweeps from their findings
  (one open incident per problem and unit, however often it flaps); ``Finding``: each
  sweep's evidence for it.
- ``Ticket``: a work order for a technician, made from an incident.
- ``HealingPolicy`` / ``HealingAttempt``: safe self-healing (soft, then hard reset) and its log.
- ``LogUpload``: a diagnostics upload the central system asked for (GetDiagnostics), with the
  single-use token its upload must carry.
- ``FirmwareCampaign`` / ``FirmwareCampaignTarget``: a firmware update across chosen chargers.
- ``OutageExclusion``: time a connector was down that uptime reports leave out (NEVI).
- ``ConnectivityEvent``: connections opening and closing, for connections that keep dropping.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from stations.models import ChargePoint, Command, Connector, Operator, Site


class Cause(models.TextChoices):
    CABLE = "cable", "Faulty cable or connector"
    SOFTWARE = "software", "Software or firmware"
    GRID = "grid", "Grid or site power"
    VEHICLE = "vehicle", "The vehicle"
    CONNECTIVITY = "connectivity", "Connectivity"
    HARDWARE = "hardware", "Charger hardware"
    UNKNOWN = "unknown", "Not known yet"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    MAJOR = "major", "Major"
    CRITICAL = "critical", "Critical"


class FindingKind(models.TextChoices):
    OFFLINE = "offline", "Offline"
    FAULTED = "faulted", "Connector faulted"
    STUCK_STATUS = "stuck_status", "Connector stuck Faulted or Unavailable"
    STUCK_SESSION = "stuck_session", "Stuck session"
    UNDER_PERFORMANCE = "under_performance", "Under-performance"
    METER_ANOMALY = "meter_anomaly", "Meter anomaly"
    REBOOT_LOOP = "reboot_loop", "Reboot loop"
    ERROR_STORM = "error_storm", "Error storm"
    SITE_POWER = "site_power", "Whole site down"
    FIRMWARE_WIDE = "firmware_wide", "Fault across one firmware version"
    UNSTABLE_CONNECTION = "unstable_connection", "Connection drops often"


class ConnectivityEvent(models.Model):
    """A charger's connection coming up or going down (the ``charge_point.online``/``offline``
    events): the sweeps tell a connection that keeps dropping from them, and uptime reports
    count the time offline as outage. Kept about a year."""

    charge_point = models.ForeignKey(
        ChargePoint, on_delete=models.CASCADE, related_name="connectivity_events"
    )
    online = models.BooleanField()
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["at", "charge_point"])]

    def __str__(self) -> str:
        return (
            f"{self.charge_point_id} {'online' if self.online else 'offline'} @ {self.at:%Y-%m-%d %H:%M:%S}"
        )


class FaultRule(models.Model):
    """What an error code most likely means and what to bring. ``operator`` empty: the
    default for every operator; an operator's own rule for the same codes wins."""

    operator = models.ForeignKey(
        Operator, on_delete=models.CASCADE, null=True, blank=True, related_name="fault_rules"
    )
    error_code = models.CharField(max_length=30, help_text="OCPP ErrorCode, e.g. GroundFailure.")
    vendor_id = models.CharField(max_length=255, blank=True, help_text="Empty: any vendor.")
    vendor_error_code = models.CharField(max_length=50, blank=True, help_text="Empty: any vendor code.")
    cause = models.CharField(max_length=16, choices=Cause.choices, default=Cause.UNKNOWN)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MAJOR)
    title = models.CharField(max_length=200)
    recommended_action = models.TextField(blank=True)
    tools = models.JSONField(default=list, blank=True, help_text="A list of tools to bring.")
    spare_parts = models.JSONField(default=list, blank=True, help_text="A list of spare parts to bring.")
    self_heal = models.BooleanField(
        default=False, help_text="Try a soft, then a hard reset for this fault (within the healing policy)."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["error_code", "vendor_id", "vendor_error_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["operator", "error_code", "vendor_id", "vendor_error_code"],
                condition=Q(operator__isnull=False),
                name="faultrule_unique_codes",
            ),
            models.UniqueConstraint(
                fields=["error_code", "vendor_id", "vendor_error_code"],
                condition=Q(operator__isnull=True),
                name="faultrule_unique_default_codes",
            ),
        ]

    def __str__(self) -> str:
        codes = "/".join(c for c in (self.error_code, self.vendor_id, self.vendor_error_code) if c)
        return f"{codes}: {self.title}"


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class Incident(models.Model):
    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="incidents")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, null=True, blank=True, related_name="incidents")
    charge_point = models.ForeignKey(
        ChargePoint, on_delete=models.CASCADE, null=True, blank=True, related_name="incidents"
    )
    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, null=True, blank=True, related_name="incidents"
    )
    kind = models.CharField(max_length=24, choices=FindingKind.choices)
    key = models.CharField(
        max_length=120, help_text="The problem and unit (e.g. faulted:cp:12:1); one open incident a key."
    )
    status = models.CharField(
        max_length=10, choices=IncidentStatus.choices, default=IncidentStatus.OPEN, db_index=True
    )
    cause = models.CharField(max_length=16, choices=Cause.choices, default=Cause.UNKNOWN)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MAJOR)
    title = models.CharField(max_length=200)
    rule = models.ForeignKey(FaultRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    evidence = models.JSONField(default=dict, blank=True, help_text="The newest finding's evidence.")
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=200, blank=True)
    expected_back_at = models.DateTimeField(
        null=True, blank=True, help_text="When service should resume, if known (told to drivers)."
    )

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [models.Index(fields=["operator", "status", "-opened_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=Q(status="open"), name="incident_one_open_per_key"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status == IncidentStatus.OPEN


class Finding(models.Model):
    """One sweep's evidence for an incident (a new one, or a change in an open one)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="findings")
    kind = models.CharField(max_length=24, choices=FindingKind.choices)
    cause = models.CharField(max_length=16, choices=Cause.choices, default=Cause.UNKNOWN)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MAJOR)
    summary = models.CharField(max_length=255)
    evidence = models.JSONField(default=dict, blank=True)
    detected_at = models.DateTimeField()

    class Meta:
        ordering = ["-detected_at", "-id"]

    def __str__(self) -> str:
        return self.summary


class TicketStatus(models.TextChoices):
    OPEN = "open", "Open"
    ASSIGNED = "assigned", "Assigned"
    IN_PROGRESS = "in_progress", "In progress"
    RESOLVED = "resolved", "Resolved"
    CANCELLED = "cancelled", "Cancelled"


class Ticket(models.Model):
    """A work order: send a technician with the right tools and spare parts."""

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="tickets")
    incident = models.ForeignKey(
        Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets"
    )
    charge_point = models.ForeignKey(
        ChargePoint, on_delete=models.CASCADE, null=True, blank=True, related_name="tickets"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(
        max_length=12, choices=TicketStatus.choices, default=TicketStatus.OPEN, db_index=True
    )
    priority = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MAJOR)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    tools = models.JSONField(default=list, blank=True)
    spare_parts = models.JSONField(default=list, blank=True)
    resolution_notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["assignee", "status"])]

    def __str__(self) -> str:
        return f"T-{self.pk} {self.title}"


class ResetKind(models.TextChoices):
    SOFT = "Soft", "Soft reset"
    HARD = "Hard", "Hard reset"


class HealingPolicy(models.Model):
    """Self-healing for one operator: which faults (the rules marked self_heal), how often."""

    operator = models.OneToOneField(Operator, on_delete=models.CASCADE, related_name="healing_policy")
    enabled = models.BooleanField(default=True)
    max_attempts_per_day = models.PositiveSmallIntegerField(
        default=2, help_text="Resets per charge point in any 24 hours, soft and hard together."
    )
    hard_after_soft = models.BooleanField(
        default=True, help_text="If the fault outlives a soft reset, try a hard one."
    )
    wait_minutes = models.PositiveSmallIntegerField(
        default=10, help_text="How long a reset gets to clear the fault before the next step."
    )

    class Meta:
        verbose_name_plural = "healing policies"

    def __str__(self) -> str:
        return f"Healing policy of {self.operator}"


class HealingOutcome(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent, waiting for the fault to clear"
    RECOVERED = "recovered", "Recovered"
    NOT_RECOVERED = "not_recovered", "Did not recover"
    REFUSED = "refused", "Charger refused or did not answer"


class HealingAttempt(models.Model):
    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="healing_attempts")
    incident = models.ForeignKey(
        Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="healing_attempts"
    )
    kind = models.CharField(max_length=4, choices=ResetKind.choices)
    command = models.ForeignKey(Command, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    outcome = models.CharField(max_length=16, choices=HealingOutcome.choices, default=HealingOutcome.PENDING)
    detail = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} reset of {self.charge_point_id}: {self.outcome}"


def _upload_token() -> str:
    return secrets.token_urlsafe(32)


class LogUploadStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    RECEIVED = "received", "Received"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


class LogUpload(models.Model):
    """A diagnostics file the charger was asked to upload (GetDiagnostics) to our endpoint;
    only an upload carrying this row's token is accepted, once, up to ``max_bytes``."""

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="log_uploads")
    command = models.ForeignKey(Command, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    token = models.CharField(max_length=64, unique=True, default=_upload_token, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=LogUploadStatus.choices, default=LogUploadStatus.REQUESTED
    )
    max_bytes = models.PositiveBigIntegerField(default=50 * 1024 * 1024)
    file = models.FileField(upload_to="diagnostics/%Y/%m/", blank=True)
    filename = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    received_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"Diagnostics of {self.charge_point_id} ({self.status})"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    CANCELLED = "cancelled", "Cancelled"


class FirmwareCampaign(models.Model):
    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="firmware_campaigns")
    name = models.CharField(max_length=200)
    firmware_version = models.CharField(max_length=50, blank=True, help_text="The version it installs.")
    location = models.URLField(max_length=500, help_text="Where the chargers download the firmware.")
    retrieve_at = models.DateTimeField(help_text="When the chargers should start downloading.")
    retries = models.PositiveSmallIntegerField(null=True, blank=True)
    retry_interval = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds.")
    status = models.CharField(max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class FirmwareTargetStatus(models.TextChoices):
    PENDING = "pending", "Not sent yet"
    SENT = "sent", "Sent"
    REFUSED = "refused", "Refused or not delivered"
    DOWNLOADING = "Downloading", "Downloading"
    DOWNLOADED = "Downloaded", "Downloaded"
    DOWNLOAD_FAILED = "DownloadFailed", "Download failed"
    INSTALLING = "Installing", "Installing"
    INSTALLED = "Installed", "Installed"
    INSTALLATION_FAILED = "InstallationFailed", "Installation failed"


class FirmwareCampaignTarget(models.Model):
    campaign = models.ForeignKey(FirmwareCampaign, on_delete=models.CASCADE, related_name="targets")
    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="firmware_targets")
    command = models.ForeignKey(Command, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(
        max_length=20, choices=FirmwareTargetStatus.choices, default=FirmwareTargetStatus.PENDING
    )
    status_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign", "charge_point"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "charge_point"], name="campaign_target_unique")
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.charge_point_id}: {self.status}"


class ExclusionCategory(models.TextChoices):
    """Outage causes outside the operator's control or planned (23 CFR 680.116(b))."""

    SCHEDULED_MAINTENANCE = "scheduled_maintenance", "Scheduled maintenance"
    GRID_OUTAGE = "grid_outage", "Electric utility service interruption"
    VANDALISM = "vandalism", "Vandalism"
    NATURAL_DISASTER = "natural_disaster", "Natural disaster"
    VEHICLE = "vehicle", "Vehicle fault"
    COMMUNICATION = "communication", "Communication network outside the operator's control"
    OTHER = "other", "Other cause outside the operator's control"


class OutageExclusion(models.Model):
    """A window left out of uptime; for a site, a charge point or one connector."""

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="outage_exclusions")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    charge_point = models.ForeignKey(
        ChargePoint, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    category = models.CharField(max_length=24, choices=ExclusionCategory.choices)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    note = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="exclusion_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_category_display()} {self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%Y-%m-%d %H:%M}"
