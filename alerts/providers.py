"""Gateways for SMS and mobile push. Which one is used is a setting, so an operator plugs in
the SMS gateway or push relay of their choice without code: ``console`` writes messages to the
log (development, demos), ``http`` POSTs JSON with a bearer token to a URL.

The HTTP contract, for whoever writes the gateway side:

- SMS: ``POST ALERTS_SMS_HTTP_URL`` ``{"to": "+31…", "text": "…"}``
- push: ``POST ALERTS_MOBILE_PUSH_HTTP_URL``
  ``{"token": device token, "platform": "ios"|"android"|"", "title", "body", "data": {…}}``

with ``Authorization: Bearer <token>``. A 2xx answer means accepted; 404 or 410 to a push means
the device token is gone (the app was removed) and it is forgotten; other 4xx are refused for
good; 408, 429, 5xx and network errors are tried again later.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import requests
from django.conf import settings

from alerts.channels.base import TransportError

logger = logging.getLogger("chargedesk.alerts")

TIMEOUT = 10  # seconds


class TokenGone(TransportError):
    """The push gateway no longer knows this device token."""

    def __init__(self, message: str):
        super().__init__(message, permanent=True)


class SmsProvider(Protocol):
    def send_sms(self, *, to: str, text: str) -> None: ...


class MobilePushProvider(Protocol):
    def send_push(
        self, *, token: str, platform: str, title: str, body: str, data: dict[str, Any]
    ) -> None: ...


class ConsoleProvider:
    """Logs what would be sent; nothing leaves the machine."""

    def send_sms(self, *, to: str, text: str) -> None:
        logger.info("SMS to %s: %s", to, text)

    def send_push(self, *, token: str, platform: str, title: str, body: str, data: dict[str, Any]) -> None:
        logger.info("Mobile push to %s (%s): %s — %s %s", token, platform or "?", title, body, data)


class HttpProvider:
    """POSTs each message as JSON to the operator's gateway."""

    def __init__(self, url: str, token: str, *, setting: str, timeout: float = TIMEOUT):
        self.url = url
        self.token = token
        self.setting = setting
        self.timeout = timeout

    def _post(self, payload: dict[str, Any], *, gone_means_token_gone: bool) -> None:
        if not self.url:
            raise TransportError(f"{self.setting} is not set", permanent=True)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = requests.post(self.url, json=payload, headers=headers, timeout=self.timeout)
        except requests.RequestException as error:
            raise TransportError(f"gateway unreachable: {error}") from error
        code = response.status_code
        if 200 <= code < 300:
            return
        message = f"gateway answered HTTP {code}: {response.text[:200]}".rstrip(": ")
        if gone_means_token_gone and code in (404, 410):
            raise TokenGone(message)
        raise TransportError(message, permanent=400 <= code < 500 and code not in (408, 429))

    def send_sms(self, *, to: str, text: str) -> None:
        self._post({"to": to, "text": text}, gone_means_token_gone=False)

    def send_push(self, *, token: str, platform: str, title: str, body: str, data: dict[str, Any]) -> None:
        payload = {"token": token, "platform": platform, "title": title, "body": body, "data": data}
        self._post(payload, gone_means_token_gone=True)


def _choose(setting: str, url_setting: str, token_setting: str) -> ConsoleProvider | HttpProvider:
    name = getattr(settings, setting)
    if name == "console":
        return ConsoleProvider()
    if name == "http":
        return HttpProvider(
            getattr(settings, url_setting), getattr(settings, token_setting), setting=url_setting
        )
    raise TransportError(f"{setting}={name!r}: expected 'console' or 'http'", permanent=True)


def sms_provider() -> SmsProvider:
    """The configured SMS gateway (read from settings at each call)."""
    return _choose("ALERTS_SMS_PROVIDER", "ALERTS_SMS_HTTP_URL", "ALERTS_SMS_HTTP_TOKEN")


def mobile_push_provider() -> MobilePushProvider:
    """The configured mobile push gateway (read from settings at each call)."""
    return _choose(
        "ALERTS_MOBILE_PUSH_PROVIDER", "ALERTS_MOBILE_PUSH_HTTP_URL", "ALERTS_MOBILE_PUSH_HTTP_TOKEN"
    )
