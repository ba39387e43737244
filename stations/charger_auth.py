"""Charger passwords at the door: a fast check for a charger we have seen, and a limit on guesses.

Reconnects. A charger's password is stored as a PBKDF2 hash (``ChargerPasswordHasher``), and a
fleet reconnecting after a restart would pay that hash once per charger. After one successful
check we keep a keyed fingerprint of the password in the cache (Redis on the real stack, so it
outlives the restarted process): HMAC-SHA256 keyed with SECRET_KEY over the charge point, its
stored hash and the password. A reconnect with the same password matches the fingerprint in
microseconds; a password change (a new stored hash) or a new SECRET_KEY matches nothing, and
the slow check runs again. The cache never holds the password or anything usable without
SECRET_KEY.

Guesses. Failed handshakes are counted per charge point identity and per client address in a
fixed window (``OCPP_AUTH_FAILURE_WINDOW`` seconds). Once either count reaches its limit, every
handshake from that identity or address is refused before any password is looked at, the
right one included, until the window that started with the first failure ends: a guesser gets
at most the limit's worth of tries per window, and checking hashes for him costs nothing. Each
failure and each lock-out is logged on ``chargedesk.security`` with identity and address.

Cache down (Redis restarting). The right password still opens the door: the slow hash is
checked for every handshake (no fingerprint), and failures are neither counted nor enforced
until the cache answers again. Refusing every charger because a counter cannot be read would
turn a Redis outage into a network outage; a guesser meanwhile pays the slow hash on every try,
and the bound on concurrent handshakes (``stations.ocpp.handshakes``) caps how fast he tries.
Each handshake checked without the cache is logged on ``chargedesk.security``.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.utils.crypto import constant_time_compare, salted_hmac

security_log = logging.getLogger("chargedesk.security")

FINGERPRINT_SALT = "chargedesk.charger-password-fingerprint"


def _fingerprint(charge_point, password: str) -> str:
    # The stored hash is part of the message: a new password (new hash, new salt) orphans
    # whatever was cached for the old one.
    value = f"{charge_point.pk}\x00{charge_point.password_hash}\x00{password}"
    return salted_hmac(FINGERPRINT_SALT, value, algorithm="sha256").hexdigest()


def _cache(call, *args, what: str, default=None, **kwargs):
    """A cache call that must not fail a handshake: on a cache error (Redis down) log it and
    return ``default``."""
    try:
        return call(*args, **kwargs)
    except Exception as error:  # the Redis client's errors are no Django exception
        security_log.warning("charger authentication without the cache (%s): %r", what, error)
        return default


def _counters(identity: str, ip: str | None) -> dict[str, tuple[str, int]]:
    """Failure counter key → (what it counts, its limit)."""
    counters = {f"ocpp:authfail:id:{identity}": ("identity", settings.OCPP_AUTH_FAILURES_PER_IDENTITY)}
    if ip:
        counters[f"ocpp:authfail:ip:{ip}"] = ("address", settings.OCPP_AUTH_FAILURES_PER_IP)
    return counters


class Door:
    """One handshake's look at the cache: the failure counts of its identity and address and
    the fingerprint of the identity's last good password, in one round trip."""

    def __init__(self, *, identity: str, ip: str | None):
        self.identity, self.ip = identity, ip
        self.fingerprint_key = f"ocpp:pwfp:{identity}"
        self.counters = _counters(identity, ip)
        self.use_fingerprints = settings.OCPP_AUTH_CACHE_SECONDS > 0
        keys = list(self.counters) + ([self.fingerprint_key] if self.use_fingerprints else [])
        self.seen = _cache(cache.get_many, keys, what="failure counts not checked", default={})

    @property
    def locked(self) -> str | None:
        """Why this handshake is refused unheard (too many failures in the window), or None."""
        for key, (what, limit) in self.counters.items():
            if limit > 0 and self.seen.get(key, 0) >= limit:
                security_log.warning(
                    "charger handshake refused unchecked: identity=%s ip=%s reason=locked out (%s)",
                    self.identity,
                    self.ip or "-",
                    what,
                )
                return f"too many failed attempts for this {what}; try again later"
        return None

    def password_matches(self, charge_point, password: str | None) -> bool:
        """Whether ``password`` is the charge point's; the slow hash only when no fingerprint of
        a successful check matches."""
        if not password or not charge_point.has_password:
            return False
        if not self.use_fingerprints:
            return charge_point.check_password(password)
        fingerprint = _fingerprint(charge_point, password)
        cached = self.seen.get(self.fingerprint_key)
        if cached is not None and constant_time_compare(cached, fingerprint):
            return True
        if not charge_point.check_password(password):
            return False
        _cache(
            cache.set,
            self.fingerprint_key,
            fingerprint,
            settings.OCPP_AUTH_CACHE_SECONDS,
            what="fingerprint not kept",
        )
        return True

    def failed(self, reason: str) -> None:
        """Count a failed handshake against the identity and the address; log it, and the
        lock-out it causes."""
        record_failure(identity=self.identity, ip=self.ip, reason=reason)


def record_failure(*, identity: str, ip: str | None, reason: str) -> None:
    window = settings.OCPP_AUTH_FAILURE_WINDOW
    security_log.warning(
        "charger authentication failed: identity=%s ip=%s reason=%s", identity, ip or "-", reason
    )
    for key, (what, limit) in _counters(identity, ip).items():
        count = _cache(_count, key, window, what="failure not counted")
        if count is None:
            continue
        if limit > 0 and count == limit:
            security_log.warning(
                "charger handshakes locked out for %s s: too many failures for this %s "
                "(identity=%s ip=%s, %s failures)",
                window,
                what,
                identity,
                ip or "-",
                count,
            )


def _count(key: str, window: int) -> int:
    # add() opens the window with the first failure; incr() keeps its expiry (a fixed window).
    cache.add(key, 0, window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: this failure opens a new window
        cache.add(key, 1, window)
        return 1
