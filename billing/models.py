"""Billing: what charging costs (tariffs, after the OCPI 2.2.1 tariff model), what a session
cost (``SessionCharge`` and its lines, priced once), how it is paid (a payment provider per
method: Stripe card or wallet with pre-authorisation and capture, or an RFID card on a
postpaid account), and the paper trail (invoices numbered without gaps per operator, frozen
once issued, corrected by credit notes), plus report jobs.

Money is ``Decimal`` with the currency beside it; amounts are rounded once, per line, by
``billing.pricing``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from sessions.models import IdToken, Transaction
from stations.models import ChargePoint, Connector, Operator, Site

MONEY = {"max_digits": 14, "decimal_places": 2}
PRICE = {"max_digits": 14, "decimal_places": 5}  # unit prices keep more precision than totals


class CustomerGroup(models.Model):
    """Drivers who get a tariff of their own (members, fleet customers, employees)."""

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="customer_groups")
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="customer_groups")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["operator", "name"], name="billing_group_name_unique")]

    def __str__(self) -> str:
        return self.name


class Tariff(models.Model):
    """A price list (OCPI ``Tariff``): elements of price components under restrictions, a
    minimum and maximum price, the tax rate and whether the prices include it."""

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="tariffs")
    name = models.CharField(max_length=100)
    currency = models.CharField(max_length=3, default="EUR", help_text="ISO 4217 code.")
    tax_rate = models.DecimalField(
        max_digits=5, decimal_places=2, default=0, help_text="Percent, e.g. 21.00."
    )
    prices_include_tax = models.BooleanField(
        default=True, help_text="Prices are as drivers see them (tax included), or net."
    )
    min_price = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="A session costs at least this."
    )
    max_price = models.DecimalField(**MONEY, null=True, blank=True, help_text="A session costs at most this.")
    idle_grace_minutes = models.PositiveIntegerField(
        default=0, help_text="Idle (parking) time is free for this long after charging ends."
    )
    idle_fee_cap = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="The idle fee is at most this."
    )
    description = models.TextField(blank=True, help_text="Shown to drivers beside the generated wording.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["operator", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.currency})"


class DayOfWeek(models.TextChoices):
    MONDAY = "MONDAY", "Monday"
    TUESDAY = "TUESDAY", "Tuesday"
    WEDNESDAY = "WEDNESDAY", "Wednesday"
    THURSDAY = "THURSDAY", "Thursday"
    FRIDAY = "FRIDAY", "Friday"
    SATURDAY = "SATURDAY", "Saturday"
    SUNDAY = "SUNDAY", "Sunday"


class TariffElement(models.Model):
    """OCPI ``TariffElement``: price components that apply while all its restrictions hold.
    Times of day and dates are the site's local time. The first element (by ``order``) whose
    restrictions hold prices a dimension."""

    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="elements")
    order = models.PositiveIntegerField(default=0)
    start_time = models.TimeField(null=True, blank=True, help_text="Local time of day, from (inclusive).")
    end_time = models.TimeField(null=True, blank=True, help_text="Local time of day, until (exclusive).")
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True, help_text="Exclusive.")
    day_of_week = models.JSONField(
        default=list, blank=True, help_text='Empty: every day; else ["MONDAY", …].'
    )
    min_kwh = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    max_kwh = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    min_power_kw = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    max_power_kw = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    min_duration_s = models.PositiveIntegerField(null=True, blank=True)
    max_duration_s = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["tariff", "order", "pk"]

    def __str__(self) -> str:
        return f"{self.tariff} element {self.order}"


class ComponentType(models.TextChoices):
    ENERGY = "ENERGY", "Energy (per kWh)"
    TIME = "TIME", "Charging time (per hour)"
    PARKING_TIME = "PARKING_TIME", "Plugged in, not charging (per hour)"
    FLAT = "FLAT", "Session fee"


class PriceComponent(models.Model):
    """OCPI ``PriceComponent``: a price per unit of one dimension, billed in steps
    (``step_size``: Wh for energy, seconds for time, 1 for flat)."""

    element = models.ForeignKey(TariffElement, on_delete=models.CASCADE, related_name="components")
    type = models.CharField(max_length=14, choices=ComponentType.choices)
    price = models.DecimalField(
        **PRICE, help_text="Per kWh, per hour or per session, as the tariff states it."
    )
    step_size = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.type} {self.price}"


class TariffAssignment(models.Model):
    """Where and to whom a tariff applies, and when: the most specific place wins (connector,
    then charge point, then site, then the operator), a customer group's over everyone's."""

    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="assignments")
    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    charge_point = models.ForeignKey(
        ChargePoint, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    customer_group = models.ForeignKey(
        CustomerGroup, on_delete=models.CASCADE, null=True, blank=True, related_name="assignments"
    )
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["operator", "charge_point"])]

    def __str__(self) -> str:
        where = self.connector or self.charge_point or self.site or self.operator
        return f"{self.tariff} at {where}"


class BillingProfile(models.Model):
    """A driver's standing with billing: their Stripe customer, and a block on starting to
    charge while a payment is owed."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="billing")
    stripe_customer_id = models.CharField(max_length=64, blank=True, db_index=True)
    blocked_at = models.DateTimeField(null=True, blank=True)
    blocked_reason = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"billing of {self.user}"


