"""One-click unsubscribe links (RFC 8058): the token says who, from which event type (None:
all of them) and which channel, signed so that nobody can unsubscribe someone else. Tokens do
not expire: a link in an old email must still work."""

from __future__ import annotations

from django.core import signing

from alerts.links import absolute

SALT = "alerts.unsubscribe"
PATH = "/alerts/unsubscribe/{token}/"


def make_token(user_id: int, event_type: str | None, channel: str) -> str:
    return signing.Signer(salt=SALT).sign_object([user_id, event_type, channel], compress=True)


def read_token(token: str) -> tuple[int, str | None, str]:
    """The token's ``(user_id, event_type, channel)``; raises ``django.core.signing.BadSignature``
    for a token that was not made here (or was altered)."""
    value = signing.Signer(salt=SALT).unsign_object(token)
    if not (isinstance(value, list) and len(value) == 3):
        raise signing.BadSignature("not an unsubscribe token")
    user_id, event_type, channel = value
    return int(user_id), event_type, str(channel)


def make_url(user_id: int, event_type: str | None, channel: str = "email") -> str:
    return absolute(PATH.format(token=make_token(user_id, event_type, channel)))
