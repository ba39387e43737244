"""Alerts pages: every user's notification centre and settings (with browser push), the
unsubscribe links of emails, and the operator's delivery log, webhooks and maintenance
windows. Thin: the writes are ``alerts.services``; the reads scope to the user's operator."""

from __future__ import annotations

import json
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core import signing
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from alerts import catalog, tasks, vapid
from alerts.forms import (
    DeliveryFilterForm,
    FavouriteForm,
    MaintenanceForm,
    ProfileForm,
    WebhookForm,
    preference_choices,
)
from alerts.models import Channel, Delivery, DeliveryStatus, MaintenanceWindow, Notification, WebhookEndpoint
from alerts.services import maintenance as maintenance_service
from alerts.services import preferences
from alerts.services import webhooks as webhook_service
from alerts.unsubscribe import read_token
from stations import selectors
from stations.models import ChargePoint

NOTIFICATIONS_PER_PAGE = 25
DELIVERIES_PER_PAGE = 50
WINDOWS_LISTED = 100
SECRET_KEY = "alerts.webhook_secret"  # the session's slot for a secret shown once
DENIED_STAFF = "Only an operator's staff may see this."
DENIED_ADMIN = "Only an operator admin may change this."


def _errors(error: ValidationError) -> list[str]:
    if hasattr(error, "message_dict"):
        return [m for texts in error.message_dict.values() for m in texts]
    return list(error.messages)


def _flash_errors(request, error: ValidationError) -> None:
    for text in _errors(error):
        messages.error(request, text)


def _add_errors(form, error: ValidationError) -> None:
    """A service's errors on the form: on their field when the form has it, else on top."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _back(request, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


def _staff(*, admin: bool):
    """Operator pages: technicians read, operator admins also write; drivers get 403."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            user = request.user
            if not (user.is_operator_admin if admin else user.is_operator_staff):
                raise PermissionDenied(DENIED_ADMIN if admin else DENIED_STAFF)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


staff_required = _staff(admin=False)
admin_required = _staff(admin=True)


# --- Notification centre ------------------------------------------------------------------------


def _safe_url(url: str) -> str:
    """A notification's link: a path on this site or a web address, never a script."""
    if (url.startswith("/") and not url.startswith("//")) or url.startswith(("https://", "http://")):
        return url
    return ""


