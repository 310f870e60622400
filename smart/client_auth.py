"""Provides private_key_jwt client authentication: verifying a client assertion (RFC 7523 §2.2, §3).

SMART App Launch 2.x client-confidential-asymmetric.html and backend-services.html (checklist #26, #77,
#78): `iss` = `sub` = a known client_id, `aud` = the token endpoint URL, `exp` present, in the future and
at most five minutes ahead, a `jti` never seen before, header `alg` RS384/ES384 (never `none` or HS*),
`typ` JWT when present, and `kid` selecting exactly one key of the client's registered JWKS (inline, or
fetched from its JWKS URL as its Cache-Control allows). A `jku` header must equal the registered JWKS URL.
Field names follow DOT master (#1762).
"""

import hashlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import requests
from django.core.cache import cache
from django.db import IntegrityError, router, transaction
from django.utils import timezone

from smart.error_codes import ClientAssertionErrorCode as Code
from smart.models import Application, UsedClientAssertion
from smart.settings import smart_settings

log = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PRIVATE_KEY_JWT = "private_key_jwt"
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC"}


class ClientAssertionError(Exception):
    """A refused client assertion; `code` says why."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code


def uses_private_key_jwt(client: Application) -> bool:
    """Whether the client authenticates with private_key_jwt (and only so)."""
    asymmetric = {Application.SmartClientType.ASYMMETRIC, Application.SmartClientType.BACKEND}
    return client.token_endpoint_auth_method == PRIVATE_KEY_JWT or client.smart_client_type in asymmetric


def client_assertion_verify(
    *,
    assertion: str,
    audiences: list[str],
    load_client: Callable[[str], Application | None],
    client_id: str | None = None,
) -> Application:
    """The client the assertion authenticates, or ClientAssertionError.

    `audiences` are the accepted token endpoint URLs; `client_id` is the body's client_id, if one was sent.
    """
    header = _header(assertion)
    issuer = _issuer(assertion, client_id)
    client = load_client(issuer)
    if client is None:
        raise ClientAssertionError(Code.UNKNOWN_CLIENT, "The assertion's issuer is not a known client.")
    if not uses_private_key_jwt(client):
        raise ClientAssertionError(
            Code.WRONG_AUTH_METHOD, "The client is not registered for private_key_jwt."
        )
    if "jku" in header and header["jku"] != client.client_jwks_uri:
        raise ClientAssertionError(Code.JKU_NOT_REGISTERED, "The jku header is not the registered JWKS URL.")
    key = client_key(client, kid=header.get("kid"), algorithm=header["alg"])
    claims = _verified_claims(assertion, key, header["alg"], audiences, issuer)
    _jti_record(issuer, claims["jti"], claims["exp"])
    return client


def _header(assertion: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as error:
        raise ClientAssertionError(Code.MALFORMED, "The client assertion is not a JWT.") from error
    if header.get("alg") not in smart_settings.CLIENT_ASSERTION_ALGORITHMS:
        raise ClientAssertionError(Code.BAD_ALGORITHM, "The assertion must be signed with RS384 or ES384.")
    if "typ" in header and str(header["typ"]).upper() != "JWT":
        raise ClientAssertionError(Code.BAD_TYPE, "The assertion's typ header must be JWT.")
    return header


def _issuer(assertion: str, client_id: str | None) -> str:
    """The unverified `iss`, checked against `sub` and the body's client_id before any key is looked up."""
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise ClientAssertionError(Code.MALFORMED, "The client assertion's claims cannot be read.") from error
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer or issuer != claims.get("sub"):
        raise ClientAssertionError(
            Code.ISS_SUB_MISMATCH, "The assertion's iss and sub must both be the client_id."
        )
    if client_id and client_id != issuer:
        raise ClientAssertionError(
            Code.CLIENT_ID_MISMATCH, "The client_id does not match the assertion's iss."
        )
    return issuer


