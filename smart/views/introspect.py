"""Provides token introspection (RFC 7662) with the SMART launch context (SMART App Launch 2.x,
token-introspection.html).

Callers authenticate with headers only (Inferno adds its custom *headers* to every call, body parameters to
some): `Authorization: Basic` of an enabled confidential-symmetric client, which may introspect its own
tokens, or `Authorization: Bearer` with a live token holding the `introspection` scope (a resource server),
which may introspect any token. An unknown, expired, revoked or foreign token is `{"active": false}`, 200.
"""

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.hashers import check_password, identify_hasher
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import get_access_token_model, get_application_model, get_refresh_token_model
from oauth2_provider.settings import oauth2_settings

from fhirapi.settings import fhirapi_settings
from smart.authentication import token_lookup
from smart.discovery import issuer
from smart.settings import smart_settings

Application = get_application_model()
AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()

INTROSPECTION_SCOPE = "introspection"
CONTEXT_KEYS = ("patient", "encounter", "fhirContext", "intent")
INACTIVE = {"active": False}


@dataclass(frozen=True)
class Introspector:
    """Who is asking: a client limited to its own tokens, or a resource server that may see any token."""

    client_pk: int | None
    any_client: bool

    def may_see(self, application_id: int | None) -> bool:
        return self.any_client or (application_id is not None and application_id == self.client_pk)


@method_decorator([csrf_exempt, login_not_required], name="dispatch")
class SmartIntrospectTokenView(View):
    """POST /o/introspect/ with a form body `token=...` (and optionally `token_type_hint`)."""

    http_method_names = ["post", "options"]

    def post(self, request: HttpRequest) -> JsonResponse:
        caller = introspector_from_headers(request.headers.get("Authorization", ""))
        if caller is None:
            return _no_store(_unauthorized())
        token = request.POST.get("token", "")
        if not token:
            body = {"error": "invalid_request", "error_description": "The token parameter is missing."}
            return _no_store(JsonResponse(body, status=400))
        return _no_store(JsonResponse(token_introspect(token, request.POST.get("token_type_hint"), caller)))


def _unauthorized() -> JsonResponse:
    body = {
        "error": "invalid_client",
        "error_description": "Authenticate with Basic client credentials or Bearer.",
    }
    response = JsonResponse(body, status=401)
    response["WWW-Authenticate"] = 'Basic realm="introspection", Bearer realm="introspection"'
    return response


def _no_store(response: JsonResponse) -> JsonResponse:
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


# Caller authentication -------------------------------------------------------------------------------------


def introspector_from_headers(header: str) -> Introspector | None:
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic":
        client = _basic_client(credentials.strip())
        return Introspector(client_pk=client.pk, any_client=False) if client else None
    if scheme.lower() == "bearer" and credentials.strip():
        token = token_lookup(credentials.strip())
        if token is not None and INTROSPECTION_SCOPE in token.scope.split():
            return Introspector(client_pk=token.application_id, any_client=True)
    return None


def _basic_client(credentials: str) -> Application | None:
    """The enabled confidential-symmetric client these Basic credentials authenticate (RFC 6749 §2.3.1)."""
    try:
        client_id, _, secret = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client = Application.objects.filter(
        client_id=unquote_plus(client_id),
        enabled=True,
        smart_client_type=Application.SmartClientType.CONFIDENTIAL,
    ).first()
    if client is None or not secret or not _secret_matches(unquote_plus(secret), client.client_secret):
        return None
    return client


def _secret_matches(provided: str, stored: str) -> bool:
    """DOT's rule: hashed secrets are checked with their hasher, legacy plain ones in constant time."""
    try:
        identify_hasher(stored)
    except ValueError:
        return constant_time_compare(provided, stored)
    return check_password(provided, stored)


# Token lookup ----------------------------------------------------------------------------------------------


def token_introspect(raw: str, hint: str | None, caller: Introspector) -> dict[str, Any]:
    """The RFC 7662 response for a raw token, looked up by its SHA-256 checksum (tokens are stored hashed)."""
    checksum = hashlib.sha256(raw.encode()).hexdigest()
    lookups = (_refresh_token_claims, _access_token_claims)
    for lookup in lookups if hint == "refresh_token" else reversed(lookups):
        claims = lookup(checksum, caller)
        if claims is not None:
            return claims
    return INACTIVE


def _access_token_claims(checksum: str, caller: Introspector) -> dict[str, Any] | None:
    token = AccessToken.objects.select_related("application", "user").filter(token_checksum=checksum).first()
    if token is None:
        return None
    if not caller.may_see(token.application_id) or token.is_expired() or not _usable(token):
        return INACTIVE
    claims = _claims(token, token.scope, token.launch_context, exp=token.expires)
    return {**claims, "token_type": "Bearer"}


def _refresh_token_claims(checksum: str, caller: Introspector) -> dict[str, Any] | None:
    token = (
        RefreshToken.objects.select_related("application", "user", "access_token")
        .filter(token_checksum=checksum, revoked__isnull=True)
        .first()
    )
    if token is None:
        return None
    # DOT 3.4.1 rule: a refresh token lives REFRESH_TOKEN_EXPIRE_SECONDS past its access token's expiry.
    if not caller.may_see(token.application_id) or token.access_token is None or not _usable(token):
        return INACTIVE
    lifetime = oauth2_settings.REFRESH_TOKEN_EXPIRE_SECONDS
    exp = token.access_token.expires + _seconds(lifetime) if lifetime else None
    if exp is not None and _is_past(exp):
        return INACTIVE
    return _claims(token, token.access_token.scope, token.launch_context, exp=exp)


def _usable(token: AccessToken | RefreshToken) -> bool:
    application_ok = token.application is None or token.application.enabled
    return application_ok and (token.user is None or token.user.is_active)


def _claims(token: Any, scope: str, context: dict[str, Any] | None, *, exp: Any) -> dict[str, Any]:
    context = context or {}
    claims: dict[str, Any] = {
        "active": True,
        "scope": scope,
        "iss": issuer(),
        "iat": int(token.created.timestamp()),
    }
    if exp is not None:
        claims["exp"] = int(exp.timestamp())
    if token.application is not None:
        claims["client_id"] = token.application.client_id
    if token.user is not None:
        claims["sub"] = str(token.user.pk)  # DOT's id_token `sub`
        claims["username"] = token.user.get_username()
    fhir_user = _fhir_user(token, scope, context)
    if fhir_user:
        claims["fhirUser"] = fhir_user
    claims.update({key: context[key] for key in CONTEXT_KEYS if context.get(key)})
    return claims


def _fhir_user(token: Any, scope: str, context: dict[str, Any]) -> str | None:
    """The user's absolute FHIR URL, when the grant included `fhirUser` (as the id_token would)."""
    reference = context.get("fhirUser")
    if not reference and "fhirUser" in scope.split() and token.user is not None:
        reference = smart_settings.FHIR_USER_RESOLVER(token.user)
    if not reference or reference.startswith(("http://", "https://")):
        return reference or None
    return f"{fhirapi_settings.BASE_URL.rstrip('/')}/{reference}"


def _seconds(value: int | timedelta) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


def _is_past(moment: datetime) -> bool:
    return moment <= timezone.now()
