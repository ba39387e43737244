"""Liveness and readiness for load balancers and orchestrators.

- ``/livez``: the process answers; nothing else is checked (restart it if this fails).
- ``/readyz``: it can do its work: the database answers and has every migration applied,
  Redis (channel layer and cache) and the Celery broker answer. 503 names what failed; each
  check reports its time. Send traffic only to a ready process.
- ``/healthz``: the database alone (kept for probes that already use it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

# Once every migration is applied it stays so for this process's code: check until then only.
_migrated = False


@never_cache
@require_GET
def healthz(request):
    """Alive and able to reach the database; 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any database failure means not ready
        return JsonResponse({"status": "error", "database": str(exc.__class__.__name__)}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


@never_cache
@require_GET
def livez(request):
    return JsonResponse({"status": "ok"})


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _migrations() -> str:
    global _migrated
    if _migrated:
        return "ok"
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        raise RuntimeError(f"{len(plan)} unapplied: {names}")
    _migrated = True
    return "ok"


def _redis(url: str) -> str:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def _broker() -> str:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=1)
    return "ok"


def checks() -> dict[str, Callable[[], str]]:
    found = {"database": _database, "migrations": _migrations}
    if settings.REDIS_URL:
        found["redis"] = lambda: _redis(settings.REDIS_URL)
    broker = settings.CELERY_BROKER_URL
    if not broker.startswith("memory://") and broker != settings.REDIS_URL:
        found["broker"] = _broker
    return found


@never_cache
@require_GET
def readyz(request):
    results, ready = {}, True
    for name, check in checks().items():
        started = time.perf_counter()
        try:
            status = check()
        except Exception as exc:  # what failed is the answer, not an error page
            status, ready = f"error: {exc.__class__.__name__}: {exc}"[:300], False
        results[name] = {"status": status, "ms": round((time.perf_counter() - started) * 1000, 1)}
    return JsonResponse(
        {"status": "ok" if ready else "error", "checks": results}, status=200 if ready else 503
    )
