"""Provides the OpenID Connect signing keys: the active RSA key and retired keys still in the JWKS.

Imports no Django: `load_signing_keys()` runs inside settings.py, before Django is configured.

Layout on disk (default `var/`, or the file named by env OIDC_RSA_PRIVATE_KEY_FILE):

    var/oidc.key                        the active key (PKCS#8 PEM, mode 0600), made on first use
    var/oidc.key.inactive/<ts>-<kid>.pem  retired keys, kept in the JWKS while id_tokens signed with them live

DOT publishes OIDC_RSA_PRIVATE_KEY plus OIDC_RSA_PRIVATE_KEYS_INACTIVE at /o/.well-known/jwks.json with the
JWK thumbprint as `kid`, so a relying party can still verify an id_token signed just before a rotation.
"""

import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwk

PROJECT_DIR = Path(__file__).resolve().parent.parent
KEY_FILE_NAME = "oidc.key"
INACTIVE_SUFFIX = ".inactive"
RSA_KEY_BITS = 2048


@dataclass(frozen=True)
class KeyRotation:
    """What `signing_key_rotate` did: the new and retired key ids and the retired files it pruned."""

    active_kid: str
    retired_kid: str | None
    pruned: tuple[str, ...]


def load_signing_keys(var_dir: str | Path | None = None) -> tuple[str, list[str]]:
    """The active signing key PEM and the retired ones still to publish (newest first).

    Env OIDC_RSA_PRIVATE_KEY (a PEM) wins and has no retired keys; otherwise the key file is read, and made
    with a fresh 2048-bit RSA key when it does not exist yet.
    """
    inline = os.environ.get("OIDC_RSA_PRIVATE_KEY", "").strip()
    if inline:
        return inline + "\n", []
    path = key_file_path(var_dir)
    return key_file_ensure(path), inactive_keys(path)


def key_file_path(var_dir: str | Path | None = None) -> Path:
    """Env OIDC_RSA_PRIVATE_KEY_FILE, else `<var_dir or env EHR_VAR_DIR or <project>/var>/oidc.key`."""
    explicit = os.environ.get("OIDC_RSA_PRIVATE_KEY_FILE")
    if explicit:
        return Path(explicit)
    base = var_dir or os.environ.get("EHR_VAR_DIR") or PROJECT_DIR / "var"
    return Path(base) / KEY_FILE_NAME


def inactive_dir(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + INACTIVE_SUFFIX)


def key_id(pem: str) -> str:
    """The key's `kid` in DOT's JWKS (its RFC 7638 thumbprint)."""
    return jwk.JWK.from_pem(pem.encode()).thumbprint()


@lru_cache(maxsize=4)
def signing_key(pem: str) -> tuple[Any, str]:
    """The parsed private key of a PEM and its `kid`, parsed once (each id_token is signed with it)."""
    return serialization.load_pem_private_key(pem.encode(), password=None), key_id(pem)


def private_key_generate() -> str:
    """A new RSA private key as PKCS#8 PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def key_file_ensure(path: Path) -> str:
    """The PEM in `path`, creating the file (mode 0600) with a new key if it is missing.

    Creation goes through a temporary file and a hard link, so two processes starting at once cannot
    both write a key: the loser reads the winner's.
    """
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = _write_private(path.with_name(f".{path.name}.{os.getpid()}.tmp"), private_key_generate())
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path.read_text()


def inactive_keys(key_file: Path) -> list[str]:
    """The retired keys' PEMs, newest first."""
    directory = inactive_dir(key_file)
    if not directory.is_dir():
        return []
    return [p.read_text() for p in sorted(directory.glob("*.pem"), reverse=True)]


def signing_key_rotate(key_file: Path, *, keep_seconds: int, now: float | None = None) -> KeyRotation:
    """Make a new active key; keep the old one as retired; prune keys retired more than `keep_seconds` ago."""
    now = time.time() if now is None else now
    retired_kid = None
    directory = inactive_dir(key_file)
    if key_file.exists():
        old = key_file.read_text()
        retired_kid = key_id(old)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(directory / f"{int(now):012d}-{retired_kid[:16]}.pem", old)
    new = private_key_generate()
    key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.replace(_write_private(key_file.with_name(f".{key_file.name}.new"), new), key_file)
    pruned = _prune(directory, older_than=now - keep_seconds, keep={retired_kid})
    return KeyRotation(active_kid=key_id(new), retired_kid=retired_kid, pruned=pruned)


def _prune(directory: Path, *, older_than: float, keep: set[str | None]) -> tuple[str, ...]:
    """Delete retired keys whose retirement time (the file name's prefix) is before `older_than`."""
    pruned = []
    for path in sorted(directory.glob("*.pem")) if directory.is_dir() else []:
        retired_at, _, kid_prefix = path.stem.partition("-")
        if (
            retired_at.isdigit()
            and int(retired_at) < older_than
            and not any(k and k.startswith(kid_prefix) for k in keep)
        ):
            path.unlink()
            pruned.append(path.name)
    return tuple(pruned)


def _write_private(path: Path, pem: str) -> Path:
    """Write `pem` to a new file readable by the owner only (0600 from creation, never wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(pem)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file
    return path
