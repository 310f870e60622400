"""Provides SmartOAuth2Validator: django-oauth-toolkit's request validator with the SMART rules.

Seams used are those STACK.md §2 verified: the launch context travels /authorize -> the oauthlib request ->
`save_authorization_code` (Grant.launch_context) -> `validate_code` -> `save_bearer_token` (token
launch_context and top-level token-response fields) and on refresh `validate_refresh_token`; private_key_jwt
plugs into `authenticate_client` (§2.11); the `fhirUser` claim needs `oidc_claim_scope` (§2.4).

A request reads each row once, with one fixed statement (smart.selectors), and writes in one batch
(smart.rows.Batch; docs/benchmarks-smart.md). oauthlib asks for the authorization code's grant up to seven
times and DOT reads it each time, and DOT reads back the id_token it has just signed; here the grant, the
refresh token and the user's fhirUser are loaded once per request and kept on the oauthlib `Request` (never
beyond it). /authorize writes the code with the launch's use and its timeline events
(`_create_authorization_code`); the token endpoint writes the code's deletion or the refresh token's
rotation, the id_token row, the tokens with their launch context and the timeline event (`save_bearer_token`).
"""

import json
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt as pyjwt
from django.db import router, transaction
from django.utils import timezone
from jwcrypto import jwt
from oauth2_provider.bcp import bcp_compliant
from oauth2_provider.exceptions import FatalClientError
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
    refresh_token_expire_timedelta,
)
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.common import Request
from oauthlib.oauth2.rfc6749 import errors

from fhirapi.access import Context
from smart.authentication import grant_cache
from smart.client_auth import (
    ASSERTION_TYPE,
    PRIVATE_KEY_JWT,
    ClientAssertionError,
    client_assertion_verify,
    uses_private_key_jwt,
)
from smart.consent import REFRESH_SCOPES
from smart.discovery import public_root
from smart.events import launch_event_add, launch_event_record
from smart.keys import signing_key
from smart.launch import CONTEXT_FIELDS, fhir_base_url, fhir_user_url, launch_claim, launch_unusable
from smart.models import Application, LaunchEvent
from smart.rows import Batch, ClaimLost, Insert
from smart.scopes import intersect_scopes, parse_scope, parse_scopes, scope_covered
from smart.selectors import (
    application_get,
    application_with_refresh_token,
    grant_get,
    refresh_token_get,
)
from smart.settings import smart_settings
from smart.tokens import (
    CODE_HASH_KEY,
    CodeAlreadyUsed,
    NewTokens,
    RefreshTokenAlreadyUsed,
    TokenWrites,
    sha256_hex,
    tokens_revoke_for_code,
)

AccessToken = get_access_token_model()
Grant = get_grant_model()
IDToken = get_id_token_model()
RefreshToken = get_refresh_token_model()

_INSERT_GRANT = Insert(Grant)

# Grant types served by the token endpoint: their id_token row is written with the tokens (save_bearer_token).
TOKEN_ENDPOINT_GRANTS = frozenset({"authorization_code", "refresh_token"})
_UNSET = object()


