"""Invoice numbers stay gap-free and unique when several workers issue invoices for the same
operator at once (threads, each with its own PostgreSQL connection), including the race to
create the operator's sequence on first use; a failed transaction gives its number back."""

import datetime as dt
import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from billing.invoicing import issue_monthly, issue_receipt, next_number
from billing.models import Invoice, InvoiceSequence
from tests.billing.test_invoicing import captured_payment, postpaid_account, priced_session

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WORKERS = 8
MARCH = {"period_start": dt.date(2026, 3, 1), "period_end": dt.date(2026, 3, 31)}


def run_at_once(work, count: int) -> list:
    """Run ``work(i)`` in ``count`` threads released together; their results (or errors)."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as error:
            results[i] = error
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_invoices_get_numbers_one_to_n(operator, charge_point):
    assert not InvoiceSequence.objects.exists()  # the first workers race to create it too
    account_list = []
    for i in range(WORKERS):
        account, (card,) = postpaid_account(operator, name=f"Fleet {i}")
        started = timezone.make_aware(dt.datetime(2026, 3, 10, 8, 0))
        priced_session(charge_point=charge_point, id_token=card, started_at=started)
        account_list.append(account)

    results = run_at_once(lambda i: issue_monthly(account_list[i], **MARCH), WORKERS)

    assert all(isinstance(result, Invoice) for result in results), results
    numbers = sorted(Invoice.objects.values_list("sequence_number", flat=True))
    assert numbers == list(range(1, WORKERS + 1))
    assert len(set(Invoice.objects.values_list("number", flat=True))) == WORKERS
    assert InvoiceSequence.objects.get(operator=operator).next_number == WORKERS + 1


def test_the_same_account_issued_twice_at_once_gets_one_invoice(operator, charge_point):
    account, (card,) = postpaid_account(operator)
    priced_session(
        charge_point=charge_point, id_token=card, started_at=timezone.make_aware(dt.datetime(2026, 3, 3))
    )

    results = run_at_once(lambda i: issue_monthly(account, **MARCH), 4)

    assert sum(isinstance(result, Invoice) for result in results) == 1
    assert results.count(None) == 3
    assert Invoice.objects.get().sequence_number == 1


def test_a_payment_captured_twice_at_once_gets_one_receipt(charge_point, driver):
    payment = captured_payment(priced_session(charge_point=charge_point), user=driver)

    results = run_at_once(lambda i: issue_receipt(payment), 4)

    assert {result.pk for result in results} == {Invoice.objects.get().pk}


def test_a_failed_transaction_gives_its_number_back_while_others_issue(operator):
    taken_and_failed = threading.Event()

    def work(i: int):
        if i == 0:
            try:
                with transaction.atomic():
                    number = next_number(operator)
                    raise RuntimeError(f"saving invoice {number} failed")
            except RuntimeError:
                taken_and_failed.set()
                return None
        taken_and_failed.wait(timeout=30)
        with transaction.atomic():
            return next_number(operator)[0]

    results = run_at_once(work, WORKERS)

    numbers = sorted(result for result in results if result is not None)
    assert numbers == list(range(1, WORKERS))
    assert InvoiceSequence.objects.get(operator=operator).next_number == WORKERS