@login_required
def notifications(request):
    page = Paginator(Notification.objects.filter(user=request.user), NOTIFICATIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    labels = {key: event.label for key, event in catalog.EVENT_TYPES.items()}
    for notification in page.object_list:
        notification.event_label = labels.get(notification.event_type, notification.event_type)
        notification.safe_url = _safe_url(notification.url)
    context = {"page_obj": page, "notifications": page.object_list, "event_labels": labels}
    return render(request, "alerts/notifications.html", context)


@login_required
@require_POST
def mark_read(request):
    if "notification" in request.POST:
        ids = [int(pk) for pk in request.POST.getlist("notification") if pk.isdigit()]
        preferences.mark_read(user=request.user, notification_ids=ids)
    else:
        changed = preferences.mark_read(user=request.user)
        messages.success(request, f"{changed} notification{'s' if changed != 1 else ''} marked read.")
    return redirect(_back(request, reverse("alerts:notifications")))


@login_required
def unread(request):
    """The bell's count, for a page whose socket was away for a while."""
    count = Notification.objects.filter(user=request.user, read_at__isnull=True).count()
    return JsonResponse({"unread": count})


# --- Settings -----------------------------------------------------------------------------------


def _vapid_public_key() -> str | None:
    try:
        return vapid.keys()[1]
    except ImproperlyConfigured:
        return None


def _profile_initial(profile) -> dict:
    return {name: getattr(profile, name) for name in preferences.PROFILE_FIELDS}


def _settings(request, *, profile_form=None, favourite_form=None, status=200):
    user = request.user
    audience = preferences.audience_of(user)
    profile = preferences.profile_for(user)
    labels = dict(Channel.choices)
    rows = [
        {"event": row["event_type"], "cells": [(c, labels[c], on) for c, on in row["channels"].items()]}
        for row in preferences.channel_matrix(user)
    ]
    is_driver = catalog.DRIVER in audience
    context = {
        "rows": rows,
        "channels": [(c, label) for c, label, _ in rows[0]["cells"]] if rows else [],
        "profile_form": profile_form or ProfileForm(initial=_profile_initial(profile), audience=audience),
        "is_driver": is_driver,
        "is_operator": catalog.OPERATOR in audience,
        "favourites": profile.favourites.select_related("site").order_by("identity") if is_driver else [],
        "favourite_form": favourite_form or FavouriteForm(),
        "vapid_public_key": _vapid_public_key(),
        "push_count": user.push_subscriptions.filter(kind="web").count(),
    }
    return render(request, "alerts/settings.html", context, status=status)


@login_required
def settings_page(request):
    return _settings(request)


@login_required
@require_POST
def save_channels(request):
    matrix = preferences.channel_matrix(request.user)
    try:
        preferences.set_preferences(user=request.user, choices=preference_choices(matrix, request.POST))
    except ValidationError as error:
        _flash_errors(request, error)
    else:
        messages.success(request, "Your channels are saved.")
    return redirect("alerts:settings")


@login_required
@require_POST
def save_profile(request):
    form = ProfileForm(request.POST, audience=preferences.audience_of(request.user))
    if form.is_valid():
        try:
            preferences.update_profile(user=request.user, **form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, "Your alert settings are saved.")
            return redirect("alerts:settings")
    return _settings(request, profile_form=form, status=400)


@login_required
@require_POST
def add_favourite(request):
    form = FavouriteForm(request.POST)
    if form.is_valid():
        charge_point = form.cleaned_data["identity"]
        try:
            preferences.add_favourite(user=request.user, charge_point=charge_point)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"You follow {charge_point.identity} now.")
            return redirect(f"{reverse('alerts:settings')}#favourites")
    return _settings(request, favourite_form=form, status=400)


@login_required
@require_POST
def remove_favourite(request, pk: int):
    charge_point = get_object_or_404(ChargePoint, pk=pk)
    preferences.remove_favourite(user=request.user, charge_point=charge_point)
    messages.success(request, f"You no longer follow {charge_point.identity}.")
    return redirect(f"{reverse('alerts:settings')}#favourites")


# --- Browser push -------------------------------------------------------------------------------


def _json_body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


@login_required
@require_POST
def push_subscribe(request):
    """The browser's ``PushSubscription.toJSON()``: ``{endpoint, keys: {p256dh, auth}}``."""
    body = _json_body(request)
    keys = body.get("keys") if isinstance(body.get("keys"), dict) else {}
    try:
        preferences.register_push(
            user=request.user,
            kind="web",
            endpoint=str(body.get("endpoint") or ""),
            p256dh=str(keys.get("p256dh") or ""),
            auth=str(keys.get("auth") or ""),
            user_agent=request.headers.get("User-Agent", ""),
        )
    except ValidationError as error:
        return JsonResponse({"subscribed": False, "errors": _errors(error)}, status=400)
    return JsonResponse({"subscribed": True}, status=201)


@login_required
@require_POST
def push_unsubscribe(request):
    endpoint = str(_json_body(request).get("endpoint") or "")
    removed = preferences.unregister_push(user=request.user, endpoint=endpoint)
    return JsonResponse({"unsubscribed": bool(removed)})


def service_worker(request):
    """The push service worker, from the site's root so that its scope is the whole site."""
    path = finders.find("alerts/sw.js")
    if path is None:
        raise Http404("No service worker.")
    with open(path, "rb") as handle:
        response = HttpResponse(handle.read(), content_type="application/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/"
    response["Cache-Control"] = "no-cache"
    return response


# --- Unsubscribe links --------------------------------------------------------------------------


def _what(event_type: str | None, channel: str) -> dict:
    event = catalog.EVENT_TYPES.get(event_type) if event_type else None
    channel_label = Channel(channel).label if channel in Channel.values else channel
    return {"event": event, "channel_label": channel_label}


@csrf_exempt  # the signed token is the credential; mail clients' one-click POST has no cookie (RFC 8058)
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token: str):
    try:
        user_id, event_type, channel = read_token(token)
    except signing.BadSignature:
        return render(request, "alerts/unsubscribe_invalid.html", status=400)
    context = _what(event_type, channel)
    if request.method != "POST":
        return render(request, "alerts/unsubscribe.html", context)
    try:
        preferences.unsubscribe(user_id=user_id, event_type=event_type, channel=channel)
    except ValidationError:
        return render(request, "alerts/unsubscribe_invalid.html", status=400)
    return render(request, "alerts/unsubscribe_done.html", context)


