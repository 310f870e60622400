"""Provides the smart Django app configuration."""

from django.apps import AppConfig


class SmartConfig(AppConfig):
    name = "smart"
    verbose_name = "SMART on FHIR authorization"
    default_auto_field = "django.db.models.BigAutoField"
