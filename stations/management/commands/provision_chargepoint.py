"""Create or update charge points from the shell, one or thousands at a time.

    manage.py provision_chargepoint VW-0001 VW-0002 --operator voltway --password <16-40 chars>
    manage.py provision_chargepoint --from-file ids.txt --operator voltway --password ...
    manage.py provision_chargepoint --prefix LOAD- --count 5000 --operator voltway --password ...

Running it again is safe: existing charge points get the new password and any missing
connectors; nothing is duplicated.
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from stations.models import ChargePoint, ConnectorStandard, Operator, PowerType, Site
from stations.services import charge_points_provision, validate_charger_password

DC_STANDARDS = {
    ConnectorStandard.CCS1,
    ConnectorStandard.CCS2,
    ConnectorStandard.CHADEMO,
    ConnectorStandard.GB_T_DC,
}
MAX_CONNECTORS = 32


def _power_kw(value: str) -> Decimal:
    try:
        kw = Decimal(value)
    except InvalidOperation:
        raise CommandError(f"--power-kw must be a number of kilowatts, not “{value}”.") from None
    if not Decimal("0.1") <= kw <= Decimal("2000"):
        raise CommandError("--power-kw must be between 0.1 and 2000.")
    return kw


def _messages(exc: ValidationError) -> str:
    return " ".join(exc.messages)


class Command(BaseCommand):
    help = (
        "Create or update (idempotently) charge points of an operator, all with the same OCPP "
        "password and N connectors. Identities come from the arguments, --from-file and/or "
        "--prefix/--count."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("identities", nargs="*", metavar="identity", help="Charge point identities.")
        parser.add_argument("--operator", required=True, help="Slug of the operator that owns them.")
        parser.add_argument(
            "--password", required=True, help="OCPP Basic Auth password, 16 to 40 characters."
        )
        parser.add_argument(
            "--connectors", type=int, default=2, help="Connectors per charge point (default 2)."
        )
        parser.add_argument("--site", help="Site of the operator, by name or id (new charge points only).")
        parser.add_argument(
            "--standard",
            choices=ConnectorStandard.values,
            default=ConnectorStandard.TYPE2,
            help="Connector standard (default IEC_62196_T2).",
        )
        parser.add_argument(
            "--power-type",
            choices=PowerType.values,
            help="Default: DC for CCS/CHAdeMO/GB/T, else AC_3_PHASE.",
        )
        parser.add_argument("--power-kw", help="Maximum power per connector (default 22 AC, 150 DC).")
        parser.add_argument(
            "--from-file",
            metavar="PATH",
            help="File with one identity per line (blank lines and # comments ignored; - for stdin).",
        )
        parser.add_argument("--prefix", help="Generate identities <prefix>00001 … (with --count).")
        parser.add_argument("--count", type=int, help="How many identities to generate with --prefix.")

    def handle(self, *args, **options):
        operator = Operator.objects.filter(slug=options["operator"]).first()
        if operator is None:
            known = ", ".join(Operator.objects.order_by("slug").values_list("slug", flat=True)[:20]) or "none"
            raise CommandError(f"Unknown operator “{options['operator']}” (known slugs: {known}).")
        try:
            validate_charger_password(options["password"])
        except ValidationError as exc:
            raise CommandError(f"Bad --password: {_messages(exc)}") from None
        connectors = options["connectors"]
        if not 1 <= connectors <= MAX_CONNECTORS:
            raise CommandError(f"--connectors must be between 1 and {MAX_CONNECTORS}.")
        site = self._site(operator, options["site"]) if options["site"] else None
        standard = options["standard"]
        power_type = options["power_type"] or (
            PowerType.DC if standard in DC_STANDARDS else PowerType.AC_3_PHASE
        )
        power_kw = _power_kw(options["power_kw"] or ("150" if power_type == PowerType.DC else "22"))
        identities = self._identities(options)

        started = time.perf_counter()
        try:
            created, updated = charge_points_provision(
                operator=operator,
                identities=identities,
                password=options["password"],
                connectors=connectors,
                site=site,
                standard=standard,
                power_type=power_type,
                max_power_kw=power_kw,
            )
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from None
        elapsed = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(identities)} charge point{'' if len(identities) == 1 else 's'} of {operator.slug}: "
                f"{created} created, {updated} updated "
                f"({connectors} connectors each) in {elapsed:.2f} s."
            )
        )

    def _site(self, operator: Operator, value: str) -> Site:
        sites = Site.objects.filter(operator=operator)
        site = sites.filter(name=value).first()
        if site is None and value.isdigit():
            site = sites.filter(pk=int(value)).first()
        if site is None:
            raise CommandError(f"Operator “{operator.slug}” has no site named or numbered “{value}”.")
        return site

    def _identities(self, options) -> list[str]:
        identities = list(options["identities"])
        if options["from_file"]:
            identities += self._read_file(options["from_file"])
        prefix, count = options["prefix"], options["count"]
        if (prefix is None) != (count is None):
            raise CommandError("--prefix and --count go together.")
        if count is not None:
            if count < 1:
                raise CommandError("--count must be at least 1.")
            identities += [f"{prefix}{n:05d}" for n in range(1, count + 1)]
        identities = list(dict.fromkeys(i.strip() for i in identities if i.strip()))
        if not identities:
            raise CommandError("No identities given: name them, or use --from-file or --prefix/--count.")
        validator = ChargePoint._meta.get_field("identity").run_validators
        bad = []
        for identity in identities:
            try:
                validator(identity)
            except ValidationError:
                bad.append(identity)
        if bad:
            shown = ", ".join(f"“{i}”" for i in bad[:5]) + (" …" if len(bad) > 5 else "")
            raise CommandError(
                f"{len(bad)} invalid identit{'y' if len(bad) == 1 else 'ies'}: {shown}. "
                "Use 1 to 48 letters, digits or . _ : * @ + -"
            )
        return identities

    def _read_file(self, path: str) -> list[str]:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
        return [line.split("#", 1)[0].strip() for line in text.splitlines()]
