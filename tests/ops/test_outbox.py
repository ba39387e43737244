"""The outbox of task calls (config/outbox.py): a call the broker refuses is kept in the
database and relayed once the broker takes it; nothing is lost, nothing relayed twice."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from celery import Celery
from django.core.management import call_command
from django.utils import timezone
from kombu.exceptions import OperationalError

from config import outbox
from config.celery import OutboxTask, app
from config.models import DeferredTask
from tests.live import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def refusing_app():
    """A Celery app like ours whose broker is a port nobody listens on."""
    # Not the current app: shared tasks called after this test must still reach ours.
    probe = Celery(
        "probe", task_cls=OutboxTask, broker=f"redis://127.0.0.1:{free_port()}/0", set_as_current=False
    )
    probe.conf.broker_connection_retry_on_startup = False
    probe.conf.task_publish_retry_policy = {"max_retries": 0}

    @probe.task(name="probe.add", shared=False)
    def add(x, y, note=""):
        return x + y

    yield probe, add
    probe.close()


@pytest.fixture
def eager():
    """Set whether our app runs tasks in place (restored after the test)."""
    before = app.conf.task_always_eager

    def set_eager(value: bool) -> None:
        app.conf.task_always_eager = value

    yield set_eager
    app.conf.task_always_eager = before


def test_a_call_the_broker_refuses_is_kept_with_its_arguments_and_the_caller_goes_on(refusing_app):
    _, add = refusing_app
    result = add.apply_async((2, 3), {"note": "ü"}, countdown=30, queue="billing", priority=5)
    row = DeferredTask.objects.get()
    assert result.id == row.task_id
    assert (row.task, row.args, row.kwargs) == ("probe.add", [2, 3], {"note": "ü"})
    assert row.options == {"queue": "billing", "priority": 5}
    assert timezone.now() + dt.timedelta(seconds=25) < row.eta <= timezone.now() + dt.timedelta(seconds=30)
    assert "refused" in row.last_error or "Connection" in row.last_error


def test_a_call_from_celery_beat_is_not_kept(refusing_app):
    """Beat passes its own producer; a periodic task comes round again."""
    probe, add = refusing_app
    with probe.producer_or_acquire() as producer, pytest.raises(OperationalError):
        add.apply_async((1, 1), producer=producer)
    assert not DeferredTask.objects.exists()


def test_eager_tasks_run_where_they_are_called_and_keep_nothing(refusing_app):
    probe, add = refusing_app
    probe.conf.task_always_eager = True
    assert add.delay(2, 2).get() == 4
    assert not DeferredTask.objects.exists()


def test_the_relay_sends_the_backlog_oldest_first_and_deletes_what_it_sent(eager):
    eager(False)  # embedded, the in-memory broker
    queue = f"outbox-{uuid.uuid4().hex[:8]}"
    for n in range(3):
        DeferredTask.objects.create(
            task="billing.tasks.settle_session", task_id=f"t-{queue}-{n}", args=[n], options={"queue": queue}
        )
    assert outbox.relay(batch=2) == 3  # two batches
    assert not DeferredTask.objects.exists()
    with app.connection_for_read() as connection:
        messages = connection.SimpleQueue(queue)
        try:
            got = [messages.get(timeout=5) for _ in range(3)]
            for message in got:
                message.ack()
        finally:
            messages.close()
    assert [m.headers["id"] for m in got] == [f"t-{queue}-{n}" for n in range(3)]
    assert {m.headers["task"] for m in got} == {"billing.tasks.settle_session"}


def test_without_a_broker_the_relay_runs_the_backlog_in_place(eager):
    from stations.models import ChargePoint
    from tests.factories import ChargePointFactory

    eager(True)
    silent = ChargePointFactory(is_connected=True, last_seen_at=timezone.now() - dt.timedelta(hours=2))
    DeferredTask.objects.create(task="stations.tasks.mark_silent_chargers_offline", task_id="t-eager")
    assert outbox.relay() == 1
    assert not ChargePoint.objects.get(pk=silent.pk).is_connected
    assert not DeferredTask.objects.exists()


def test_a_call_of_a_task_that_no_longer_exists_is_kept_and_not_relayed_again():
    DeferredTask.objects.create(task="gone.task", task_id="t-gone")
    assert outbox.relay() == 0
    row = DeferredTask.objects.get()
    assert row.given_up and "gone.task" in row.last_error
    assert outbox.relay() == 0


def test_a_relay_the_broker_refuses_keeps_every_row_for_the_next(monkeypatch, eager):
    eager(False)
    for n in range(2):
        DeferredTask.objects.create(task="billing.tasks.settle_session", task_id=f"t-refused-{n}", args=[n])

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(app, "send_task", refuse)
    assert outbox.relay() == 0
    rows = list(DeferredTask.objects.order_by("pk"))
    assert len(rows) == 2
    assert rows[0].attempts == 1 and "refused" in rows[0].last_error
    assert rows[1].attempts == 0  # the relay stops at the first refusal


def test_the_relay_runs_on_celery_beats_schedule_and_from_the_shell(settings, capsys):
    from config import periodic

    entry = settings.CELERY_BEAT_SCHEDULE["relay-deferred-tasks"]
    assert entry["task"] == "config.tasks.relay_deferred_tasks"
    DeferredTask.objects.create(task="gone.task", task_id="t-shell")
    assert "relay-deferred-tasks" in periodic.run_due({}, now=1e9)
    call_command("relay_deferred_tasks")
    assert "relayed 0; waiting 0; unknown tasks kept 1" in capsys.readouterr().out
