from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command

from sessions.models import IdToken, IdTokenType
from stations.models import (
    ChargePoint,
    Connector,
    ConnectorStatus,
    ErrorCode,
    Operator,
    RegistrationStatus,
    Role,
    Site,
    StatusChange,
    User,
)

pytestmark = pytest.mark.django_db

LOGINS = {
    "admin@chargedesk.example": "chargedesk-admin",
    "ops@voltway.example": "voltway-operator",
    "tech@voltway.example": "voltway-technician",
    "ops@northgrid.example": "northgrid-operator",
    "alice@example.com": "driver-alice",
    "bob@example.com": "driver-bob",
}
CHARGER_PASSWORD = "voltway-demo-charger-01"


def load_demo() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, list]:
    """Every row of the tables the demo fills, minus the timestamps of saving."""
    tables = {}
    for model in (Operator, Site, ChargePoint, Connector, StatusChange, User, IdToken):
        skip = {"updated_at", "last_login"}
        fields = [f.attname for f in model._meta.concrete_fields if f.attname not in skip]
        tables[model._meta.label] = list(model.objects.order_by("pk").values_list(*fields))
    return tables


def test_demo_network(client):
    load_demo()

    voltway = Operator.objects.get(slug="voltway")
    assert voltway.name == "Voltway Charging" and voltway.currency == "EUR"
    sites = Site.objects.filter(operator=voltway)
    assert sites.count() == 3
    assert {s.time_zone for s in sites} == {"Europe/Amsterdam"}
    assert {s.country for s in sites} == {"NL"}
    cps = ChargePoint.objects.filter(operator=voltway)
    assert 18 <= cps.count() <= 22
    assert all(cp.check_password(CHARGER_PASSWORD) for cp in cps)
    assert cps.filter(identity="VW-AMS-01").exists()
    assert cps.filter(registration_status=RegistrationStatus.PENDING).count() == 1
    # Nothing is connected until chargers connect (`make run` starts simulated ones).
    assert not cps.filter(is_connected=True).exists()
    assert len({cp.vendor for cp in cps}) >= 3
    assert Connector.objects.filter(charge_point__operator=voltway, max_power_kw=350).exists()
    assert Connector.objects.filter(charge_point__operator=voltway, standard="CHADEMO").exists()

    connectors = Connector.objects.filter(charge_point__operator=voltway)
    faulted = connectors.get(status=ConnectorStatus.FAULTED)
    assert faulted.error_code == ErrorCode.GROUND_FAILURE
    assert connectors.filter(status=ConnectorStatus.UNAVAILABLE).count() == 1
    assert connectors.filter(status=ConnectorStatus.CHARGING).count() >= 2
    assert connectors.filter(status=ConnectorStatus.AVAILABLE).count() > connectors.count() / 2
    # Statuses went through status_record: the history holds the faulted report.
    assert StatusChange.objects.filter(connector=faulted, status=ConnectorStatus.FAULTED).exists()

    northgrid = Operator.objects.get(slug="northgrid")
    assert Site.objects.filter(operator=northgrid).count() == 1
    assert ChargePoint.objects.filter(operator=northgrid).count() == 2

    assert User.objects.get(email="ops@voltway.example").operator == voltway
    assert User.objects.get(email="ops@voltway.example").role == Role.OPERATOR_ADMIN
    assert User.objects.get(email="tech@voltway.example").role == Role.TECHNICIAN
    assert User.objects.get(email="ops@northgrid.example").operator == northgrid
    assert User.objects.get(email="admin@chargedesk.example").is_superuser
    alice = User.objects.get(email="alice@example.com")
    assert set(alice.id_tokens.values_list("type", flat=True)) == {IdTokenType.RFID, IdTokenType.APP}
    bob = User.objects.get(email="bob@example.com")
    assert list(bob.id_tokens.values_list("type", flat=True)) == [IdTokenType.RFID]


def test_every_demo_user_is_valid():
    load_demo()

    for user in User.objects.all():
        user.full_clean()
    for model in (Site, ChargePoint, Connector):
        for obj in model.objects.all():
            obj.full_clean()


def test_demo_users_log_in_with_the_printed_passwords(client):
    out = load_demo()

    for email, password in LOGINS.items():
        assert email in out and password in out
        assert client.login(email=email, password=password), email
        client.logout()


def test_output_names_url_logins_and_charger_access():
    out = load_demo()

    assert "http://127.0.0.1:8000" in out
    assert "ws://127.0.0.1:8000/ocpp/<identity>" in out
    assert CHARGER_PASSWORD in out
    assert "operator admin" in out and "technician" in out and "driver" in out


def test_running_twice_changes_nothing():
    load_demo()
    first = snapshot()
    counts = {m._meta.label: m.objects.count() for m in apps.get_models()}

    out = load_demo()

    assert snapshot() == first
    assert {m._meta.label: m.objects.count() for m in apps.get_models()} == counts
    assert "admin@chargedesk.example" in out  # the logins are printed every time


def test_running_again_keeps_a_changed_password(client):
    load_demo()
    alice = User.objects.get(email="alice@example.com")
    alice.set_password("alice-own-secret-42")
    alice.save()

    load_demo()

    assert client.login(email="alice@example.com", password="alice-own-secret-42")
    assert not User.objects.get(email="alice@example.com").check_password("driver-alice")
