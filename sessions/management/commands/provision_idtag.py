"""Create or update ID tokens (RFID cards, app tokens) from the shell, for roll-outs and tests."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from sessions.models import IdTokenStatus, IdTokenType
from sessions.services import id_tokens_provision


class Command(BaseCommand):
    help = "Create or update ID tokens: `provision_idtag 04A1B2C3 04D4E5F6 --driver alice@example.com`."

    def add_arguments(self, parser):
        parser.add_argument("tokens", nargs="*", help="idTags (up to 20 characters each).")
        parser.add_argument("--driver", help="Email of the driver who owns them.")
        parser.add_argument("--type", default=IdTokenType.RFID, choices=IdTokenType.values)
        parser.add_argument("--status", default=IdTokenStatus.ACCEPTED, choices=IdTokenStatus.values)
        parser.add_argument("--parent", default="", help="Group id (OCPP parentIdTag).")
        parser.add_argument("--prefix", help="Generate <prefix>00001 … (with --count).")
        parser.add_argument("--count", type=int, default=0)

    def handle(self, *args, tokens, driver, type, status, parent, prefix, count, **options):
        tokens = list(tokens)
        if prefix:
            tokens += [f"{prefix}{n:05d}" for n in range(1, count + 1)]
        if not tokens:
            raise CommandError("Give idTags, or --prefix with --count.")
        owner = None
        if driver:
            owner = get_user_model().objects.filter(email__iexact=driver).first()
            if owner is None:
                raise CommandError(f"No user with the email {driver}.")
        try:
            created, updated = id_tokens_provision(
                tokens=tokens, driver=owner, type=type, status=status, parent_token=parent
            )
        except ValidationError as exc:
            raise CommandError("; ".join(" ".join(v) for v in exc.message_dict.values())) from exc
        self.stdout.write(f"{created} created, {updated} updated")
