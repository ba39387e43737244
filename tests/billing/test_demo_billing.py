"""The demo's billing: a tariff per operator that prices as advertised, and Bob's postpaid
company account holding his RFID card; loading the demo twice creates them once."""

import datetime as dt
import zoneinfo
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing.models import AccountStatus, AccountToken, BillingAccount, Tariff, TariffAssignment
from billing.pricing import price
from billing.services.payments import can_start
from billing.tariffs import tariff_for
from sessions.models import IdToken
from stations.models import ChargePoint, Operator, User

pytestmark = pytest.mark.django_db

AMSTERDAM = zoneinfo.ZoneInfo("Europe/Amsterdam")


def load_demo() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def billing_rows() -> dict:
    return {
        "tariffs": list(Tariff.objects.order_by("pk").values_list("pk", "operator__slug", "name")),
        "assignments": list(TariffAssignment.objects.order_by("pk").values_list("pk", "tariff_id")),
        "accounts": list(BillingAccount.objects.order_by("pk").values_list("pk", "name", "owner__email")),
        "cards": list(AccountToken.objects.order_by("pk").values_list("account_id", "id_token__token")),
    }


def test_load_demo_twice_creates_the_tariffs_and_the_account_once():
    first = load_demo()
    rows = billing_rows()
    second = load_demo()

    assert billing_rows() == rows
    assert len(rows["tariffs"]) == 2 and len(rows["assignments"]) == 2
    assert len(rows["accounts"]) == 1 and len(rows["cards"]) == 1
    assert "2 tariffs, 1 billing accounts" in first
    assert "0 tariffs, 0 billing accounts" in second
    assert "Jansen Logistics (bob@example.com, cards 04B93D2A6C1F80)" in second


def test_each_operators_tariff_applies_at_all_its_chargers():
    load_demo()
    now = timezone.now()

    for slug, name in (("voltway", "Voltway Standard"), ("northgrid", "Northgrid Day & Night")):
        operator = Operator.objects.get(slug=slug)
        for charge_point in ChargePoint.objects.filter(operator=operator):
            tariff = tariff_for(charge_point=charge_point, connector_number=1, at=now)
            assert tariff is not None and tariff.name == name
            assert tariff.currency == "EUR" and tariff.tax_rate == Decimal("21")
            assert tariff.prices_include_tax


def test_voltway_charges_per_kwh_a_session_fee_and_capped_idle_time():
    load_demo()
    tariff = tariff_for(
        charge_point=ChargePoint.objects.get(identity="VW-AMS-01"), connector_number=1, at=timezone.now()
    )
    start = dt.datetime(2026, 3, 10, 9, 0, tzinfo=AMSTERDAM)

    def cost(idle: dt.timedelta) -> Decimal:
        charged = start + dt.timedelta(hours=1)
        return price(
            tariff,
            started_at=start,
            stopped_at=charged + idle,
            energy_wh=Decimal("10000"),
            charging_ended_at=charged,
            time_zone="Europe/Amsterdam",
        ).total

    # 10 kWh at €0.39 and the €1.00 session fee; half an hour idle is free.
    assert cost(dt.timedelta(minutes=30)) == Decimal("4.90")
    # An hour idle: 30 minutes at €6 per hour.
    assert cost(dt.timedelta(hours=1)) == Decimal("7.90")
    # Ten hours idle: the idle fee stops at €18.
    assert cost(dt.timedelta(hours=10)) == Decimal("22.90")


@pytest.mark.parametrize(
    ("start", "total"),
    [
        (dt.datetime(2026, 3, 10, 10, 0, tzinfo=AMSTERDAM), Decimal("4.50")),  # Tuesday daytime
        (dt.datetime(2026, 3, 10, 21, 0, tzinfo=AMSTERDAM), Decimal("3.00")),  # Tuesday evening
        (dt.datetime(2026, 3, 14, 10, 0, tzinfo=AMSTERDAM), Decimal("3.00")),  # Saturday
    ],
)
def test_northgrid_is_dearer_on_weekday_daytimes(start, total):
    load_demo()
    charge_point = ChargePoint.objects.filter(operator__slug="northgrid").order_by("identity").first()
    tariff = tariff_for(charge_point=charge_point, connector_number=1, at=timezone.now())

    priced = price(
        tariff,
        started_at=start,
        stopped_at=start + dt.timedelta(hours=1),
        energy_wh=Decimal("10000"),
        time_zone="Europe/Amsterdam",
    )

    assert priced.total == total


def test_bobs_card_is_on_the_jansen_logistics_account_so_he_may_charge():
    load_demo()
    bob = User.objects.get(email="bob@example.com")

    account = BillingAccount.objects.get(name="Jansen Logistics")

    assert account.operator.slug == "voltway"
    assert account.owner == bob and account.email == "bob@example.com"
    assert account.status == AccountStatus.ACTIVE
    assert list(account.id_tokens.values_list("token", flat=True)) == ["04B93D2A6C1F80"]
    assert IdToken.objects.get(token="04B93D2A6C1F80").driver == bob
    assert can_start(bob) == (True, "")
