"""The interface every payment provider implements, and the money helpers they share."""

from __future__ import annotations

from decimal import Decimal

from billing.models import Payment

# ISO 4217 currencies without a minor unit (Stripe's list of zero-decimal currencies).
ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"}
    | {"PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)


def to_minor(amount: Decimal, currency: str) -> int:
    """An amount in the currency's minor units (cents), as Stripe wants it. Amounts are
    rounded once, at the priced line, so this only shifts the decimal point."""
    exponent = 0 if currency.upper() in ZERO_DECIMAL else 2
    return int((Decimal(amount) * (10**exponent)).to_integral_value())


def from_minor(value: int, currency: str) -> Decimal:
    exponent = 0 if currency.upper() in ZERO_DECIMAL else 2
    return (Decimal(value) / (10**exponent)).quantize(Decimal(1) / (10**exponent))


class PaymentError(Exception):
    """A payment step that did not go through: a declined card, an expired hold, the
    provider unreachable. ``message`` is fit to show the payer."""

    def __init__(self, message: str, *, code: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code


class PaymentProvider:
    """One way to pay. Each step updates and saves the ``Payment`` it is given (status,
    intent id, amounts) and raises ``PaymentError`` when the step failed; the services
    decide about retries, blocking and events."""

    name: str = ""

    def authorize(self, payment: Payment, amount: Decimal) -> None:
        """Reserve ``amount`` at the start of a session (or promise to collect it later)."""
        raise NotImplementedError

    def capture(self, payment: Payment, amount: Decimal) -> None:
        """Collect ``amount`` at the end of a session."""
        raise NotImplementedError

    def cancel(self, payment: Payment) -> None:
        """Release what was reserved: nothing is owed."""
        raise NotImplementedError

    def refund(self, payment: Payment, amount: Decimal, reason: str) -> str:
        """Give ``amount`` back; the provider's refund id, or "" when it has none."""
        raise NotImplementedError

    def handle_webhook(self, event: dict) -> None:
        """React to the provider's notification (already verified and deduplicated)."""
        raise NotImplementedError
