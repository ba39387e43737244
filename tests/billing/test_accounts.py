"""Postpaid accounts: an invoice overdue past the grace days blocks the account's cards (their
ID token status, as chargers are told), payment unblocks them; the monthly run is idempotent."""

import datetime as dt

import pytest
from django.utils import timezone

from billing import accounts
from billing.invoicing import credit, issue_monthly
from billing.models import AccountStatus, Invoice, InvoiceKind
from sessions.models import IdTokenStatus
from sessions.services import authorize
from tests.billing.test_invoicing import TOTAL, postpaid_account, priced_session

pytestmark = pytest.mark.django_db

MARCH = {"period_start": dt.date(2026, 3, 1), "period_end": dt.date(2026, 3, 31)}


@pytest.fixture
def invoiced(operator, charge_point, settings):
    """An account with two cards and an unpaid March invoice due 14 days after issue."""
    settings.BILLING_OVERDUE_GRACE_DAYS = 7
    account, cards = postpaid_account(operator, cards=2, payment_terms_days=14)
    started = timezone.make_aware(dt.datetime(2026, 3, 12, 9, 0))
    priced_session(charge_point=charge_point, id_token=cards[0], started_at=started)
    invoice = issue_monthly(account, **MARCH)
    return account, cards, invoice


def statuses(cards):
    return [type(card).objects.get(pk=card.pk).status for card in cards]


def test_an_invoice_overdue_past_the_grace_days_blocks_the_cards(invoiced, charge_point):
    account, cards, invoice = invoiced
    within_grace = invoice.due_at + dt.timedelta(days=6)
    past_grace = invoice.due_at + dt.timedelta(days=7, minutes=1)

    assert accounts.block_overdue(within_grace) == 0
    assert statuses(cards) == [IdTokenStatus.ACCEPTED] * 2

    assert list(accounts.overdue_accounts(past_grace)) == [account]
    assert accounts.block_overdue(past_grace) == 1

    account.refresh_from_db()
    assert account.status == AccountStatus.OVERDUE
    assert statuses(cards) == [IdTokenStatus.BLOCKED] * 2
    assert authorize(charge_point=charge_point, id_tag=cards[0].token).status == "Blocked"
    assert accounts.block_overdue(past_grace) == 0  # run again: nothing more to do


def test_payment_unblocks_the_cards(invoiced, charge_point):
    account, cards, invoice = invoiced
    Invoice.objects.filter(pk=invoice.pk).update(due_at=timezone.now() - dt.timedelta(days=30))
    assert accounts.block_overdue(timezone.now()) == 1
    assert accounts.unblock_if_settled(account) is False  # nothing paid yet

    paid = accounts.mark_paid(invoice)

    account.refresh_from_db()
    assert paid.paid_at is not None
    assert account.status == AccountStatus.ACTIVE
    assert statuses(cards) == [IdTokenStatus.ACCEPTED] * 2
    assert authorize(charge_point=charge_point, id_tag=cards[1].token).status == "Accepted"
    assert accounts.block_overdue(timezone.now()) == 0


def test_paying_one_of_two_overdue_invoices_keeps_the_block(invoiced, charge_point):
    account, cards, march = invoiced
    april_start = timezone.make_aware(dt.datetime(2026, 4, 2, 9, 0))
    priced_session(charge_point=charge_point, id_token=cards[1], started_at=april_start)
    april = issue_monthly(account, period_start=dt.date(2026, 4, 1), period_end=dt.date(2026, 4, 30))
    Invoice.objects.filter(pk__in=[march.pk, april.pk]).update(due_at=timezone.now() - dt.timedelta(days=30))
    accounts.block_overdue(timezone.now())

    accounts.mark_paid(march)
    account.refresh_from_db()
    assert account.status == AccountStatus.OVERDUE
    assert statuses(cards) == [IdTokenStatus.BLOCKED] * 2

    accounts.mark_paid(april)
    account.refresh_from_db()
    assert account.status == AccountStatus.ACTIVE


def test_a_card_blocked_for_another_reason_stays_blocked_by_the_overdue_check(invoiced):
    _, cards, invoice = invoiced
    lost = cards[1]
    lost.status = IdTokenStatus.EXPIRED
    lost.save()

    accounts.block_overdue(invoice.due_at + dt.timedelta(days=30))

    assert statuses(cards) == [IdTokenStatus.BLOCKED, IdTokenStatus.EXPIRED]


def test_a_fully_credited_invoice_is_not_overdue(invoiced):
    _, cards, invoice = invoiced
    credit(invoice, reason="Disputed, waived")

    assert accounts.block_overdue(invoice.due_at + dt.timedelta(days=30)) == 0
    assert statuses(cards) == [IdTokenStatus.ACCEPTED] * 2


