"""Provides the FHIR API's errors (each renders as an OperationOutcome) and the DRF exception handler.

Store errors (fhirapi.store) are plain Python; `exception_handler` maps them and DRF's own exceptions onto
HTTP statuses with an OperationOutcome body, so every error of the API speaks FHIR.
"""

from typing import Any

from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from fhirapi import store
from fhirapi.outcomes import error_outcome, issue, operation_outcome


class FHIRError(drf_exceptions.APIException):
    """Base of the API's errors: a status, an issue code and a diagnostic message."""

    status_code = status.HTTP_400_BAD_REQUEST
    issue_code = "invalid"
    default_detail = "The request is invalid."

    def __init__(self, detail: str | None = None, *, expression: list[str] | None = None) -> None:
        super().__init__(detail or self.default_detail)
        self.expression = expression


class InvalidRequest(FHIRError):
    pass


class UnknownResourceType(FHIRError):
    status_code = status.HTTP_404_NOT_FOUND
    issue_code = "not-supported"
    default_detail = "This server does not support that resource type."


class InsufficientScope(FHIRError):
    status_code = status.HTTP_403_FORBIDDEN
    issue_code = "forbidden"
    default_detail = "The access token's scopes do not allow this interaction."


class NotAcceptableFormat(FHIRError):
    status_code = status.HTTP_406_NOT_ACCEPTABLE
    issue_code = "not-supported"
    default_detail = "Only JSON (application/fhir+json) is supported."


class UnsupportedFormat(FHIRError):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    issue_code = "not-supported"
    default_detail = "Send resources as application/fhir+json."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler answering every error with an OperationOutcome."""
    if isinstance(exc, store.StoreError):
        set_rollback()
        return _outcome_response(exc.status, str(exc), None, exc.expression)
    if isinstance(exc, Http404):
        set_rollback()
        return _outcome_response(404, "Not found.", "not-found", None)
    if isinstance(exc, drf_exceptions.APIException):
        return _api_exception_response(exc)
    return None


def _api_exception_response(exc: drf_exceptions.APIException) -> Response:
    set_rollback()
    status_code = exc.status_code
    code = getattr(exc, "issue_code", None)
    response = _outcome_response(
        status_code, _detail_text(exc.detail), code, getattr(exc, "expression", None)
    )
    if getattr(exc, "auth_header", None):
        response["WWW-Authenticate"] = exc.auth_header
    if isinstance(exc, drf_exceptions.Throttled) and exc.wait:
        response["Retry-After"] = str(int(exc.wait))
    return response


def _outcome_response(status_code: int, text: str, code: str | None, expression) -> Response:
    return Response(error_outcome(status_code, text, code=code, expression=expression), status=status_code)


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(_detail_text(d) for d in detail)
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_detail_text(v)}" for k, v in detail.items())
    return str(detail)


def server_error_outcome() -> dict[str, Any]:
    return operation_outcome(issue("An internal error occurred.", code="exception", severity="fatal"))
