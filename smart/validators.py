"""Provides SmartOAuth2Validator: django-oauth-toolkit's request validator with the SMART rules.

Seams used are those STACK.md §2 verified: the launch context travels /authorize -> `credentials` ->
`save_authorization_code` (Grant.launch_context) -> `validate_code` -> `_save_bearer_token` (token
launch_context and top-level token-response fields) and on refresh `validate_refresh_token`; private_key_jwt
plugs into `authenticate_client` (§2.11); the `fhirUser` claim needs `oidc_claim_scope` (§2.4).
"""

import hashlib
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.common import Request
from oauthlib.oauth2.rfc6749 import errors

from fhirapi.access import Context
from smart.client_auth import (
    ASSERTION_TYPE,
    PRIVATE_KEY_JWT,
    ClientAssertionError,
    client_assertion_verify,
    uses_private_key_jwt,
)
from smart.consent import REFRESH_SCOPES
from smart.discovery import public_root
from smart.events import launch_event_record
from smart.launch import CONTEXT_FIELDS, fhir_base_url, fhir_user_url
from smart.models import Application, LaunchEvent
from smart.scopes import intersect_scopes, parse_scope, parse_scopes, scope_covered
from smart.settings import smart_settings

AccessToken = get_access_token_model()
Grant = get_grant_model()
RefreshToken = get_refresh_token_model()

