"""Shared REST API plumbing: pagination, errors (the project's 400 and 500 handlers too) and
tenant-scoped filter choices."""

import logging

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.db.models import ProtectedError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

logger = logging.getLogger("chargedesk.api")


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


def choices_for(selector):
    """The ``queryset`` of a django-filter filter on a related object: only what
    ``selector(user)`` lets the caller see. Another tenant's id is then refused exactly like an
    id that does not exist; with the default (every row) it would filter to an empty page
    while a made-up id is a 400, telling anyone which ids exist elsewhere."""

    def choices(request):
        # Schema generation builds the filters without a request.
        return selector(request.user if request is not None else AnonymousUser())

    return choices


def exception_handler(exc, context):
    """DRF's handler, plus: a model/service ValidationError is a 400 with field messages,
    and deleting something still in use is a 409 saying what holds it. A value the database
    cannot hold (an id past 64 bits, a day past year 9999: OverflowError on SQLite, DataError
    on PostgreSQL) came from the request: a 400, not a server error. A body over
    DATA_UPLOAD_MAX_MEMORY_SIZE is a 413, too many fields a 400, both in JSON."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, OverflowError | DataError):
        request = context["request"]
        logger.warning("%s %s: value out of range: %s", request.method, request.path, exc)
        set_rollback()
        return Response(
            {"detail": "A value in the request is out of range."}, status=status.HTTP_400_BAD_REQUEST
        )
    elif isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": f"Request body larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes refused."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    elif isinstance(exc, SuspiciousOperation):  # too many fields, a malformed multipart body, …
        return Response({"detail": str(exc) or "Bad request."}, status=status.HTTP_400_BAD_REQUEST)
    elif isinstance(exc, ProtectedError):
        names = sorted({str(o._meta.verbose_name_plural) for o in exc.protected_objects})
        return Response(
            {"detail": f"Still in use by {', '.join(names)}; remove or move those first."},
            status=status.HTTP_409_CONFLICT,
        )
    return drf_exception_handler(exc, context)


def server_error(request, *args, **kwargs):
    """The 500 handler: API clients get a generic JSON error, pages the plain 500 page; never
    a traceback (the error is logged with it by django.request)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    return defaults.server_error(request, *args, **kwargs)


def bad_request(request, exception, *args, **kwargs):
    """The 400 handler (a body or query string Django refused before any view ran): JSON for
    the API, the plain page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Bad request."}, status=status.HTTP_400_BAD_REQUEST)
    return defaults.bad_request(request, exception, *args, **kwargs)