def test_a_partly_credited_invoice_is_still_overdue(invoiced):
    account, _, invoice = invoiced
    credit(invoice, reason="Idle fee waived", lines=[invoice.lines.get(kind="idle")])

    assert list(accounts.overdue_accounts(invoice.due_at + dt.timedelta(days=30))) == [account]


def test_closed_accounts_are_left_alone(invoiced):
    account, cards, invoice = invoiced
    account.status = AccountStatus.CLOSED
    account.save()

    assert accounts.block_overdue(invoice.due_at + dt.timedelta(days=30)) == 0
    assert statuses(cards) == [IdTokenStatus.ACCEPTED] * 2


def test_receipts_are_never_overdue(operator, charge_point, driver):
    from billing.invoicing import issue_receipt
    from tests.billing.test_invoicing import captured_payment

    issue_receipt(captured_payment(priced_session(charge_point=charge_point), user=driver))

    assert not accounts.overdue_accounts(timezone.now() + dt.timedelta(days=365)).exists()


def test_run_monthly_invoices_the_previous_month_once(operator, charge_point):
    first, (card_a,) = postpaid_account(operator, name="First")
    second, (card_b,) = postpaid_account(operator, name="Second")
    postpaid_account(operator, name="Idle")  # nothing to invoice
    _, (card_c,) = postpaid_account(operator, name="Closed", status=AccountStatus.CLOSED)
    for card in (card_a, card_b, card_c):
        priced_session(
            charge_point=charge_point, id_token=card, started_at=timezone.make_aware(dt.datetime(2026, 2, 27))
        )

    assert accounts.run_monthly(dt.date(2026, 3, 1)) == 2
    assert accounts.run_monthly(dt.date(2026, 3, 1)) == 0

    invoices = Invoice.objects.filter(kind=InvoiceKind.INVOICE)
    assert {invoice.account for invoice in invoices} == {first, second}
    assert all(invoice.period_start == dt.date(2026, 2, 1) for invoice in invoices)
    assert all(invoice.period_end == dt.date(2026, 2, 28) for invoice in invoices)
    assert all(invoice.total == TOTAL for invoice in invoices)


def test_a_session_priced_late_lands_on_a_later_run_of_its_month(operator, charge_point):
    account, (card,) = postpaid_account(operator)
    feb = timezone.make_aware(dt.datetime(2026, 2, 10))
    priced_session(charge_point=charge_point, id_token=card, started_at=feb)
    assert accounts.run_monthly(dt.date(2026, 3, 1)) == 1

    priced_session(charge_point=charge_point, id_token=card, started_at=feb + dt.timedelta(days=1))
    assert accounts.run_monthly(dt.date(2026, 3, 2)) == 1

    assert Invoice.objects.filter(account=account, period_start=dt.date(2026, 2, 1)).count() == 2


def test_previous_month_spans_the_calendar_month():
    assert accounts.previous_month(dt.date(2026, 3, 1)) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert accounts.previous_month(dt.date(2026, 1, 15)) == (dt.date(2025, 12, 1), dt.date(2025, 12, 31))


def test_the_daily_overdue_task_blocks(invoiced, settings):
    from billing.tasks_invoicing import block_overdue_accounts

    account, _, invoice = invoiced
    Invoice.objects.filter(pk=invoice.pk).update(due_at=timezone.now() - dt.timedelta(days=30))

    assert block_overdue_accounts.delay().get() == 1
    account.refresh_from_db()
    assert account.status == AccountStatus.OVERDUE


def test_settling_gives_back_only_the_cards_billing_blocked(db, operator):
    """A card blocked by hand (lost) while the account was overdue stays blocked once it pays."""
    from billing.accounts import unblock_if_settled
    from billing.blocking import block_tokens
    from billing.models import AccountStatus, AccountToken, BillingAccount, BlockKind
    from sessions.models import IdTokenStatus
    from tests.sessions.factories import IdTokenFactory

    account = BillingAccount.objects.create(
        operator=operator, name="Fleet", email="fleet@example.com", status=AccountStatus.OVERDUE
    )
    working, lost = IdTokenFactory(), IdTokenFactory(status=IdTokenStatus.BLOCKED)
    for token in (working, lost):
        AccountToken.objects.create(account=account, id_token=token)
    block_tokens(type(working).objects.filter(pk__in=[working.pk, lost.pk]), kind=BlockKind.OVERDUE)
    working.refresh_from_db()
    assert working.status == IdTokenStatus.BLOCKED
    assert unblock_if_settled(account)
    working.refresh_from_db()
    lost.refresh_from_db()
    assert (working.status, lost.status) == (IdTokenStatus.ACCEPTED, IdTokenStatus.BLOCKED)
