"""Load a small demo network: two operators, their sites and chargers, staff and drivers.

Idempotent: what already exists (by its natural key: operator slug, site name, charge point
identity, user email, token) is left as it is, so running it again changes nothing and a
password someone changed is kept.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from sessions.models import IdToken, IdTokenType
from stations.models import (
    ChargePoint,
    ConnectorStandard,
    ConnectorStatus,
    ErrorCode,
    Operator,
    PowerType,
    RegistrationStatus,
    Role,
    Site,
    User,
)
from stations.models.network import StatusSource
from stations.services import ConnectorSpec, charge_point_create, site_create, status_record

BASE_URL = "http://127.0.0.1:8000"
OCPP_URL = "ws://127.0.0.1:8000/ocpp/<identity>"
CHARGER_PASSWORD = "voltway-demo-charger-01"

OPERATORS = {
    "voltway": {
        "name": "Voltway Charging",
        "legal_name": "Voltway Charging B.V.",
        "vat_number": "NL862345671B01",
        "email": "support@voltway.example",
        "phone": "+31 20 555 0140",
        "address": "Keizersgracht 520\n1017 EK Amsterdam\nNetherlands",
        "country": "NL",
        "currency": "EUR",
        "accept_unknown_chargers": True,
    },
    "northgrid": {
        "name": "Northgrid Energy",
        "legal_name": "Northgrid Energy B.V.",
        "vat_number": "NL859912034B01",
        "email": "service@northgrid.example",
        "phone": "+31 50 555 0190",
        "address": "Stationsweg 12\n9726 AC Groningen\nNetherlands",
        "country": "NL",
        "currency": "EUR",
    },
}

SITES = {
    "voltway": [
        {
            "name": "Amsterdam Centraal P+R",
            "address": "Oostelijke Handelskade 4",
            "postal_code": "1019 BM",
            "city": "Amsterdam",
            "latitude": Decimal("52.376825"),
            "longitude": Decimal("4.917530"),
        },
        {
            "name": "Utrecht Science Park",
            "address": "Heidelberglaan 8",
            "postal_code": "3584 CS",
            "city": "Utrecht",
            "latitude": Decimal("52.085329"),
            "longitude": Decimal("5.175628"),
        },
        {
            "name": "Rotterdam Markthal",
            "address": "Dominee Jan Scharpstraat 298",
            "postal_code": "3011 GZ",
            "city": "Rotterdam",
            "latitude": Decimal("51.920022"),
            "longitude": Decimal("4.487009"),
        },
    ],
    "northgrid": [
        {
            "name": "Groningen Hoofdstation",
            "address": "Stationsplein 4",
            "postal_code": "9726 AE",
            "city": "Groningen",
            "latitude": Decimal("53.210537"),
            "longitude": Decimal("6.564620"),
        },
    ],
}

# Hardware kinds: (vendor, model, firmware, connectors).
AC22 = [
    ConnectorSpec(1, ConnectorStandard.TYPE2, PowerType.AC_3_PHASE, Decimal("22")),
    ConnectorSpec(2, ConnectorStandard.TYPE2, PowerType.AC_3_PHASE, Decimal("22")),
]
DC150 = [
    ConnectorSpec(1, ConnectorStandard.CCS2, PowerType.DC, Decimal("150")),
    ConnectorSpec(2, ConnectorStandard.CHADEMO, PowerType.DC, Decimal("50")),
]
HPC350 = [
    ConnectorSpec(1, ConnectorStandard.CCS2, PowerType.DC, Decimal("350")),
    ConnectorSpec(2, ConnectorStandard.CCS2, PowerType.DC, Decimal("350")),
]
HARDWARE = {
    "alfen": ("Alfen", "Eve Double Pro-line", "6.4.0-4198", AC22),
    "evbox": ("EVBox", "BusinessLine", "4.6.3", AC22),
    "ecotap": ("Ecotap", "EVC30 Duo", "2.8.11", AC22),
    "alpitronic": ("alpitronic", "hypercharger HYC150", "1.9.2", DC150),
    "abb": ("ABB", "Terra 184", "1.7.4", DC150),
    "hpc": ("ABB", "Terra HP 350", "1.6.15", HPC350),
}


@dataclass
class DemoChargePoint:
    identity: str
    site: str
    hardware: str
    # Connector id → (status, error code); connectors not named report Available.
    statuses: dict[int, tuple[str, str]] = field(default_factory=dict)
    online: bool = True
    offline_for: dt.timedelta = dt.timedelta(0)
    registration: str = RegistrationStatus.ACCEPTED


AMS, UTR, RTM, GRO = (
    "Amsterdam Centraal P+R",
    "Utrecht Science Park",
    "Rotterdam Markthal",
    "Groningen Hoofdstation",
)
CHARGING = (ConnectorStatus.CHARGING, ErrorCode.NO_ERROR)

CHARGE_POINTS = {
    "voltway": [
        DemoChargePoint("VW-AMS-01", AMS, "alfen"),
        DemoChargePoint("VW-AMS-02", AMS, "alfen", {1: CHARGING}),
        DemoChargePoint("VW-AMS-03", AMS, "alfen"),
        DemoChargePoint("VW-AMS-04", AMS, "evbox", {2: CHARGING}),
        DemoChargePoint("VW-AMS-05", AMS, "evbox"),
        DemoChargePoint("VW-AMS-06", AMS, "alpitronic", {1: CHARGING}),
        DemoChargePoint("VW-AMS-07", AMS, "abb"),
        DemoChargePoint("VW-AMS-08", AMS, "hpc", {1: CHARGING, 2: CHARGING}),
        DemoChargePoint("VW-UTR-01", UTR, "ecotap"),
        DemoChargePoint("VW-UTR-02", UTR, "ecotap"),
        DemoChargePoint("VW-UTR-03", UTR, "alfen", {2: CHARGING}),
        DemoChargePoint("VW-UTR-04", UTR, "alfen"),
        DemoChargePoint(
            "VW-UTR-05", UTR, "alpitronic", {1: (ConnectorStatus.FAULTED, ErrorCode.GROUND_FAILURE)}
        ),
        DemoChargePoint("VW-UTR-06", UTR, "evbox", online=False, offline_for=dt.timedelta(days=2, hours=3)),
        DemoChargePoint("VW-UTR-07", UTR, "alfen", registration=RegistrationStatus.PENDING),
        DemoChargePoint("VW-RTM-01", RTM, "abb", {1: CHARGING}),
        DemoChargePoint("VW-RTM-02", RTM, "alfen"),
        DemoChargePoint("VW-RTM-03", RTM, "alfen"),
        DemoChargePoint("VW-RTM-04", RTM, "evbox", {2: (ConnectorStatus.UNAVAILABLE, ErrorCode.NO_ERROR)}),
        DemoChargePoint("VW-RTM-05", RTM, "ecotap", online=False, offline_for=dt.timedelta(hours=5)),
    ],
    "northgrid": [
        DemoChargePoint("NG-GRO-01", GRO, "alfen"),
        DemoChargePoint("NG-GRO-02", GRO, "alpitronic", {1: CHARGING}),
    ],
}


@dataclass(frozen=True)
class DemoUser:
    email: str
    password: str
    first_name: str
    last_name: str
    role: str
    operator: str | None = None
    superuser: bool = False

    @property
    def describe(self) -> str:
        if self.superuser:
            return "superuser (Django admin at /admin/)"
        role = Role(self.role).label.lower()
        return f"{role}, {OPERATORS[self.operator]['name']}" if self.operator else role


USERS = [
    DemoUser(
        "admin@chargedesk.example", "chargedesk-admin", "Platform", "Admin", Role.OPERATOR_ADMIN, None, True
    ),
    DemoUser("ops@voltway.example", "voltway-operator", "Sanne", "Bakker", Role.OPERATOR_ADMIN, "voltway"),
    DemoUser("tech@voltway.example", "voltway-technician", "Daan", "Visser", Role.TECHNICIAN, "voltway"),
    DemoUser(
        "ops@northgrid.example", "northgrid-operator", "Femke", "Mulder", Role.OPERATOR_ADMIN, "northgrid"
    ),
    DemoUser("alice@example.com", "driver-alice", "Alice", "de Vries", Role.DRIVER),
    DemoUser("bob@example.com", "driver-bob", "Bob", "Jansen", Role.DRIVER),
]

# (token, type, label, driver email)
ID_TOKENS = [
    ("04A2C81B7F5E80", IdTokenType.RFID, "Alice's blue card", "alice@example.com"),
    ("APP-ALICE-7D3F9C21", IdTokenType.APP, "Alice's phone", "alice@example.com"),
    ("04B93D2A6C1F80", IdTokenType.RFID, "Bob's card", "bob@example.com"),
]


WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]

# One tariff per operator, for all its chargers; prices include 21% Dutch VAT.
TARIFFS = {
    "voltway": {
        "name": "Voltway Standard",
        "description": "The same price at every Voltway charger.",
        "fields": {"idle_grace_minutes": 30, "idle_fee_cap": Decimal("18.00")},
        "elements": [
            {
                "components": [
                    {"type": "ENERGY", "price": Decimal("0.39")},
                    {"type": "FLAT", "price": Decimal("1.00")},
                    {"type": "PARKING_TIME", "price": Decimal("6.00")},
                ]
            }
        ],
    },
    "northgrid": {
        "name": "Northgrid Day & Night",
        "description": "Cheaper in the evening, at night and at weekends.",
        "fields": {},
        "elements": [
            {
                "start_time": dt.time(8),
                "end_time": dt.time(20),
                "day_of_week": WEEKDAYS,
                "components": [{"type": "ENERGY", "price": Decimal("0.45")}],
            },
            {"components": [{"type": "ENERGY", "price": Decimal("0.30")}]},
        ],
    },
}

# A postpaid account (operator, name, owner, address, VAT number, its RFID cards).
BILLING_ACCOUNTS = [
    (
        "voltway",
        "Jansen Logistics",
        "bob@example.com",
        "Havenstraat 17\n3011 AB Rotterdam\nNetherlands",
        "NL853201764B01",
        ["04B93D2A6C1F80"],
    ),
]


class Command(BaseCommand):
    help = (
        "Load demo data: operators Voltway Charging and Northgrid Energy with sites, charge points, "
        "staff, drivers, tariffs and a postpaid account. Safe to run again; existing rows are left as "
        "they are."
    )

    def handle(self, *args, **options):
        now = timezone.now()
        created: dict[str, int] = dict.fromkeys(
            ("operators", "sites", "charge points", "users", "ID tokens", "tariffs", "billing accounts"), 0
        )
        with transaction.atomic():
            operators = {slug: self._operator(slug, created) for slug in OPERATORS}
            sites = {
                (slug, spec["name"]): self._site(operators[slug], spec, created)
                for slug, specs in SITES.items()
                for spec in specs
            }
            for slug, demo_cps in CHARGE_POINTS.items():
                for demo in demo_cps:
                    self._charge_point(operators[slug], sites[(slug, demo.site)], demo, now, created)
            users = {demo.email: self._user(demo, operators, created) for demo in USERS}
            for token, kind, label, email in ID_TOKENS:
                _, made = IdToken.objects.get_or_create(
                    token=token, defaults={"type": kind, "label": label, "driver": users[email]}
                )
                created["ID tokens"] += made
            self._alerts(users, now)
            self._billing(operators, users, created)
        summary = ", ".join(f"{n} {what}" for what, n in created.items())
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded (created now: {summary})."))
        self.stdout.write(self._logins())

    def _alerts(self, users: dict[str, User], now: dt.datetime) -> None:
        """Alice lives near Amsterdam Centraal and keeps one of its chargers as a favourite;
        Bob is quiet at night; Voltway has planned maintenance at its Rotterdam site tomorrow
        (published, so the drivers it affects were told)."""
        from alerts.models import AlertProfile, MaintenanceWindow

        alice, _ = AlertProfile.objects.get_or_create(
            user=users["alice@example.com"],
            defaults={
                "home_latitude": Decimal("52.372"),
                "home_longitude": Decimal("4.893"),
                "radius_km": Decimal("10"),
                "time_zone": "Europe/Amsterdam",
            },
        )
        alice.favourites.add(*ChargePoint.objects.filter(identity__in=["VW-AMS-02"]))
        AlertProfile.objects.get_or_create(
            user=users["bob@example.com"],
            defaults={
                "quiet_hours_start": dt.time(22),
                "quiet_hours_end": dt.time(7),
                "time_zone": "Europe/Amsterdam",
            },
        )
        rotterdam = ChargePoint.objects.filter(identity__startswith="VW-RTM").order_by("identity").first()
        if rotterdam is not None and not MaintenanceWindow.objects.filter(charge_point=rotterdam).exists():
            start = (now + dt.timedelta(days=1)).replace(hour=7, minute=0, second=0, microsecond=0)
            MaintenanceWindow.objects.create(
                operator=rotterdam.operator,
                charge_point=rotterdam,
                starts_at=start,
                ends_at=start + dt.timedelta(hours=3),
                reason="Replacing the charging cable of connector 1.",
                published_at=now,
            )

    def _billing(
        self, operators: dict[str, Operator], users: dict[str, User], created: dict[str, int]
    ) -> None:
        """Each operator's tariff, assigned to all its chargers, and Bob's company account
        that pays for his RFID card's sessions monthly. A tariff or account that exists (by
        name) is left as it is, with its assignments and cards."""
        from billing.models import AccountToken, BillingAccount, Tariff, TariffAssignment
        from billing.tariffs import tariff_create

        for slug, spec in TARIFFS.items():
            operator = operators[slug]
            tariff = Tariff.objects.filter(operator=operator, name=spec["name"]).first()
            if tariff is None:
                tariff = tariff_create(
                    operator=operator,
                    name=spec["name"],
                    currency=operator.currency,
                    tax_rate=Decimal("21"),
                    prices_include_tax=True,
                    description=spec["description"],
                    elements=spec["elements"],
                    **spec["fields"],
                )
                TariffAssignment.objects.create(tariff=tariff, operator=operator)
                created["tariffs"] += 1
        for slug, name, email, address, vat_number, tokens in BILLING_ACCOUNTS:
            operator = operators[slug]
            account = BillingAccount.objects.filter(operator=operator, name=name).first()
            if account is None:
                account = BillingAccount.objects.create(
                    operator=operator,
                    name=name,
                    owner=users[email],
                    email=email,
                    address=address,
                    vat_number=vat_number,
                )
                created["billing accounts"] += 1
                for token in IdToken.objects.filter(token__in=tokens, account_link__isnull=True):
                    AccountToken.objects.create(account=account, id_token=token)

    def _operator(self, slug: str, created: dict[str, int]) -> Operator:
        operator, made = Operator.objects.get_or_create(slug=slug, defaults=OPERATORS[slug])
        created["operators"] += made
        return operator

    def _site(self, operator: Operator, spec: dict, created: dict[str, int]) -> Site:
        site = Site.objects.filter(operator=operator, name=spec["name"]).first()
        if site is None:
            site = site_create(operator=operator, country="NL", time_zone="Europe/Amsterdam", **spec)
            created["sites"] += 1
        return site

    def _charge_point(
        self, operator: Operator, site: Site, demo: DemoChargePoint, now: dt.datetime, created: dict[str, int]
    ) -> ChargePoint:
        charge_point = ChargePoint.objects.filter(identity=demo.identity).first()
        if charge_point is not None:
            return charge_point
        vendor, model, firmware, connectors = HARDWARE[demo.hardware]
        last_seen = now - demo.offline_for
        number = demo.identity.rsplit("-", 1)[-1]
        booted = now - dt.timedelta(days=6, hours=int(number))
        charge_point = charge_point_create(
            operator=operator,
            identity=demo.identity,
            site=site,
            password=CHARGER_PASSWORD,
            connectors=connectors,
            name=f"{site.city} {number}",
            vendor=vendor,
            model=model,
            firmware_version=firmware,
            serial_number=f"{vendor[:3].upper()}-{demo.identity.replace('-', '')}",
            registration_status=demo.registration,
            # Nothing is connected until a charger connects: `make run` starts simulated ones.
            is_connected=False,
            last_seen_at=last_seen,
            last_boot_at=booted,
        )
        created["charge points"] += 1
        if demo.registration != RegistrationStatus.ACCEPTED:
            return charge_point  # a charger awaiting approval has not reported any status yet
        # A little history: every connector came up Available at boot; some changed since.
        status_record(
            charge_point=charge_point,
            connector_id=0,
            status=ConnectorStatus.AVAILABLE,
            error_code=ErrorCode.NO_ERROR,
            timestamp=booted,
        )
        for spec in connectors:
            status_record(
                charge_point=charge_point,
                connector_id=spec.connector_id,
                status=ConnectorStatus.AVAILABLE,
                error_code=ErrorCode.NO_ERROR,
                timestamp=booted,
            )
            status, error_code = demo.statuses.get(spec.connector_id, (None, None))
            if status is not None:
                status_record(
                    charge_point=charge_point,
                    connector_id=spec.connector_id,
                    status=status,
                    error_code=error_code,
                    info="Residual current detected" if error_code == ErrorCode.GROUND_FAILURE else "",
                    timestamp=min(last_seen, now - dt.timedelta(minutes=10 + 7 * spec.connector_id)),
                    source=StatusSource.CHARGER,
                )
        return charge_point

    def _user(self, demo: DemoUser, operators: dict[str, Operator], created: dict[str, int]) -> User:
        user = User.objects.filter(email__iexact=demo.email).first()
        if user is not None:
            return user  # keep whatever was changed since, the password above all
        fields = {
            "first_name": demo.first_name,
            "last_name": demo.last_name,
            "role": demo.role,
            "operator": operators[demo.operator] if demo.operator else None,
        }
        if demo.superuser:
            user = User.objects.create_superuser(email=demo.email, password=demo.password, **fields)
        else:
            user = User.objects.create_user(email=demo.email, password=demo.password, **fields)
        created["users"] += 1
        return user

    def _logins(self) -> str:
        width = max(len(u.email) for u in USERS)
        pwidth = max(len(u.password) for u in USERS)
        lines = [
            "",
            "=" * 78,
            f"ChargeDesk demo: open {BASE_URL}  (Django admin: {BASE_URL}/admin/)",
            "",
            "Logins (the passwords are set only when a user is created):",
        ]
        lines += [f"  {u.email:<{width}}  {u.password:<{pwidth}}  {u.describe}" for u in USERS]
        identities = [cp.identity for cps in CHARGE_POINTS.values() for cp in cps]
        lines += [
            "",
            f"Chargers ({len(identities)}: {identities[0]} … {identities[-1]}):",
            f"  OCPP URL  {OCPP_URL}   e.g. ws://127.0.0.1:8000/ocpp/{identities[0]}",
            f"  password  {CHARGER_PASSWORD}   (OCPP 1.6, HTTP Basic: user = identity)",
            "  VW-UTR-07 is pending approval; VW-UTR-06 and VW-RTM-05 are offline.",
            "",
            "ID tags: "
            + ", ".join(
                f"{token} ({email.split('@')[0]}, {kind.label})" for token, kind, _, email in ID_TOKENS
            ),
            "Tariffs: "
            + "; ".join(f"{OPERATORS[slug]['name']}: {spec['name']}" for slug, spec in TARIFFS.items()),
            "Postpaid: "
            + ", ".join(
                f"{name} ({email}, cards {', '.join(tokens)})"
                for _, name, email, *_, tokens in BILLING_ACCOUNTS
            ),
            "=" * 78,
            "",
        ]
        return "\n".join(lines)
