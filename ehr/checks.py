"""Provides the project's deployment checks."""

from django.conf import settings
from django.core.checks import Error, register


@register(deploy=False)
def check_secret_key(app_configs, **kwargs):  # type: ignore[no-untyped-def]
    if not settings.DEBUG and settings.SECRET_KEY == settings.DEVELOPMENT_SECRET_KEY:
        return [
            Error(
                "SECRET_KEY is the development default while DEBUG is off.",
                hint="Set the SECRET_KEY environment variable to a long random value.",
                id="ehr.E001",
            )
        ]
    return []
