"""Helpers for the payment tests: a tariff, a card saved the way the driver page saves it, a
session."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from billing import stripe_client
from billing.models import TariffAssignment
from billing.services import payments
from billing.tariffs import tariff_create
from sessions.models import TransactionStatus
from tests.factories import IdTokenFactory
from tests.sessions.factories import TransactionFactory

GOOD_CARD = "4242424242424242"
# Attaches fine, every charge is declined (Stripe's and localstripe's test card).
DECLINING_CARD = "4000000000000341"
# Refused already when saved.
REFUSED_CARD = "4000000000000002"


def energy_tariff(operator, price: str = "0.40"):
    """A tariff of ``price`` per kWh, tax included at 0%, for everything of the operator."""
    tariff = tariff_create(
        operator=operator,
        name="Standard",
        currency="EUR",
        tax_rate=Decimal("0"),
        elements=[{"components": [{"type": "ENERGY", "price": Decimal(price)}]}],
    )
    TariffAssignment.objects.create(tariff=tariff, operator=operator)
    return tariff


def new_card(number: str = GOOD_CARD):
    return stripe_client.client().v1.payment_methods.create(
        {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )


def save_card(user, number: str = GOOD_CARD):
    """What the driver page does: a SetupIntent, confirmed by Stripe.js with the card, then the
    card stored."""
    setup = payments.save_card_setup_intent(user)
    method = new_card(number)
    intent_id = setup["client_secret"].split("_secret_")[0]
    stripe_client.client().v1.setup_intents.confirm(intent_id, {"payment_method": method.id})
    return payments.attach_payment_method(user, method.id)


def session(charge_point, driver, *, energy_wh: str = "7400", token=None):
    """A session of ``energy_wh`` on connector 1, started two hours ago, not stopped yet."""
    token = token or IdTokenFactory(driver=driver)
    return TransactionFactory(charge_point=charge_point, id_token=token, driver=driver), Decimal(energy_wh)


def stop(tx, energy_wh: Decimal):
    tx.stopped_at = tx.started_at + dt.timedelta(hours=1)
    tx.meter_stop = tx.meter_start + energy_wh
    tx.energy_wh = energy_wh
    tx.last_meter_wh = tx.meter_stop
    tx.last_meter_at = tx.stopped_at
    tx.status = TransactionStatus.COMPLETED
    tx.stop_reason = "Local"
    tx.save()
    return tx


def now():
    return timezone.now()
