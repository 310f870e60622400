"""Provides `manage.py smart_launch`: create an EHR launch for an app, user and patient, and print its URL."""

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from oauth2_provider.models import get_application_model

from smart.launch import fhir_base_url, launch_create, launch_url

Application = get_application_model()


class Command(BaseCommand):
    help = "Create an EHR launch (launch id bound to app, user and patient) and print the app's launch URL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--app", required=True, metavar="CLIENT_ID")
        parser.add_argument("--user", required=True, metavar="USERNAME")
        parser.add_argument("--patient", required=True, metavar="ID")
        parser.add_argument("--encounter", default=None, metavar="ID")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        client = Application.objects.filter(client_id=options["app"]).first()
        if client is None:
            raise CommandError(f"No app with client_id {options['app']!r}.")
        user = (
            get_user_model()
            ._default_manager.filter(**{get_user_model().USERNAME_FIELD: options["user"]})
            .first()
        )
        if user is None:
            raise CommandError(f"No user {options['user']!r}.")
        try:
            launch = launch_create(
                client=client, user=user, patient_id=options["patient"], encounter_id=options["encounter"]
            )
            url = launch_url(launch)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(
                json.dumps({"launch": launch.launch, "launch_url": url, "iss": fhir_base_url()})
            )
        else:
            self.stdout.write(url)
