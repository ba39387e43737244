"""Send an OCPP command to one or more chargers from the shell, through whichever process holds
their connections, and print each outcome."""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from stations.commands import send_command_many
from stations.models import ChargePoint


class Command(BaseCommand):
    help = (
        'Send an OCPP command, e.g. `ocpp_command CP-1 CP-2 --action Reset --payload \'{"type": "Soft"}\'`.'
    )

    def add_arguments(self, parser):
        parser.add_argument("identities", nargs="+", help="Charge point identities.")
        parser.add_argument("--action", required=True, help="The OCPP action, e.g. Reset, GetConfiguration.")
        parser.add_argument("--payload", default="{}", help="The payload as JSON (default {}).")
        parser.add_argument("--timeout", type=float, default=None, help="Seconds to wait for each answer.")

    def handle(self, *args, identities, action, payload, timeout, **options):
        try:
            body = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--payload is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise CommandError("--payload must be a JSON object.")
        charge_points = list(ChargePoint.objects.filter(identity__in=identities))
        missing = sorted(set(identities) - {cp.identity for cp in charge_points})
        if missing:
            raise CommandError(f"Unknown charge points: {', '.join(missing)}")
        try:
            commands = send_command_many(charge_points, action, body, timeout=timeout)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        for command in commands:
            response = json.dumps(command.response) if command.response is not None else ""
            self.stdout.write(
                f"{command.charge_point.identity}\t{command.status}\t{command.outcome}\t{response}"
            )
        if any(c.status not in ("accepted",) for c in commands):
            raise CommandError("Not every charger accepted the command.", returncode=3)
