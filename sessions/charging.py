"""Starting and stopping a charging session from afar: a driver's app or account page (and an
operator, through the same use case).

``remote_start`` checks what can be checked here first (the charger online, the connector
free, the token the driver's own and accepted), sends RemoteStartTransaction and, once the
charger has accepted, waits for the StartTransaction it then sends, so the caller gets the
session itself or the reason there is none. ``remote_stop`` does the same for a stop.
Both block (polling the database) for at most about twice the timeout: once for the
charger's answer, once for the session it reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q, Value
from django.db.models.functions import Upper

from stations.commands import send_command
from stations.models import (
    OCCUPIED_STATUSES,
    ChargePoint,
    Command,
    CommandStatus,
    Connector,
    ConnectorStatus,
    ProtocolVersion,
    RegistrationStatus,
    User,
)

from .models import (
    ACTIVE_RESERVATION_STATUSES,
    IdToken,
    IdTokenStatus,
    IdTokenType,
    Reservation,
    Transaction,
    TransactionStatus,
)

POLL_INTERVAL = 0.2  # seconds between looks for the session the charger reports
ID_TAG_MAX_16 = 20  # an OCPP 1.6 idTag is a CiString20


class Reason:
    """Why there is no session (the ``code`` of an outcome)."""

    OFFLINE = "offline"
    REJECTED = "rejected"
    ERROR = "error"
    TIMEOUT = "timeout"
    NO_SESSION = "no_session"
    NOT_STOPPED = "not_stopped"
    CONNECTOR_UNKNOWN = "connector_unknown"
    CONNECTOR_BUSY = "connector_busy"
    CONNECTOR_FAULTED = "connector_faulted"
    CONNECTOR_UNAVAILABLE = "connector_unavailable"
    CONNECTOR_RESERVED = "connector_reserved"
    TOKEN_NOT_ACCEPTED = "token_not_accepted"
    TOKEN_IN_USE = "token_in_use"
    NO_TOKEN = "no_token"
    NOT_YOURS = "not_yours"
    NOT_ACTIVE = "not_active"
    PAYMENT_REQUIRED = "payment_required"


@dataclass(frozen=True)
class StartOutcome:
    transaction: Transaction | None = None
    code: str = ""
    reason: str = ""
    command: Command | None = None

    @property
    def ok(self) -> bool:
        return self.transaction is not None


@dataclass(frozen=True)
class StopOutcome:
    transaction: Transaction
    stopped: bool = False
    code: str = ""
    reason: str = ""
    command: Command | None = None

    @property
    def ok(self) -> bool:
        return self.stopped


def _timeout(timeout: float | None) -> float:
    return timeout or settings.OCPP_COMMAND_TIMEOUT


def _is_driver(user: User | None) -> bool:
    return user is not None and user.is_authenticated and user.is_driver


def driver_token(user: User, token_id: int | None = None) -> IdToken | None:
    """The token a driver charges with: the one chosen, else the first accepted app token,
    else the first accepted token of any kind. None if the driver has no such token."""
    tokens = IdToken.objects.filter(driver=user)
    if token_id is not None:
        return tokens.filter(pk=token_id).first()
    usable = [t for t in tokens.order_by("created_at", "pk") if t.effective_status == IdTokenStatus.ACCEPTED]
    return next((t for t in usable if t.type == IdTokenType.APP), usable[0] if usable else None)


def _payment_block(driver_id: int | None) -> str | None:
    """Why a driver blocked for a failed payment may not start, or None. Such a driver's ID
    tokens are Blocked with them (so chargers refuse them too): the reason to give is the
    payment, not the token."""
    if driver_id is None:
        return None
    from billing.models import BillingProfile

    profile = BillingProfile.objects.filter(user_id=driver_id, blocked_at__isnull=False).first()
    if profile is None:
        return None
    return profile.blocked_reason or "A payment failed; pay it on your account page before charging."


def no_token_reason(user: User) -> tuple[str, str]:
    """(code, reason) for a driver ``driver_token`` found no token for."""
    blocked = _payment_block(user.pk)
    if blocked is not None:
        return Reason.PAYMENT_REQUIRED, blocked
    tokens = list(IdToken.objects.filter(driver=user).order_by("created_at", "pk")[:3])
    if not tokens:
        return Reason.NO_TOKEN, "You have no ID token to charge with."
    states = ", ".join(f"{t.token} is {t.effective_status.lower()}" for t in tokens)
    return Reason.TOKEN_NOT_ACCEPTED, f"None of your ID tokens can charge ({states})."


def _token(id_tag: IdToken | str) -> IdToken | None:
    if isinstance(id_tag, IdToken):
        return id_tag
    tokens = list(
        IdToken.objects.alias(upper=Upper("token")).filter(upper=Upper(Value(id_tag))).order_by("pk")[:10]
    )
    return next((t for t in tokens if t.token == id_tag), tokens[0] if tokens else None)


def _refusal(
    charge_point: ChargePoint, connector_id: int, token: IdToken | None, requested_by
) -> StartOutcome | None:
    """What stops a start before anything is sent, or None."""
    if token is None:
        return StartOutcome(code=Reason.TOKEN_NOT_ACCEPTED, reason="This ID token is not known.")
    if _is_driver(requested_by) and token.driver_id != requested_by.pk:
        return StartOutcome(code=Reason.TOKEN_NOT_ACCEPTED, reason="This ID token is not yours.")
    status = token.effective_status
    if status == IdTokenStatus.BLOCKED and (blocked := _payment_block(token.driver_id)) is not None:
        return StartOutcome(code=Reason.PAYMENT_REQUIRED, reason=blocked)
    if status != IdTokenStatus.ACCEPTED:
        return StartOutcome(
            code=Reason.TOKEN_NOT_ACCEPTED, reason=f"The ID token {token.token} is {status.lower()}."
        )
    if len(token.token) > ID_TAG_MAX_16 and charge_point.protocol == ProtocolVersion.OCPP16:
        return StartOutcome(
            code=Reason.TOKEN_NOT_ACCEPTED,
            reason=f"The ID token {token.token} is longer than this charger takes ({ID_TAG_MAX_16}).",
        )
    charge_point.refresh_from_db(fields=["is_connected", "registration_status", "status"])
    if not charge_point.is_connected:
        return StartOutcome(code=Reason.OFFLINE, reason=f"The charge point {charge_point} is offline.")
    if charge_point.registration_status != RegistrationStatus.ACCEPTED:
        return StartOutcome(
            code=Reason.CONNECTOR_UNAVAILABLE,
            reason=f"The charge point {charge_point} is not in service yet.",
        )
    connector = Connector.objects.filter(charge_point=charge_point, connector_id=connector_id).first()
    if connector is None:
        return StartOutcome(
            code=Reason.CONNECTOR_UNKNOWN,
            reason=f"The charge point {charge_point} has no connector {connector_id}.",
        )
    if ConnectorStatus.FAULTED in (connector.status, charge_point.status):
        return StartOutcome(
            code=Reason.CONNECTOR_FAULTED, reason=f"Connector {connector_id} is out of order."
        )
    if ConnectorStatus.UNAVAILABLE in (connector.status, charge_point.status):
        return StartOutcome(
            code=Reason.CONNECTOR_UNAVAILABLE, reason=f"Connector {connector_id} is not available."
        )
    busy = (connector.status in OCCUPIED_STATUSES and connector.status != ConnectorStatus.PREPARING) or (
        Transaction.objects.filter(
            charge_point=charge_point, connector_number=connector_id, status=TransactionStatus.ACTIVE
        ).exists()
    )
    if busy:
        return StartOutcome(code=Reason.CONNECTOR_BUSY, reason=f"Connector {connector_id} is in use.")
    if Transaction.objects.filter(id_token=token, status=TransactionStatus.ACTIVE).exists():
        return StartOutcome(
            code=Reason.TOKEN_IN_USE, reason=f"The ID token {token.token} is charging elsewhere already."
        )
    if connector.status == ConnectorStatus.RESERVED or charge_point.status == ConnectorStatus.RESERVED:
        holder = Q(id_tag__iexact=token.token)
        if token.parent_token:
            holder |= Q(parent_id_tag__iexact=token.parent_token)
        mine = Reservation.objects.filter(
            holder,
            charge_point=charge_point,
            connector_number__in=(0, connector_id),
            status__in=ACTIVE_RESERVATION_STATUSES,
        ).exists()
        if not mine:
            return StartOutcome(
                code=Reason.CONNECTOR_RESERVED,
                reason=f"Connector {connector_id} is reserved for someone else.",
            )
    return None


def _unpaid(charge_point: ChargePoint, connector_id: int, token: IdToken) -> StartOutcome | None:
    """A driver who owes a failed payment, or has no way to pay where charging costs, is told
    why before anything is sent to the charger."""
    if token.driver_id is None:
        return None
    from billing.services.payments import can_start

    allowed, why = can_start(token.driver, charge_point=charge_point, connector_number=connector_id)
    return None if allowed else StartOutcome(code=Reason.PAYMENT_REQUIRED, reason=why)


def _command_failure(command: Command, what: str) -> tuple[str, str]:
    if command.status == CommandStatus.OFFLINE:
        return Reason.OFFLINE, "The charge point is offline."
    if command.status == CommandStatus.TIMEOUT:
        return Reason.TIMEOUT, "The charge point did not answer in time."
    if command.status == CommandStatus.REJECTED:
        return Reason.REJECTED, f"The charge point refused to {what}."
    return Reason.ERROR, f"The charge point could not {what}: {command.outcome}."


def remote_start(
    *,
    charge_point: ChargePoint,
    connector_id: int,
    id_tag: IdToken | str,
    requested_by: User | None,
    timeout: float | None = None,
) -> StartOutcome:
    """Start a session on a connector for an ID token, and return it once the charger has.

    A driver may start only with their own accepted token. Returns the outcome: its
    ``transaction`` when the charger started the session within the timeout, else a
    ``code`` and a ``reason`` for people.
    """
    timeout = _timeout(timeout)
    token = _token(id_tag)
    refusal = _refusal(charge_point, connector_id, token, requested_by) or _unpaid(
        charge_point, connector_id, token
    )
    if refusal is not None:
        return refusal
    command = send_command(
        charge_point,
        "RemoteStartTransaction",
        {"connectorId": connector_id, "idTag": token.token},
        timeout=timeout,
        requested_by=requested_by,
    )
    if command.status != CommandStatus.ACCEPTED:
        code, reason = _command_failure(command, "start a session")
        return StartOutcome(code=code, reason=reason, command=command)
    started = Transaction.objects.filter(
        charge_point=charge_point,
        connector_number=connector_id,
        id_tag__iexact=token.token,
        created_at__gte=command.created_at,
    ).order_by("-created_at", "-pk")
    deadline = time.monotonic() + timeout
    while True:
        transaction = started.select_related("charge_point").first()
        if transaction is not None:
            return StartOutcome(transaction=transaction, command=command)
        if time.monotonic() >= deadline:
            return StartOutcome(
                code=Reason.NO_SESSION,
                reason="The charge point accepted but started no session in time. Is the car plugged in?",
                command=command,
            )
        time.sleep(POLL_INTERVAL)


def remote_stop(
    *, transaction: Transaction, requested_by: User | None, timeout: float | None = None
) -> StopOutcome:
    """Ask the charger to stop a session and wait until it reports the stop.

    A driver may stop only their own sessions.
    """
    timeout = _timeout(timeout)
    if _is_driver(requested_by) and transaction.driver_id != requested_by.pk:
        return StopOutcome(transaction, code=Reason.NOT_YOURS, reason="This session is not yours.")
    transaction.refresh_from_db()
    if transaction.status != TransactionStatus.ACTIVE:
        return StopOutcome(transaction, code=Reason.NOT_ACTIVE, reason="This session has ended already.")
    command = send_command(
        transaction.charge_point,
        "RemoteStopTransaction",
        {"transactionId": transaction.pk},
        timeout=timeout,
        requested_by=requested_by,
    )
    if command.status != CommandStatus.ACCEPTED:
        code, reason = _command_failure(command, "stop the session")
        return StopOutcome(transaction, code=code, reason=reason, command=command)
    deadline = time.monotonic() + timeout
    while True:
        transaction.refresh_from_db()
        if transaction.status != TransactionStatus.ACTIVE:
            return StopOutcome(transaction, stopped=True, command=command)
        if time.monotonic() >= deadline:
            return StopOutcome(
                transaction,
                code=Reason.NOT_STOPPED,
                reason="The charge point accepted the stop but has not reported it yet.",
                command=command,
            )
        time.sleep(POLL_INTERVAL)