# --- Operator: delivery log ---------------------------------------------------------------------


def _deliveries_for(user):
    if user.is_superuser:
        return Delivery.objects.all()
    return Delivery.objects.filter(operator_id=user.operator_id)


@staff_required
def deliveries(request):
    form = DeliveryFilterForm(request.GET or None)
    qs = _deliveries_for(request.user).select_related("alert", "user", "endpoint")
    if form.is_valid():
        chosen = {k: v for k, v in form.cleaned_data.items() if v}
        if "event_type" in chosen:
            chosen["alert__event_type"] = chosen.pop("event_type")
        qs = qs.filter(**chosen)
    page = Paginator(qs, DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page_obj": page,
        "deliveries": page.object_list,
        "failed": DeliveryStatus.FAILED,
    }
    return render(request, "alerts/deliveries.html", context)


@admin_required
@require_POST
def delivery_retry(request, pk: int):
    from alerts import delivery as sending  # the sender imports the transports: only when needed

    delivery = get_object_or_404(_deliveries_for(request.user), pk=pk)
    if sending.retry_now(delivery.pk):
        tasks.deliver.delay([delivery.pk])
        messages.success(request, f"Delivery #{delivery.pk} is being sent again.")
    else:
        messages.error(request, f"Delivery #{delivery.pk} cannot be retried (only failed ones can).")
    return redirect(_back(request, reverse("alerts:deliveries")))


# --- Operator: webhooks -------------------------------------------------------------------------


def _endpoints_for(user):
    return WebhookEndpoint.objects.filter(operator__in=selectors.operators_for(user))


def _webhooks(request, form=None, status=200):
    endpoints = list(_endpoints_for(request.user).select_related("operator").order_by("-created_at"))
    labels = {e.key: e.label for e in catalog.EVENT_TYPES.values()}
    for endpoint in endpoints:
        endpoint.event_labels = [labels.get(key, key) for key in endpoint.event_types]
    if form is None and request.user.is_operator_admin:
        form = WebhookForm(user=request.user)
    context = {"endpoints": endpoints, "form": form, "revealed": request.session.pop(SECRET_KEY, None)}
    return render(request, "alerts/webhooks.html", context, status=status)


def _reveal(request, endpoint, secret: str) -> None:
    request.session[SECRET_KEY] = {"pk": endpoint.pk, "url": endpoint.url, "secret": secret}


