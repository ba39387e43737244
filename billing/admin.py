"""Django admin for billing (the platform superuser's tool, as the rest of the admin).

Price lists and accounts are edited here. What happened with money (payments, priced
sessions, Stripe events) is a record to inspect; issued invoices never change, so their pages
are read-only, and what can be done with one (mark it paid, email it, credit it) goes through
the invoicing services as an action. Staff download any document's PDF from its row.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from .models import (
    AccountToken,
    BillingAccount,
    BillingProfile,
    ChargeLine,
    CustomerGroup,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceSequence,
    Payment,
    PaymentMethod,
    PriceComponent,
    Refund,
    ReportJob,
    SessionCharge,
    StripeEvent,
    Tariff,
    TariffAssignment,
    TariffElement,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record: viewable, never added, changed or deleted by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# --- Tariffs ----------------------------------------------------------------------------------


@admin.register(CustomerGroup)
class CustomerGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "operator")
    list_filter = ("operator",)
    search_fields = ("name", "operator__name")
    list_select_related = ("operator",)
    raw_id_fields = ("members",)


class TariffElementInline(admin.StackedInline):
    model = TariffElement
    extra = 0
    show_change_link = True  # its price components are edited on the element's own page
    fields = (
        "order",
        ("start_time", "end_time"),
        ("start_date", "end_date"),
        "day_of_week",
        ("min_kwh", "max_kwh"),
        ("min_power_kw", "max_power_kw"),
        ("min_duration_s", "max_duration_s"),
    )


class TariffAssignmentInline(admin.TabularInline):
    model = TariffAssignment
    extra = 0
    raw_id_fields = ("site", "charge_point", "connector", "customer_group")
    fields = ("operator", "site", "charge_point", "connector", "customer_group", "valid_from", "valid_until")


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "operator",
        "currency",
        "tax_rate",
        "prices_include_tax",
        "is_active",
        "updated_at",
    )
    list_filter = ("is_active", "currency", "operator")
    search_fields = ("name", "operator__name", "description")
    list_select_related = ("operator",)
    inlines = [TariffElementInline, TariffAssignmentInline]


class PriceComponentInline(admin.TabularInline):
    model = PriceComponent
    extra = 1
    fields = ("type", "price", "step_size")


@admin.register(TariffElement)
class TariffElementAdmin(admin.ModelAdmin):
    list_display = ("__str__", "tariff", "order", "start_time", "end_time", "day_of_week")
    list_filter = ("tariff__operator",)
    search_fields = ("tariff__name",)
    list_select_related = ("tariff",)
    raw_id_fields = ("tariff",)
    inlines = [PriceComponentInline]


@admin.register(TariffAssignment)
class TariffAssignmentAdmin(admin.ModelAdmin):
    list_display = ("tariff", "operator", "site", "charge_point", "connector", "customer_group", "valid_from")
    list_filter = ("operator",)
    search_fields = ("tariff__name", "site__name", "charge_point__identity", "customer_group__name")
    list_select_related = ("tariff", "operator", "site", "charge_point", "connector", "customer_group")
    raw_id_fields = ("tariff", "site", "charge_point", "connector", "customer_group")


# --- Drivers and accounts ---------------------------------------------------------------------


@admin.register(BillingProfile)
class BillingProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "stripe_customer_id", "blocked_at", "blocked_reason")
    list_filter = (("blocked_at", admin.EmptyFieldListFilter),)
    search_fields = ("user__email", "stripe_customer_id")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = ("stripe_customer_id",)


@admin.register(PaymentMethod)
class PaymentMethodAdmin(admin.ModelAdmin):
    list_display = ("__str__", "user", "wallet", "exp_month", "exp_year", "is_default", "created_at")
    list_filter = ("brand", "wallet", "is_default")
    search_fields = ("user__email", "stripe_id", "last4")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = ("stripe_id", "brand", "last4", "exp_month", "exp_year", "wallet", "created_at")


class AccountTokenInline(admin.TabularInline):
    model = AccountToken
    extra = 1
    raw_id_fields = ("id_token",)
    fields = ("id_token", "status")
    readonly_fields = ("status",)

    @admin.display(description="Card status")
    def status(self, link: AccountToken) -> str:
        return link.id_token.get_status_display() if link.id_token_id else ""


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    list_display = ("name", "operator", "email", "status", "payment_terms_days", "created_at")
    list_filter = ("status", "operator")
    search_fields = ("name", "email", "vat_number", "owner__email")
    list_select_related = ("operator",)
    raw_id_fields = ("owner",)
    # OVERDUE and back is the overdue check's business: it blocks and unblocks the cards too.
    readonly_fields = ("status", "created_at")
    inlines = [AccountTokenInline]


# --- Money ------------------------------------------------------------------------------------


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ("amount", "reason", "stripe_id", "created_by", "created_at")
    readonly_fields = fields


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "provider",
        "status",
        "operator",
        "user",
        "guest_email",
        "currency",
        "amount_authorized",
        "amount_captured",
        "amount_refunded",
        "created_at",
    )
    list_filter = ("provider", "status", "operator")
    search_fields = ("intent_id", "user__email", "guest_email", "account__name")
    list_select_related = ("operator", "user")
    date_hierarchy = "created_at"
    inlines = [RefundInline]


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("id", "payment", "amount", "reason", "stripe_id", "created_by", "created_at")
    search_fields = ("stripe_id", "reason", "payment__intent_id")
    list_select_related = ("payment", "created_by")


class ChargeLineInline(ReadOnlyInline):
    model = ChargeLine
    fields = ("kind", "description", "quantity", "unit", "unit_price", "net", "tax_rate", "tax", "total")
    readonly_fields = fields


@admin.register(SessionCharge)
class SessionChargeAdmin(ReadOnlyAdmin):
    list_display = ("transaction", "tariff", "energy_kwh", "net", "tax", "total", "currency", "priced_at")
    list_filter = ("currency",)
    search_fields = ("transaction__id_tag", "transaction__charge_point__identity", "tariff__name")
    list_select_related = ("transaction", "tariff")
    date_hierarchy = "priced_at"
    inlines = [ChargeLineInline]


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ("kind", "description", "quantity", "unit", "unit_price", "net", "tax_rate", "tax", "total")
    readonly_fields = fields


@admin.register(InvoiceSequence)
class InvoiceSequenceAdmin(admin.ModelAdmin):
    list_display = ("operator", "prefix", "next_number")
    search_fields = ("operator__name", "prefix")
    list_select_related = ("operator",)
    # The counter moves only when an invoice is issued: set by hand it would leave a gap.
    readonly_fields = ("operator", "next_number")

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = (
        "number",
        "kind",
        "operator",
        "buyer_name",
        "issued_at",
        "total",
        "currency",
        "due_at",
        "paid_at",
        "emailed_at",
        "pdf_link",
    )
    list_filter = ("kind", "operator", ("paid_at", admin.EmptyFieldListFilter))
    search_fields = ("number", "user__email", "account__name")
    list_select_related = ("operator",)
    date_hierarchy = "issued_at"
    inlines = [InvoiceLineInline]
    actions = ["mark_paid", "send_email", "credit_in_full"]
    readonly_fields = (
        "number",
        "kind",
        "operator",
        "issued_at",
        "due_at",
        "period_start",
        "period_end",
        "user",
        "account",
        "payment",
        "corrects",
        "seller",
        "buyer",
        "currency",
        "net",
        "tax",
        "total",
        "paid_at",
        "emailed_at",
        "pdf_link",
    )
    fields = readonly_fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Buyer")
    def buyer_name(self, invoice: Invoice) -> str:
        buyer = invoice.buyer or {}
        return buyer.get("name") or buyer.get("email") or ""

    @admin.display(description="PDF")
    def pdf_link(self, invoice: Invoice) -> str:
        if not invoice.pk:
            return ""
        url = reverse("admin:billing_invoice_pdf", args=[invoice.pk])
        return format_html('<a href="{}">{}.pdf</a>', url, invoice.number)

    def get_urls(self):
        pdf_view = self.admin_site.admin_view(self.pdf_view)
        return [path("<int:pk>/pdf/", pdf_view, name="billing_invoice_pdf"), *super().get_urls()]

    def pdf_view(self, request, pk: int) -> HttpResponse:
        from billing import pdf
        from billing.invoicing import filename

        invoice = get_object_or_404(Invoice.objects.select_related("corrects"), pk=pk)
        if not self.has_view_permission(request, invoice):
            raise PermissionDenied
        response = HttpResponse(pdf.render(invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{filename(invoice)}"'
        return response

    @admin.action(description="Mark the selected invoices paid (unblocks their accounts' cards)")
    def mark_paid(self, request, queryset):
        from billing.accounts import mark_paid

        unpaid = queryset.filter(paid_at__isnull=True).exclude(kind=InvoiceKind.CREDIT_NOTE)
        count = 0
        for invoice in unpaid:
            mark_paid(invoice)
            count += 1
        self.message_user(request, f"{count} invoice(s) marked paid.", messages.SUCCESS)

    @admin.action(description="Email the selected documents to their buyers (again)")
    def send_email(self, request, queryset):
        from billing.invoicing import InvoicingError, email_invoice

        sent = 0
        for invoice in queryset.select_related("operator", "corrects"):
            try:
                email_invoice(invoice)
                sent += 1
            except InvoicingError as error:
                self.message_user(request, str(error), messages.WARNING)
        self.message_user(request, f"{sent} document(s) emailed.", messages.SUCCESS)

    @admin.action(description="Cancel the selected invoices with a full credit note")
    def credit_in_full(self, request, queryset):
        from billing.invoicing import InvoicingError, credit

        issued = []
        for invoice in queryset:
            try:
                note = credit(invoice, reason=f"Cancelled in the admin by {request.user}.")
            except InvoicingError as error:
                self.message_user(request, str(error), messages.WARNING)
                continue
            issued.append(note.number)
        if issued:
            self.message_user(request, f"Credit notes issued: {', '.join(issued)}.", messages.SUCCESS)


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "type", "received_at")
    list_filter = ("type",)
    search_fields = ("event_id", "type")
    date_hierarchy = "received_at"


@admin.register(ReportJob)
class ReportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "operator", "requested_by", "status", "progress", "created_at", "finished_at")
    list_filter = ("status", "operator")
    search_fields = ("requested_by__email", "error")
    list_select_related = ("operator", "requested_by")
    readonly_fields = (
        "operator",
        "requested_by",
        "params",
        "status",
        "progress",
        "result",
        "csv_file",
        "pdf_file",
        "error",
        "created_at",
        "finished_at",
    )

    def has_add_permission(self, request) -> bool:
        return False
