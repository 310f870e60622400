"""Provides fhirapi's system checks."""

from django.core.checks import Error, register

from fhirapi.settings import fhirapi_settings


@register()
def check_base_url(app_configs, **kwargs):  # type: ignore[no-untyped-def]
    base = fhirapi_settings.BASE_URL
    if not base or not base.startswith(("http://", "https://")):
        return [Error("FHIRAPI['BASE_URL'] must be an absolute http(s) URL.", id="fhirapi.E001")]
    return []
