from decimal import Decimal

import factory
from django.utils import timezone

from sessions.models import IdToken
from stations.models import (
    ChargePoint,
    Connector,
    ConnectorStandard,
    ConnectorStatus,
    Evse,
    Operator,
    PowerType,
    Role,
    Site,
    User,
)

PASSWORD = "correct-horse-battery-9"
CHARGER_PASSWORD = "charger-secret-0123456789"


class OperatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Operator
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Operator {n}")
    slug = factory.Sequence(lambda n: f"operator-{n}")
    email = factory.LazyAttribute(lambda o: f"ops@{o.slug}.example")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User{n}")
    role = Role.DRIVER

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or PASSWORD)
        if create:
            self.save(update_fields=["password"])


class DriverFactory(UserFactory):
    email = factory.Sequence(lambda n: f"driver{n}@example.com")


class OperatorAdminFactory(UserFactory):
    email = factory.Sequence(lambda n: f"admin{n}@operator.example")
    role = Role.OPERATOR_ADMIN
    operator = factory.SubFactory(OperatorFactory)


class TechnicianFactory(UserFactory):
    email = factory.Sequence(lambda n: f"tech{n}@operator.example")
    role = Role.TECHNICIAN
    operator = factory.SubFactory(OperatorFactory)


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    operator = factory.SubFactory(OperatorFactory)
    name = factory.Sequence(lambda n: f"Site {n}")
    address = factory.Sequence(lambda n: f"{n} Main Street")
    city = "Amsterdam"
    postal_code = "1011 AB"
    country = "NL"
    latitude = Decimal("52.370216")
    longitude = Decimal("4.895168")
    time_zone = "Europe/Amsterdam"


class ChargePointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChargePoint
        skip_postgeneration_save = True

    site = factory.SubFactory(SiteFactory)
    operator = factory.LazyAttribute(lambda o: o.site.operator if o.site else OperatorFactory())
    identity = factory.Sequence(lambda n: f"CP-{n:05d}")
    vendor = "Alfen"
    model = "Eve Double Pro"
    firmware_version = "5.8.1"
    is_connected = True
    last_seen_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or CHARGER_PASSWORD)
        if create:
            self.save(update_fields=["password_hash"])


class EvseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Evse
        django_get_or_create = ("charge_point", "evse_id")

    charge_point = factory.SubFactory(ChargePointFactory)
    evse_id = factory.Sequence(lambda n: n + 1)


class ConnectorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Connector

    charge_point = factory.SubFactory(ChargePointFactory)
    connector_id = factory.Sequence(lambda n: n + 1)
    evse = factory.LazyAttribute(lambda o: EvseFactory(charge_point=o.charge_point, evse_id=o.connector_id))
    standard = ConnectorStandard.TYPE2
    power_type = PowerType.AC_3_PHASE
    max_power_kw = Decimal("22")
    status = ConnectorStatus.AVAILABLE
    status_updated_at = factory.LazyFunction(timezone.now)


class IdTokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IdToken

    token = factory.Sequence(lambda n: f"04A1B2C3{n:06X}")
    driver = factory.SubFactory(DriverFactory)
    label = "My card"


# --- Diagnostics ------------------------------------------------------------------------------


def _seconds_ago(seconds: float):
    import datetime

    return timezone.now() - datetime.timedelta(seconds=seconds)


class StatusChangeFactory(factory.django.DjangoModelFactory):
    """A status report; pass ``connector`` (its charge point and number follow)."""

    class Meta:
        model = "stations.StatusChange"

    connector = factory.SubFactory(ConnectorFactory)
    charge_point = factory.SelfAttribute("connector.charge_point")
    connector_number = factory.LazyAttribute(lambda o: o.connector.connector_id if o.connector else 0)
    status = ConnectorStatus.FAULTED
    error_code = "GroundFailure"
    timestamp = factory.Sequence(lambda n: _seconds_ago(600 - n % 600))


class FaultRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "diagnostics.FaultRule"

    operator = None
    error_code = "GroundFailure"
    cause = "hardware"
    severity = "major"
    title = factory.Sequence(lambda n: f"Custom rule {n}")


class HealingPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "diagnostics.HealingPolicy"
        django_get_or_create = ("operator",)

    operator = factory.SubFactory(OperatorFactory)
    enabled = True
    max_attempts_per_day = 2
    wait_minutes = 10


class IncidentFactory(factory.django.DjangoModelFactory):
    """An open incident of one charge point (its operator and site follow)."""

    class Meta:
        model = "diagnostics.Incident"

    charge_point = factory.SubFactory(ChargePointFactory)
    operator = factory.SelfAttribute("charge_point.operator")
    site = factory.SelfAttribute("charge_point.site")
    kind = "faulted"
    key = factory.Sequence(lambda n: f"faulted:test:{n}")
    cause = "hardware"
    severity = "major"
    title = factory.Sequence(lambda n: f"Connector faulted {n}")
    evidence = factory.LazyFunction(lambda: {"error_code": "GroundFailure"})
    opened_at = factory.LazyFunction(lambda: _seconds_ago(3600))
    last_seen_at = factory.LazyFunction(timezone.now)


class FindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "diagnostics.Finding"

    incident = factory.SubFactory(IncidentFactory)
    kind = factory.SelfAttribute("incident.kind")
    cause = factory.SelfAttribute("incident.cause")
    severity = factory.SelfAttribute("incident.severity")
    summary = factory.Sequence(lambda n: f"Connector 1 reported GroundFailure ({n})")
    evidence = factory.LazyFunction(lambda: {"error_code": "GroundFailure"})
    detected_at = factory.LazyFunction(timezone.now)


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "diagnostics.Ticket"

    charge_point = factory.SubFactory(ChargePointFactory)
    operator = factory.SelfAttribute("charge_point.operator")
    title = factory.Sequence(lambda n: f"Ticket {n}")
