"""Pricing many sessions at once (a backlog, a month) gives what pricing each one gives, in a
number of queries that does not grow with the sessions."""

import datetime as dt
from decimal import Decimal as D

import pytest

from billing.models import CustomerGroup, SessionCharge, TariffAssignment
from billing.services.charges import price_session, price_sessions
from tests.billing.test_charges import sample, stopped_session, tariff  # noqa: F401 (fixture)
from tests.billing.test_pricing import comp, make_tariff
from tests.factories import DriverFactory
from tests.sessions.factories import IdTokenFactory

pytestmark = pytest.mark.django_db


def _sessions(charge_point, n):
    txs = []
    for i in range(n):
        tx = stopped_session(charge_point, hours=1 + i % 3, energy=D(5000 + 1000 * i))
        tx.started_at += dt.timedelta(days=i)  # one connector: one session at a time
        tx.stopped_at += dt.timedelta(days=i)
        tx.save()
        sample(tx, 30, energy=tx.meter_start + D(2000), power=D(11000))
        sample(tx, 50, energy=tx.meter_start + tx.energy_wh, power=D(0))
        txs.append(tx)
    return txs


def test_a_batch_prices_each_session_as_pricing_it_alone_would(charge_point, operator, tariff):  # noqa: F811
    members = make_tariff(operator, [{"components": [comp("ENERGY", "0.10")]}], name="Members")
    group = CustomerGroup.objects.create(operator=operator, name="Members")
    TariffAssignment.objects.create(
        tariff=members, operator=operator, charge_point=charge_point, customer_group=group
    )
    member = DriverFactory()
    group.members.add(member)
    txs = _sessions(charge_point, 6)
    for tx in txs[:2]:
        tx.id_token = IdTokenFactory(driver=member)
        tx.driver = member
        tx.save()
    alone = {}
    for tx in txs:
        charge = price_session(tx)
        alone[tx.pk] = (
            charge.tariff_id,
            charge.total,
            [(line.kind, line.total) for line in charge.lines.all()],
        )
    SessionCharge.objects.all().delete()

    assert price_sessions([t.pk for t in txs], announce=False) == 6
    for tx in txs:
        charge = SessionCharge.objects.get(transaction=tx)
        assert (
            charge.tariff_id,
            charge.total,
            [(line.kind, line.total) for line in charge.lines.all()],
        ) == alone[tx.pk]
    assert SessionCharge.objects.filter(tariff=members).count() == 2
    assert price_sessions([t.pk for t in txs]) == 0  # priced once


def test_a_batch_costs_the_same_few_queries_for_more_sessions(
    charge_point,
    tariff,  # noqa: F811
    django_assert_max_num_queries,
):
    txs = _sessions(charge_point, 30)
    with django_assert_max_num_queries(12):
        assert price_sessions([t.pk for t in txs], announce=False) == 30
