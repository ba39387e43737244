"""Provisioning ID tokens from the shell: idempotent, and never taking another driver's card."""

import pytest
from django.core.management import CommandError, call_command

from sessions.models import IdToken
from tests.factories import IdTokenFactory

pytestmark = pytest.mark.django_db


def test_provision_creates_then_updates(driver, capsys):
    call_command("provision_idtag", "04AA0001", "04AA0002", "--driver", driver.email)
    assert "2 created, 0 updated" in capsys.readouterr().out
    call_command("provision_idtag", "04AA0001", "--driver", driver.email, "--status", "Blocked")
    assert "0 created, 1 updated" in capsys.readouterr().out
    assert IdToken.objects.get(token="04AA0001").status == "Blocked"
    assert IdToken.objects.filter(driver=driver).count() == 2


def test_provision_many_with_prefix():
    call_command("provision_idtag", "--prefix", "FLEET", "--count", "500")
    assert IdToken.objects.filter(token__startswith="FLEET").count() == 500


def test_another_drivers_card_is_refused(driver, other_driver):
    IdTokenFactory(token="04BB0001", driver=other_driver)
    with pytest.raises(CommandError, match="Owned by another driver: 04BB0001"):
        call_command("provision_idtag", "04BB0001", "--driver", driver.email)
    assert IdToken.objects.get(token="04BB0001").driver == other_driver


def test_bad_input_is_a_clear_error():
    with pytest.raises(CommandError, match="at most 20"):
        call_command("provision_idtag", "X" * 21)
    with pytest.raises(CommandError, match="No user"):
        call_command("provision_idtag", "04CC", "--driver", "nobody@example.com")


def test_idtags_are_one_card_in_any_letter_case(driver):
    IdTokenFactory(token="04ABCDEF", driver=driver)
    call_command("provision_idtag", "04abcdef", "--driver", driver.email, "--status", "Blocked")
    assert list(IdToken.objects.values_list("token", "status")) == [("04ABCDEF", "Blocked")]


def test_case_variant_of_an_existing_token_cannot_be_created(driver):
    from django.core.exceptions import ValidationError

    IdTokenFactory(token="04ABCDEF", driver=driver)
    with pytest.raises(ValidationError, match="in any letter case"):
        IdToken(token="04abcdef").full_clean()
