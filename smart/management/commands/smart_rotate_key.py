"""Provides `manage.py smart_rotate_key`: make a new OpenID Connect signing key active, keep the old one.

The old key moves to the retired-keys folder, which settings publish in the JWKS
(OIDC_RSA_PRIVATE_KEYS_INACTIVE), so id_tokens it signed still verify; retired keys older than --keep-seconds
are deleted. The new key takes effect when the server processes restart (settings read keys at start-up).
"""

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from oauth2_provider.settings import oauth2_settings

from smart.keys import key_file_path, signing_key_rotate


class Command(BaseCommand):
    help = "Rotate the OpenID Connect signing key (the old key stays in the JWKS until its id_tokens expire)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--keep-seconds",
            type=int,
            default=None,
            help="Delete retired keys older than this (default: twice the id_token lifetime).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if os.environ.get("OIDC_RSA_PRIVATE_KEY", "").strip():
            raise CommandError("The signing key comes from the environment; rotate it there.")
        keep = options["keep_seconds"]
        if keep is None:
            keep = 2 * int(oauth2_settings.ID_TOKEN_EXPIRE_SECONDS)
        path = key_file_path(getattr(settings, "VAR_DIR", None))
        rotation = signing_key_rotate(path, keep_seconds=keep)
        self.stdout.write(f"New active key {rotation.active_kid} in {path}.")
        if rotation.retired_kid:
            self.stdout.write(f"Retired key {rotation.retired_kid} stays in the JWKS.")
        for name in rotation.pruned:
            self.stdout.write(f"Deleted expired retired key {name}.")
        self.stdout.write("Restart the server processes to sign with the new key.")
