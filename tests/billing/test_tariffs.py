"""Which tariff applies (the most specific place, a customer group's, the newest, valid at the
time), and how a tariff reads to drivers: in words, as JSON and on a page."""

import datetime as dt
from decimal import Decimal as D

import pytest
from django.template.loader import render_to_string

from billing.models import CustomerGroup, TariffAssignment
from billing.tariffs import as_dict, describe, display, tariff_for
from tests.billing.test_pricing import comp, make_tariff
from tests.factories import ChargePointFactory, SiteFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 3, 12, 0, tzinfo=dt.UTC)


def simple(operator, name, energy="0.30"):
    return make_tariff(operator, [{"components": [comp("ENERGY", energy)]}], name=name)


def assign(tariff, **where):
    return TariffAssignment.objects.create(tariff=tariff, operator=tariff.operator, **where)


def test_the_most_specific_place_wins(operator, charge_point):
    network, at_site, at_cp, at_connector = (
        simple(operator, n) for n in ("network", "site", "cp", "connector")
    )
    assign(network)
    assign(at_site, site=charge_point.site)
    assign(at_cp, charge_point=charge_point)
    assign(at_connector, charge_point=charge_point, connector=charge_point.connectors.get(connector_id=2))

    def chosen(number):
        return tariff_for(charge_point=charge_point, connector_number=number, at=NOW).name

    assert chosen(2) == "connector"
    assert chosen(1) == "cp"
    elsewhere = ChargePointFactory(site=charge_point.site, identity="VW-0002")
    assert tariff_for(charge_point=elsewhere, connector_number=1, at=NOW).name == "site"
    other_site = ChargePointFactory(site=SiteFactory(operator=operator, name="Depot"), identity="VW-0003")
    assert tariff_for(charge_point=other_site, connector_number=1, at=NOW).name == "network"


def test_a_customer_groups_tariff_wins_for_its_members(operator, charge_point, driver, other_driver):
    group = CustomerGroup.objects.create(operator=operator, name="Members")
    group.members.add(driver)
    assign(simple(operator, "public"), charge_point=charge_point)
    assign(simple(operator, "members"), charge_point=charge_point, customer_group=group)
    # A group's tariff for the whole network loses to everyone's at the charge point.
    assign(simple(operator, "members everywhere"), customer_group=group)
    assert tariff_for(charge_point=charge_point, connector_number=1, user=driver, at=NOW).name == "members"
    assert (
        tariff_for(charge_point=charge_point, connector_number=1, user=other_driver, at=NOW).name == "public"
    )
    assert tariff_for(charge_point=charge_point, connector_number=1, at=NOW).name == "public"


def test_validity_dates_inactive_tariffs_and_ties(operator, charge_point):
    old = simple(operator, "old")
    assign(old, valid_until=NOW - dt.timedelta(days=1))
    assert tariff_for(charge_point=charge_point, connector_number=1, at=NOW) is None
    assert (
        tariff_for(charge_point=charge_point, connector_number=1, at=NOW - dt.timedelta(days=2)).name == "old"
    )
    assign(simple(operator, "first"), valid_from=NOW - dt.timedelta(days=10))
    assign(simple(operator, "newest"), valid_from=NOW - dt.timedelta(days=20))
    assign(simple(operator, "future"), valid_from=NOW + dt.timedelta(days=1))
    assert tariff_for(charge_point=charge_point, connector_number=1, at=NOW).name == "newest"
    retired = simple(operator, "retired")
    retired.is_active = False
    retired.save()
    assign(retired, charge_point=charge_point)
    assert tariff_for(charge_point=charge_point, connector_number=1, at=NOW).name == "newest"


def test_another_operators_tariff_never_applies(operator, other_operator, charge_point):
    assign(simple(other_operator, "theirs"))
    assert tariff_for(charge_point=charge_point, connector_number=1, at=NOW) is None


def test_tariff_for_reads_little(operator, charge_point, driver, django_assert_max_num_queries):
    assign(simple(operator, "network"))
    assign(simple(operator, "cp"), charge_point=charge_point)
    with django_assert_max_num_queries(3):
        tariff = tariff_for(charge_point=charge_point, connector_number=1, user=driver, at=NOW)
        describe(tariff)


def full_tariff(operator):
    return make_tariff(
        operator,
        [
            {
                "start_time": dt.time(8),
                "end_time": dt.time(20),
                "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
                "components": [comp("TIME", "2.00", step=60)],
            },
            {"components": [comp("ENERGY", "0.35"), comp("FLAT", "1"), comp("PARKING_TIME", "10")]},
        ],
        name="City",
        tax_rate=D("21"),
        idle_grace_minutes=30,
        idle_fee_cap=D("20"),
        description="Parking rules of the city apply.",
    )


def test_describe_in_plain_words(operator):
    assert describe(full_tariff(operator)) == (
        "€2.00 per hour of charging between 08:00 and 20:00 on weekdays, otherwise €0.35 per kWh, "
        "a €1.00 session fee; after 30 minutes plugged in without charging €10.00 per hour, "
        "at most €20.00; prices include 21% VAT"
    )


def test_describe_limits_currencies_and_net_prices(operator):
    tariff = make_tariff(
        operator,
        [
            {"min_kwh": D("20"), "components": [comp("ENERGY", "0.255")]},
            {"components": [comp("ENERGY", "0.30")]},
        ],
        currency="GBP",
        tax_rate=D("20"),
        prices_include_tax=False,
        min_price=D("1"),
        max_price=D("40"),
    )
    assert describe(tariff) == (
        "£0.255 per kWh from 20 kWh, otherwise £0.30 per kWh; a session costs at least £1.00 and at most "
        "£40.00; prices exclude 20% VAT"
    )
    chf = make_tariff(operator, [{"components": [comp("ENERGY", "0.5")]}], currency="CHF")
    assert describe(chf) == "CHF 0.50 per kWh"
    assert describe(make_tariff(operator, [])) == "Free of charge"


def test_as_dict_is_ocpi_like(operator):
    data = as_dict(full_tariff(operator))
    assert data["currency"] == "EUR"
    assert data["elements"][0] == {
        "price_components": [{"type": "TIME", "price": "2.00000", "step_size": 60}],
        "restrictions": {
            "start_time": "08:00",
            "end_time": "20:00",
            "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
        },
    }
    assert data["elements"][1]["restrictions"] is None
    assert [c["type"] for c in data["elements"][1]["price_components"]] == ["ENERGY", "FLAT", "PARKING_TIME"]
    assert (data["tax_rate"], data["prices_include_tax"], data["idle_fee_cap"]) == ("21.00", True, "20.00")
    assert data["text"].startswith("€2.00 per hour of charging")


def test_the_partial_shows_words_and_numbers(operator):
    html = render_to_string("billing/_tariff.html", {"tariff_info": display(full_tariff(operator))})
    assert "€2.00 per hour of charging between 08:00 and 20:00 on weekdays" in html
    assert "Parking rules of the city apply." in html
    assert "€0.35 per kWh" in html and "€10.00 per hour" in html
    assert "between 08:00 and 20:00 on weekdays" in html and "always" in html
    assert "No price is published" in render_to_string("billing/_tariff.html", {"tariff_info": None})