CODE_HASH_KEY = "code_sha256"  # launch_context key linking tokens to the authorization code they came from


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class SmartOAuth2Validator(OAuth2Validator):
    """The SMART App Launch 2.x authorization server rules on top of DOT's validator."""

    # DOT keeps an id_token claim only when its scope is granted; fhirUser comes with the `fhirUser` scope.
    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "fhirUser": "fhirUser"}

    # ---------------------------------------------------------------- clients

    def _load_application(self, client_id: str, request: Request) -> Application | None:
        """A disabled app is as unknown as a missing one (authorize error page, token invalid_client)."""
        client = super()._load_application(client_id, request)
        if client is not None and not client.enabled:
            request.client = None
            return None
        return client

    def validate_redirect_uri(
        self, client_id: str, redirect_uri: str, request: Request, *args, **kwargs
    ) -> bool:
        """Exact string match against a registered redirect URI (checklist #30)."""
        return redirect_uri in request.client.redirect_uris.split()

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs) -> bool:
        return response_type == "code" and client.allows_grant_type(Application.GRANT_AUTHORIZATION_CODE)

    def is_pkce_required(self, client_id: str, request: Request) -> bool:
        """Every client, public or not (SMART 2.x app-launch.html#considerations-for-pkce-support)."""
        return True

    def client_authentication_required(self, request: Request, *args, **kwargs) -> bool:
        if getattr(request, "client_assertion_type", None) is not None:
            return True
        return super().client_authentication_required(request, *args, **kwargs)

    def authenticate_client(self, request: Request, *args, **kwargs) -> bool:
        """private_key_jwt when an assertion is sent, else DOT's Basic or body secret (not JWT clients)."""
        assertion_type = getattr(request, "client_assertion_type", None)
        if assertion_type is not None:
            return self._authenticate_assertion(request, assertion_type)
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        if uses_private_key_jwt(request.client):
            raise errors.InvalidClientError(
                description="This client must use private_key_jwt.", request=request
            )
        return True

    def _authenticate_assertion(self, request: Request, assertion_type: str) -> bool:
        if assertion_type != ASSERTION_TYPE:
            raise errors.InvalidClientError(description="Unsupported client_assertion_type.", request=request)
        try:
            client = client_assertion_verify(
                assertion=getattr(request, "client_assertion", None) or "",
                audiences=token_endpoint_urls(request),
                load_client=lambda client_id: self._load_application(client_id, request),
                client_id=request.client_id,
            )
        except ClientAssertionError as error:
            raise errors.InvalidClientError(description=str(error), request=request) from error
        request.client = client
        request.client_id = client.client_id
        request.smart_client_auth = PRIVATE_KEY_JWT
        return True

    def authenticate_client_id(self, client_id: str, request: Request, *args, **kwargs) -> bool:
        """Only a public SMART client may go without authenticating."""
        if not super().authenticate_client_id(client_id, request, *args, **kwargs):
            return False
        return request.client.smart_client_type == Application.SmartClientType.PUBLIC

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs) -> bool:
        """client_credentials only for backend services that authenticated with private_key_jwt."""
        if grant_type == "client_credentials" and (
            client.smart_client_type != Application.SmartClientType.BACKEND
            or getattr(request, "smart_client_auth", None) != PRIVATE_KEY_JWT
        ):
            return False
        return super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs)

    # ---------------------------------------------------------------- scopes

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs) -> bool:
        """/authorize negotiates scopes itself (smart.consent); client_credentials gets system/ only."""
        if request.grant_type == "client_credentials":
            request.scopes = _backend_scopes(scopes, client, request)
        return True

    def get_default_scopes(self, client_id: str, request: Request, *args, **kwargs) -> list[str]:
        if request.grant_type == "client_credentials" and request.client is not None:
            return [s for s in request.client.allowed_scopes.split() if s.startswith("system/")]
        return []

    def is_within_original_scope(self, request_scopes, refresh_token, request, *args, **kwargs) -> bool:
        """A refresh may narrow the grant (v1/v2 and letter subsets included), never widen it."""
        original = self.get_original_scopes(refresh_token, request)
        return all(scope_covered(scope, original) for scope in request_scopes)

    # ---------------------------------------------------------------- codes

    def save_authorization_code(self, client_id: str, code: dict, request: Request, *args, **kwargs) -> None:
        grant = self._create_authorization_code(request, code)
        grant.launch_context = getattr(request, "smart_context", None) or {}
        grant.launch_id = getattr(request, "smart_launch_id", None)
        grant.save(update_fields=["launch_context", "launch"])

    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        """DOT's check plus the grant's context; a reused code revokes what it produced (RFC 6749 §4.1.2)."""
        if not super().validate_code(client_id, code, client, request, *args, **kwargs):
            if not Grant.objects.filter(code=code).exists():
                tokens_revoke_for_code(code)
            return False
        grant = Grant.objects.get(code=code, application=client)
        request.smart_context = dict(grant.launch_context or {})
        request.smart_launch_id = grant.launch_id
        return True

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs) -> bool:
        """redirect_uri is required and must equal the authorization request's (#43: invalid_grant)."""
        if getattr(request, "using_default_redirect_uri", False):
            raise errors.InvalidRequestError(description="redirect_uri is required.", request=request)
        if not super().confirm_redirect_uri(client_id, code, redirect_uri, client, *args, **kwargs):
            raise errors.InvalidGrantError(
                description="redirect_uri does not match the authorization request.", request=request
            )
        return True

    # ---------------------------------------------------------------- tokens

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        """DOT's check (client binding, rotation reuse); the context is read before rotation revokes it."""
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        token = request.refresh_token_instance
        if not token.user.is_active:
            return False
        request.smart_context = dict(token.launch_context or {})
        request.smart_launch_id = token.launch_id
        return True

    def _save_bearer_token(self, token: dict[str, Any], request: Request, *args, **kwargs) -> None:
        """Store the tokens with their launch context and add that context to the token response."""
        context = _token_context(request)
        if not parse_scopes(token.get("scope", "")).launch & REFRESH_SCOPES:
            token.pop("refresh_token", None)  # SMART: refresh tokens only with offline_access/online_access
        if request.grant_type == "client_credentials":
            token["expires_in"] = smart_settings.BACKEND_TOKEN_EXPIRE_SECONDS
        super()._save_bearer_token(token, request, *args, **kwargs)
        _bind_context(token, context, getattr(request, "smart_launch_id", None))
        token.update({name: context[name] for name in CONTEXT_FIELDS if name in context})
        _client_touch(request.client)
        launch_event_record(
            launch=getattr(request, "smart_launch_id", None),
            kind=LaunchEvent.Kind.TOKEN_ISSUED,
            detail={
                "grant_type": request.grant_type,
                "scope": token.get("scope", ""),
                "refresh_token": "refresh_token" in token,
                "id_token": "id_token" in token,
                **{name: context[name] for name in CONTEXT_FIELDS if name in context},
            },
        )

    # ---------------------------------------------------------------- OpenID Connect

    def validate_silent_login(self, request: Request) -> bool:
        # prompt=none: an unauthenticated user never reaches the validator (the view answers login_required).
        return True

    def validate_silent_authorization(self, request: Request) -> bool:
        # prompt=none: the view answers consent_required when consent would be asked.
        return True

    def get_additional_claims(self, request: Request) -> dict[str, Any]:
        """`fhirUser`: the absolute URL of the user's Practitioner or Patient (checklist #56)."""
        fhir_user = fhir_user_url(smart_settings.FHIR_USER_RESOLVER(request.user))
        return {"fhirUser": fhir_user} if fhir_user else {}

    def finalize_id_token(self, id_token, token, token_handler, request: Request) -> str:
        _signs_rs256(request.client)
        return super().finalize_id_token(id_token, token, token_handler, request)

    def _get_client_by_audience(self, audience: str | list[str]) -> Application | None:
        """The app an id_token was issued to, when DOT reloads it to verify the token."""
        client = super()._get_client_by_audience(audience)
        return _signs_rs256(client) if client is not None else None


