"""REST API v1 for billing. Drivers: their saved cards (adding one with a SetupIntent), their
invoices and receipts as data and PDF, their standing (blocked? pay the debt). Operators:
their invoices, and refunds of payments (admins only).

Thin: the writes are ``billing.services.payments``; the reads are shared with the pages
(``billing.views``), so a page and the app always show the same.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from stations.permissions import IsDriver, IsOperatorStaff
from stations.selectors import operators_for

from .models import Invoice, InvoiceLine, Payment, PaymentMethod, Refund
from .views import (
    SERVICE_ERRORS,
    block_of,
    invoices_for_driver,
    invoices_for_operator_user,
    payment_methods_for,
    pdf_response,
    service_error_text,
)

PDF_RESPONSE = OpenApiResponse(OpenApiTypes.BINARY, description="The invoice as a PDF file.")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Why, for people.")


def _refused(error: Exception, code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"detail": service_error_text(error)}, status=code)


# --- Payment methods ------------------------------------------------------------------------


class PaymentMethodSerializer(serializers.ModelSerializer):
    class Meta:
        model = PaymentMethod
        fields = ["id", "brand", "last4", "exp_month", "exp_year", "wallet", "is_default", "created_at"]
        read_only_fields = fields


class AttachPaymentMethodSerializer(serializers.Serializer):
    payment_method = serializers.RegexField(
        r"^pm_[A-Za-z0-9_]+$",
        max_length=64,
        help_text="The id of the payment method Stripe returned when the SetupIntent was confirmed.",
    )


class SetupIntentSerializer(serializers.Serializer):
    client_secret = serializers.CharField(help_text="For Stripe's SDK to confirm the SetupIntent with.")


@extend_schema_view(
    list=extend_schema(summary="Your saved cards, the default first"),
    retrieve=extend_schema(summary="One of your saved cards"),
    destroy=extend_schema(summary="Remove a saved card", responses={204: None, 400: ErrorSerializer}),
)
class PaymentMethodViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """A driver's saved cards. To add one: POST ``setup-intent/`` for a client secret, confirm it
    with Stripe's SDK and the card, then POST the payment method id Stripe returned."""

    serializer_class = PaymentMethodSerializer
    permission_classes = [IsDriver]
    filterset_fields: list[str] = []
    ordering_fields: list[str] = []
    search_fields: list[str] = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PaymentMethod.objects.none()
        return payment_methods_for(self.request.user)

    @extend_schema(
        summary="Keep a card Stripe saved",
        request=AttachPaymentMethodSerializer,
        responses={201: PaymentMethodSerializer, 400: ErrorSerializer},
    )
    def create(self, request, *args, **kwargs):
        from billing.services.payments import attach_payment_method

        data = AttachPaymentMethodSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            method = attach_payment_method(request.user, data.validated_data["payment_method"])
        except SERVICE_ERRORS as error:
            return _refused(error)
        return Response(PaymentMethodSerializer(method).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        from billing.services.payments import remove_payment_method

        try:
            remove_payment_method(user=request.user, method=self.get_object())
        except SERVICE_ERRORS as error:
            return _refused(error)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Start saving a card",
        request=None,
        responses={201: SetupIntentSerializer, 400: ErrorSerializer},
    )
    @action(detail=False, methods=["post"], url_path="setup-intent")
    def setup_intent(self, request):
        from billing.services.payments import save_card_setup_intent

        try:
            intent = save_card_setup_intent(request.user)
        except SERVICE_ERRORS as error:
            return _refused(error)
        return Response({"client_secret": intent["client_secret"]}, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Make this card the default",
        request=None,
        responses={200: PaymentMethodSerializer, 400: ErrorSerializer},
    )
    @action(detail=True, methods=["post"])
    def default(self, request, pk=None):
        from billing.services.payments import set_default_payment_method

        method = self.get_object()
        try:
            set_default_payment_method(request.user, method)
        except SERVICE_ERRORS as error:
            return _refused(error)
        method.refresh_from_db()
        return Response(PaymentMethodSerializer(method).data)


# --- Invoices -------------------------------------------------------------------------------


class InvoiceLineSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(read_only=True, help_text="energy, time, parking, idle, flat or adjustment.")

    class Meta:
        model = InvoiceLine
        fields = [
            "kind",
            "description",
            "quantity",
            "unit",
            "unit_price",
            "net",
            "tax_rate",
            "tax",
            "total",
            "transaction",
        ]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    # Plain strings in the schema: enums named "kind" would collide with other apps' enums.
    kind = serializers.CharField(read_only=True, help_text="receipt, invoice or credit_note.")
    corrects = serializers.CharField(
        source="corrects.number",
        read_only=True,
        allow_null=True,
        help_text="The invoice a credit note corrects.",
    )
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "kind",
            "number",
            "issued_at",
            "due_at",
            "period_start",
            "period_end",
            "currency",
            "net",
            "tax",
            "total",
            "paid_at",
            "corrects",
            "seller",
            "buyer",
            "lines",
        ]
        read_only_fields = fields


