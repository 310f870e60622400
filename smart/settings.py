"""Provides `smart_settings`, the authorization server's one settings object (namespace `SMART`).

Modelled on rest_framework/settings.py: a project overrides any key in `settings.SMART`, dotted paths in
IMPORT_STRINGS are imported lazily, unknown names fail loudly, and the cache resets on `setting_changed`.

    SMART = {
        "LAUNCH_TTL_SECONDS": 300,
        "FHIR_USER_RESOLVER": "myehr.identity.fhir_user_for",
    }
"""

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

DEFAULTS: dict[str, Any] = {
    # How long an EHR launch token may wait for the app's /authorize (seconds).
    "LAUNCH_TTL_SECONDS": 300,
    # callable(user) -> "Practitioner/x" | "Patient/y" | None: the user's own FHIR resource (`fhirUser`).
    "FHIR_USER_RESOLVER": "smart.identity.fhir_user_for",
    # Access token lifetime for backend services (client_credentials), seconds.
    "BACKEND_TOKEN_EXPIRE_SECONDS": 300,
    # How long a process may reuse a token's grant without reading the token again (seconds; 0 = never).
    # Bounds how long a revoked token still works in other server processes (this process drops it at once).
    "TOKEN_CACHE_SECONDS": 5,
    # How often a token's last_used may be written (seconds); keeps the FHIR hot path write-free.
    "LAST_USED_RESOLUTION_SECONDS": 60,
    # The server's public root URL (scheme, host and any path prefix), e.g. "https://ehr.example.org".
    # None: the origin of FHIRAPI["BASE_URL"]. Every absolute URL in discovery is built on it.
    "PUBLIC_ROOT_URL": None,
    # The SMART capabilities advertised in .well-known/smart-configuration; list only what works.
    "CAPABILITIES": [
        "launch-ehr",
        "launch-standalone",
        "authorize-post",
        "client-public",
        "client-confidential-symmetric",
        "client-confidential-asymmetric",
        "sso-openid-connect",
        "context-banner",
        "context-style",
        "context-ehr-patient",
        "context-ehr-encounter",
        "context-standalone-patient",
        "context-standalone-encounter",
        "permission-offline",
        "permission-online",
        "permission-patient",
        "permission-user",
        "permission-v1",
        "permission-v2",
    ],
    # `scopes_supported` in discovery; None: the launch scopes plus wildcard clinical scopes (v1 and v2).
    "SCOPES_SUPPORTED": None,
    # Overrides of the style JSON served at smart_style_url (keys of smart.discovery.DEFAULT_STYLE).
    "STYLE": {},
    # Timeout (seconds) when fetching a client's JWKS URL at registration.
    "JWKS_FETCH_TIMEOUT_SECONDS": 5,
    # smart_style_url put in every EHR launch context; None: the versioned URL of the served style JSON.
    "SMART_STYLE_URL": None,
    # Client assertions (private_key_jwt, RFC 7523): accepted algorithms, the furthest `exp` may lie ahead,
    # and the clock skew tolerated on `exp`/`iat`/`nbf` (seconds).
    "CLIENT_ASSERTION_ALGORITHMS": ["RS384", "ES384"],
    "CLIENT_ASSERTION_MAX_LIFETIME_SECONDS": 300,
    "CLIENT_ASSERTION_LEEWAY_SECONDS": 30,
    # How often a process deletes the expired jti rows it remembers (seconds; 0 = on every assertion).
    "CLIENT_ASSERTION_JTI_SWEEP_SECONDS": 60,
    # A client JWKS fetched from its URL is cached as its Cache-Control allows (no-store: not at all); without
    # that header for JWKS_CACHE_DEFAULT_SECONDS, and never longer than JWKS_CACHE_MAX_SECONDS.
    "JWKS_CACHE_DEFAULT_SECONDS": 300,
    "JWKS_CACHE_MAX_SECONDS": 3600,
    # Refuse client JWKS URLs that are not https (switch off only for local development).
    "JWKS_URI_REQUIRE_HTTPS": True,
    # Extra accepted `aud` values of client assertions besides the token endpoint's own URL.
    "TOKEN_ENDPOINT_AUDIENCES": [],
    # Patient picker: rows per search and how many recently opened patients to offer.
    "PICKER_PAGE_SIZE": 20,
    "PICKER_RECENT_COUNT": 8,
}

IMPORT_STRINGS = {"FHIR_USER_RESOLVER"}


class SmartSettings:
    """Lazy, cached view of `settings.SMART` over DEFAULTS."""

    namespace = "SMART"

    def __init__(self, defaults: dict[str, Any], import_strings: set[str]) -> None:
        self.defaults = defaults
        self.import_strings = import_strings
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        return getattr(settings, self.namespace, {})

    def __getattr__(self, name: str) -> Any:
        if name not in self.defaults:
            raise AttributeError(f"Invalid {self.namespace} setting: {name!r}")
        value = self.user_settings.get(name, self.defaults[name])
        if name in self.import_strings:
            value = _import(value)
        self._cached.add(name)
        setattr(self, name, value)
        return value

    def reload(self) -> None:
        for name in self._cached:
            delattr(self, name)
        self._cached.clear()


def _import(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return import_string(value)
    if isinstance(value, list | tuple):
        return [import_string(v) if isinstance(v, str) else v for v in value]
    return value


smart_settings = SmartSettings(DEFAULTS, IMPORT_STRINGS)


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == SmartSettings.namespace:
        smart_settings.reload()


setting_changed.connect(_reload)
