import os

from celery import Celery, signals

from config import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("chargedesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
def _bind_task(task_id=None, task=None, **_):
    """Log records of a running task name it (config/logs.py)."""
    logs.task.set((task.name, task_id))


@signals.task_postrun.connect
def _unbind_task(**_):
    logs.task.set(None)
