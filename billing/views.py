"""Billing pages: the driver's "Payment & invoices" (saved cards, adding one with Stripe
Elements, paying a debt, invoices and what each session cost), the guest's ad-hoc payment page
reached from a connector's QR code (EU AFIR), and the QR codes operators print.

Thin: the writes are ``billing.services.payments``, the PDF ``billing.pdf``; the reads that
more than one caller needs are the functions at the top (the API uses them too).
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Iterable

import stripe
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_GET, require_POST

from config.security_headers import with_stripe
from sessions.models import Transaction
from stations.models import ChargePoint, CommandStatus, RegistrationStatus, User
from stations.selectors import charge_points_for

from .forms import AttachCardForm, GuestCheckoutForm
from .models import ChargeLine, Invoice, Payment, PaymentMethod, PaymentStatus, TariffAssignment
from .payments.base import PaymentError

SESSIONS_LISTED = 30
INVOICES_LISTED = 50
# Guest checkouts one address may start in an hour (setting BILLING_GUEST_CHECKOUTS_PER_HOUR):
# each creates a PaymentIntent at Stripe, so a script hammering the public page would cost the
# operator and clutter their account.
GUEST_CHECKOUTS_PER_HOUR = 10
GUEST_STATUS_SALT = "billing.guest-status"


# --- Reads shared with the API --------------------------------------------------------------


def connector_tariffs(
    charge_point: ChargePoint, connector_numbers: Iterable[int], *, user: User | None = None, at
) -> dict[int, dict | None]:
    """What ``billing/_tariff.html`` shows for each connector of a charge point: the applying
    tariff's ``display`` (None where none applies), for ``user`` (anyone when None).

    In queries that do not grow with connectors: the tariff is looked up once for all the
    connectors without an assignment of their own (they share the charge point's, site's or
    operator's), and once more only for each connector that has one."""
    from billing.tariffs import display, tariff_for

    numbers = list(dict.fromkeys(connector_numbers))
    own = set(
        TariffAssignment.objects.filter(
            connector__charge_point=charge_point, connector__connector_id__in=numbers
        ).values_list("connector__connector_id", flat=True)
    )
    shown: dict[int, dict] = {}

    def info(number: int) -> dict | None:
        tariff = tariff_for(charge_point=charge_point, connector_number=number, user=user, at=at)
        if tariff is None:
            return None
        if tariff.pk not in shown:
            shown[tariff.pk] = display(tariff)
        return shown[tariff.pk]

    result: dict[int, dict | None] = {}
    shared: list[dict | None] = []
    for number in numbers:
        if number in own:
            result[number] = info(number)
        else:
            if not shared:
                shared.append(info(number))
            result[number] = shared[0]
    return result


def invoices_for_driver(user: User) -> QuerySet[Invoice]:
    """The invoices and receipts a driver may see: their own, and those of the postpaid
    accounts they own."""
    if not user.is_authenticated or not user.is_active:
        return Invoice.objects.none()
    return Invoice.objects.filter(Q(user=user) | Q(account__owner=user)).select_related("operator")


def invoices_for_operator_user(user: User) -> QuerySet[Invoice]:
    """The invoices an operator's staff may see: their operator's (all, for a superuser)."""
    from stations.selectors import operators_for

    return Invoice.objects.filter(operator__in=operators_for(user)).select_related("operator", "user")


def payment_methods_for(user: User) -> QuerySet[PaymentMethod]:
    return PaymentMethod.objects.filter(user=user).order_by("-is_default", "-created_at", "-pk")


def priced_sessions_for(user: User) -> QuerySet[Transaction]:
    """A driver's sessions, newest first, with what each cost (``charge`` may be missing:
    still running, or no tariff applied)."""
    lines = ChargeLine.objects.order_by("pk")
    return (
        Transaction.objects.filter(driver=user)
        .select_related("charge_point", "charge_point__site", "charge")
        .prefetch_related(Prefetch("charge__lines", queryset=lines))
        .order_by("-started_at", "-pk")
    )


def block_of(user: User) -> str | None:
    """Why the driver may not start charging until they pay, or None when they may."""
    profile = getattr(user, "billing", None)
    if profile is None or profile.blocked_at is None:
        return None
    return profile.blocked_reason or "A payment for an earlier session failed."


def pdf_response(invoice: Invoice) -> HttpResponse:
    from billing.pdf import render as render_pdf

    response = HttpResponse(render_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
    return response


def service_error_text(error: Exception) -> str:
    """What to tell a person when a payment service refused."""
    if isinstance(error, PaymentError):
        return error.message
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    if isinstance(error, stripe.StripeError):
        return error.user_message or "The card service refused the request. Please try again."
    if isinstance(error, ImproperlyConfigured):
        return "Card payments are not set up on this site."
    return str(error)


SERVICE_ERRORS = (PaymentError, ValidationError, stripe.StripeError, ImproperlyConfigured)


# --- The driver's page ----------------------------------------------------------------------


def _driver_required(view):
    @functools.wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        if not request.user.is_driver:
            raise PermissionDenied("Only drivers have payment pages.")
        return view(request, *args, **kwargs)

    return wrapped


def _stripe_context() -> dict:
    return {
        "stripe_js_url": settings.STRIPE_JS_URL,
        "stripe_key": settings.STRIPE_PUBLISHABLE_KEY,
    }


@_driver_required
@require_GET
@with_stripe
def payment(request):
    """Payment & invoices: cards, adding one, a debt to pay, invoices, sessions and their cost."""
    user = request.user
    sessions = list(priced_sessions_for(user)[:SESSIONS_LISTED])
    for session in sessions:
        session.cost = getattr(session, "charge", None)
    return render(
        request,
        "billing/payment.html",
        {
            "cards": payment_methods_for(user),
            "blocked_reason": block_of(user),
            "invoices": invoices_for_driver(user)[:INVOICES_LISTED],
            "charging_sessions": sessions,
            **_stripe_context(),
        },
    )


def _json_body(request) -> dict:
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return request.POST.dict()


@_driver_required
@require_POST
def setup_intent(request):
    """A SetupIntent's client secret for Stripe Elements to confirm the new card with."""
    from billing.services.payments import save_card_setup_intent

    try:
        intent = save_card_setup_intent(request.user)
    except SERVICE_ERRORS as error:
        return JsonResponse({"error": service_error_text(error)}, status=400)
    return JsonResponse({"client_secret": intent["client_secret"]})


@_driver_required
@require_POST
def attach_card(request):
    """Keep the card Stripe.js just saved (its payment method id) on the driver's account."""
    from billing.services.payments import attach_payment_method

    form = AttachCardForm(_json_body(request))
    if not form.is_valid():
        return JsonResponse({"error": "That is not a card Stripe saved."}, status=400)
    try:
        method = attach_payment_method(request.user, form.cleaned_data["payment_method"])
    except SERVICE_ERRORS as error:
        return JsonResponse({"error": service_error_text(error)}, status=400)
    messages.success(request, f"Card {method.brand.title()} •••• {method.last4} saved.")
    return JsonResponse(
        {
            "id": method.pk,
            "brand": method.brand,
            "last4": method.last4,
            "exp_month": method.exp_month,
            "exp_year": method.exp_year,
            "is_default": method.is_default,
        },
        status=201,
    )


@_driver_required
@require_POST
def make_default(request, pk: int):
    from billing.services.payments import set_default_payment_method

    method = get_object_or_404(payment_methods_for(request.user), pk=pk)
    try:
        set_default_payment_method(request.user, method)
    except SERVICE_ERRORS as error:
        messages.error(request, service_error_text(error))
    else:
        messages.success(request, f"{method.brand.title()} •••• {method.last4} is now your default card.")
    return redirect("billing:payment")


@_driver_required
@require_POST
def remove_card(request, pk: int):
    from billing.services.payments import remove_payment_method

    method = get_object_or_404(payment_methods_for(request.user), pk=pk)
    try:
        remove_payment_method(user=request.user, method=method)
    except SERVICE_ERRORS as error:
        messages.error(request, service_error_text(error))
    else:
        messages.success(request, f"Card {method.brand.title()} •••• {method.last4} removed.")
    return redirect("billing:payment")


@_driver_required
@require_POST
def pay_debt(request):
    """The blocked driver pays what failed; charging is open again once it went through."""
    from billing.services import payments

    try:
        clear = payments.pay_debt(request.user)
    except SERVICE_ERRORS as error:
        messages.error(request, f"The payment did not go through: {service_error_text(error)}")
        return redirect("billing:payment")
    if clear:
        messages.success(request, "Thank you: paid. You can charge again.")
    else:
        messages.error(request, "The payment did not go through; add another card and try again.")
    return redirect("billing:payment")


@_driver_required
@require_GET
def invoice_pdf(request, pk: int):
    # Another driver's invoice is a 404, as if it did not exist.
    return pdf_response(get_object_or_404(invoices_for_driver(request.user), pk=pk))


# --- Ad-hoc payment (guests, no account) ----------------------------------------------------


def _public_charge_point(identity: str) -> ChargePoint:
    return get_object_or_404(
        ChargePoint.objects.select_related("site", "operator"),
        identity=identity,
        registration_status=RegistrationStatus.ACCEPTED,
    )


def _connector_or_404(charge_point: ChargePoint, number: int):
    connector = charge_point.connectors.filter(connector_id=number).first()
    if connector is None:
        raise Http404("No such connector.")
    return connector


def _sign_status(payment_id: int) -> str:
    return signing.Signer(salt=GUEST_STATUS_SALT).signature(str(payment_id))


def guest_status_url(payment_id: int) -> str:
    return reverse("billing:guest-status", args=[payment_id, _sign_status(payment_id)])


@require_GET
@with_stripe
def guest_pay(request, identity: str, connector: int):
    """The page a connector's QR code opens: the price, then pay by card and charge."""
    from billing.tariffs import describe, display, tariff_for

    charge_point = _public_charge_point(identity)
    connector_obj = _connector_or_404(charge_point, connector)
    tariff = tariff_for(charge_point=charge_point, connector_number=connector, user=None, at=timezone.now())
    return render(
        request,
        "billing/guest_pay.html",
        {
            "charge_point": charge_point,
            "connector": connector_obj,
            "tariff": tariff,
            "tariff_words": describe(tariff) if tariff else "",
            "tariff_rows": display(tariff)["rows"] if tariff else [],
            "form": GuestCheckoutForm(),
            "checkout_url": reverse("billing:guest-checkout", args=[charge_point.identity, connector]),
            **_stripe_context(),
        },
    )


def _client_ip(request) -> str:
    # Behind a proxy the ASGI server puts the client's address here (uvicorn --proxy-headers).
    return request.META.get("REMOTE_ADDR") or "unknown"


def over_guest_limit(request) -> bool:
    """Count one guest checkout for this address; True once it made too many this hour."""
    key = f"billing:guest-checkout:{_client_ip(request)}"
    cache.add(key, 0, timeout=3600)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=3600)
        count = 1
    return count > getattr(settings, "BILLING_GUEST_CHECKOUTS_PER_HOUR", GUEST_CHECKOUTS_PER_HOUR)


def _payment_of(result: dict) -> Payment | None:
    payment = result.get("payment")
    if isinstance(payment, Payment):
        return payment
    if result.get("payment_id"):
        return Payment.objects.filter(pk=result["payment_id"]).first()
    secret = result.get("client_secret") or ""
    intent_id = result.get("intent_id") or secret.split("_secret_")[0]
    return Payment.objects.filter(intent_id=intent_id).first() if intent_id else None


@require_POST
def guest_checkout(request, identity: str, connector: int):
    """Create the guest's PaymentIntent (a hold on the card); the page confirms it with
    Stripe.js and then polls the status URL returned here."""
    from billing.services.payments import guest_checkout as checkout

    charge_point = _public_charge_point(identity)
    _connector_or_404(charge_point, connector)
    form = GuestCheckoutForm(_json_body(request))
    if not form.is_valid():
        return JsonResponse({"error": "Please enter a valid email address."}, status=400)
    if over_guest_limit(request):
        return JsonResponse(
            {"error": "Too many payments were started from here. Please wait a while and try again."},
            status=429,
        )
    try:
        result = checkout(
            charge_point=charge_point, connector_number=connector, email=form.cleaned_data["email"]
        )
    except SERVICE_ERRORS as error:
        return JsonResponse({"error": service_error_text(error)}, status=400)
    payment_obj = _payment_of(result)
    if payment_obj is None:
        return JsonResponse({"error": "The payment could not be started. Please try again."}, status=503)
    return JsonResponse(
        {
            "client_secret": result["client_secret"],
            "payment_id": payment_obj.pk,
            "status_url": guest_status_url(payment_obj.pk),
        },
        status=201,
    )


START_FAILED_MESSAGE = "The charger could not start; your card was not charged."


def _start_failed(payment_obj: Payment) -> bool:
    """Whether the guest's remote start was sent and the charger did not take it (the hold was
    then released by ``guest_start``)."""
    from billing.services.payments import GUEST_PREFIX, START_FAILED
    from stations.models import Command

    return Command.objects.filter(
        action="RemoteStartTransaction",
        payload__idTag=f"{GUEST_PREFIX}{payment_obj.pk}",
        status__in=START_FAILED,
    ).exists()


def guest_state(payment_obj: Payment) -> dict:
    """Where a guest's payment and charging stand. Starts the charger once Stripe holds the
    money and no one started it yet (the webhook may be late or lost): ``guest_start`` checks
    the hold itself and sends the start once."""
    command = None
    if payment_obj.transaction_id is None and payment_obj.status in (
        PaymentStatus.PENDING,
        PaymentStatus.AUTHORIZED,
    ):
        # One start at a time per payment: the page polls every couple of seconds.
        lock = f"billing:guest-start:{payment_obj.pk}"
        if payment_obj.intent_id and cache.add(lock, 1, timeout=90):
            from billing.services.payments import guest_start

            try:
                command = guest_start(payment_obj)
            except SERVICE_ERRORS:
                command = None  # reported below from the payment's own state
            finally:
                cache.delete(lock)
            payment_obj.refresh_from_db()
    if payment_obj.transaction_id is not None:
        return {"state": "started", "message": "Charging started.", "transaction": payment_obj.transaction_id}
    if payment_obj.status == PaymentStatus.CANCELED and _start_failed(payment_obj):
        return {"state": "failed", "message": START_FAILED_MESSAGE}
    if payment_obj.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        reason = payment_obj.failure_message or "The payment did not go through."
        return {"state": "failed", "message": reason}
    if command is not None and command.status in (
        CommandStatus.REJECTED,
        CommandStatus.ERROR,
        CommandStatus.OFFLINE,
    ):
        return {
            "state": "failed",
            "message": f"The charger did not start ({command.get_status_display().lower()}). "
            "Only what you charge is taken from your card.",
        }
    if payment_obj.status == PaymentStatus.AUTHORIZED:
        return {"state": "starting", "message": "Paid. Starting the charger…"}
    return {"state": "waiting", "message": "Waiting for the payment…"}


@require_GET
def guest_status(request, payment_id: int, token: str):
    """Polled by the guest's page; the signed token keeps others' payments out of reach."""
    if not constant_time_compare(token, _sign_status(payment_id)):
        raise Http404("No such payment.")
    payment_obj = get_object_or_404(Payment.objects.select_related("transaction"), pk=payment_id)
    state = guest_state(payment_obj)
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse(state)
    return render(request, "billing/guest_status.html", {"state": state, "payment": payment_obj})


@login_required
@require_GET
def connector_qr(request, identity: str, connector: int):
    """An SVG QR code of a connector's guest payment page, for operators to print on it."""
    import segno

    charge_point = get_object_or_404(charge_points_for(request.user), identity=identity)
    _connector_or_404(charge_point, connector)
    path = reverse("billing:guest-pay", args=[charge_point.identity, connector])
    url = settings.SITE_URL.rstrip("/") + path if settings.SITE_URL else request.build_absolute_uri(path)
    buffer = io.BytesIO()
    segno.make(url, error="m").save(
        buffer, kind="svg", scale=8, border=2, title=f"Pay and charge at {charge_point.identity} #{connector}"
    )
    response = HttpResponse(buffer.getvalue(), content_type="image/svg+xml")
    response["Content-Disposition"] = f'inline; filename="{charge_point.identity}-{connector}.svg"'
    return response
