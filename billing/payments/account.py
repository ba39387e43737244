"""RFID cards on a postpaid account: nothing is charged per session; the session lands on the
account's monthly invoice, which is how the money is collected."""

from __future__ import annotations

from decimal import Decimal

from billing.models import Payment, PaymentStatus

from .base import PaymentProvider


class AccountProvider(PaymentProvider):
    name = "account"

    def authorize(self, payment: Payment, amount: Decimal) -> None:
        payment.status = PaymentStatus.ON_ACCOUNT
        payment.save(update_fields=["status", "updated_at"])

    def capture(self, payment: Payment, amount: Decimal) -> None:
        # The amount is what the monthly invoice will carry; nothing leaves anyone's card.
        payment.status = PaymentStatus.ON_ACCOUNT
        payment.amount_captured = amount
        payment.save(update_fields=["status", "amount_captured", "updated_at"])

    def cancel(self, payment: Payment) -> None:
        payment.status = PaymentStatus.CANCELED
        payment.save(update_fields=["status", "updated_at"])

    def refund(self, payment: Payment, amount: Decimal, reason: str) -> str:
        # Money back on an account is a credit note on its invoice; there is no provider refund.
        return ""

    def handle_webhook(self, event: dict) -> None:
        return None
