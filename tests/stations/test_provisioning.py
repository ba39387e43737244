from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from stations.models import ChargePoint, Connector, ConnectorStandard, Evse, PowerType
from tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

PASSWORD = "fleet-password-0123456789"


def provision(*args):
    out = StringIO()
    call_command("provision_chargepoint", *args, stdout=out)
    return out.getvalue()


def test_two_thousand_charge_points_in_one_command_and_again_idempotently(operator):
    args = ("--prefix", "LOAD-", "--count", "2000", "--operator", "voltway", "--password", PASSWORD)

    out = provision(*args)

    assert "2000 created, 0 updated" in out
    assert " s." in out  # the time taken
    fleet = ChargePoint.objects.filter(operator=operator)
    assert fleet.count() == 2000
    assert set(fleet.values_list("identity", flat=True)) == {f"LOAD-{n:05d}" for n in range(1, 2001)}
    assert Connector.objects.filter(charge_point__operator=operator).count() == 4000
    assert Evse.objects.filter(charge_point__operator=operator).count() == 4000

    again = provision(*args)

    assert "0 created, 2000 updated" in again
    assert fleet.count() == 2000
    assert Connector.objects.filter(charge_point__operator=operator).count() == 4000
    sample = ChargePoint.objects.get(identity="LOAD-01234")
    assert sample.check_password(PASSWORD)
    assert not sample.check_password("something-else-entirely")
    assert list(sample.connectors.values_list("connector_id", "evse__evse_id")) == [(1, 1), (2, 2)]


def test_rerun_with_a_new_password_replaces_the_old_one(operator):
    provision("CP-A", "CP-B", "--operator", "voltway", "--password", PASSWORD)
    provision("CP-A", "CP-B", "--operator", "voltway", "--password", "another-password-9876")

    for cp in ChargePoint.objects.all():
        assert cp.check_password("another-password-9876")
        assert not cp.check_password(PASSWORD)


def test_rerun_with_more_connectors_adds_the_missing_ones(operator):
    provision("CP-A", "--operator", "voltway", "--password", PASSWORD, "--connectors", "1")
    provision("CP-A", "--operator", "voltway", "--password", PASSWORD, "--connectors", "3")

    cp = ChargePoint.objects.get(identity="CP-A")
    assert list(cp.connectors.values_list("connector_id", flat=True)) == [1, 2, 3]


def test_identities_from_a_file_and_arguments_are_merged(operator, tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("# roll-out batch 1\nFILE-1\n\nFILE-2  # by the door\nARG-1\n")

    out = provision("ARG-1", "--from-file", str(path), "--operator", "voltway", "--password", PASSWORD)

    assert "3 created, 0 updated" in out
    assert set(ChargePoint.objects.values_list("identity", flat=True)) == {"ARG-1", "FILE-1", "FILE-2"}


def test_site_by_name_or_id_and_connector_kind(operator, site):
    provision(
        "DC-1",
        "--operator",
        "voltway",
        "--password",
        PASSWORD,
        "--site",
        "Central Station",
        "--standard",
        ConnectorStandard.CCS2,
        "--connectors",
        "1",
    )
    provision("AC-1", "--operator", "voltway", "--password", PASSWORD, "--site", str(site.pk))

    dc = ChargePoint.objects.get(identity="DC-1")
    assert dc.site == site
    (connector,) = dc.connectors.all()
    assert (connector.standard, connector.power_type, connector.max_power_kw) == (
        ConnectorStandard.CCS2,
        PowerType.DC,
        Decimal("150"),
    )
    ac = ChargePoint.objects.get(identity="AC-1")
    assert ac.site == site
    assert {c.max_power_kw for c in ac.connectors.all()} == {Decimal("22")}


def test_another_operators_identity_is_refused(operator, other_charge_point):
    with pytest.raises(CommandError, match=r"another operator: NG-0001"):
        provision("NEW-1", "NG-0001", "--operator", "voltway", "--password", PASSWORD)

    assert not ChargePoint.objects.filter(identity="NEW-1").exists()
    assert ChargePoint.objects.get(identity="NG-0001").operator.slug == "northgrid"


@pytest.mark.parametrize("password", ["too-short", "x" * 41])
def test_bad_password_length_is_refused(operator, password):
    with pytest.raises(CommandError, match=r"16 to 40 characters"):
        provision("CP-A", "--operator", "voltway", "--password", password)

    assert not ChargePoint.objects.exists()


def test_unknown_operator_is_refused(operator):
    with pytest.raises(CommandError, match=r"Unknown operator “nope”.*voltway"):
        provision("CP-A", "--operator", "nope", "--password", PASSWORD)


def test_site_of_another_operator_is_refused(operator, other_operator):
    harbour = SiteFactory(operator=other_operator, name="Harbour")

    with pytest.raises(CommandError, match=r"no site named or numbered “Harbour”"):
        provision("CP-A", "--operator", "voltway", "--password", PASSWORD, "--site", "Harbour")
    with pytest.raises(CommandError, match=r"no site"):
        provision("CP-A", "--operator", "voltway", "--password", PASSWORD, "--site", str(harbour.pk))

    assert not ChargePoint.objects.exists()


def test_invalid_identity_is_named(operator):
    with pytest.raises(CommandError, match=r"invalid identity: “bad/id”"):
        provision("GOOD-1", "bad/id", "--operator", "voltway", "--password", PASSWORD)

    assert not ChargePoint.objects.exists()


def test_no_identities_is_an_error(operator):
    with pytest.raises(CommandError, match=r"No identities"):
        provision("--operator", "voltway", "--password", PASSWORD)


def test_prefix_needs_count(operator):
    with pytest.raises(CommandError, match=r"--prefix and --count go together"):
        provision("--prefix", "LT-", "--operator", "voltway", "--password", PASSWORD)


def test_provision_service_refuses_a_site_of_another_operator(operator, other_operator):
    from django.core.exceptions import ValidationError

    from stations.services import charge_points_provision

    harbour = SiteFactory(operator=other_operator, name="Harbour")

    with pytest.raises(ValidationError) as exc:
        charge_points_provision(operator=operator, identities=["CP-A"], password=PASSWORD, site=harbour)

    assert "site" in exc.value.message_dict
    assert not ChargePoint.objects.exists()