@staff_required
def webhooks(request):
    if request.method != "POST":
        return _webhooks(request)
    if not request.user.is_operator_admin:
        raise PermissionDenied(DENIED_ADMIN)
    form = WebhookForm(request.POST, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        try:
            endpoint = _create_endpoint(request, data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            _reveal(request, endpoint, endpoint.secret)
            messages.success(request, f"Webhook endpoint {endpoint.url} added.")
            return redirect("alerts:webhooks")
    return _webhooks(request, form, status=400)


def _create_endpoint(request, data):
    return webhook_service.create_endpoint(
        operator=data.get("operator") or request.user.operator,
        url=data["url"],
        description=data["description"],
        event_types=data["event_types"],
        by=request.user,
    )


def _endpoint_action(request, pk: int, act) -> HttpResponse:
    endpoint = get_object_or_404(_endpoints_for(request.user), pk=pk)
    try:
        act(endpoint)
    except ValidationError as error:
        _flash_errors(request, error)
    return redirect("alerts:webhooks")


@admin_required
@require_POST
def webhook_rotate(request, pk: int):
    def rotate(endpoint):
        _reveal(request, endpoint, webhook_service.rotate_secret(endpoint=endpoint))
        messages.success(request, f"New secret for {endpoint.url}: the old one no longer verifies.")

    return _endpoint_action(request, pk, rotate)


@admin_required
@require_POST
def webhook_enable(request, pk: int):
    def enable(endpoint):
        webhook_service.enable_endpoint(endpoint=endpoint)
        messages.success(request, f"{endpoint.url} is active again.")

    return _endpoint_action(request, pk, enable)


@admin_required
@require_POST
def webhook_disable(request, pk: int):
    def disable(endpoint):
        webhook_service.disable_endpoint(endpoint=endpoint, reason=f"Disabled by {request.user.email}.")
        messages.success(request, f"{endpoint.url} is disabled.")

    return _endpoint_action(request, pk, disable)


@admin_required
@require_POST
def webhook_delete(request, pk: int):
    def delete(endpoint):
        url = endpoint.url
        webhook_service.delete_endpoint(endpoint=endpoint)
        messages.success(request, f"{url} deleted.")

    return _endpoint_action(request, pk, delete)


@admin_required
@require_POST
def webhook_test(request, pk: int):
    def test(endpoint):
        ok, detail = webhook_service.test_endpoint(endpoint=endpoint)
        if ok:
            messages.success(request, f"Test sent to {endpoint.url}: {detail}")
        else:
            messages.error(request, f"Test to {endpoint.url} failed: {detail}")

    return _endpoint_action(request, pk, test)


# --- Operator: maintenance windows --------------------------------------------------------------


def _windows_for(user):
    return MaintenanceWindow.objects.filter(operator__in=selectors.operators_for(user))


def _maintenance_form(user, data=None) -> MaintenanceForm:
    operators = selectors.operators_for(user)
    return MaintenanceForm(
        data,
        charge_points=ChargePoint.objects.filter(operator__in=operators).select_related("site", "operator"),
        sites=selectors.sites_for(user),
    )


def _window_state(window, now) -> str:
    if window.cancelled_at:
        return "cancelled"
    if window.ends_at <= now:
        return "over"
    return "published" if window.published_at else "draft"


def _maintenance(request, form=None, status=200):
    now = timezone.now()
    windows = list(
        _windows_for(request.user)
        .select_related("site", "charge_point", "charge_point__site", "created_by")
        .order_by("-starts_at")[:WINDOWS_LISTED]
    )
    for window in windows:
        place = window.site or (window.charge_point.site if window.charge_point else None)
        window.zone = place.time_zone if place else "UTC"
        window.state = _window_state(window, now)
    if form is None and request.user.is_operator_admin:
        form = _maintenance_form(request.user)
    return render(request, "alerts/maintenance.html", {"windows": windows, "form": form}, status=status)


@staff_required
def maintenance(request):
    if request.method != "POST":
        return _maintenance(request)
    if not request.user.is_operator_admin:
        raise PermissionDenied(DENIED_ADMIN)
    form = _maintenance_form(request.user, request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            maintenance_service.create_window(
                operator=data["operator"],
                charge_point=data["charge_point"],
                site=data["site"],
                starts_at=data["starts_at"],
                ends_at=data["ends_at"],
                reason=data["reason"],
                by=request.user,
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, "Maintenance window saved as a draft: publish it to tell drivers.")
            return redirect("alerts:maintenance")
    return _maintenance(request, form, status=400)


@admin_required
@require_POST
def maintenance_publish(request, pk: int):
    window = get_object_or_404(_windows_for(request.user), pk=pk)
    try:
        told = maintenance_service.publish_window(window=window, by=request.user)
    except ValidationError as error:
        _flash_errors(request, error)
    else:
        messages.success(request, f"Published: {told} driver{'s' if told != 1 else ''} told.")
    return redirect("alerts:maintenance")


@admin_required
@require_POST
def maintenance_cancel(request, pk: int):
    window = get_object_or_404(_windows_for(request.user), pk=pk)
    try:
        maintenance_service.cancel_window(window=window, by=request.user)
    except ValidationError as error:
        _flash_errors(request, error)
    else:
        messages.success(request, "Maintenance window cancelled.")
    return redirect("alerts:maintenance")
