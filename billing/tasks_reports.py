"""Celery: long energy and revenue reports (``ReportJob``), worked through month by month."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

logger = logging.getLogger("chargedesk.billing")

MAX_RETRIES = 3


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def run_report(self, job_id: int) -> dict:
    """Make the report of a queued job, with its CSV and PDF. Safe to run twice: a finished
    job is left as it is; a job a lost worker left running is done again from the start.
    A failure is retried with backoff, then the job is marked failed with the error."""
    from .models import ReportJob, ReportStatus
    from .reports import run_job

    job = ReportJob.objects.filter(pk=job_id).first()
    if job is None or job.status == ReportStatus.DONE:
        return {"job": job_id, "status": job.status if job else "missing"}
    try:
        run_job(job)
    except Exception as error:
        if self.request.retries < MAX_RETRIES and not self.request.is_eager:
            raise self.retry(exc=error, countdown=30 * 2**self.request.retries) from error
        logger.exception("report job %s failed", job_id)
        ReportJob.objects.filter(pk=job_id).update(
            status=ReportStatus.FAILED, error=f"{type(error).__name__}: {error}", finished_at=timezone.now()
        )
        return {"job": job_id, "status": ReportStatus.FAILED}
    return {"job": job_id, "status": ReportStatus.DONE}