class _InvoiceViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = InvoiceSerializer
    filterset_fields = ["kind", "currency"]
    ordering_fields = ["issued_at", "total"]
    ordering = ["-issued_at", "-pk"]
    search_fields = ["number"]

    def scoped(self):
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Invoice.objects.none()
        return self.scoped().select_related("corrects").prefetch_related("lines")

    @extend_schema(summary="The invoice as PDF", responses={(200, "application/pdf"): PDF_RESPONSE})
    @action(detail=True, methods=["get"])
    def pdf(self, request, pk=None):
        return pdf_response(self.get_object())


@extend_schema_view(
    list=extend_schema(summary="Your invoices and receipts, newest first"),
    retrieve=extend_schema(summary="One of your invoices or receipts"),
)
class MyInvoiceViewSet(_InvoiceViewSet):
    """A driver's invoices, receipts and credit notes (and those of postpaid accounts they own)."""

    permission_classes = [IsDriver]

    def scoped(self):
        return invoices_for_driver(self.request.user)


@extend_schema_view(
    list=extend_schema(summary="The operator's invoices, newest first"),
    retrieve=extend_schema(summary="One of the operator's invoices"),
)
class OperatorInvoiceViewSet(_InvoiceViewSet):
    """Every invoice, receipt and credit note the operator issued."""

    permission_classes = [IsOperatorStaff]

    def scoped(self):
        return invoices_for_operator_user(self.request.user)


# --- The driver's standing ------------------------------------------------------------------


class BillingStatusSerializer(serializers.Serializer):
    blocked = serializers.BooleanField(help_text="True: you cannot start charging until you pay.")
    reason = serializers.CharField(allow_blank=True, help_text="Why you are blocked.")
    can_start = serializers.BooleanField(help_text="Whether you may start charging now.")
    can_start_reason = serializers.CharField(allow_blank=True, help_text="Why not, when you may not.")


def _standing(user) -> dict:
    from billing.services.payments import can_start

    reason = block_of(user)
    allowed, why = can_start(user)
    return {
        "blocked": reason is not None,
        "reason": reason or "",
        "can_start": allowed,
        "can_start_reason": "" if allowed else why,
    }


class BillingStatusView(APIView):
    """Whether the driver may charge, and why not."""

    permission_classes = [IsDriver]

    @extend_schema(summary="Your billing standing", responses={200: BillingStatusSerializer})
    def get(self, request):
        return Response(_standing(request.user))


class PayDebtView(APIView):
    """Pay what failed (with the default card); charging is open again once it went through."""

    permission_classes = [IsDriver]

    @extend_schema(
        summary="Pay your debt",
        request=None,
        responses={200: BillingStatusSerializer, 402: ErrorSerializer},
    )
    def post(self, request):
        from billing.services.payments import pay_debt

        try:
            clear = pay_debt(request.user)
        except SERVICE_ERRORS as error:
            return _refused(error, status.HTTP_402_PAYMENT_REQUIRED)
        if hasattr(request.user, "billing"):
            request.user.billing.refresh_from_db()
        standing = _standing(request.user)
        if not clear:
            reason = "The payment did not go through; add another card and try again."
            return Response({"detail": reason}, status=status.HTTP_402_PAYMENT_REQUIRED)
        return Response(standing)


# --- Refunds (operator admins) --------------------------------------------------------------


class IsOperatorAdmin(BasePermission):
    message = "Only an operator admin may do this."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_operator_admin)


class PaymentSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text="The payment's state.")
    provider = serializers.CharField(read_only=True, help_text="stripe or account.")

    class Meta:
        model = Payment
        fields = [
            "id",
            "provider",
            "status",
            "transaction",
            "currency",
            "amount_authorized",
            "amount_captured",
            "amount_refunded",
            "created_at",
        ]
        read_only_fields = fields


class RefundRequestSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    reason = serializers.CharField(max_length=300)


class RefundSerializer(serializers.ModelSerializer):
    payment = PaymentSerializer(read_only=True)

    class Meta:
        model = Refund
        fields = ["id", "amount", "reason", "stripe_id", "created_at", "payment"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(summary="The operator's payments, newest first"),
    retrieve=extend_schema(summary="One of the operator's payments"),
)
class OperatorPaymentViewSet(viewsets.ReadOnlyModelViewSet):
    """Payments for the operator's sessions; admins refund them."""

    serializer_class = PaymentSerializer
    permission_classes = [IsOperatorStaff]
    filterset_fields = ["status", "provider"]
    ordering_fields = ["created_at"]
    ordering = ["-created_at", "-pk"]
    search_fields: list[str] = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Payment.objects.none()
        return Payment.objects.filter(operator__in=operators_for(self.request.user))

    @extend_schema(
        summary="Refund (part of) a payment",
        request=RefundRequestSerializer,
        responses={201: RefundSerializer, 400: ErrorSerializer},
    )
    @action(detail=True, methods=["post"], permission_classes=[IsOperatorAdmin])
    def refund(self, request, pk=None):
        from billing.services.payments import refund

        payment = self.get_object()
        data = RefundRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            done = refund(
                payment=payment,
                amount=data.validated_data["amount"],
                reason=data.validated_data["reason"],
                by=request.user,
            )
        except SERVICE_ERRORS as error:
            return _refused(error)
        return Response(RefundSerializer(done).data, status=status.HTTP_201_CREATED)