class SmartOAuth2Validator(OAuth2Validator):
    """The SMART App Launch 2.x authorization server rules on top of DOT's validator."""

    # DOT keeps an id_token claim only when its scope is granted; fhirUser comes with the `fhirUser` scope.
    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "fhirUser": "fhirUser"}

    # ---------------------------------------------------------------- clients

    def _load_application(self, client_id: str, request: Request) -> Application | None:
        """The app (one fixed query, or the one this request loaded already); a disabled app is as unknown
        as a missing one (authorize error page, token invalid_client). DOT's own also resolves client ID
        metadata document URLs, which SMART does not use."""
        client = request.client
        if not (isinstance(client, Application) and client.client_id == client_id):
            client = _application_with_row(client_id, request)
        if client is None or not client.enabled:
            request.client = None
            return None
        request.client = client
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
        self._create_authorization_code(request, code)

    def _create_authorization_code(
        self, request: Request, code: dict[str, str], expires: datetime | None = None
    ) -> None:
        """DOT 3.4.1's, as one batch with what /authorize still has to write: the launch timeline's events
        and, for an EHR launch, the launch's single use (the code is issued only if it claims the launch)."""
        if request.code_challenge_method == "plain" and bcp_compliant(
            "COMPLIANT_BCP_RFC9700_PKCE_METHOD", 'The PKCE "plain" code_challenge_method'
        ):
            raise errors.InvalidRequestError(
                description='Unsupported "plain" code_challenge_method; use "S256".', request=request
            )
        seconds = oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS
        launch = getattr(request, "smart_launch", None)
        batch = Batch(router.db_for_write(Grant), claim=launch_claim(launch) if launch is not None else None)
        events = getattr(request, "smart_events", None) or []
        for event in events:
            launch_event_add(batch, **event)
        events.clear()  # written with the code (or not at all); the view must not write them again
        batch.insert(
            _INSERT_GRANT,
            {
                "application_id": request.client.pk,
                "user_id": request.user.pk,
                "code": code["code"],
                "expires": expires or timezone.now() + timedelta(seconds=seconds),
                "redirect_uri": request.redirect_uri,
                "scope": " ".join(request.scopes),
                "code_challenge": request.code_challenge or "",
                "code_challenge_method": request.code_challenge_method or "",
                "nonce": request.nonce or "",
                "claims": json.dumps(request.claims or {}),
                "resource": getattr(request, "resource", []),
                "launch_context": _grant_context(request),
                "launch_id": launch.pk if launch is not None else None,
            },
            where=batch.gate,
        )
        try:
            batch.run()
        except ClaimLost as lost:
            error = launch_unusable(launch)
            raise errors.InvalidRequestError(
                description=f"Invalid launch: {error}", request=request
            ) from lost

    def get_authorization_code_scopes(self, client_id, code, redirect_uri, request) -> list[str]:
        grant = _grant(request, code)
        return grant.scope.split() if grant is not None and grant.scope else []

    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        """DOT's check plus the grant's context; a reused code revokes what it produced (RFC 6749 §4.1.2)."""
        grant = _grant(request, code)
        if grant is None:
            tokens_revoke_for_code(code)
            return False
        if grant.application_id != client.pk or grant.is_expired():
            return False
        request.scopes = grant.scope.split(" ")
        request.user = grant.user
        if grant.nonce:
            request.nonce = grant.nonce
        if grant.claims:
            request.claims = json.loads(grant.claims)
        request.smart_context = dict(grant.launch_context or {})
        request.smart_launch_id = grant.launch_id
        if request.smart_context.get("fhirUser"):
            request.smart_fhir_user = request.smart_context["fhirUser"]  # resolved at /authorize
        return True

    def get_code_challenge(self, code: str, request: Request) -> str | None:
        return _client_grant(request, code).code_challenge or None

    def get_code_challenge_method(self, code: str, request: Request) -> str | None:
        return _client_grant(request, code).code_challenge_method or None

    def get_authorization_code_nonce(self, client_id, code, redirect_uri, request) -> str | None:
        grant = _grant(request, code)
        return (grant.nonce or None) if grant is not None else None

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs) -> bool:
        """redirect_uri is required and must equal the authorization request's (#43: invalid_grant)."""
        if getattr(request, "using_default_redirect_uri", False):
            raise errors.InvalidRequestError(description="redirect_uri is required.", request=request)
        if not _client_grant(request, code, client).redirect_uri_allowed(redirect_uri):
            raise errors.InvalidGrantError(
                description="redirect_uri does not match the authorization request.", request=request
            )
        return True

    def invalidate_authorization_code(
        self, client_id: str, code: str, request: Request, *args, **kwargs
    ) -> None:
        """Already done: save_bearer_token deletes the code in the transaction that stores its tokens."""
        if not getattr(request, "smart_code_consumed", False):
            super().invalidate_authorization_code(client_id, code, request, *args, **kwargs)

    # ---------------------------------------------------------------- tokens

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        """DOT 3.4.1's check (reuse detection, lifetime, client binding), reading the token with its access
        token, its user and the user's fhirUser link in one query; plus the launch context, read before
        rotation revokes the token."""
        token = _refresh_token(request, refresh_token)
        if token is None or not _refresh_token_usable(token):
            return False
        if token.application_id != client.pk or not token.user.is_active:
            return False
        request.user = token.user
        request.refresh_token = refresh_token  # the raw value: the stored one is blank (hashed storage)
        request.refresh_token_instance = token
        request.smart_context = dict(token.launch_context or {})
        request.smart_launch_id = token.launch_id
        return True

    def save_bearer_token(self, token: dict[str, Any], request: Request, *args, **kwargs) -> None:
        """Everything a token request writes, as one batch (smart.tokens.TokenWrites): the code's deletion or
        the old refresh token's revocation, the id_token row, the tokens with their launch context, the
        timeline event. A code or refresh token used by another request meanwhile is treated as a replay."""
        if "scope" not in token:
            raise FatalClientError("Failed to renew access token: missing scope")  # as DOT's
        context = self._token_context(request)
        if not parse_scopes(token["scope"]).launch & REFRESH_SCOPES:
            token.pop("refresh_token", None)  # SMART: refresh tokens only with offline_access/online_access
        if request.grant_type == "client_credentials":
            token["expires_in"] = smart_settings.BACKEND_TOKEN_EXPIRE_SECONDS
            request.user = None
        self._check_and_set_request_resource(request)
        previous = getattr(request, "refresh_token_instance", None)
        if previous is not None and not _rotates(self, request, token, previous):
            self._save_as_dot(token, request, context)  # the grace period, or rotation switched off
        else:
            self._save_new(token, request, context, previous)
        token.update({name: context[name] for name in CONTEXT_FIELDS if name in context})

    def _save_new(
        self,
        token: dict[str, Any],
        request: Request,
        context: dict[str, Any],
        previous: "RefreshToken | None",
    ) -> None:
        code = request.grant_type == "authorization_code"
        writes = TokenWrites(
            grant_id=_client_grant(request, request.code).pk if code else None, previous=previous
        )
        launch_id = getattr(request, "smart_launch_id", None)
        seconds = token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS)
        new = NewTokens(
            client=request.client,
            user_id=request.user.pk if request.user is not None else None,
            scope=token["scope"],
            expires=timezone.now() + timedelta(seconds=seconds),
            access_token=token["access_token"],
            context=context,
            launch_id=launch_id,
            resource=getattr(request, "resource", None) or [],
            refresh_token=token.get("refresh_token"),
            family=previous.token_family if previous is not None else None,
            source_refresh_token_id=previous.pk if previous is not None else None,
            id_token=getattr(request, "smart_id_token", None),
        )
        writes.tokens(new)
        writes.event(
            launch_id=launch_id, kind=LaunchEvent.Kind.TOKEN_ISSUED, detail=_issued(token, request, context)
        )
        writes.app_touch(request.client)
        try:
            writes.run()
        except CodeAlreadyUsed as error:
            tokens_revoke_for_code(request.code)
            raise errors.InvalidGrantError(request=request) from error
        except RefreshTokenAlreadyUsed as error:
            if oauth2_settings.REFRESH_TOKEN_REUSE_PROTECTION:
                RefreshToken.revoke_family(error.family)
            raise errors.InvalidGrantError(request=request) from error
        request.smart_code_consumed = True
        request.refresh_token_instance = None
        issued = AccessToken(
            user=request.user, application=request.client, scope=new.scope, expires=new.expires,
            launch_context=context, launch_id=launch_id,
        )  # fmt: skip
        grant_cache.put(token["access_token"], issued)  # the app's first FHIR call needs no lookup here

    def _save_as_dot(self, token: dict[str, Any], request: Request, context: dict[str, Any]) -> None:
        """DOT's paths that reuse stored tokens, in its transaction, with the SMART context bound after."""
        request.smart_token_context = context  # stored by _create_access_token/_create_refresh_token
        launch_id = getattr(request, "smart_launch_id", None)
        with transaction.atomic(using=router.db_for_write(AccessToken)):
            if getattr(request, "smart_id_token", None) is not None:
                request.smart_id_token.save()
            super()._save_bearer_token(token, request)
            _bind_context(token, context, launch_id)
        launch_event_record(
            launch=launch_id, kind=LaunchEvent.Kind.TOKEN_ISSUED, detail=_issued(token, request, context)
        )

    def _create_access_token(
        self,
        expires: datetime,
        request: Request,
        token: dict[str, Any],
        source_refresh_token: "RefreshToken | None" = None,
    ) -> "AccessToken":
        """DOT's, with the launch context in the INSERT and the id_token row this request made.

        DOT re-parses the signed id_token, verifies it, loads its app and reads its row back.
        """
        id_token = None
        if token.get("id_token"):
            id_token = getattr(request, "smart_id_token", None) or self._load_id_token(token["id_token"])
        access_token = AccessToken(
            user=request.user,
            scope=token["scope"],
            expires=expires,
            id_token=id_token,
            application=request.client,
            source_refresh_token=source_refresh_token,
            resource=getattr(request, "resource", []),
            **_stored_context(request),
        )
        self._set_token_value(access_token, token["access_token"])
        access_token.save()
        return access_token

    def _create_refresh_token(
        self,
        request: Request,
        refresh_token_code: str,
        access_token: "AccessToken",
        previous_refresh_token: "RefreshToken | None",
    ) -> "RefreshToken":
        """DOT's, with the launch context in the INSERT."""
        family = previous_refresh_token.token_family if previous_refresh_token else uuid.uuid4()
        refresh_token = RefreshToken(
            user=request.user,
            application=request.client,
            access_token=access_token,
            token_family=family,
            resource=getattr(request, "resource", []),
            **_stored_context(request),
        )
        self._set_token_value(refresh_token, refresh_token_code)
        refresh_token.save()
        return refresh_token

    def _check_and_set_request_resource(self, request: Request) -> None:
        """RFC 8707 as DOT does it; for a code, against the grant already loaded (its row is deleted by now)."""
        if request.grant_type != "authorization_code":
            return super()._check_and_set_request_resource(request)
        request.resource = _requested_resources(request)
        self._validate_resource_uris(request, request.resource)
        granted = _client_grant(request, request.code).resource or []
        if request.resource and granted:
            for resource in request.resource:
                if resource not in granted:
                    raise errors.CustomOAuth2Error(
                        error="invalid_target",
                        description=f"The requested resource '{resource}' is not allowed. Token request "
                        "cannot escalate resource permissions beyond the original authorization grant",
                        request=request,
                    )
        elif granted:
            self._validate_resource_uris(request, granted)
            request.resource = granted
        return None

    def _token_context(self, request: Request) -> dict[str, Any]:
        """The launch context the new tokens carry (and the FHIR base as their audience)."""
        if request.grant_type == "client_credentials":
            return {"aud": fhir_base_url()}
        context = dict(getattr(request, "smart_context", None) or {})
        context["aud"] = fhir_base_url()
        fhir_user = _fhir_user(request)
        if fhir_user:
            context["fhirUser"] = fhir_user
        if request.grant_type == "authorization_code":
            context[CODE_HASH_KEY] = sha256_hex(request.code)
        return context

    # ---------------------------------------------------------------- OpenID Connect

    def validate_silent_login(self, request: Request) -> bool:
        # prompt=none: an unauthenticated user never reaches the validator (the view answers login_required).
        return True

    def validate_silent_authorization(self, request: Request) -> bool:
        # prompt=none: the view answers consent_required when consent would be asked.
        return True

    def get_additional_claims(self, request: Request) -> dict[str, Any]:
        """`fhirUser`: the absolute URL of the user's Practitioner or Patient (checklist #56)."""
        fhir_user = fhir_user_url(_fhir_user(request))
        return {"fhirUser": fhir_user} if fhir_user else {}

    def finalize_id_token(
        self, id_token: dict[str, Any], token: dict[str, Any], token_handler: Any, request: Request
    ) -> str:
        """DOT 3.4.1's signing (RS256 always, checklist #54); the IDToken row is saved with the tokens."""
        client = _signs_rs256(request.client)
        claims, expires = self.get_id_token_dictionary(token, token_handler, request)
        id_token.update(**claims)
        if "nonce" not in id_token and request.nonce:
            id_token["nonce"] = request.nonce  # oauthlib bug #746, as DOT works around it
        row = IDToken(
            user=request.user,
            scope=request.scope or " ".join(request.scopes),
            expires=expires,
            jti=id_token["jti"],
            application=client,
        )
        if request.grant_type in TOKEN_ENDPOINT_GRANTS:
            request.smart_id_token = row  # saved by _save_bearer_token
        else:
            row.save()
        request.access_token = request.id_token = row
        return _signed(id_token, client)

    def get_claim_dict(self, request: Request) -> dict[str, Any]:
        """DOT's, without its per-request inspection of get_additional_claims' signature."""
        return {"sub": str(request.user.pk), **self.get_additional_claims(request)}

    def _get_client_by_audience(self, audience: str | list[str]) -> Application | None:
        """The app an id_token was issued to, when DOT reloads it to verify the token."""
        client = super()._get_client_by_audience(audience)
        return _signs_rs256(client) if client is not None else None