class PaymentMethod(models.Model):
    """A card (or a wallet's card) saved with a SetupIntent; only Stripe's id and what to show."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="payment_methods"
    )
    stripe_id = models.CharField(max_length=64, unique=True)
    brand = models.CharField(max_length=20, blank=True)
    last4 = models.CharField(max_length=4, blank=True)
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    wallet = models.CharField(
        max_length=20, blank=True, help_text="apple_pay, google_pay, … when from a wallet."
    )
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4}"


class AccountStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    OVERDUE = "overdue", "Overdue (cards blocked)"
    CLOSED = "closed", "Closed"


class BillingAccount(models.Model):
    """A postpaid account (a company, a fleet, a household) owning RFID cards; its sessions
    land on a monthly invoice; overdue, its cards are blocked."""

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="billing_accounts")
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="billing_accounts",
    )
    email = models.EmailField(help_text="Where invoices go.")
    address = models.TextField(blank=True)
    vat_number = models.CharField(max_length=40, blank=True)
    payment_terms_days = models.PositiveIntegerField(default=14)
    status = models.CharField(max_length=10, choices=AccountStatus.choices, default=AccountStatus.ACTIVE)
    id_tokens = models.ManyToManyField(IdToken, through="AccountToken", related_name="billing_accounts")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class AccountToken(models.Model):
    account = models.ForeignKey(BillingAccount, on_delete=models.CASCADE)
    id_token = models.OneToOneField(IdToken, on_delete=models.CASCADE, related_name="account_link")

    def __str__(self) -> str:
        return f"{self.id_token} on {self.account}"


class PaymentProvider(models.TextChoices):
    STRIPE = "stripe", "Card or wallet (Stripe)"
    ACCOUNT = "account", "Postpaid account"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    AUTHORIZED = "authorized", "Pre-authorised"
    CAPTURED = "captured", "Captured"
    CANCELED = "canceled", "Cancelled (nothing to pay)"
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"
    ON_ACCOUNT = "on_account", "On the monthly invoice"


class Payment(models.Model):
    """How one session (or a guest's ad-hoc charge) is paid."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="payments")
    transaction = models.OneToOneField(
        Transaction, on_delete=models.PROTECT, null=True, blank=True, related_name="payment"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="payments"
    )
    guest_email = models.EmailField(blank=True, help_text="Ad-hoc payment without an account.")
    account = models.ForeignKey(
        BillingAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="payments"
    )
    provider = models.CharField(max_length=10, choices=PaymentProvider.choices)
    intent_id = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="Stripe PaymentIntent id."
    )
    status = models.CharField(max_length=12, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    currency = models.CharField(max_length=3)
    amount_authorized = models.DecimalField(**MONEY, default=0)
    amount_captured = models.DecimalField(**MONEY, default=0)
    amount_refunded = models.DecimalField(**MONEY, default=0)
    attempts = models.PositiveIntegerField(default=0)
    failure_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["intent_id"], condition=~Q(intent_id=""), name="billing_one_intent"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} payment #{self.pk} {self.status}"


class Refund(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(**MONEY)
    reason = models.CharField(max_length=300, blank=True)
    stripe_id = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"refund {self.amount} of {self.payment_id}"


class SessionCharge(models.Model):
    """What one session cost, priced once (a second pricing of the same session is refused by
    the one-to-one key): the tariff used and the priced lines."""

    transaction = models.OneToOneField(Transaction, on_delete=models.PROTECT, related_name="charge")
    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    currency = models.CharField(max_length=3)
    net = models.DecimalField(**MONEY)
    tax = models.DecimalField(**MONEY)
    total = models.DecimalField(**MONEY)
    energy_kwh = models.DecimalField(max_digits=12, decimal_places=3)
    priced_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.total} {self.currency} for session {self.transaction_id}"


