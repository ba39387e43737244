"""Payment providers behind one interface (after pretix's ``BasePaymentProvider``): Stripe for
cards and wallets, the postpaid account for RFID cards on account. A new way to pay is a new
provider; session and invoice code never change for it."""

from __future__ import annotations

from billing.models import PaymentProvider as ProviderName

from .account import AccountProvider
from .base import PaymentError, PaymentProvider, from_minor, to_minor
from .stripe import StripeProvider

PROVIDERS: dict[str, type[PaymentProvider]] = {
    ProviderName.STRIPE: StripeProvider,
    ProviderName.ACCOUNT: AccountProvider,
}


def provider_for(payment) -> PaymentProvider:
    """The provider that handles a payment, by its ``provider`` field."""
    return PROVIDERS[payment.provider]()


__all__ = [
    "PROVIDERS",
    "AccountProvider",
    "PaymentError",
    "PaymentProvider",
    "StripeProvider",
    "from_minor",
    "provider_for",
    "to_minor",
]
