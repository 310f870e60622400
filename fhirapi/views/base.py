"""Provides `FHIRView`, the base of every FHIR view: JSON in and out, bearer grant required, OperationOutcome errors."""

import logging
from functools import partial
from typing import Any

from rest_framework import exceptions as drf_exceptions
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from fhirapi.access import AccessDecision, Grant, Interaction
from fhirapi.after_response import after_response
from fhirapi.exceptions import InsufficientScope, UnknownResourceType, exception_handler, server_error_outcome
from fhirapi.negotiation import (
    FHIRContentNegotiation,
    FHIRJSONParser,
    FHIRJSONRenderer,
    LegacyFHIRJSONParser,
    PlainJSONParser,
    PlainJSONRenderer,
)
from fhirapi.searchparams import is_supported_type
from fhirapi.settings import fhirapi_settings

logger = logging.getLogger(__name__)


class HasGrant(BasePermission):
    """The request carries a grant from a valid bearer token (authentication put it in request.auth)."""

    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        if not isinstance(request.auth, Grant):
            raise drf_exceptions.NotAuthenticated("An access token is required (Authorization: Bearer ...).")
        return True


class FHIRView(APIView):
    renderer_classes = [FHIRJSONRenderer, PlainJSONRenderer]
    parser_classes = [FHIRJSONParser, PlainJSONParser, LegacyFHIRJSONParser]
    content_negotiation_class = FHIRContentNegotiation
    permission_classes = [HasGrant]

    def get_authenticators(self):  # type: ignore[no-untyped-def]
        return [cls() for cls in fhirapi_settings.AUTHENTICATION_CLASSES]

    def get_exception_handler(self):  # type: ignore[no-untyped-def]
        return exception_handler

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, InsufficientScope):
            response = super().handle_exception(exc)
            response["WWW-Authenticate"] = 'Bearer realm="fhir", error="insufficient_scope"'
            return response
        try:
            return super().handle_exception(exc)
        except Exception:
            logger.exception("Unhandled error in %s", type(self).__name__)
            return Response(server_error_outcome(), status=500)

    def finalize_response(self, request, response, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = super().finalize_response(request, response, *args, **kwargs)
        grant = getattr(request, "_auth", None)
        if isinstance(grant, Grant):  # the observers' bookkeeping does not hold up the response
            for observer in fhirapi_settings.RESPONSE_OBSERVERS:
                after_response(partial(observer, request, response, grant))
        return response

    # --- helpers for subclasses

    @property
    def base_url(self) -> str:
        return fhirapi_settings.BASE_URL.rstrip("/")

    @property
    def grant(self) -> Grant:
        return self.request.auth

    def check_type(self, resource_type: str) -> None:
        if not is_supported_type(resource_type):
            raise UnknownResourceType(f"Resource type {resource_type!r} is not supported by this server.")

    def access(self, resource_type: str, interaction: Interaction) -> AccessDecision:
        """The grant's decision; 403 insufficient_scope when the interaction is not covered at all."""
        decision = access_policy().decide(self.grant, resource_type, interaction)
        if not decision.allowed:
            raise InsufficientScope(
                f"The access token's scopes do not allow {interaction} on {resource_type}."
            )
        return decision

    def access_for(self, interaction: Interaction):  # type: ignore[no-untyped-def]
        """A function type -> decision for _include/_revinclude targets (not allowed -> nothing included)."""
        policy = access_policy()
        return lambda resource_type: policy.decide(self.grant, resource_type, interaction)

    def query_pairs(self) -> list[tuple[str, str]]:
        return [(k, v) for k, values in self.request.query_params.lists() for v in values]

    def prefer(self, name: str) -> str | None:
        """The value of one Prefer header token, e.g. prefer("return") -> "minimal"."""
        for part in self.request.META.get("HTTP_PREFER", "").split(","):
            key, _, value = part.strip().partition("=")
            if key.strip().lower() == name:
                return value.strip().strip('"').lower()
        return None


_policy_cache: dict[type, Any] = {}


def access_policy():  # type: ignore[no-untyped-def]
    cls = fhirapi_settings.ACCESS_POLICY_CLASS
    if cls not in _policy_cache:
        _policy_cache[cls] = cls()
    return _policy_cache[cls]
