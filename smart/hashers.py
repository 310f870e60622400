"""Provides the keyed hash for client secrets.

Client secrets are long random values (not passwords), so a slow KDF buys nothing and costs a confidential
token request ~300 ms. HMAC-SHA-256 with a server-side key keeps them unrecoverable from a database dump
without the key, and is compared in constant time.
"""

import hashlib
import hmac

from django.conf import settings
from django.contrib.auth.hashers import BasePasswordHasher, mask_hash
from django.utils.crypto import constant_time_compare


class ClientSecretHasher(BasePasswordHasher):
    """`smart_hmac_sha256$<salt>$<hex digest>`; the key is derived from SECRET_KEY."""

    algorithm = "smart_hmac_sha256"

    def _key(self) -> bytes:
        return hashlib.sha256(b"smart.client-secret:" + settings.SECRET_KEY.encode()).digest()

    def encode(self, password: str, salt: str) -> str:
        digest = hmac.new(self._key(), f"{salt}${password}".encode(), hashlib.sha256).hexdigest()
        return f"{self.algorithm}${salt}${digest}"

    def decode(self, encoded: str) -> dict[str, str]:
        algorithm, salt, digest = encoded.split("$", 2)
        return {"algorithm": algorithm, "salt": salt, "hash": digest}

    def verify(self, password: str, encoded: str) -> bool:
        decoded = self.decode(encoded)
        return constant_time_compare(encoded, self.encode(password, decoded["salt"]))

    def safe_summary(self, encoded: str) -> dict[str, str]:
        decoded = self.decode(encoded)
        return {
            "algorithm": decoded["algorithm"],
            "salt": mask_hash(decoded["salt"]),
            "hash": mask_hash(decoded["hash"]),
        }

    def must_update(self, encoded: str) -> bool:
        return False

    def harden_runtime(self, password: str, encoded: str) -> None:
        return None
