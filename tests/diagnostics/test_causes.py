"""Fault rules: the operator's own rule beats the default, vendor-specific beats generic;
and the cars at one connector tell the cable from the vehicle."""

import pytest

from diagnostics.causes import RuleBook, ev_comm_verdict
from diagnostics.models import Cause, FaultRule
from tests.factories import FaultRuleFactory, OperatorFactory

pytestmark = pytest.mark.django_db


def test_the_seeded_default_rule_maps_ground_failure_to_the_cable():
    match = RuleBook.load().match(operator_id=None, error_code="GroundFailure")
    assert match.cause == Cause.CABLE and match.rule_id is not None
    assert match.spare_parts and match.tools


def test_an_operators_own_rule_beats_the_default():
    operator, other = OperatorFactory(), OperatorFactory()
    own = FaultRuleFactory(operator=operator, error_code="GroundFailure", cause="hardware")
    book = RuleBook.load()
    assert book.match(operator_id=operator.pk, error_code="GroundFailure").rule_id == own.pk
    assert book.match(operator_id=other.pk, error_code="GroundFailure").cause == Cause.CABLE


def test_a_vendor_specific_rule_beats_a_generic_one_and_the_vendor_code_counts_most():
    FaultRuleFactory(error_code="OtherError", vendor_id="Alfen", cause="hardware", title="Alfen other")
    code = FaultRuleFactory(
        error_code="OtherError", vendor_id="Alfen", vendor_error_code="E42", cause="grid", title="Alfen E42"
    )
    book = RuleBook.load()
    assert book.match(operator_id=None, error_code="OtherError", vendor_id="alfen").title == "Alfen other"
    assert (
        book.match(
            operator_id=None, error_code="OtherError", vendor_id="Alfen", vendor_error_code="E42"
        ).rule_id
        == code.pk
    )
    assert book.match(operator_id=None, error_code="OtherError", vendor_id="ABB").cause == Cause.UNKNOWN


def test_an_inactive_rule_is_ignored_and_an_unknown_code_gets_no_rule():
    FaultRule.objects.filter(operator=None, error_code="GroundFailure").update(is_active=False)
    book = RuleBook.load()
    assert book.match(operator_id=None, error_code="GroundFailure").rule_id is None
    assert book.match(operator_id=None, error_code="Gibberish").cause == Cause.UNKNOWN


def test_different_cars_failing_blame_the_cable_one_car_among_good_ones_the_vehicle():
    assert ev_comm_verdict(failing_tags={"A", "B"}, fine_tags=set()).cause == Cause.CABLE
    assert ev_comm_verdict(failing_tags={"A"}, fine_tags={"B", "C"}).cause == Cause.VEHICLE
    assert ev_comm_verdict(failing_tags={"A"}, fine_tags=set()) is None
