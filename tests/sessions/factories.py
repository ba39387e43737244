"""Factories for charging sessions: transactions, meter samples, reservations."""

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from sessions.models import (
    AuthorizationStatus,
    MeterSample,
    Reservation,
    ReservationStatus,
    Transaction,
    TransactionStatus,
)
from tests.factories import ChargePointFactory, IdTokenFactory


class TransactionFactory(factory.django.DjangoModelFactory):
    """An active session; pass ``stopped=True`` for a completed one."""

    class Meta:
        model = Transaction

    class Params:
        stopped = factory.Trait(
            status=TransactionStatus.COMPLETED,
            stopped_at=factory.LazyAttribute(lambda o: o.started_at + dt.timedelta(hours=1)),
            meter_stop=factory.LazyAttribute(lambda o: o.meter_start + Decimal("7400")),
            energy_wh=Decimal("7400"),
            stop_reason="Local",
            last_meter_wh=factory.SelfAttribute("meter_stop"),
            last_meter_at=factory.SelfAttribute("stopped_at"),
        )

    charge_point = factory.SubFactory(ChargePointFactory)
    connector = factory.LazyAttribute(
        lambda o: o.charge_point.connectors.filter(connector_id=o.connector_number).first()
    )
    connector_number = 1
    id_token = factory.SubFactory(IdTokenFactory)
    id_tag = factory.LazyAttribute(lambda o: o.id_token.token if o.id_token else "UNKNOWN")
    driver = factory.LazyAttribute(lambda o: o.id_token.driver if o.id_token else None)
    started_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=2))
    meter_start = factory.Sequence(lambda n: Decimal(100_000 + n * 10_000))
    start_auth_status = AuthorizationStatus.ACCEPTED
    status = TransactionStatus.ACTIVE
    last_meter_wh = factory.SelfAttribute("meter_start")
    last_meter_at = factory.SelfAttribute("started_at")


class MeterSampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MeterSample

    transaction = factory.SubFactory(TransactionFactory)
    charge_point = factory.SelfAttribute("transaction.charge_point")
    connector_number = factory.SelfAttribute("transaction.connector_number")
    timestamp = factory.Sequence(lambda n: timezone.now() - dt.timedelta(hours=1, minutes=-n))
    measurand = "Energy.Active.Import.Register"
    unit = "Wh"
    value = factory.Sequence(lambda n: Decimal(100_000 + n * 100))
    value_raw = factory.LazyAttribute(lambda o: str(o.value))
    energy_wh = factory.SelfAttribute("value")


class ReservationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reservation

    charge_point = factory.SubFactory(ChargePointFactory)
    connector_number = 1
    id_token = factory.SubFactory(IdTokenFactory)
    id_tag = factory.LazyAttribute(lambda o: o.id_token.token if o.id_token else "UNKNOWN")
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(minutes=30))
    status = ReservationStatus.ACCEPTED
