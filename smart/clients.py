"""Provides client (SMART app) registration: validation shared by the admin and the command, and the services
that register apps, rotate their secrets and revoke a user's grants to them.

Client types follow SMART App Launch 2.x (client-public, client-confidential-symmetric,
client-confidential-asymmetric, backend-services). A client secret is generated here, returned to the caller
once, and stored only as a hash (DOT's ClientSecretField hashes it in pre_save with smart.hashers).
"""

import ipaddress
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from jwcrypto import jwk
from jwcrypto.common import JWException
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_refresh_token_model,
)

from fhirapi.access import Context
from smart.models import ConsentRecord
from smart.scopes import describe_scope, is_known_scope, parse_scope
from smart.settings import smart_settings

Application = get_application_model()
AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()

ClientType = Application.SmartClientType
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CLIENT_ASSERTION_ALGORITHMS = frozenset({"RS384", "ES384"})

SCOPE_PRESETS: dict[str, tuple[str, str]] = {
    "patient": ("Patient app", "launch/patient openid fhirUser offline_access patient/*.rs"),
    "clinician": ("Clinician app", "launch openid fhirUser online_access user/*.rs patient/*.rs"),
    "backend": ("Backend service", "system/*.rs"),
}

TOKEN_ENDPOINT_AUTH_METHODS: dict[str, str] = {
    ClientType.PUBLIC: "none",
    ClientType.CONFIDENTIAL: "client_secret_basic",
    ClientType.ASYMMETRIC: "private_key_jwt",
    ClientType.BACKEND: "private_key_jwt",
}


# Validation ------------------------------------------------------------------------------------------------


def default_preset(*, client_type: str, audience: str) -> str:
    """The scope preset that fits an app: backend services, patient-facing apps, else clinician apps."""
    if client_type == ClientType.BACKEND:
        return "backend"
    return "patient" if audience == Application.Audience.PATIENT else "clinician"


def preset_scopes(preset: str) -> str:
    return SCOPE_PRESETS[preset][1]


def split_uris(value: str | list[str] | None) -> list[str]:
    """DOT's space/newline separated URI list (or a list) as a list, duplicates dropped, order kept."""
    items = value.split() if isinstance(value, str) else (value or [])
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))


def client_validate(
    *,
    client_type: str,
    redirect_uris: list[str],
    scopes: str,
    jwks: Any = None,
    jwks_uri: str = "",
    launch_uri: str = "",
    fetch_jwks_uri: bool = True,
) -> None:
    """Check a registration; raise ValidationError keyed by Application field name, listing every problem.

    With `fetch_jwks_uri` the JWKS URL must serve a valid JWKS now (skip it when the URL is unchanged).
    """
    errors: dict[str, list[str]] = defaultdict(list)
    errors["redirect_uris"] = _redirect_uri_errors(client_type, redirect_uris)
    errors["launch_uri"] = _launch_uri_errors(client_type, launch_uri)
    errors["allowed_scopes"] = scope_errors(client_type, scopes)
    errors["client_jwks"], errors["client_jwks_uri"] = _key_errors(
        client_type, jwks, jwks_uri, fetch_jwks_uri
    )
    problems = {field: messages for field, messages in errors.items() if messages}
    if problems:
        raise ValidationError(problems)


