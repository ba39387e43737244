"""Periodic work of diagnostics (Celery beat on the real stack, in-process when embedded)."""

from celery import shared_task

from . import sweeps


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def run_diagnostic_sweep() -> dict:
    """Find offline units, faults, stuck sessions, … ; open and resolve incidents; self-heal.
    Safe to run twice (a second sweep at once is skipped, a repeated one changes nothing)."""
    report = sweeps.run_sweep()
    return {
        "found": report.found,
        "opened": report.opened,
        "updated": report.updated,
        "resolved": report.resolved,
        "skipped": report.skipped,
        "healing": report.healing,
    }
