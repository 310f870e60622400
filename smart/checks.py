"""Provides the authorization server's system checks (ids smart.E001...)."""

from django.conf import settings
from django.core.checks import Error, Warning, register

from fhirapi.settings import fhirapi_settings

VALIDATOR_CLASS = "smart.validators.SmartOAuth2Validator"


def _oauth2_settings() -> dict:
    return getattr(settings, "OAUTH2_PROVIDER", {})


def _dotted_name(value: object) -> str | None:
    """A setting that may hold an import string or the class itself, as an import string."""
    if value is None or isinstance(value, str):
        return value
    return f"{value.__module__}.{value.__qualname__}"


@register()
def check_validator_class(app_configs, **kwargs):  # type: ignore[no-untyped-def]
    name = _dotted_name(_oauth2_settings().get("OAUTH2_VALIDATOR_CLASS"))
    if name != VALIDATOR_CLASS:
        return [
            Error(
                f'OAUTH2_PROVIDER["OAUTH2_VALIDATOR_CLASS"] is {name!r}, not the SMART validator.',
                hint=f'Set it to "{VALIDATOR_CLASS}": without it tokens carry no launch context.',
                id="smart.E001",
            )
        ]
    return []


@register()
def check_pkce_required(app_configs, **kwargs):  # type: ignore[no-untyped-def]
    if _oauth2_settings().get("PKCE_REQUIRED", True) is not True:
        return [
            Error(
                'OAUTH2_PROVIDER["PKCE_REQUIRED"] must be True (SMART App Launch 2.x requires PKCE).',
                id="smart.E002",
            )
        ]
    return []


@register()
def check_oidc_enabled(app_configs, **kwargs):  # type: ignore[no-untyped-def]
    if not _oauth2_settings().get("OIDC_ENABLED", False):
        return [
            Error(
                'OAUTH2_PROVIDER["OIDC_ENABLED"] must be True: SMART sso-openid-connect needs id_tokens.',
                id="smart.E003",
            )
        ]
    return []


@register()
def check_fhir_base_url(app_configs, **kwargs):  # type: ignore[no-untyped-def]
    if not getattr(settings, "FHIRAPI", {}).get("BASE_URL") or not fhirapi_settings.BASE_URL:
        return [
            Error(
                'FHIRAPI["BASE_URL"] is not set: it is the `iss` of launches and the only accepted `aud`.',
                id="smart.E004",
            )
        ]
    return []


@register()
def check_signing_key(app_configs, **kwargs):  # type: ignore[no-untyped-def]
    if not _oauth2_settings().get("OIDC_RSA_PRIVATE_KEY"):
        return [
            Warning(
                'OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"] is empty: id_tokens cannot be signed (RS256).',
                hint="Set it from smart.keys.load_signing_keys() in settings.",
                id="smart.W001",
            )
        ]
    return []