def _grant(request: Request, code: str | None) -> "Grant | None":
    """The grant of `code` (with its user and app), read once per request: oauthlib asks for it up to seven
    times. Its app becomes `request.client` when the body names that client (DOT then need not load it)."""
    cached = getattr(request, "smart_grant", None)
    if cached is not None and cached[0] == code:
        return cached[1]
    grant = grant_get(code=code) if code else None
    request.smart_grant = (code, grant)
    if grant is not None and request.client is None and request.client_id == grant.application.client_id:
        request.client = grant.application
    return grant


def _application_with_row(client_id: str, request: Request) -> Application | None:
    """The app a token request names, read with the row the request presents when that saves a query: a
    code's grant already read (its app, if it is this one), or the refresh token, read here with the app."""
    if request.grant_type == "authorization_code":
        grant = _grant(request, request.code)
        if grant is not None and grant.application.client_id == client_id:
            return grant.application
    elif request.grant_type == "refresh_token" and request.refresh_token:
        application, token = application_with_refresh_token(client_id=client_id, raw=request.refresh_token)
        request.smart_refresh_token = (request.refresh_token, token)
        return application
    return application_get(client_id=client_id)


def _refresh_token(request: Request, raw: str) -> "RefreshToken | None":
    """The refresh token `raw`, as read with the app if it was (_application_with_row), else read now."""
    cached = getattr(request, "smart_refresh_token", None)
    if cached is not None and cached[0] == raw:
        return cached[1]
    return refresh_token_get(raw=raw)


