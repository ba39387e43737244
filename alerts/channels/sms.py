"""SMS, through the configured gateway (``alerts.providers``): short, because it costs per
160 characters and is read at a glance: the title, and when service is expected back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alerts import providers
from alerts.channels.base import Transport, TransportError
from alerts.channels.content import message

if TYPE_CHECKING:
    from alerts.models import Delivery

MAX_LENGTH = 160


def sms_text(delivery: Delivery) -> str:
    m = message(delivery)
    text = m.title.rstrip(".")
    if m.eta_text:
        text += f". Back around {m.eta_text}"
    text += "."
    return text if len(text) <= MAX_LENGTH else text[: MAX_LENGTH - 1] + "…"


class SmsTransport(Transport):
    name = "sms"

    def send(self, delivery: Delivery) -> None:
        user = delivery.user
        phone = (getattr(user, "phone", "") or "").strip() if user else ""
        if not phone:
            raise TransportError("no phone number", permanent=True)
        delivery.target = phone
        providers.sms_provider().send_sms(to=phone, text=sms_text(delivery))
