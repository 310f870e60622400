"""Provides the SMART discovery documents: .well-known/smart-configuration, the CapabilityStatement's
`rest.security` and the style JSON behind `smart_style_url`.

SMART App Launch 2.x, conformance.html#using-well-known (metadata fields and capabilities),
scopes-and-launch-context.html#styling (style keys); the `oauth-uris` extension is SMART 1.0's discovery,
still read by v1 clients. Every URL is absolute and built from settings, never from the request's Host header.
"""

import hashlib
import json
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from oauth2_provider.settings import oauth2_settings

from fhirapi.settings import fhirapi_settings
from smart.scopes import LAUNCH_SCOPES
from smart.settings import smart_settings

OAUTH_URIS_EXTENSION = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
RESTFUL_SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"

LAUNCH_SCOPE_ORDER = (
    "openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter", "offline_access",
    "online_access",
)  # fmt: skip
CLINICAL_SCOPES_SUPPORTED = (
    "patient/*.cruds", "user/*.cruds", "system/*.rs",
    "patient/*.read", "patient/*.write", "patient/*.*", "user/*.read", "user/*.write", "user/*.*",
    "system/*.read",
)  # fmt: skip

FONT_STACK = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'

# The EHR's own palette (ehr/static/ehr/ehr.css): slate text on a grey-blue page, a calm clinical blue.
DEFAULT_STYLE: dict[str, str] = {
    "color_background": "#f3f6f9",
    "color_error": "#b01c1c",
    "color_highlight": "#0b5c8a",
    "color_modal_backdrop": "rgba(16, 24, 40, 0.45)",
    "color_success": "#17613a",
    "color_text": "#1b2631",
    "dim_border_radius": "8px",
    "dim_font_size": "15px",
    "dim_spacing_size": "16px",
    "font_family_body": FONT_STACK,
    "font_family_heading": FONT_STACK,
}


def public_root() -> str:
    """The server's public root URL without a trailing slash (SMART PUBLIC_ROOT_URL, else the FHIR origin)."""
    configured = smart_settings.PUBLIC_ROOT_URL
    if configured:
        return configured.rstrip("/")
    base = urlsplit(fhirapi_settings.BASE_URL)
    return f"{base.scheme}://{base.netloc}"


def absolute_url(name: str, **kwargs: Any) -> str:
    """The absolute public URL of a named route."""
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    return f"{public_root()}/{_route_path(name, tuple(kwargs.items()), urlconf, get_script_prefix())}"


@lru_cache(maxsize=256)  # the same route of the same URLconf is the same path: every EHR launch asks
def _route_path(name: str, kwargs: tuple[tuple[str, Any], ...], urlconf: str, script_prefix: str) -> str:
    """A route's path below the script prefix: reverse() prefixes it, and the public root already carries the
    deployment's prefix."""
    return reverse(name, urlconf=urlconf, kwargs=dict(kwargs) or None)[len(script_prefix) :]


def issuer() -> str:
    """The OpenID Connect issuer: DOT's OIDC_ISS_ENDPOINT, else where DOT serves openid-configuration."""
    if oauth2_settings.OIDC_ISS_ENDPOINT:
        return oauth2_settings.OIDC_ISS_ENDPOINT.rstrip("/")
    return absolute_url("oauth2_provider:oidc-connect-discovery-info").removesuffix(
        "/.well-known/openid-configuration"
    )


def endpoints() -> dict[str, str]:
    """The OAuth endpoints, keyed by their oauth-uris sub-extension names."""
    return {
        "authorize": absolute_url("smart:authorize"),
        "token": absolute_url("smart:token"),
        "introspect": absolute_url("smart:introspect"),
        "revoke": absolute_url("smart:revoke-token"),
        "manage": absolute_url("smart:connected-apps"),
    }


def scopes_supported() -> list[str]:
    configured = smart_settings.SCOPES_SUPPORTED
    if configured is not None:
        return list(configured)
    fixed = [scope for scope in LAUNCH_SCOPE_ORDER if scope in LAUNCH_SCOPES]
    return [*fixed, *CLINICAL_SCOPES_SUPPORTED]


def smart_configuration() -> dict[str, Any]:
    """The body of `{FHIR base}/.well-known/smart-configuration` (no registration_endpoint: no DCR)."""
    urls = endpoints()
    return {
        "issuer": issuer(),
        "jwks_uri": absolute_url("oauth2_provider:jwks-info"),
        "authorization_endpoint": urls["authorize"],
        "token_endpoint": urls["token"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "scopes_supported": scopes_supported(),
        "response_types_supported": ["code"],
        "management_endpoint": urls["manage"],
        "introspection_endpoint": urls["introspect"],
        "revocation_endpoint": urls["revoke"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": list(smart_settings.CAPABILITIES),
    }


def capability_security() -> dict[str, Any]:
    """The CapabilityStatement `rest[0].security` (fhirapi's CAPABILITY_SECURITY_PROVIDER)."""
    return {
        "cors": True,
        "service": [
            {
                "coding": [
                    {"system": RESTFUL_SECURITY_SERVICE, "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}
                ],
                "text": "OAuth2 using the SMART App Launch profile",
            }
        ],
        "extension": [
            {
                "url": OAUTH_URIS_EXTENSION,
                "extension": [{"url": name, "valueUri": url} for name, url in endpoints().items()],
            }
        ],
    }


def style() -> dict[str, str]:
    """The style JSON apps read from `smart_style_url`."""
    return {**DEFAULT_STYLE, **smart_settings.STYLE}


def style_body() -> bytes:
    """The style JSON, serialised the same way every time (so its hash is a version)."""
    return json.dumps(style(), sort_keys=True).encode()


def style_version() -> str:
    """A short hash of the style JSON: URL and ETag change whenever the style does (the IG says SHALL)."""
    return hashlib.sha256(style_body()).hexdigest()[:16]


def style_url() -> str:
    """The absolute, versioned `smart_style_url` for token responses."""
    return f"{absolute_url('smart:style')}?v={style_version()}"