def _verified_claims(
    assertion: str, key: Any, algorithm: str, audiences: list[str], issuer: str
) -> dict[str, Any]:
    leeway = smart_settings.CLIENT_ASSERTION_LEEWAY_SECONDS
    try:
        claims = jwt.decode(
            assertion,
            key,
            algorithms=[algorithm],
            audience=audiences,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except jwt.PyJWTError as error:
        raise _decode_error(error) from error
    if not isinstance(claims["jti"], str) or not claims["jti"]:
        raise ClientAssertionError(Code.MISSING_CLAIM, "The assertion needs a jti.")
    latest = timezone.now().timestamp() + smart_settings.CLIENT_ASSERTION_MAX_LIFETIME_SECONDS + leeway
    if claims["exp"] > latest:
        raise ClientAssertionError(Code.EXPIRES_TOO_LATE, "The assertion's exp is more than 5 minutes ahead.")
    return claims


def _decode_error(error: jwt.PyJWTError) -> ClientAssertionError:
    known: list[tuple[type[jwt.PyJWTError], Code, str]] = [
        (jwt.InvalidSignatureError, Code.BAD_SIGNATURE, "The assertion's signature does not verify."),
        (jwt.ExpiredSignatureError, Code.EXPIRED, "The assertion has expired."),
        (jwt.InvalidAudienceError, Code.WRONG_AUDIENCE, "The assertion's aud is not the token endpoint URL."),
        (jwt.MissingRequiredClaimError, Code.MISSING_CLAIM, "The assertion lacks a required claim."),
        (jwt.InvalidIssuerError, Code.ISS_SUB_MISMATCH, "The assertion's iss is not the client_id."),
    ]
    for kind, code, message in known:
        if isinstance(error, kind):
            return ClientAssertionError(code, message)
    return ClientAssertionError(Code.MALFORMED, "The client assertion is not valid.")


def _jti_record(client_id: str, jti: str, exp: int) -> None:
    """Remember the jti until the assertion can no longer be accepted; a second use is a replay."""
    now = timezone.now()
    _jti_sweep(now)
    keep_until = datetime.fromtimestamp(exp, tz=UTC) + timedelta(
        seconds=smart_settings.CLIENT_ASSERTION_LEEWAY_SECONDS
    )
    row = {"client_id": client_id, "jti_hash": hashlib.sha256(jti.encode()).hexdigest()}
    try:
        with _savepoint_if_nested():
            UsedClientAssertion.objects.create(**row, expires=keep_until)
    except IntegrityError as error:
        # A row whose assertion expired (not swept yet) is no replay: the earlier assertion is dead.
        if not UsedClientAssertion.objects.filter(**row, expires__lt=now).update(expires=keep_until):
            raise ClientAssertionError(Code.REPLAYED, "The assertion's jti has been used before.") from error


def _jti_sweep(now: datetime) -> None:
    """Delete expired jti rows, at most once per CLIENT_ASSERTION_JTI_SWEEP_SECONDS in this process."""
    global _last_jti_sweep
    if time.monotonic() - _last_jti_sweep < smart_settings.CLIENT_ASSERTION_JTI_SWEEP_SECONDS:
        return
    _last_jti_sweep = time.monotonic()
    UsedClientAssertion.objects.filter(expires__lt=now).delete()


_last_jti_sweep = -float("inf")


def _savepoint_if_nested() -> AbstractContextManager[Any]:
    """A savepoint when inside a transaction (an IntegrityError must not break it); in autocommit mode the
    INSERT is its own transaction and needs no BEGIN/COMMIT around it."""
    database = router.db_for_write(UsedClientAssertion)
    if transaction.get_connection(database).in_atomic_block:
        return transaction.atomic(using=database)
    return nullcontext()


# ---------------------------------------------------------------- client keys


def client_key(client: Application, *, kid: str | None, algorithm: str) -> Any:
    """The verification key `kid` names, from the inline JWKS or the JWKS URL (refetched once if unknown)."""
    if not kid:
        raise ClientAssertionError(Code.UNKNOWN_KEY, "The assertion header needs a kid.")
    key = _select(client.client_jwks or {}, kid, algorithm)
    if key is None and client.client_jwks_uri:
        key = _select(jwks_fetch(client.client_jwks_uri), kid, algorithm)
        if key is None:
            key = _select(jwks_fetch(client.client_jwks_uri, refresh=True), kid, algorithm)
    if key is None:
        raise ClientAssertionError(Code.UNKNOWN_KEY, "No single registered key matches the assertion's kid.")
    return key


def _select(jwks: dict[str, Any], kid: str, algorithm: str) -> Any:
    """The key of exactly one JWK with this kid whose type fits the algorithm, else None."""
    key_type = _KEY_TYPES.get(algorithm[:2])
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    matches = [
        k for k in keys or [] if isinstance(k, dict) and k.get("kid") == kid and k.get("kty") == key_type
    ]
    if len(matches) != 1:
        return None
    try:
        return jwt.PyJWK(matches[0], algorithm=algorithm).key
    except jwt.PyJWTError:
        return None


def jwks_fetch(uri: str, *, refresh: bool = False) -> dict[str, Any]:
    """The JWKS at `uri`, cached no longer than its Cache-Control allows (checklist #78)."""
    cache_key = "smart:jwks:" + hashlib.sha256(uri.encode()).hexdigest()
    cached = None if refresh else cache.get(cache_key)
    if cached is not None:
        return cached
    jwks, cache_control = _download(uri)
    seconds = cache_seconds(cache_control)
    if seconds > 0:
        cache.set(cache_key, jwks, seconds)
    else:
        cache.delete(cache_key)
    return jwks


def _download(uri: str) -> tuple[dict[str, Any], str | None]:
    if smart_settings.JWKS_URI_REQUIRE_HTTPS and not uri.startswith("https://"):
        raise ClientAssertionError(Code.JWKS_UNAVAILABLE, "The client's JWKS URL is not https.")
    try:
        response = requests.get(
            uri,
            headers={"Accept": "application/json"},
            timeout=smart_settings.JWKS_FETCH_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
        response.raise_for_status()
        jwks = response.json()
    except (requests.RequestException, ValueError) as error:
        log.warning("Fetching a client JWKS failed: %s", type(error).__name__)
        raise ClientAssertionError(
            Code.JWKS_UNAVAILABLE, "The client's JWKS could not be fetched."
        ) from error
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ClientAssertionError(Code.JWKS_UNAVAILABLE, "The client's JWKS URL did not return a JWKS.")
    return jwks, response.headers.get("Cache-Control")


def cache_seconds(cache_control: str | None) -> int:
    """How long a response may be cached: 0 for no-store/no-cache, else max-age, else the default."""
    ceiling = smart_settings.JWKS_CACHE_MAX_SECONDS
    if not cache_control:
        return min(smart_settings.JWKS_CACHE_DEFAULT_SECONDS, ceiling)
    directives = [d.strip().lower() for d in cache_control.split(",")]
    if "no-store" in directives or "no-cache" in directives:
        return 0
    for directive in directives:
        name, _, value = directive.partition("=")
        if name.strip() == "max-age" and value.strip().isdigit():
            return min(int(value.strip()), ceiling)
    return min(smart_settings.JWKS_CACHE_DEFAULT_SECONDS, ceiling)