def uri_error(uri: str) -> str | None:
    """Why `uri` cannot be a redirect or launch URI (https, or http on a loopback host), or None."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
    except ValueError:
        return f"{uri!r} is not a valid URL."
    if parts.scheme not in ("http", "https") or not host:
        return f"{uri!r} must be an absolute http(s) URL."
    if parts.fragment:
        return f"{uri!r} must not have a #fragment."
    if parts.scheme == "http" and not _is_loopback(host):
        return f"{uri!r} must use https (http is allowed only for 127.0.0.1, localhost and [::1])."
    return None


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _redirect_uri_errors(client_type: str, uris: list[str]) -> list[str]:
    if not uris and client_type != ClientType.BACKEND:
        return ["Give at least one redirect URI."]
    if uris and client_type == ClientType.BACKEND:
        return ["Backend services use client_credentials and have no redirect URIs."]
    return [error for error in map(uri_error, uris) if error]


def _launch_uri_errors(client_type: str, launch_uri: str) -> list[str]:
    if not launch_uri:
        return []
    if client_type == ClientType.BACKEND:
        return ["Backend services are not launched; leave the launch URL empty."]
    error = uri_error(launch_uri)
    return [error] if error else []


def scope_errors(client_type: str, scopes: str) -> list[str]:
    """Problems with an allowed-scopes string: unknown scopes, or scopes the client type cannot use."""
    tokens = scopes.split()
    if not tokens:
        return ["Give at least one scope (or pick a preset)."]
    unknown = [scope for scope in tokens if not is_known_scope(scope)]
    if unknown:
        return [f"Unknown scope(s): {' '.join(unknown)}."]
    system = [
        scope for scope in tokens if (parsed := parse_scope(scope)) and parsed.context == Context.SYSTEM
    ]
    if client_type == ClientType.BACKEND and len(system) != len(tokens):
        return ["Backend services may only have system/ scopes."]
    if client_type != ClientType.BACKEND and system:
        return [f"Only backend services may have system/ scopes: {' '.join(system)}."]
    return []


def _key_errors(client_type: str, jwks: Any, jwks_uri: str, fetch: bool) -> tuple[list[str], list[str]]:
    """(inline JWKS errors, JWKS URL errors): asymmetric clients need exactly one of them, others neither."""
    if client_type not in (ClientType.ASYMMETRIC, ClientType.BACKEND):
        if jwks or jwks_uri:
            return ["Only asymmetric clients and backend services have keys."], []
        return [], []
    if jwks and jwks_uri:
        return ["Give either an inline JWKS or a JWKS URL, not both."], []
    if jwks:
        return jwks_errors(jwks), []
    if jwks_uri:
        return [], jwks_uri_errors(jwks_uri) if fetch else list(filter(None, [uri_error(jwks_uri)]))
    return ["This client type authenticates with private_key_jwt: give a JWKS or a JWKS URL."], []


def jwks_errors(jwks: Any) -> list[str]:
    """Problems with a JWK Set of client public keys (RSA or EC P-384, each with a `kid`, none private)."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        return ['A JWKS is a JSON object with a non-empty "keys" array.']
    return [f"Key {index + 1}: {error}" for index, key in enumerate(keys) if (error := _jwk_error(key))]


def _jwk_error(key: Any) -> str | None:
    if not isinstance(key, dict):
        return "not a JSON object."
    try:
        parsed = jwk.JWK(**key)
    except (JWException, TypeError, ValueError) as exc:
        return f"does not parse as a JWK ({exc})."
    if parsed.has_private:
        return "contains private key material; register only public keys."
    if key.get("kty") not in ("RSA", "EC") or (key["kty"] == "EC" and key.get("crv") != "P-384"):
        return "must be an RSA key (RS384) or an EC P-384 key (ES384)."
    if "alg" in key and key["alg"] not in CLIENT_ASSERTION_ALGORITHMS:
        return f"alg {key['alg']!r} is not RS384 or ES384."
    if not key.get("kid"):
        return 'needs a "kid" (client assertions select their key by kid).'
    return None


def jwks_uri_errors(jwks_uri: str) -> list[str]:
    """Problems with a JWKS URL: it must be https (or loopback http) and serve a valid JWKS now."""
    error = uri_error(jwks_uri)
    if error:
        return [error]
    try:
        document = jwks_fetch(jwks_uri)
    except (requests.RequestException, ValueError) as exc:
        return [f"Could not fetch a JWKS from {jwks_uri}: {exc.__class__.__name__}."]
    return [f"{jwks_uri}: {message}" for message in jwks_errors(document)]


def jwks_fetch(jwks_uri: str) -> Any:
    """GET a JWKS URL (no redirects, short timeout) and return its JSON."""
    response = requests.get(
        jwks_uri,
        headers={"Accept": "application/json"},
        timeout=smart_settings.JWKS_FETCH_TIMEOUT_SECONDS,
        allow_redirects=False,
    )
    response.raise_for_status()
    return response.json()


# Services --------------------------------------------------------------------------------------------------


def client_type_apply(client: Application, client_type: str) -> None:
    """Set the DOT fields that follow from the SMART client type and scopes (grant, auth method, alg)."""
    client.smart_client_type = client_type
    backend = client_type == ClientType.BACKEND
    client.client_type = (
        Application.CLIENT_PUBLIC if client_type == ClientType.PUBLIC else Application.CLIENT_CONFIDENTIAL
    )
    client.authorization_grant_type = (
        Application.GRANT_CLIENT_CREDENTIALS if backend else Application.GRANT_AUTHORIZATION_CODE
    )
    client.token_endpoint_auth_method = TOKEN_ENDPOINT_AUTH_METHODS[client_type]
    # DOT signs id_tokens with the app's algorithm; an app without one fails "openid" requests.
    client.algorithm = Application.RS256_ALGORITHM if "openid" in client.allowed_scopes.split() else ""


def new_secret() -> str:
    return secrets.token_urlsafe(48)


def secret_set(client: Application, *, known: bool) -> str | None:
    """Give the client a fresh secret (hashed when saved); return it when the client may know it.

    Clients that do not authenticate with a secret still get an unguessable one that nobody ever sees:
    an empty secret would be hashed too, and then match an empty Basic password.
    """
    secret = new_secret()
    client.client_secret = secret
    client.hash_client_secret = True
    return secret if known else None


