"""ID tokens (RFID cards, app tokens) that drivers charge with."""

from django.conf import settings
from django.db import models
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
