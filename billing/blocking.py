"""Blocking ID tokens for money owed, and giving back exactly those: a token billing blocked
is remembered (``TokenBlock``); one an operator blocked for another reason is left alone."""

from __future__ import annotations

from django.db import transaction

from billing.models import TokenBlock
from sessions.models import IdToken, IdTokenStatus


def block_tokens(tokens, *, kind: str) -> int:
    """Block the accepted ones among ``tokens`` (a queryset) and remember them; how many."""
    with transaction.atomic():
        ids = list(
            tokens.filter(status=IdTokenStatus.ACCEPTED).select_for_update().values_list("pk", flat=True)
        )
        if not ids:
            return 0
        IdToken.objects.filter(pk__in=ids).update(status=IdTokenStatus.BLOCKED)
        TokenBlock.objects.bulk_create(
            [TokenBlock(id_token_id=pk, kind=kind) for pk in ids], ignore_conflicts=True
        )
        return len(ids)


def unblock_tokens(tokens, *, kind: str) -> int:
    """Accept again the tokens among ``tokens`` that billing blocked for ``kind``; how many."""
    with transaction.atomic():
        ids = list(
            TokenBlock.objects.filter(id_token__in=tokens, kind=kind).values_list("id_token_id", flat=True)
        )
        if not ids:
            return 0
        IdToken.objects.filter(pk__in=ids, status=IdTokenStatus.BLOCKED).update(status=IdTokenStatus.ACCEPTED)
        TokenBlock.objects.filter(id_token_id__in=ids, kind=kind).delete()
        return len(ids)