@transaction.atomic
def client_register(
    *,
    name: str,
    redirect_uris: str | list[str],
    client_type: str,
    launch_uri: str = "",
    scopes: str = "",
    jwks: dict[str, Any] | None = None,
    jwks_uri: str = "",
    skip_consent: bool = False,
    launch_mode: str = "embedded",
    audience: str = "clinician",
    logo_uri: str = "",
    description: str = "",
) -> tuple[Application, str | None]:
    """Register a SMART app; return it and, for a confidential-symmetric app, its secret (shown only now)."""
    uris = split_uris(redirect_uris)
    scopes = " ".join(scopes.split()) or preset_scopes(
        default_preset(client_type=client_type, audience=audience)
    )
    client_validate(
        client_type=client_type,
        redirect_uris=uris,
        scopes=scopes,
        jwks=jwks,
        jwks_uri=jwks_uri,
        launch_uri=launch_uri,
    )
    client = Application(
        name=name,
        description=description,
        redirect_uris=" ".join(uris),
        launch_uri=launch_uri,
        logo_uri=logo_uri,
        allowed_scopes=scopes,
        client_jwks=jwks or None,
        client_jwks_uri=jwks_uri,
        skip_authorization=skip_consent,
        launch_mode=launch_mode,
        audience=audience,
    )
    client_type_apply(client, client_type)
    secret = secret_set(client, known=client_type == ClientType.CONFIDENTIAL)
    client.full_clean()
    client.save()
    return client, secret


def client_rotate_secret(*, client: Application) -> str:
    """Replace a confidential-symmetric client's secret; return the new one (shown once, stored hashed)."""
    if client.smart_client_type != ClientType.CONFIDENTIAL:
        raise ValidationError("Only confidential-symmetric clients have a client secret.")
    secret = secret_set(client, known=True)
    client.secret_rotated = timezone.now()
    client.save(update_fields=["client_secret", "hash_client_secret", "secret_rotated", "updated"])
    return secret


@transaction.atomic
def client_revoke_for_user(*, client: Application, user: AbstractBaseUser) -> int:
    """End everything `user` granted `client`: refresh and access tokens, pending codes, consent.

    Returns how many tokens were revoked. Refresh tokens are revoked (kept as tombstones for DOT's reuse
    protection), which also deletes their access tokens; access tokens without one are deleted.
    """
    revoked = 0
    for refresh_token in RefreshToken.objects.filter(application=client, user=user, revoked__isnull=True):
        refresh_token.revoke()
        revoked += 1
    _, deleted = AccessToken.objects.filter(application=client, user=user).delete()
    revoked += deleted.get(AccessToken._meta.label, 0)
    Grant.objects.filter(application=client, user=user).delete()
    ConsentRecord.objects.filter(application=client, user=user).delete()
    return revoked


# Selectors -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectedApp:
    """An app a user authorized, as the connected-apps page shows it."""

    client: Application
    scopes: tuple[str, ...]
    last_used: datetime | None

    @property
    def access(self) -> list[str]:
        """What the app may do, in plain words (scopes with the same wording said once)."""
        return list(dict.fromkeys(describe_scope(scope) for scope in self.scopes))


def client_list_connected(*, user: AbstractBaseUser) -> list[ConnectedApp]:
    """Apps `user` authorized that still hold live tokens or a consent record, most recently used first."""
    now = timezone.now()
    access_tokens = AccessToken.objects.filter(user=user, expires__gt=now).values_list(
        "application_id", "scope", "last_used"
    )
    refresh_tokens = RefreshToken.objects.filter(user=user, revoked__isnull=True, access_token__isnull=False)
    refresh_scopes = refresh_tokens.values_list("application_id", "access_token__scope")
    consents = dict(ConsentRecord.objects.filter(user=user).values_list("application_id", "scope"))
    token_scopes: dict[int, list[str]] = defaultdict(list)
    last_used: dict[int, datetime] = {}
    for application_id, scope, used in access_tokens:
        token_scopes[application_id] += scope.split()
        if used and (application_id not in last_used or used > last_used[application_id]):
            last_used[application_id] = used
    for application_id, scope in refresh_scopes:
        token_scopes[application_id] += scope.split()
    clients = Application.objects.filter(pk__in={*token_scopes, *consents}).order_by("name")
    connected = [
        ConnectedApp(
            client=client,
            scopes=tuple(dict.fromkeys(consents.get(client.pk, "").split() or token_scopes[client.pk])),
            last_used=last_used.get(client.pk),
        )
        for client in clients
    ]
    return sorted(connected, key=lambda app: app.last_used or datetime.min.replace(tzinfo=UTC), reverse=True)