class LineKind(models.TextChoices):
    ENERGY = "energy", "Energy"
    TIME = "time", "Charging time"
    PARKING = "parking", "Plugged-in time"
    IDLE = "idle", "Idle fee"
    FLAT = "flat", "Session fee"
    ADJUSTMENT = "adjustment", "Minimum/maximum price"


class ChargeLine(models.Model):
    charge = models.ForeignKey(SessionCharge, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(max_length=12, choices=LineKind.choices)
    description = models.CharField(max_length=200)
    quantity = models.DecimalField(max_digits=14, decimal_places=4)
    unit = models.CharField(max_length=10, help_text="kWh, h, session")
    unit_price = models.DecimalField(**PRICE, help_text="Net of tax.")
    net = models.DecimalField(**MONEY)
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2)
    tax = models.DecimalField(**MONEY)
    total = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["charge", "pk"]

    def __str__(self) -> str:
        return f"{self.description}: {self.total}"


class InvoiceKind(models.TextChoices):
    RECEIPT = "receipt", "Receipt"
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"


class InvoiceSequence(models.Model):
    """The next number of an operator's invoices (credit notes share it): taken with the row
    locked, in the transaction that issues the invoice, so numbers have no gaps."""

    operator = models.OneToOneField(Operator, on_delete=models.CASCADE, related_name="invoice_sequence")
    prefix = models.CharField(
        max_length=20, blank=True, help_text="Defaults to the operator's slug in capitals."
    )
    next_number = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.prefix or self.operator.slug.upper()}-{self.next_number:06d}"


class Invoice(models.Model):
    """An issued invoice, receipt or credit note: frozen (parties and lines are copied, not
    referenced); a correction is a credit note pointing at it."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="invoices")
    kind = models.CharField(max_length=12, choices=InvoiceKind.choices)
    number = models.CharField(max_length=40)
    sequence_number = models.PositiveIntegerField()
    issued_at = models.DateTimeField()
    due_at = models.DateTimeField(null=True, blank=True)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="invoices"
    )
    account = models.ForeignKey(
        BillingAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices"
    )
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices"
    )
    corrects = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="credit_notes"
    )
    seller = models.JSONField(help_text="The operator's details as they were when issued.")
    buyer = models.JSONField(help_text="The customer's details as they were when issued.")
    currency = models.CharField(max_length=3)
    net = models.DecimalField(**MONEY)
    tax = models.DecimalField(**MONEY)
    total = models.DecimalField(**MONEY)
    paid_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["operator", "sequence_number"], name="billing_invoice_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.number}"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    transaction = models.ForeignKey(
        Transaction, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=LineKind.choices)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=14, decimal_places=4)
    unit = models.CharField(max_length=10)
    unit_price = models.DecimalField(**PRICE)
    net = models.DecimalField(**MONEY)
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2)
    tax = models.DecimalField(**MONEY)
    total = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["invoice", "pk"]

    def __str__(self) -> str:
        return self.description


class StripeEvent(models.Model):
    """A Stripe webhook event already handled: the same event id twice changes nothing."""

    event_id = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=64)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class ReportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ReportJob(models.Model):
    """A long report run by a worker; the page polls its progress and offers the files."""

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=8, choices=ReportStatus.choices, default=ReportStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent.")
    result = models.JSONField(null=True, blank=True)
    csv_file = models.FileField(upload_to="reports/", blank=True)
    pdf_file = models.FileField(upload_to="reports/", blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"report #{self.pk} {self.status}"


class BlockKind(models.TextChoices):
    PAYMENT = "payment", "A failed card payment"
    OVERDUE = "overdue", "An overdue account"


class TokenBlock(models.Model):
    """An ID token billing blocked (it was Accepted): only these are accepted again when the
    debt is paid, so a card blocked for another reason (lost, stolen) stays blocked."""

    id_token = models.OneToOneField(IdToken, on_delete=models.CASCADE, related_name="billing_block")
    kind = models.CharField(max_length=8, choices=BlockKind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.id_token} blocked for {self.kind}"
