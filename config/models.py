from django.db import models
from django.utils import timezone


class DeferredTask(models.Model):
    """A Celery task call the broker could not take (Redis was down), kept in the database
    until the relay (``config.tasks.relay_deferred_tasks``) hands it to the broker again."""

    task = models.CharField(max_length=200)
    task_id = models.CharField(max_length=64, unique=True)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    # What routing the call asked for (queue, priority, retries): JSON-safe values only.
    options = models.JSONField(default=dict, blank=True)
    eta = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Relays the broker refused.")
    last_error = models.TextField(blank=True)
    given_up = models.BooleanField(
        default=False, help_text="Not relayed again: no task of this name exists any more."
    )

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.task} {self.task_id}"
