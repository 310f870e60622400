"""Provides the FHIR API's bearer-token authentication: a DOT access token becomes a fhirapi `Grant`.

Plugged into fhirapi through FHIRAPI["AUTHENTICATION_CLASSES"]. Tokens are looked up by the SHA-256 checksum
DOT stores (raw tokens are never stored); a missing, expired, revoked or foreign-audience token is refused
with 401 and `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1). Authentication only reads:
what a call records (the token's last use, the launch timeline) is written after the view, by
smart.usage.fhir_call_observer.
"""

import time
from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from fhirapi.access import Grant
from fhirapi.settings import fhirapi_settings
from smart.scopes import parse_scopes
from smart.selectors import access_token_get
from smart.settings import smart_settings
from smart.usage import Usage

AccessToken = get_access_token_model()


class SmartTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>` -> (user or None, Grant)."""

    www_authenticate_realm = "fhir"

    def authenticate(self, request):  # type: ignore[no-untyped-def]
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise AuthenticationFailed("The Authorization header must be 'Bearer <access token>'.")
        authenticated = grant_cache.get(raw.strip())
        if authenticated is None:
            raise AuthenticationFailed("The access token is invalid, expired or revoked.")
        return authenticated

    def authenticate_header(self, request) -> str:  # type: ignore[no-untyped-def]
        return f'Bearer realm="{self.www_authenticate_realm}", error="invalid_token"'


def token_lookup(raw: str) -> "AccessToken | None":
    """The live access token with this value, or None (unknown, expired, disabled client or other audience)."""
    token = access_token_get(raw=raw)
    return token if token is not None and token_usable(token) else None


def token_usable(token: "AccessToken") -> bool:
    """Not expired, of an enabled app and an active user, and meant for this FHIR server."""
    if token.is_expired():
        return False
    if token.application is not None and not token.application.enabled:
        return False
    if token.user is not None and not token.user.is_active:
        return False
    audience = (token.launch_context or {}).get("aud")
    return not audience or audience.rstrip("/") == fhirapi_settings.BASE_URL.rstrip("/")


def grant_from_token(token: "AccessToken", raw: str) -> Grant:
    """The fhirapi Grant a token carries: its parsed scopes plus its launch context.

    `extra` carries what the call records afterwards: the launch (for its timeline) and the token's Usage.
    """
    context = token.launch_context or {}
    fhir_user = context.get("fhirUser") or smart_settings.FHIR_USER_RESOLVER(token.user)
    return Grant(
        rules=parse_scopes(token.scope).rules(),
        patient_id=context.get("patient") or None,
        encounter_id=context.get("encounter") or None,
        fhir_user=_relative(fhir_user),
        client_id=token.application.client_id if token.application else None,
        user_id=token.user_id,
        scope=token.scope,
        extra={"launch_id": token.launch_id, "usage": Usage.of(token, raw)},
    )


def _relative(reference: str | None) -> str | None:
    """ "http://x/fhir/Practitioner/1" -> "Practitioner/1"."""
    if not reference:
        return None
    parts = reference.rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


class GrantCache:
    """Grants of recently seen tokens, per process, for SMART["TOKEN_CACHE_SECONDS"] (0 turns it off).

    Looking the token up costs more than the FHIR read it guards. A cached grant is dropped at once in this
    process when any access token is deleted or saved (revocation deletes the row) or an app or user changes;
    other processes drop it when its seconds run out, which bounds how long a revoked token keeps working.
    A token is never served past its own expiry. The token endpoint puts the tokens it issues here (`put`):
    an app's first FHIR call usually follows on the same connection, so it reaches this process.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Any, tuple[Any, Grant]]] = {}

    def get(self, raw: str) -> tuple[Any, Grant] | None:
        entry = self._entries.get(raw)
        if entry is not None and entry[0] > time.monotonic() and entry[1] > timezone.now():
            return entry[2]
        token = token_lookup(raw)
        if token is None:
            self._entries.pop(raw, None)
            return None
        return self.put(raw, token)

    def put(self, raw: str, token: "AccessToken") -> tuple[Any, Grant]:
        """Cache (and return) what a live token authenticates."""
        authenticated = (token.user, grant_from_token(token, raw))
        seconds = smart_settings.TOKEN_CACHE_SECONDS
        if seconds > 0:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[raw] = (time.monotonic() + seconds, token.expires, authenticated)
        return authenticated

    def clear(self, **kwargs: Any) -> None:
        self._entries.clear()


grant_cache = GrantCache()
post_delete.connect(grant_cache.clear, sender=AccessToken, dispatch_uid="smart.grant_cache.token_delete")
post_save.connect(grant_cache.clear, sender=AccessToken, dispatch_uid="smart.grant_cache.token_save")
post_save.connect(grant_cache.clear, sender=get_application_model(), dispatch_uid="smart.grant_cache.app")
post_save.connect(grant_cache.clear, sender=settings.AUTH_USER_MODEL, dispatch_uid="smart.grant_cache.user")