def _client_grant(request: Request, code: str, client: Application | None = None) -> "Grant":
    """The grant of `code` issued to the requesting client; Grant.DoesNotExist as DOT's lookups raise."""
    grant = _grant(request, code)
    client = client or request.client
    if grant is None or client is None or grant.application_id != client.pk:
        raise Grant.DoesNotExist
    return grant


def _grant_context(request: Request) -> dict[str, Any]:
    """The context a code carries to its tokens: the launch's, and the fhirUser /authorize resolved."""
    context = dict(getattr(request, "smart_context", None) or {})
    fhir_user = getattr(request, "smart_fhir_user", None)
    if fhir_user:
        context["fhirUser"] = fhir_user
    return context


def _fhir_user(request: Request) -> str | None:
    """The user's fhirUser reference, resolved once per request (the token context and the id_token)."""
    cached = getattr(request, "smart_fhir_user", _UNSET)
    if cached is _UNSET:
        cached = smart_settings.FHIR_USER_RESOLVER(request.user)
        request.smart_fhir_user = cached
    return cached


def _refresh_token_usable(token: "RefreshToken") -> bool:
    """DOT 3.4.1's rules: a revoked token is honoured only within the grace period and only if it was
    superseded by rotation (else its whole family is revoked: reuse detection, RFC 9700 §4.14.2); a live
    one needs its access token and dies REFRESH_TOKEN_EXPIRE_SECONDS after that token expires."""
    now = timezone.now()
    if token.revoked is not None:
        grace = timedelta(seconds=oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS)
        if (
            token.revoked <= now - grace
            or not AccessToken.objects.filter(source_refresh_token=token).exists()
        ):
            if oauth2_settings.REFRESH_TOKEN_REUSE_PROTECTION and token.token_family:
                RefreshToken.revoke_family(token.token_family)
            return False
        return True
    if token.access_token is None:
        return False  # an orphan: its access token was deleted out of band
    lifetime = refresh_token_expire_timedelta()
    return not (lifetime and token.access_token.expires + lifetime <= now)


