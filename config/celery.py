import os

from celery import Celery, Task, signals
from celery.utils import uuid
from kombu.exceptions import OperationalError

from config import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class OutboxTask(Task):
    """A task whose calls outlive a broker outage: a call the broker refuses is kept in the
    database and relayed later (config/outbox.py), and the caller goes on as if it was sent."""

    def apply_async(self, args=None, kwargs=None, task_id=None, producer=None, **options):
        if self.app.conf.task_always_eager or producer is not None:
            # Run here (nothing to defer); or Celery beat's own call (a periodic task comes
            # round again, keeping its missed runs would only pile them up).
            return super().apply_async(args, kwargs, task_id=task_id, producer=producer, **options)
        task_id = task_id or uuid()
        try:
            return super().apply_async(args, kwargs, task_id=task_id, **options)
        except OperationalError as error:
            from config import outbox

            outbox.defer(self, task_id, args, kwargs, options, error)
            return self.AsyncResult(task_id)


app = Celery("chargedesk", task_cls=OutboxTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
def _bind_task(task_id=None, task=None, **_):
    """Log records of a running task name it (config/logs.py)."""
    logs.task.set((task.name, task_id))


@signals.task_postrun.connect
def _unbind_task(**_):
    logs.task.set(None)