def _signs_rs256(client: Application) -> Application:
    """id_tokens are RS256 (checklist #54): an app registered without an algorithm still gets them."""
    if not client.algorithm:
        client.algorithm = Application.RS256_ALGORITHM
    return client


def _backend_scopes(scopes: list[str], client: Application, request: Request) -> list[str]:
    """Requested system/ scopes ∩ registered ones (checklist #79); anything else is invalid_scope."""
    parsed = [parse_scope(scope) for scope in scopes]
    if not scopes or any(p is None or p.context is not Context.SYSTEM for p in parsed):
        raise errors.InvalidScopeError(
            description="Backend services may ask for system/ scopes only.", request=request
        )
    granted = intersect_scopes(scopes, client.allowed_scopes)
    if not granted:
        raise errors.InvalidScopeError(
            description="None of the requested scopes is allowed.", request=request
        )
    return granted


def _client_touch(client: Application) -> None:
    """Record the app's last use, at most once per LAST_USED_RESOLUTION_SECONDS (one UPDATE saved per token)."""
    now = timezone.now()
    recent = timedelta(seconds=smart_settings.LAST_USED_RESOLUTION_SECONDS)
    if client.last_used is None or now - client.last_used >= recent:
        Application.objects.filter(pk=client.pk).update(last_used=now)


def _token_context(request: Request) -> dict[str, Any]:
    """The launch context the new tokens carry (and the FHIR base as their audience)."""
    if request.grant_type == "client_credentials":
        return {"aud": fhir_base_url()}
    context = dict(getattr(request, "smart_context", None) or {})
    context["aud"] = fhir_base_url()
    fhir_user = smart_settings.FHIR_USER_RESOLVER(request.user)
    if fhir_user:
        context["fhirUser"] = fhir_user
    if request.grant_type == "authorization_code":
        context[CODE_HASH_KEY] = _sha256(request.code)
    return context


def _bind_context(token: dict[str, Any], context: dict[str, Any], launch_id: int | None) -> None:
    values = {"launch_context": context, "launch_id": launch_id}
    AccessToken.objects.filter(token_checksum=_sha256(token["access_token"])).update(**values)
    if token.get("refresh_token"):
        RefreshToken.objects.filter(
            token_checksum=_sha256(token["refresh_token"]), revoked__isnull=True
        ).update(**values)


def tokens_revoke_for_code(code: str) -> int:
    """Revoke every token descended from this authorization code; the number of refresh tokens revoked."""
    lookup = {f"launch_context__{CODE_HASH_KEY}": _sha256(code)}
    refresh_tokens = list(RefreshToken.objects.filter(revoked__isnull=True, **lookup))
    for refresh_token in refresh_tokens:
        refresh_token.revoke()
    AccessToken.objects.filter(**lookup).delete()
    return len(refresh_tokens)


def tokens_revoke_online(user: AbstractBaseUser) -> int:
    """Revoke the user's online_access grants (their refresh and access tokens); the number revoked."""
    online = r"(^| )online_access( |$)"
    refresh_tokens = list(
        RefreshToken.objects.filter(user=user, revoked__isnull=True, access_token__scope__regex=online)
    )
    for refresh_token in refresh_tokens:
        refresh_token.revoke()
    AccessToken.objects.filter(user=user, scope__regex=online).delete()
    return len(refresh_tokens)


def token_endpoint_urls(request: Request) -> list[str]:
    """The URLs a client assertion's `aud` may name: this token endpoint as requested and as published."""
    path = urlsplit(request.uri).path
    urls = [public_root() + path, *smart_settings.TOKEN_ENDPOINT_AUDIENCES]
    host = _request_host(request.headers)
    if host:
        scheme = "https" if request.headers.get("X_DJANGO_OAUTH_TOOLKIT_SECURE") else "http"
        urls.append(f"{scheme}://{host}{path}")
    if oauth2_settings.OIDC_ISS_ENDPOINT:
        urls.append(oauth2_settings.OIDC_ISS_ENDPOINT.rstrip("/") + "/token/")
    return list(dict.fromkeys(form for url in urls for form in (url.rstrip("/"), url.rstrip("/") + "/")))


def _request_host(headers: Any) -> str:
    """The Host the request was sent to (DOT hands oauthlib a copy of Django's META as headers)."""
    if headers.get("HTTP_HOST"):
        return headers["HTTP_HOST"]
    name, port = headers.get("SERVER_NAME", ""), str(headers.get("SERVER_PORT", ""))
    return name if port in ("", "80", "443") else f"{name}:{port}"
