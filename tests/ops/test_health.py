"""Liveness and readiness: what a load balancer or an orchestrator asks before sending traffic."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_livez_answers_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_reports_each_check_with_its_time(client, settings):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["migrations"]["status"] == "ok"
    assert ("redis" in body["checks"]) == bool(settings.REDIS_URL)
    assert all(isinstance(check["ms"], float) for check in body["checks"].values())


@pytest.mark.django_db
def test_readyz_is_503_naming_redis_when_it_does_not_answer(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["redis"]["status"].startswith("error: ConnectionError")
    assert body["checks"]["database"]["status"] == "ok"


def test_readyz_is_503_on_a_database_with_unapplied_migrations(tmp_path):
    """A process pointed at a database nobody migrated must not take traffic."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    env.pop("REDIS_URL", None)
    script = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/readyz'); print(json.dumps([r.status_code, r.json()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    status, body = json.loads(out.stdout.strip().splitlines()[-1])
    assert status == 503
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["migrations"]["status"].startswith("error: RuntimeError: ")
    assert "unapplied" in body["checks"]["migrations"]["status"]


def test_in_production_probes_skip_the_https_redirect_and_metrics_need_a_token(tmp_path):
    """Load balancers probe over plain HTTP; pages redirect to HTTPS; /metrics is not public."""
    env = {
        **os.environ,
        "CHARGEDESK_PRODUCTION": "1",
        "DJANGO_SECRET_KEY": "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "CHARGEDESK_SITE_URL": "https://csms.example",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    for name in ("REDIS_URL", "CHARGEDESK_METRICS_TOKEN"):
        env.pop(name, None)
    script = (
        "import django, json; django.setup(); from django.test import Client; c = Client(); "
        "print(json.dumps([c.get(p).status_code for p in ('/livez', '/readyz', '/', '/metrics')]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    livez, readyz, home, metrics = json.loads(out.stdout.strip().splitlines()[-1])
    assert livez == 200
    assert readyz == 503  # answered over HTTP (not redirected): the fresh database is unmigrated
    assert home == 301  # to https://
    assert metrics == 404  # no CHARGEDESK_METRICS_TOKEN: no metrics in production