def _requested_resources(request: Request) -> list[str]:
    """The token request's `resource` values (RFC 8707, repeatable), as DOT collects them."""
    resource = getattr(request, "resource", None)
    if isinstance(resource, str):
        values = [v for k, v in (getattr(request, "decoded_body", None) or []) if k == "resource"]
        if len(values) > 1:
            return values
    if isinstance(resource, list):
        return resource
    if isinstance(resource, str) and resource.strip():
        return [resource]
    return []


def _rotates(validator: OAuth2Validator, request: Request, token: dict[str, Any], previous: Any) -> bool:
    """Whether this is a plain rotation of a live refresh token (the common case, done by _rotate)."""
    return (
        bool(token.get("refresh_token"))
        and isinstance(previous, RefreshToken)
        and previous.revoked is None
        and previous.access_token is not None
        and validator.rotate_refresh_token(request)
    )


def _stored_context(request: Request) -> dict[str, Any]:
    return {
        "launch_context": getattr(request, "smart_token_context", None) or {},
        "launch_id": getattr(request, "smart_launch_id", None),
    }


def _issued(token: dict[str, Any], request: Request, context: dict[str, Any]) -> dict[str, Any]:
    """The timeline's record of a token response (never a token)."""
    return {
        "grant_type": request.grant_type,
        "scope": token.get("scope", ""),
        "refresh_token": "refresh_token" in token,
        "id_token": "id_token" in token,
        **{name: context[name] for name in CONTEXT_FIELDS if name in context},
    }


