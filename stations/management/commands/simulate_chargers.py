"""Simulate OCPP 1.6J chargers against a central system (ours, usually).

    manage.py simulate_chargers --url ws://127.0.0.1:8000/ocpp --identities VW-AMS-01 VW-AMS-02 \\
        --password voltway-demo-charger-01
    manage.py simulate_chargers --prefix LOAD- --count 500 --password ... --rate 100 --no-validate
    manage.py simulate_chargers --from-db --operator voltway --limit 5 --password ... --profile busy

The same options as ``python -m stations.simulator``; ``--from-db`` takes the identities (and
connectors, power, vendor, model, firmware) of the operator's accepted charge points. Their
passwords are stored hashed, so the password still comes from --password.
"""

from __future__ import annotations

import asyncio

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stations.simulator.fleet import (
    add_arguments,
    check_password,
    format_summary,
    identities_from,
    run_fleet,
    setup_logging,
)


class Command(BaseCommand):
    help = (
        "Simulate OCPP 1.6J charge points against a central system: a handful for the demo, "
        "thousands for a load test. Ctrl-C stops them gracefully."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)
        parser.add_argument(
            "--from-db",
            action="store_true",
            help="Simulate the accepted charge points of --operator from the database.",
        )
        parser.add_argument("--operator", help="Operator slug (with --from-db).")
        parser.add_argument("--limit", type=int, help="At most N charge points (with --from-db).")

    def handle(self, *args, **options):
        try:
            identities = identities_from(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        overrides: dict[str, dict] = {}
        if options["from_db"]:
            found, overrides = self._from_db(options["operator"], options["limit"])
            identities += [identity for identity in found if identity not in identities]
        elif options["operator"] or options["limit"]:
            raise CommandError("--operator and --limit go with --from-db.")
        if not identities:
            raise CommandError("No chargers: give --identities, --prefix/--count or --from-db.")
        setup_logging(options["log_level"])
        warning = check_password(options["password"])
        if warning:
            self.stderr.write(self.style.WARNING(warning))
        summary = asyncio.run(run_fleet(options, identities, overrides, report=self._report))
        self.stdout.write(self.style.SUCCESS(format_summary(summary)))

    def _report(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def _from_db(self, slug: str | None, limit: int | None) -> tuple[list[str], dict[str, dict]]:
        from stations.models import ChargePoint, Operator, PowerType, RegistrationStatus

        if not slug:
            raise CommandError("--from-db needs --operator <slug>.")
        if not Operator.objects.filter(slug=slug).exists():
            known = ", ".join(Operator.objects.order_by("slug").values_list("slug", flat=True)[:20]) or "none"
            raise CommandError(f"Unknown operator “{slug}” (known slugs: {known}).")
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1.")
        charge_points = (
            ChargePoint.objects.filter(operator__slug=slug, registration_status=RegistrationStatus.ACCEPTED)
            .prefetch_related("connectors")
            .order_by("identity")
        )
        if limit:
            charge_points = charge_points[:limit]
        identities, overrides = [], {}
        for cp in charge_points:
            connectors = list(cp.connectors.all())
            fields: dict = {}
            if connectors:
                fields["connectors"] = max(c.connector_id for c in connectors)
                fields["dc"] = any(c.power_type == PowerType.DC for c in connectors)
                fields["max_power_w"] = float(max(c.max_power_kw for c in connectors)) * 1000
            for field, value in (
                ("vendor", cp.vendor),
                ("model", cp.model),
                ("serial_number", cp.serial_number),
                ("firmware_version", cp.firmware_version),
            ):
                if value:
                    fields[field] = value
            identities.append(cp.identity)
            overrides[cp.identity] = fields
        if not identities:
            raise CommandError(f"Operator “{slug}” has no accepted charge points.")
        return identities, overrides
