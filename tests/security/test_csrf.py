"""CSRF: every page view that takes an unsafe method refuses a request without the token.

The views are derived from the URL resolver (config/urls.py, recursively), so a new view is
covered the day it is added. The few views that are csrf_exempt are listed in EXEMPT with why,
and each is shown to check another credential instead; a new exempt view fails the test until
it is listed here. Under /api/ DRF's SessionAuthentication does the check (last tests).
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.apps import apps
from django.db import connection
from django.http import HttpResponseForbidden
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern
from rest_framework.authtoken.models import Token

from stations.models import Operator
from tests.factories import PASSWORD, ChargePointFactory, OperatorFactory, SiteFactory, UserFactory

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")

# URL name -> why it may skip the CSRF check, and what it checks instead (each proved below).
EXEMPT = {
    "stripe-webhook": "Stripe calls it server to server without our cookie; the Stripe-Signature "
    "HMAC of the body with STRIPE_WEBHOOK_SECRET is checked instead",
    "diagnostics:upload-receive": "chargers POST/PUT diagnostics files without a session or cookie; "
    "the single-use, expiring per-upload token in the URL is the credential",
    "diagnostics:upload-receive-named": "the same upload, with the file name in the URL (PUT)",
    "alerts:unsubscribe": "mail clients' one-click List-Unsubscribe POST (RFC 8058) carries no cookie; "
    "the signed unsubscribe token in the URL names user, event and channel",
}

CSRF_FAILED = "X-Test-CSRF-Failure"


def csrf_failure(request, reason=""):
    """The CSRF failure view during these tests: marks that the CSRF check (not a permission
    check of the view, which also answers 403) refused the request."""
    response = HttpResponseForbidden(reason)
    response[CSRF_FAILED] = reason
    return response


# --- The views, from the resolver -----------------------------------------------------------

SAMPLES = {"int": "1", "str": "VW-0001", "slug": "x", "path": "x", "uuid": str(uuid.UUID(int=1))}


def _route_text(pattern) -> str:
    if isinstance(pattern, RoutePattern):
        return re.sub(
            r"<(?:(\w+):)?(\w+)>", lambda m: SAMPLES.get(m.group(1) or "str", "x"), str(pattern._route)
        )
    assert isinstance(pattern, RegexPattern), pattern
    text = str(pattern._regex).lstrip("^").rstrip("$").replace("\\Z", "")
    # Named groups: a value their own expression matches (the first of an alternation).
    out, i = "", 0
    while (start := text.find("(?P<", i)) != -1:
        out += text[i:start]
        depth, j = 0, start
        while True:
            depth += {"(": 1, ")": -1}.get(text[j], 0) if text[j - 1 : j] != "\\" else 0
            j += 1
            if depth == 0:
                break
        body = text[text.index(">", start) + 1 : j - 1]
        value = next(
            (c for c in (*body.split("|"), *SAMPLES.values()) if re.fullmatch(body, c)),
            body.split("|")[0],
        )
        out, i = out + value, j
    return (out + text[i:]).replace("\\", "")


def _views(patterns=None, prefix="", namespace=""):
    """(url, name, callback) of every view the URLconf routes to."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            ns = ":".join(filter(None, [namespace, entry.namespace]))
            yield from _views(entry.url_patterns, prefix + _route_text(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            name = ":".join(filter(None, [namespace, entry.name])) if entry.name else None
            yield "/" + prefix + _route_text(entry.pattern), name, entry.callback


def _unwrapped(callback):
    seen = [callback]
    while hasattr(seen[-1], "__wrapped__"):
        seen.append(seen[-1].__wrapped__)
    return seen


def unsafe_methods(callback) -> set[str]:
    """The unsafe methods a view takes: a class-based view's handlers, a function view's
    require_http_methods list (require_POST, require_GET, …), else every method."""
    view_class = getattr(callback, "view_class", None)
    if view_class is not None:
        allowed = {m.upper() for m in view_class.http_method_names if hasattr(view_class, m)}
        return allowed & set(UNSAFE)
    for func in _unwrapped(callback):
        for cell in func.__closure__ or ():
            contents = cell.cell_contents
            if isinstance(contents, list) and contents and all(isinstance(m, str) for m in contents):
                return {m.upper() for m in contents} & set(UNSAFE)
    return set(UNSAFE)


def is_exempt(callback) -> bool:
    return any(getattr(f, "csrf_exempt", False) for f in _unwrapped(callback))


PAGE_VIEWS = [(url, name, cb) for url, name, cb in _views() if not url.startswith("/api/")]
WRITE_VIEWS = [(url, name, cb) for url, name, cb in PAGE_VIEWS if unsafe_methods(cb)]


def test_the_views_are_found_and_their_urls_resolve_to_them():
    names = {name for _, name, _ in WRITE_VIEWS}
    for expected in (
        "logout",
        "alerts:add-favourite",
        "diagnostics:ticket-create",
        "billing:attach-card",
        "stations:bulk-command",
        "admin:stations_operator_change",
        *EXEMPT,
    ):
        assert expected in names
    # GET-only views are not among them.
    assert "billing:invoice-pdf" not in names and "healthz" not in names
    for url, name, callback in PAGE_VIEWS:
        assert resolve(url).func is callback, (url, name)


def test_every_csrf_exempt_page_view_is_on_the_list():
    exempt = {name or url for url, name, callback in PAGE_VIEWS if is_exempt(callback)}
    assert exempt == set(EXEMPT), "a csrf_exempt view must be listed in EXEMPT with a reason and a test"


# --- Without the token: 403, nothing changed --------------------------------------------------


def _fingerprint() -> dict[str, int]:
    """Rows per table, in one query."""
    tables = sorted({m._meta.db_table for m in apps.get_models() if m._meta.managed and not m._meta.proxy})
    quote = connection.ops.quote_name
    sql = " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM {quote(t)}" for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return dict(cursor.fetchall())


def _user_for(name: str | None, url: str, users: dict):
    """Who may use the view: Django admin staff for /admin/, a driver for the driver's pages,
    else operator staff."""
    if url.startswith("/admin/"):
        return users["superuser"]
    if (name or "").split(":")[0] in ("account", "billing") or (name or "").startswith("alerts:"):
        if name in ("alerts:deliveries", "alerts:webhooks", "alerts:maintenance") or any(
            w in (name or "") for w in ("delivery-", "webhook-", "maintenance-")
        ):
            return users["operator_admin"]
        return users["driver"]
    return users["operator_admin"]


@pytest.fixture
def users(operator):
    return {
        "driver": UserFactory(email="driver@example.com"),
        "operator_admin": UserFactory(email="ops@voltway.example", role="operator_admin", operator=operator),
        "superuser": UserFactory(email="root@chargedesk.example", is_staff=True, is_superuser=True),
    }


@pytest.fixture
def csrf_marked(settings):
    settings.CSRF_FAILURE_VIEW = "tests.security.test_csrf.csrf_failure"


def _logged_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    assert client.login(email=user.email, password=PASSWORD)
    return client


def test_every_page_view_refuses_an_unsafe_request_without_the_token(db, users, charge_point, csrf_marked):
    clients = {key: _logged_in(user) for key, user in users.items()}
    refused, failures = [], []
    for url, name, callback in WRITE_VIEWS:
        if name in EXEMPT:
            continue
        user = _user_for(name, url, users)
        client = clients[next(k for k, u in users.items() if u == user)]
        before = _fingerprint()
        for method in sorted(unsafe_methods(callback)):
            response = client.generic(method, url, "a=1", content_type="application/x-www-form-urlencoded")
            if response.status_code != 403 or CSRF_FAILED not in response.headers:
                failures.append(f"{method} {url} ({name}) as {user.email}: {response.status_code}")
            else:
                refused.append((method, url))
        if _fingerprint() != before:
            failures.append(f"{url} ({name}) changed the database")
    assert not failures, "\n".join(failures)
    assert len(refused) > 50  # the admin's and ours


# --- With the token: a few representative forms are accepted ----------------------------------


def _token(client: Client, page: str) -> str:
    response = client.get(page)
    assert response.status_code == 200, page
    return client.cookies["csrftoken"].value


def _public_charge_point():
    site = SiteFactory(operator=OperatorFactory(slug="public-net"), name="Plaza")
    return ChargePointFactory(site=site, identity="PUB-01", registration_status="Accepted")


def test_a_driver_follows_a_station_only_with_the_token(db, users):
    from alerts.services.preferences import profile_for

    station = _public_charge_point()
    driver = users["driver"]
    client = _logged_in(driver)
    url = "/alerts/settings/favourites/"
    assert client.post(url, {"identity": station.identity}).status_code == 403
    assert not profile_for(driver).favourites.exists()
    token = _token(client, "/alerts/settings/")
    response = client.post(url, {"identity": station.identity, "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert list(profile_for(driver).favourites.all()) == [station]


def test_operator_staff_create_a_ticket_only_with_the_token(db, users, charge_point):
    from diagnostics.models import Ticket

    client = _logged_in(users["operator_admin"])
    form = {"title": "Cable damaged", "priority": "major", "charge_point": charge_point.pk}
    assert client.post("/diagnostics/tickets/new/", form).status_code == 403
    assert not Ticket.objects.exists()
    token = _token(client, "/diagnostics/tickets/")
    response = client.post("/diagnostics/tickets/new/", {**form, "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Ticket.objects.get().title == "Cable damaged"


def test_admin_staff_delete_in_the_admin_only_with_the_token(db, users):
    spare = OperatorFactory(name="Spare", slug="spare")
    client = _logged_in(users["superuser"])
    url = f"/admin/stations/operator/{spare.pk}/delete/"
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Operator.objects.filter(pk=spare.pk).exists()
    token = _token(client, url)
    assert client.post(url, {"post": "yes", "csrfmiddlewaretoken": token}).status_code == 302
    assert not Operator.objects.filter(pk=spare.pk).exists()


def test_logout_needs_the_token(db, users):
    client = _logged_in(users["driver"])
    assert client.post("/accounts/logout/").status_code == 403
    assert client.get("/account/").status_code == 200  # still logged in
    token = _token(client, "/account/")
    assert client.post("/accounts/logout/", {"csrfmiddlewaretoken": token}).status_code == 302
    assert client.get("/account/").status_code == 302  # to the login page


# --- The exempt views check something else ----------------------------------------------------


def test_stripe_webhook_without_or_with_a_wrong_signature_is_refused(db, settings):
    import hashlib
    import hmac
    import time

    from billing.models import Payment

    settings.STRIPE_WEBHOOK_SECRET = "whsec_ours"
    body = b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}}'
    client = Client(enforce_csrf_checks=True)

    def signed(secret):
        ts = int(time.time())
        mac = hmac.new(secret.encode(), b"%d.%s" % (ts, body), hashlib.sha256).hexdigest()
        return f"t={ts},v1={mac}"

    before = _fingerprint()
    url = "/billing/stripe/webhook/"
    assert client.post(url, body, content_type="application/json").status_code == 400
    forged = client.post(url, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signed("whsec_x"))
    assert forged.status_code == 400
    assert _fingerprint() == before
    # The right signature passes, without any CSRF token (an event we know nothing of: a no-op).
    good = client.post(url, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signed("whsec_ours"))
    assert good.status_code == 200
    assert not Payment.objects.exists()


@pytest.fixture
def upload(charge_point, operator_admin, monkeypatch):
    from diagnostics.services import uploads
    from stations.models import Command, CommandStatus

    def accepted(charge_point, action, payload, **kwargs):
        return Command.objects.create(
            charge_point=charge_point, action=action, payload=payload, status=CommandStatus.ACCEPTED
        )

    monkeypatch.setattr(uploads, "send_command", accepted)
    return uploads.upload_request(charge_point=charge_point, base_url="http://testserver")


def test_diagnostics_upload_needs_its_own_token(db, upload):
    from diagnostics.models import LogUploadStatus

    charger = Client(enforce_csrf_checks=True)
    for method, url in (
        ("PUT", "/diagnostics/upload/not-the-token/"),
        ("PUT", "/diagnostics/upload/not-the-token/diag.log"),
        ("POST", "/diagnostics/upload/not-the-token/"),
        ("PUT", f"/diagnostics/upload/{upload.token[:-1]}/"),
    ):
        response = charger.generic(method, url, b"log line\n", content_type="application/octet-stream")
        assert response.status_code == 404, (method, url)
    upload.refresh_from_db()
    assert upload.status == LogUploadStatus.REQUESTED and not upload.file
    response = charger.generic(
        "PUT",
        f"/diagnostics/upload/{upload.token}/diag.log",
        b"log\n",
        content_type="application/octet-stream",
    )
    assert response.status_code == 201
    upload.refresh_from_db()
    assert upload.status == LogUploadStatus.RECEIVED
    # Single use: the token does not open it again.
    again = charger.generic("PUT", f"/diagnostics/upload/{upload.token}/", b"x", content_type="text/plain")
    assert again.status_code == 410


def test_one_click_unsubscribe_needs_a_signed_token(db, driver):
    from django.core import signing

    from alerts.models import Preference
    from alerts.unsubscribe import SALT, make_token

    mail_client = Client(enforce_csrf_checks=True)
    body, form = "List-Unsubscribe=One-Click", "application/x-www-form-urlencoded"
    token = make_token(driver.pk, None, "email")
    forged = [
        "nonsense",
        token[:-2] + ("xx" if not token.endswith("xx") else "yy"),
        signing.Signer(salt="another.salt").sign_object([driver.pk, None, "email"], compress=True),
        signing.Signer(salt=SALT, key="not-our-secret-key").sign_object([driver.pk, None, "email"]),
    ]
    for bad in forged:
        response = mail_client.post(f"/alerts/unsubscribe/{bad}/", body, form)
        assert response.status_code == 400, bad
    assert not Preference.objects.exists()
    assert mail_client.post(f"/alerts/unsubscribe/{token}/", body, form).status_code == 200
    assert Preference.objects.filter(user=driver, enabled=False).exists()


# --- The API: session authentication checks CSRF, token authentication needs none -------------


def test_an_api_write_with_the_session_needs_the_token_and_with_an_api_token_does_not(db, users):
    from alerts.services.preferences import profile_for

    station = _public_charge_point()
    driver = users["driver"]
    url = "/api/v1/me/favourite-stations/"
    body = {"charge_point": station.identity}

    browser = _logged_in(driver)
    refused = browser.post(url, body, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert not profile_for(driver).favourites.exists()

    key = Token.objects.create(user=driver).key
    app = Client(enforce_csrf_checks=True)
    accepted = app.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}")
    assert accepted.status_code == 201, accepted.content
    assert list(profile_for(driver).favourites.all()) == [station]

    # The session with the token (as the site's own scripts send it) is accepted too.
    browser.get("/account/")
    again = browser.delete(f"{url}{station.identity}/", HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value)
    assert again.status_code == 204
    assert not profile_for(driver).favourites.exists()
