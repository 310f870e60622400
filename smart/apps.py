"""Provides the smart Django app configuration."""

from django.apps import AppConfig


class SmartConfig(AppConfig):
    name = "smart"
    verbose_name = "SMART on FHIR authorization"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        from smart import checks, signals  # noqa: F401  (register system checks and the logout hook)
        from smart.cors import check_request_enabled_handler

        check_request_enabled.connect(check_request_enabled_handler, dispatch_uid="smart.cors")
