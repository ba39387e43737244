"""One settings module: embedded by default, the real stack from the environment,
and production hardening that passes Django's deploy checks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], "
    "'layer': s.CHANNEL_LAYERS['default']['BACKEND'], 'eager': s.CELERY_TASK_ALWAYS_EAGER, "
    "'broker': s.CELERY_BROKER_URL, 'cache': s.CACHES['default']['BACKEND']}))"
)


def _run(env_overrides, *args, code=PROBE):
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CHARGEDESK_PRODUCTION")
    }
    env.update(env_overrides, DJANGO_SETTINGS_MODULE="config.settings")
    cmd = [sys.executable, *args] if args else [sys.executable, "-c", code]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_nothing_set_runs_embedded():
    result = _run({})
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["engine"] == "django.db.backends.sqlite3"
    assert probe["layer"] == "channels.layers.InMemoryChannelLayer"
    assert probe["eager"] is True
    assert probe["cache"].endswith("LocMemCache")


def test_database_and_redis_urls_select_the_real_stack():
    result = _run(
        {"DATABASE_URL": "postgres://u@db.invalid:5432/x", "REDIS_URL": "redis://cache.invalid:6379/0"}
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["engine"] == "django.db.backends.postgresql"
    assert probe["layer"] == "config.channel_layer.RedisChannelLayer"
    assert probe["eager"] is False
    assert probe["broker"] == "redis://cache.invalid:6379/0"
    assert probe["cache"].endswith("RedisCache")


def test_production_settings_pass_check_deploy():
    result = _run(
        {
            "CHARGEDESK_PRODUCTION": "1",
            "DJANGO_SECRET_KEY": "a-long-random-production-secret-" + "x7Kq9" * 10,
            "DJANGO_ALLOWED_HOSTS": "chargedesk.example",
        },
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = _run({"CHARGEDESK_PRODUCTION": "1"}, "manage.py", "check")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_health_endpoint_reports_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
