"""Provides the token store writes of the token endpoint: consuming a code, rotating a refresh token, revoking.

DOT does these in several statements each (its RefreshToken.revoke() re-reads and locks the row it was given,
then saves every field); here each is the fewest statements that keep its guarantee under concurrent
requests: a conditional DELETE or UPDATE claims the row, and the loser of a race learns it from the row count.
Callers run them inside the token request's one transaction (smart.validators.save_bearer_token).
"""

import hashlib
import secrets
import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connections, router
from django.db.models.signals import post_delete
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from smart.models import Application

AccessToken = get_access_token_model()
Grant = get_grant_model()
RefreshToken = get_refresh_token_model()

CODE_HASH_KEY = "code_sha256"  # launch_context key linking tokens to the authorization code they came from


def token_generate(request: Any, refresh_token: bool = False) -> str:
    """A new access or refresh token: 256 random bits (OAUTH2_PROVIDER's ACCESS/REFRESH_TOKEN_GENERATOR).

    oauthlib's default draws 30 characters one SystemRandom call at a time (about 178 bits), a visible part of
    a token request; one urandom read gives more entropy for less.
    """
    return secrets.token_urlsafe(32)


class CodeAlreadyUsed(Exception):
    """The authorization code was consumed by another request after this one validated it."""


class RefreshTokenAlreadyUsed(Exception):
    """The refresh token was rotated or revoked by another request after this one validated it."""

    def __init__(self, family: uuid.UUID | None) -> None:
        super().__init__("refresh token already used")
        self.family = family


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def code_consume(*, code: str, client: Application) -> None:
    """Delete the authorization code (single use); CodeAlreadyUsed if it is gone already."""
    deleted, _ = Grant.objects.filter(code=code, application=client).delete()
    if not deleted:
        raise CodeAlreadyUsed(code)


def refresh_token_retire(token: "RefreshToken") -> None:
    """Revoke a refresh token being rotated and delete its access token (what DOT's revoke() does).

    The conditional UPDATE is the claim: of two requests rotating the same token at once, one updates no row
    and gets RefreshTokenAlreadyUsed. `token.access_token` must be the instance loaded with it.
    """
    now = timezone.now()
    claimed = RefreshToken.objects.filter(
        pk=token.pk, revoked__isnull=True, access_token_id=token.access_token_id
    ).update(revoked=now, updated=now, access_token=None)  # unlinked here, as revoke() does on the delete
    if not claimed:
        raise RefreshTokenAlreadyUsed(token.token_family)
    if token.access_token is not None:
        _access_token_delete(token.access_token)
    token.revoked, token.access_token = now, None


def _access_token_delete(access_token: Any) -> None:
    """Delete an access token no refresh token points at any more, in one statement.

    Model.delete() would first run the SET_NULL of RefreshToken.access_token (its only incoming relation),
    which the claiming UPDATE has already done. post_delete is still sent, so listeners (the bearer token
    grant cache) hear of the deletion as they would from delete().
    """
    alias = router.db_for_write(AccessToken)
    with connections[alias].cursor() as cursor:
        cursor.execute(f"DELETE FROM {AccessToken._meta.db_table} WHERE id = %s", [access_token.pk])
    post_delete.send(sender=AccessToken, instance=access_token, using=alias, origin=access_token)


def tokens_revoke_for_code(code: str) -> int:
    """Revoke every token descended from this authorization code; the number of refresh tokens revoked."""
    lookup = {f"launch_context__{CODE_HASH_KEY}": sha256_hex(code)}
    refresh_tokens = list(RefreshToken.objects.filter(revoked__isnull=True, **lookup))
    for refresh_token in refresh_tokens:
        refresh_token.revoke()
    AccessToken.objects.filter(**lookup).delete()
    return len(refresh_tokens)


def tokens_revoke_online(user: AbstractBaseUser) -> int:
    """Revoke the user's online_access grants (their refresh and access tokens); the number revoked."""
    online = r"(^| )online_access( |$)"
    refresh_tokens = list(
        RefreshToken.objects.filter(user=user, revoked__isnull=True, access_token__scope__regex=online)
    )
    for refresh_token in refresh_tokens:
        refresh_token.revoke()
    AccessToken.objects.filter(user=user, scope__regex=online).delete()
    return len(refresh_tokens)
