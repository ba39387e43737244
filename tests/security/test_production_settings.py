"""Production settings, checked in fresh processes so this process's settings stay untouched."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECRET = "x" * 50 + "-a-long-random-production-secret"
SETUP = "import django; django.setup()"


def _run(args, **env):
    # Embedded (SQLite): the checks are about settings, not the services the caller may use.
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "CHARGEDESK_", "STRIPE_", "DATABASE_", "REDIS_"))
    }
    base.update({"DJANGO_SETTINGS_MODULE": "config.settings", **env})
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


def _production(**env):
    return {
        "CHARGEDESK_PRODUCTION": "1",
        "DJANGO_SECRET_KEY": SECRET,
        "DJANGO_ALLOWED_HOSTS": "chargedesk.example",
        **env,
    }


def test_production_refuses_to_start_without_a_secret_key():
    env = _production()
    del env["DJANGO_SECRET_KEY"]
    result = _run(["-c", SETUP], **env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_starts_with_its_secrets_from_the_environment():
    result = _run(
        ["-c", SETUP + "; from django.conf import settings; print(settings.SECRET_KEY)"], **_production()
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == SECRET


def test_check_deploy_is_clean_in_production_settings():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **_production())
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_production_response_carries_the_security_headers():
    probe = (
        SETUP
        + """
from django.test import Client
# A page without templates: production's static manifest exists only after collectstatic.
r = Client(HTTP_HOST="chargedesk.example").get("/healthz", secure=True)
print(r.status_code)
for h in ("Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options",
          "Referrer-Policy", "Cross-Origin-Opener-Policy"):
    print(h, "=", r.headers.get(h))
from django.conf import settings
print("csrf-secure", settings.CSRF_COOKIE_SECURE)
print("session-secure", settings.SESSION_COOKIE_SECURE, settings.SESSION_COOKIE_HTTPONLY)
"""
    )
    result = _run(["-c", probe], **_production())
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0] == "200"
    assert "Strict-Transport-Security = max-age=31536000; includeSubDomains; preload" in out
    assert "X-Content-Type-Options = nosniff" in out
    assert "X-Frame-Options = DENY" in out
    assert "Referrer-Policy = same-origin" in out
    assert "Cross-Origin-Opener-Policy = same-origin" in out
    assert "csrf-secure True" in out
    assert "session-secure True True" in out


def test_a_production_html_page_carries_the_content_security_and_permissions_policies():
    probe = (
        SETUP
        + """
from django.test import Client, override_settings
# The page's {% static %} needs a manifest (collectstatic); the headers do not depend on it.
plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
from django.conf import settings
with override_settings(STORAGES={**settings.STORAGES, "staticfiles": plain}):
    r = Client(HTTP_HOST="chargedesk.example").get("/accounts/login/", secure=True)
print(r.status_code, r["Content-Type"])
print("CSP =", r.headers.get("Content-Security-Policy"))
print("PP =", r.headers.get("Permissions-Policy"))
"""
    )
    result = _run(["-c", probe], **_production())
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" = ", 1) for line in result.stdout.splitlines()[1:])
    assert result.stdout.startswith("200 text/html")
    csp = {d.split()[0]: d.split()[1:] for d in lines["CSP"].split("; ")}
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert "geolocation=(self)" in lines["PP"] and "camera=()" in lines["PP"]
    assert 'payment=(self "https://js.stripe.com")' in lines["PP"]


def test_no_secret_looking_literal_is_a_production_default():
    # The one literal key is the development default, which production never reads.
    text = (ROOT / "config" / "settings.py").read_text()
    assert 'env.str("DJANGO_SECRET_KEY")' in text
    for marker in ("sk_live_", "sk_test_", "whsec_", "-----BEGIN"):
        assert marker not in text
