"""Provides `manage.py smart_register_app`: register a SMART app from the command line.

Validation is smart.clients.client_validate, the same as the admin form. A confidential app's secret is
printed once and stored only as a hash.
"""

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from oauth2_provider.models import get_application_model

from smart.clients import client_register

Application = get_application_model()


class Command(BaseCommand):
    help = (
        "Register a SMART app (client) and print its client_id (and, for confidential apps, its secret once)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--redirect-uri", action="append", default=[], dest="redirect_uris", metavar="URI"
        )
        parser.add_argument("--launch-url", default="", help="The app's EHR launch URL.")
        parser.add_argument(
            "--scopes", default="", help="Allowed scopes; default: a preset for the app type."
        )
        parser.add_argument("--type", default="public", choices=Application.SmartClientType.values)
        keys = parser.add_mutually_exclusive_group()
        keys.add_argument("--jwks-uri", default="", help="URL of the app's JWKS (asymmetric and backend).")
        keys.add_argument("--jwks-file", type=Path, help="File with the app's JWKS (asymmetric and backend).")
        parser.add_argument("--skip-consent", action="store_true")
        parser.add_argument("--launch-mode", default="embedded", choices=Application.LaunchMode.values)
        parser.add_argument("--audience", default="clinician", choices=Application.Audience.values)
        parser.add_argument("--logo-uri", default="")
        parser.add_argument("--description", default="")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            client, secret = client_register(
                name=options["name"],
                redirect_uris=options["redirect_uris"],
                client_type=options["type"],
                launch_uri=options["launch_url"],
                scopes=options["scopes"],
                jwks=_read_jwks(options["jwks_file"]),
                jwks_uri=options["jwks_uri"],
                skip_consent=options["skip_consent"],
                launch_mode=options["launch_mode"],
                audience=options["audience"],
                logo_uri=options["logo_uri"],
                description=options["description"],
            )
        except ValidationError as exc:
            raise CommandError(_describe(exc)) from None
        self._print(client, secret, as_json=options["json"])

    def _print(self, client: Application, secret: str | None, *, as_json: bool) -> None:
        if as_json:
            payload = {"client_id": client.client_id}
            if secret:
                payload["client_secret"] = secret
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(f"client_id: {client.client_id}")
        if secret:
            self.stdout.write(f"client_secret: {secret}")
            self.stdout.write("Store the secret now: it is shown only once.")


def _read_jwks(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise CommandError(f"--jwks-file: cannot read {path}: {exc.strerror}.") from None
    except json.JSONDecodeError as exc:
        raise CommandError(f"--jwks-file: {path} is not JSON ({exc.msg}).") from None


OPTION_NAMES = {
    "redirect_uris": "--redirect-uri",
    "launch_uri": "--launch-url",
    "allowed_scopes": "--scopes",
    "client_jwks": "--jwks-file",
    "client_jwks_uri": "--jwks-uri",
}


def _describe(exc: ValidationError) -> str:
    """One line per problem, named after the command's option."""
    if not hasattr(exc, "error_dict"):
        return " ".join(exc.messages)
    return "\n".join(
        f"{OPTION_NAMES.get(field, field)}: {message}"
        for field, messages in exc.message_dict.items()
        for message in messages
    )
