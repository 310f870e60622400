"""Provides the fhirapi Django app configuration."""

from django.apps import AppConfig


class FhirApiConfig(AppConfig):
    name = "fhirapi"
    verbose_name = "FHIR API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from fhirapi import checks  # noqa: F401  (registers system checks)
