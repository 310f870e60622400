"""Provides the ehr Django app configuration."""

from django.apps import AppConfig


class EhrConfig(AppConfig):
    name = "ehr"
    verbose_name = "EHR"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ehr import checks  # noqa: F401  (registers system checks)
