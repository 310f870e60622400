"""Provides the fhirapi Django app configuration."""

from django.apps import AppConfig


class FhirApiConfig(AppConfig):
    name = "fhirapi"
    verbose_name = "FHIR API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import request_finished

        from fhirapi import checks  # noqa: F401  (registers system checks)
        from fhirapi.after_response import run_pending

        request_finished.connect(run_pending, dispatch_uid="fhirapi.after_response")
