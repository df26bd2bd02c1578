"""One JSON shape for every error the API returns, whatever raised it:

    {"error": {"code": "not_found", "message": "no plugin named 'x' ...", "details": []}}

``code`` is stable and machine-readable: ``not_authenticated``, ``authentication_failed``,
``permission_denied``, ``not_found``, ``method_not_allowed``, ``not_acceptable``,
``unsupported_media_type``, ``parse_error``, ``payload_too_large``, ``validation_error``,
``config_refused``, ``conflict``, ``precondition_failed``, ``server_error``, or one of the
plugin reason codes (``import_error``, ``timeout``...) when a plugin failed during the
request. ``message`` is for a person. ``details`` lists every problem of a validation error
with the JSON path of the bad field (``$.settings.timeout``, ``$.accounts[2].id``) in the
request body, or the name of the bad query parameter (``location: "query"``); it is empty
for other errors.

Dashboards match on ``code`` and the HTTP status; the exception handler below is the only
place that builds the shape, and it keeps DRF's headers (``WWW-Authenticate``, ``Allow``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext, gettext_lazy, ngettext
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import ErrorDetail
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from .. import jsonpath
from ..error_texts import error_text
from ..errors import IllegalTransition, PluginError, PluginNotFound
from ..redaction import scrub_text

logger = logging.getLogger(__name__)

_NON_FIELD = "non_field_errors"


class Conflict(exceptions.APIException):
    """The request is valid but the plugin's state does not allow it (illegal transition)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = gettext_lazy("the plugin's current state does not allow this")
    default_code = "conflict"


class PluginFailure(exceptions.APIException):
    """A plugin failed while the request ran; ``code`` is the plugin's reason code."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = gettext_lazy("the plugin failed")
    default_code = "plugin_failed"


class PreconditionFailed(exceptions.APIException):
    """``If-Match`` names a version that is no longer current (used by the config views)."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = gettext_lazy(
        "the resource changed since you read it; fetch it again and retry"
    )
    default_code = "precondition_failed"


class PayloadTooLarge(exceptions.APIException):
    """The request body is over ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"

    def __init__(self, size: int | None, limit: int | None) -> None:
        values = {"size": size, "limit": limit}
        if size is not None:
            text = gettext(
                "the request body is too large (%(size)s bytes): the API reads at most "
                "%(limit)s bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)"
            )
        else:
            text = gettext(
                "the request body is too large: the API reads at most %(limit)s bytes "
                "(DATA_UPLOAD_MAX_MEMORY_SIZE)"
            )
        super().__init__(text % values)


class QueryValidationError(exceptions.ValidationError):
    """A bad query parameter (filter, limit): its details name the parameter, not a path."""


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or []}}


def error_details(detail: Any, location: str = "body") -> list[dict[str, Any]]:
    """Flatten DRF's nested validation errors into ``[{path, message, code, location}]``.

    Body paths are JSON paths (``$``, ``$.a.b``, ``$.items[0].name``, ``$["odd key"]``); query
    parameters are named as they are sent (``state``)."""
    out: list[dict[str, Any]] = []
    root = "" if location == "query" else "$"
    _flatten(detail, root, location, out)
    return out


def json_path(path: str, key: object) -> str:
    """The JSON path of ``key`` (an object key or an array index) under ``path``."""
    return _child_path(path, key, "body")


def _child_path(path: str, key: object, location: str) -> str:
    if isinstance(key, int):  # DRF keys list items' errors by their index
        return jsonpath.child(path, key)
    key = str(key)
    if key == _NON_FIELD:
        return path or "$"
    if location == "query" and not path:
        return key
    return jsonpath.child(path, key, quote=True)


def _flatten(detail: Any, path: str, location: str, out: list[dict[str, Any]]) -> None:
    if isinstance(detail, dict):
        for key, value in detail.items():
            _flatten(value, _child_path(path, key, location), location, out)
    elif isinstance(detail, list | tuple):
        if all(isinstance(item, str) for item in detail):
            for item in detail:
                _flatten(item, path, location, out)
        else:
            for index, item in enumerate(detail):
                _flatten(item, jsonpath.child(path, index), location, out)
    elif detail not in (None, ""):
        code = (detail.code if isinstance(detail, ErrorDetail) else None) or "invalid"
        out.append(
            {"path": path or "$", "message": str(detail), "code": code, "location": location}
        )


def _translate(exc: Exception) -> Exception:
    """Engine and Django exceptions into DRF's HTTP ones."""
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, RequestDataTooBig):  # Django read a form body over the limit
        return PayloadTooLarge(None, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if isinstance(exc, SuspiciousOperation):  # too many form fields or files, ...
        return exceptions.ParseError(gettext("the request was refused: %(error)s") % {"error": exc})
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, PluginNotFound):
        return exceptions.NotFound(error_text(exc))
    if isinstance(exc, IllegalTransition):
        return Conflict(str(exc))
    if isinstance(exc, PluginError):
        return PluginFailure(scrub_text(str(exc)), code=exc.code.value)
    return exc


def _summary(details: list[dict[str, Any]]) -> str:
    where = ", ".join(dict.fromkeys(d["path"] for d in details))
    first = details[0]["message"] if details else gettext("invalid input")
    text = ngettext(
        "invalid input (%(count)d problem at %(where)s): %(first)s",
        "invalid input (%(count)d problems at %(where)s): %(first)s",
        len(details),
    )
    return text % {"count": len(details), "where": where, "first": first}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's ``EXCEPTION_HANDLER``: every error, expected or not, in the one shape."""
    exc = _translate(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        # Not an HTTP error: a bug or an outage. Log it with the traceback; tell the client
        # nothing about the internals.
        view = context.get("view")
        logger.exception("API error in %s", type(view).__name__ if view else "?", exc_info=exc)
        set_rollback()
        return Response(
            error_body(
                "server_error", gettext("internal server error; the details are in the log")
            ),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        location = "query" if isinstance(exc, QueryValidationError) else "body"
        details = error_details(exc.detail, location)
        response.data = error_body("validation_error", _summary(details), details)
        return response
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        message = str(exc.detail)
    else:  # pragma: no cover - DRF only answers for APIException, Http404, PermissionDenied
        code, message = "error", str(exc)
    response.data = error_body(str(code), message)
    return response


def unknown_endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any other path under ``/api/v1/``: a 404 in the same shape, not an HTML page."""
    return JsonResponse(
        error_body(
            "not_found",
            gettext("no API endpoint at %(path)s (every endpoint ends with '/'; see /api/v1/docs/)")
            % {"path": request.path},
        ),
        status=404,
    )
