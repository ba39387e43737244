"""Email: the notification as a text and an HTML part, with a one-click unsubscribe (RFC 8058)
so that mail providers show their own unsubscribe button and do not mark us as spam."""

from __future__ import annotations

import smtplib
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string

from alerts.channels.base import Transport, TransportError
from alerts.channels.content import message
from alerts.links import absolute
from alerts.unsubscribe import make_url

if TYPE_CHECKING:
    from alerts.models import Delivery


# Without one (Django's default) a mail server that stops answering holds a worker for good.
SMTP_TIMEOUT = 30  # seconds


def unsubscribe_headers(url: str) -> dict[str, str]:
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def send_email(
    *, to: str, subject: str, template: str, context: dict[str, Any], unsubscribe_url: str
) -> None:
    """Render ``template``.txt and .html and send them; SMTP failures as ``TransportError``."""
    context = {**context, "unsubscribe_url": unsubscribe_url, "site_url": absolute("/")}
    text = render_to_string(f"{template}.txt", context)
    html = render_to_string(f"{template}.html", context)
    email = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers=unsubscribe_headers(unsubscribe_url),
        connection=get_connection(timeout=getattr(settings, "EMAIL_TIMEOUT", None) or SMTP_TIMEOUT),
    )
    email.attach_alternative(html, "text/html")
    try:
        email.send()
    except smtplib.SMTPRecipientsRefused as error:
        refused = "; ".join(
            f"{code} {reason.decode(errors='replace') if isinstance(reason, bytes) else reason}"
            for code, reason in error.recipients.values()
        )
        raise TransportError(f"recipient refused: {refused or to}", permanent=True) from error
    except (smtplib.SMTPException, OSError) as error:
        # Connection refused or dropped, timeouts, 4xx/5xx on the session: the mail server's
        # trouble, not the address's; worth another try.
        raise TransportError(f"SMTP: {error!r}") from error


class EmailTransport(Transport):
    name = "email"

    def send(self, delivery: Delivery) -> None:
        user = delivery.user
        if user is None or not user.email:
            raise TransportError("no email address", permanent=True)
        delivery.target = user.email
        send_email(
            to=user.email,
            subject=delivery.notification.title if delivery.notification else delivery.alert.title,
            template="alerts/email/alert",
            context={"m": message(delivery), "user": user},
            unsubscribe_url=make_url(user.pk, delivery.alert.event_type, "email"),
        )
