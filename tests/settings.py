"""Test settings: the project's settings with fast password hashing and a local-memory cache."""

from ehr.settings import *  # noqa: F403

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "smart.hashers.ClientSecretHasher",
]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
