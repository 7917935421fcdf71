"""One bridge from errors to answers: DRF's exception handler and Django's error views.

Services raise Django's ``ValidationError`` or the domain's own errors; API views let
them through and ``exception_handler`` turns each into DRF's JSON shape (a message list
per field). Requests under ``/api/`` that never reach a DRF view — an unknown path, a
body Django refuses to read, a crash — get JSON from the error views below instead of
Django's HTML pages, so an API client always gets a body it can parse.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from config.pagination import PageNumberInvalid
from config.parsers import RequestTooLarge, body_limit
from feedback.answers import AnswersInvalid
from feedback.services import SurveyNotOpen
from surveys.services import CsvImportError
from surveys.signals import CloseRefused

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
RETRY_AFTER_SECONDS = "5"


# SQLSTATEs of a server that went away: connection exceptions (class 08), and the backend
# terminated by an administrator, a crash or a server still starting up.
CONNECTION_LOST_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def database_lost(error: BaseException | None) -> bool:
    """The database went away (restarted, connections terminated, network cut): the request
    did not complete, and trying again in a moment will work.

    Other ``OperationalError``s from a server that answered (a statement or lock timeout,
    a deadlock) are bugs or load to look into, and stay 500s.
    """
    if isinstance(error, InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    sqlstate = getattr(error.__cause__, "sqlstate", None)
    if sqlstate is None:
        # No answer from the server at all: the connection could not be made or was cut.
        return True
    return sqlstate.startswith(CONNECTION_LOST_SQLSTATES)


def validation_errors(error: DjangoValidationError) -> dict[str, Any]:
    """A Django ``ValidationError`` in DRF's shape: ``{field: [message, …]}``."""
    non_field = api_settings.NON_FIELD_ERRORS_KEY
    if hasattr(error, "error_dict"):
        return {non_field if field == "__all__" else field: messages for field, messages in error.message_dict.items()}
    return {non_field: error.messages}


# The domain's own errors: status and body. Anything not listed is a bug and answers 500.
DOMAIN_ERRORS: dict[type[Exception], tuple[int, Callable[[Any], Any]]] = {
    DjangoValidationError: (status.HTTP_400_BAD_REQUEST, validation_errors),
    AnswersInvalid: (status.HTTP_400_BAD_REQUEST, lambda error: error.errors),
    SurveyNotOpen: (status.HTTP_409_CONFLICT, lambda error: {"detail": str(error)}),
    CsvImportError: (status.HTTP_400_BAD_REQUEST, lambda error: {"file": error.messages()}),
    # The close rolled back and the cycle stays open until the operator mends the cause.
    CloseRefused: (status.HTTP_503_SERVICE_UNAVAILABLE, lambda error: {"detail": f"The cycle is still open: {error}"}),
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """``REST_FRAMEWORK["EXCEPTION_HANDLER"]``: DRF's handler, plus the domain's errors."""
    for error_class, (code, body) in DOMAIN_ERRORS.items():
        if isinstance(exc, error_class):
            set_rollback()
            return Response(body(exc), status=code)
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge(body_limit())
    elif isinstance(exc, SuspiciousOperation):
        # Too many fields or files in one request, and the like: refused, not crashed.
        exc = exceptions.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [str(exc) or "Bad request."]})
    return drf_exception_handler(exc, context)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def _json(detail: str, code: int) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=code)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler400``: also where Django sends a body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""
    if isinstance(exception, RequestDataTooBig):
        limit = body_limit()
        if _is_api(request):
            return _json(str(RequestTooLarge(limit).detail), status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        return render(request, "too_large.html", {"limit_kb": limit // 1024}, status=413)
    if _is_api(request):
        return _json(str(exception) or "Bad request.", status.HTTP_400_BAD_REQUEST)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _json(str(exception) or str(exceptions.PermissionDenied.default_detail), status.HTTP_403_FORBIDDEN)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _json(str(exceptions.NotFound.default_detail), status.HTTP_404_NOT_FOUND)
    # Only a message written for the reader is shown: others may name a model or a lookup.
    detail = str(exception) if isinstance(exception, PageNumberInvalid) else ""
    return render(request, "404.html", {"detail": detail}, status=404)


def service_unavailable(request: HttpRequest) -> HttpResponse:
    """503 while the database is unreachable: JSON on the API, a page elsewhere; neither touches
    the database (the page is rendered without the request: no user, no session)."""
    if _is_api(request):
        response: HttpResponse = _json(
            "Service briefly unavailable: the database could not be reached. Please try again in a moment.", 503
        )
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``; also reached by errors raised outside views (a session saved to a lost database)."""
    if database_lost(sys.exc_info()[1]):
        return service_unavailable(request)
    if _is_api(request):
        return _json("Server error: the request was not completed. Please try again later.", 500)
    return HttpResponse(render_to_string("500.html"), status=500)


class DatabaseUnavailableMiddleware:
    """A view that lost its database answers 503 with a friendly page or JSON, never a
    traceback: under ``DEBUG`` too, where Django would show its technical page instead of
    ``handler500``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_lost(exception):
            return None
        logger.warning("database unavailable during %s", request.method, exc_info=exception)
        return service_unavailable(request)