class _ClaimsEncoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        return str(o)  # as DOT serialises id_token claims (json.dumps(default=str))


def _signed(claims: dict[str, Any], client: Application) -> str:
    """The id_token as a compact JWS: RS256 with the server's key and its `kid` (checklist #54), else (an
    app registered for HS256 in DOT's admin) DOT's signing with the app's own key."""
    if client.algorithm != Application.RS256_ALGORITHM:
        key = client.jwk_key
        signed = jwt.JWT(header=json.dumps({"typ": "JWT", "alg": client.algorithm}),
                         claims=json.dumps(claims, default=str))  # fmt: skip
        signed.make_signed_token(key)
        return signed.serialize()
    private_key, kid = signing_key(oauth2_settings.OIDC_RSA_PRIVATE_KEY)
    return pyjwt.encode(claims, private_key, algorithm="RS256", headers={"kid": kid, "typ": "JWT"},
                        json_encoder=_ClaimsEncoder)  # fmt: skip


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


def _bind_context(token: dict[str, Any], context: dict[str, Any], launch_id: int | None) -> None:
    values = {"launch_context": context, "launch_id": launch_id}
    AccessToken.objects.filter(token_checksum=sha256_hex(token["access_token"])).update(**values)
    if token.get("refresh_token"):
        RefreshToken.objects.filter(
            token_checksum=sha256_hex(token["refresh_token"]), revoked__isnull=True
        ).update(**values)


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
