"""Reads on charging sessions, scoped to what the asking user may see."""

from __future__ import annotations

from django.db.models import QuerySet

from stations.models import ChargePoint, User
from stations.selectors import operators_for

from .models import MeterSample, Transaction, TransactionStatus

_LIST_RELATED = ("charge_point", "charge_point__site", "connector", "id_token", "driver")


def active_transaction(charge_point: ChargePoint, connector_id: int) -> Transaction | None:
    """The running transaction on a connector (the newest, should a lost stop have left two)."""
    return (
        Transaction.objects.filter(
            charge_point=charge_point, connector_number=connector_id, status=TransactionStatus.ACTIVE
        )
        .order_by("-started_at", "-pk")
        .first()
    )


def transactions_for_driver(user: User) -> QuerySet[Transaction]:
    """A driver's own sessions, newest first."""
    if not user.is_authenticated or not user.is_active:
        return Transaction.objects.none()
    return (
        Transaction.objects.filter(driver=user).select_related(*_LIST_RELATED).order_by("-started_at", "-pk")
    )


def transactions_for_operator_user(user: User) -> QuerySet[Transaction]:
    """The sessions on the charge points an operator's staff may see (all, for a superuser)."""
    return (
        Transaction.objects.filter(charge_point__operator__in=operators_for(user))
        .select_related(*_LIST_RELATED)
        .order_by("-started_at", "-pk")
    )


def recent_samples(transaction: Transaction, limit: int = 100) -> list[MeterSample]:
    """A transaction's newest meter samples, newest first."""
    return list(MeterSample.objects.filter(transaction=transaction).order_by("-timestamp", "-pk")[:limit])
