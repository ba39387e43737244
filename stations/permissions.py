"""Who may do what: operator staff see their operator's network; drivers only their own data."""

from django.contrib.auth.mixins import AccessMixin
from rest_framework import permissions


class OperatorStaffRequiredMixin(AccessMixin):
    """Pages for an operator's staff (admin or technician). Others get 403."""

    admin_only = False

    def dispatch(self, request, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return self.handle_no_permission()
        allowed = user.is_operator_admin if self.admin_only else user.is_operator_staff
        if not allowed:
            self.raise_exception = True
            return self.handle_no_permission()
        return super().dispatch(request, *args, **kwargs)


class DriverRequiredMixin(AccessMixin):
    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not request.user.is_driver:
            self.raise_exception = True
            return self.handle_no_permission()
        return super().dispatch(request, *args, **kwargs)


class IsOperatorStaff(permissions.BasePermission):
    """Read for technicians and operator admins; writes for operator admins only."""

    message = "Only an operator's staff may use this endpoint."

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated and user.is_operator_staff):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        if not user.is_operator_admin:
            self.message = "Only an operator admin may change this."
            return False
        return True


class IsDriver(permissions.BasePermission):
    message = "Only drivers have this."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_driver)
