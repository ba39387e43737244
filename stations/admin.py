"""Django admin for the charger network and its people.

The admin is the platform superuser's tool: it is not scoped to one operator (operator staff
work in the ChargeDesk pages). What chargers report (connection, status, boot data) is shown
read-only; a charger's password can be set here but its hash is never shown.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import ngettext

from .models import ChargePoint, Connector, Evse, Operator, RegistrationStatus, Site, StatusChange, User
from .services import CHARGER_PASSWORD_MAX, CHARGER_PASSWORD_MIN, validate_charger_password

# --- People ---------------------------------------------------------------------------------


class UserCreationAdminForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "role", "operator")

    def clean_email(self):
        email = User.objects.normalize_email(self.cleaned_data.get("email"))
        if email and User.objects.filter(email__iexact=email).exists():
            raise ValidationError("A user with this email address already exists.")
        return email


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "phone")}),
        ("Role", {"fields": ("role", "operator")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "role", "operator", "password1", "password2"),
            },
        ),
    )
    list_display = ("email", "first_name", "last_name", "role", "operator", "is_active", "is_staff")
    list_filter = ("role", "operator", "is_staff", "is_superuser", "is_active")
    list_select_related = ("operator",)
    search_fields = ("email", "first_name", "last_name", "phone")
    ordering = ("email",)
    readonly_fields = ("last_login", "date_joined")
    autocomplete_fields = ("operator",)


# --- Operators and sites --------------------------------------------------------------------


class SiteInline(admin.TabularInline):
    model = Site
    fields = ("name", "city", "country", "is_public")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Operator)
class OperatorAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "country",
        "currency",
        "email",
        "site_count",
        "charge_point_count",
        "accept_unknown_chargers",
    )
    list_filter = ("country", "currency", "accept_unknown_chargers")
    search_fields = ("name", "slug", "legal_name", "email", "vat_number")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created_at",)
    fieldsets = (
        (None, {"fields": ("name", "slug", "legal_name", "vat_number")}),
        ("Contact", {"fields": ("email", "phone", "address", "country")}),
        ("Settings", {"fields": ("currency", "accept_unknown_chargers", "created_at")}),
    )
    inlines = (SiteInline,)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                site_total=Count("sites", distinct=True),
                charge_point_total=Count("charge_points", distinct=True),
            )
        )

    @admin.display(description="sites", ordering="site_total")
    def site_count(self, obj):
        return obj.site_total

    @admin.display(description="charge points", ordering="charge_point_total")
    def charge_point_count(self, obj):
        return obj.charge_point_total


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "operator", "city", "country", "is_public", "charge_point_count", "updated_at")
    list_filter = ("operator", "country", "is_public")
    list_select_related = ("operator",)
    search_fields = ("name", "city", "address", "postal_code")
    autocomplete_fields = ("operator",)
    readonly_fields = ("charge_points_link", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("operator", "name", "is_public", "charge_points_link")}),
        ("Location", {"fields": ("address", "postal_code", "city", "country", "latitude", "longitude")}),
        ("Time", {"fields": ("time_zone", "created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(charge_point_total=Count("charge_points"))

    @admin.display(description="charge points", ordering="charge_point_total")
    def charge_point_count(self, obj):
        return obj.charge_point_total

    # A link rather than an inline: a site of a load test holds thousands of charge points.
    @admin.display(description="charge points")
    def charge_points_link(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        url = reverse("admin:stations_chargepoint_changelist") + "?" + urlencode({"site__id__exact": obj.pk})
        return format_html('<a href="{}">{} charge points</a>', url, obj.charge_points.count())


# --- Charge points --------------------------------------------------------------------------

# Live state as the charger reports it (OCPP messages), never edited by hand.
CHARGER_STATE_FIELDS = (
    "is_connected",
    "connected_at",
    "last_seen_at",
    "last_boot_at",
    "status",
    "error_code",
    "status_updated_at",
)
# What BootNotification reports; editable until the charger has booted once.
BOOT_FIELDS = (
    "vendor",
    "model",
    "serial_number",
    "firmware_version",
    "iccid",
    "imsi",
    "meter_type",
    "meter_serial_number",
)
CONNECTOR_STATE_FIELDS = ("status", "error_code", "status_info", "vendor_error_code", "status_updated_at")


class ConnectorInlineForm(forms.ModelForm):
    class Meta:
        model = Connector
        fields = ("connector_id", "standard", "power_type", "max_power_kw")

    def save(self, commit=True):
        connector = super().save(commit=False)
        if connector.evse_id is None:
            # Under OCPP 1.6 each connector is its own EVSE with the same number.
            connector.evse, _ = Evse.objects.get_or_create(
                charge_point=connector.charge_point, evse_id=connector.connector_id
            )
        if commit:
            connector.save()
        return connector


class ConnectorInline(admin.TabularInline):
    model = Connector
    fk_name = "charge_point"
    form = ConnectorInlineForm
    fields = (
        "connector_id",
        "evse_number",
        "standard",
        "power_type",
        "max_power_kw",
        *CONNECTOR_STATE_FIELDS,
    )
    readonly_fields = ("evse_number", *CONNECTOR_STATE_FIELDS)
    extra = 0
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("evse")

    @admin.display(description="EVSE")
    def evse_number(self, obj):
        return obj.evse.evse_id if obj.pk and obj.evse_id else "—"


class ChargePointAdminForm(forms.ModelForm):
    new_password = forms.CharField(
        label="Set charger password",
        required=False,
        strip=False,
        min_length=CHARGER_PASSWORD_MIN,
        max_length=CHARGER_PASSWORD_MAX,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=f"{CHARGER_PASSWORD_MIN} to {CHARGER_PASSWORD_MAX} characters, the OCPP Basic Auth "
        "password the charger sends. Leave empty to keep the current one. "
        "It is stored hashed and cannot be shown.",
    )

    class Meta:
        model = ChargePoint
        # Never password_hash: the new_password field above sets it.
        fields = (
            "identity",
            "name",
            "operator",
            "site",
            "registration_status",
            "protocol",
            "heartbeat_interval",
        )

    def clean_new_password(self):
        password = self.cleaned_data.get("new_password") or ""
        if password:
            try:
                validate_charger_password(password)
            except ValidationError as exc:
                raise ValidationError(exc.message_dict["password"]) from exc
        return password


@admin.register(ChargePoint)
class ChargePointAdmin(admin.ModelAdmin):
    form = ChargePointAdminForm
    list_display = (
        "identity",
        "operator",
        "site",
        "vendor",
        "model",
        "firmware_version",
        "is_connected",
        "last_seen_at",
        "registration_status",
        "status",
    )
    list_filter = (
        "registration_status",
        "is_connected",
        "status",
        "protocol",
        "operator",
        "site",
        "vendor",
    )
    list_select_related = ("operator", "site")
    search_fields = ("identity", "name", "serial_number", "vendor", "model")
    autocomplete_fields = ("operator", "site")
    actions = ("approve_charge_points", "reject_charge_points")
    inlines = (ConnectorInline,)

    def get_fieldsets(self, request, obj=None):
        return (
            (None, {"fields": ("identity", "name", "operator", "site", "registration_status", "protocol")}),
            ("Security", {"fields": ("password_set", "new_password")}),
            ("Hardware", {"fields": BOOT_FIELDS}),
            ("Connection", {"fields": ("heartbeat_interval", *CHARGER_STATE_FIELDS)}),
            ("Record", {"fields": ("created_at", "updated_at")}),
        )

    def get_readonly_fields(self, request, obj=None):
        fields = ["password_set", *CHARGER_STATE_FIELDS, "created_at", "updated_at"]
        if obj is not None and obj.last_boot_at:
            fields += BOOT_FIELDS
        return fields

    def lookup_allowed(self, lookup, value, request=None):
        # A filter on the hash in the query string would let staff guess it byte by byte.
        return not lookup.startswith("password") and super().lookup_allowed(lookup, value, request)

    @admin.display(description="password set", boolean=True)
    def password_set(self, obj):
        return bool(obj and obj.has_password)

    def save_model(self, request, obj, form, change):
        password = form.cleaned_data.get("new_password")
        if password:
            obj.set_password(password)
        super().save_model(request, obj, form, change)
        if password:
            messages.info(request, f"The charger password of {obj.identity} was set.")

    def _set_registration(self, request, queryset, status, verb):
        pending = queryset.filter(registration_status=RegistrationStatus.PENDING)
        done = pending.update(registration_status=status, updated_at=timezone.now())
        skipped = queryset.count() - done
        self.message_user(
            request,
            ngettext("%(n)d charge point %(verb)s.", "%(n)d charge points %(verb)s.", done)
            % {"n": done, "verb": verb},
            messages.SUCCESS if done else messages.WARNING,
        )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(n)d was not pending and was left as it was.",
                    "%(n)d were not pending and were left as they were.",
                    skipped,
                )
                % {"n": skipped},
                messages.WARNING,
            )

    @admin.action(description="Approve selected pending charge points (Accepted)", permissions=["change"])
    def approve_charge_points(self, request, queryset):
        self._set_registration(request, queryset, RegistrationStatus.ACCEPTED, "approved")

    @admin.action(description="Reject selected pending charge points", permissions=["change"])
    def reject_charge_points(self, request, queryset):
        self._set_registration(request, queryset, RegistrationStatus.REJECTED, "rejected")


class EvseConnectorInline(admin.TabularInline):
    model = Connector
    fk_name = "evse"
    fields = ("connector_id", "standard", "power_type", "max_power_kw", "status", "error_code")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Evse)
class EvseAdmin(admin.ModelAdmin):
    list_display = ("__str__", "charge_point", "evse_id", "connector_count")
    list_filter = ("charge_point__operator",)
    list_select_related = ("charge_point",)
    search_fields = ("charge_point__identity",)
    autocomplete_fields = ("charge_point",)
    inlines = (EvseConnectorInline,)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(connector_total=Count("connectors"))

    @admin.display(description="connectors", ordering="connector_total")
    def connector_count(self, obj):
        return obj.connector_total


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "charge_point",
        "connector_id",
        "standard",
        "power_type",
        "max_power_kw",
        "status",
        "error_code",
        "status_updated_at",
    )
    list_filter = ("status", "standard", "power_type", "error_code", "charge_point__operator")
    list_select_related = ("charge_point",)
    search_fields = ("charge_point__identity",)
    autocomplete_fields = ("charge_point", "evse")
    readonly_fields = CONNECTOR_STATE_FIELDS
    fields = (
        "charge_point",
        "evse",
        "connector_id",
        "standard",
        "power_type",
        "max_power_kw",
        *readonly_fields,
    )


@admin.register(StatusChange)
class StatusChangeAdmin(admin.ModelAdmin):
    """The status history: what the chargers said, kept as it came."""

    list_display = (
        "timestamp",
        "charge_point",
        "connector_number",
        "status",
        "error_code",
        "info",
        "vendor_error_code",
        "source",
        "received_at",
    )
    list_filter = ("status", "error_code", "source", "charge_point__operator")
    list_select_related = ("charge_point",)
    search_fields = ("charge_point__identity", "info", "vendor_error_code")
    date_hierarchy = "timestamp"
    # The table grows with every report; counting all of it on each page costs more than it tells.
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
