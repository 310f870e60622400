"""Provides the token store writes of the token endpoint: consuming a code, rotating a refresh token, revoking.

DOT does these in several statements each (its RefreshToken.revoke() re-reads and locks the row it was given,
then saves every field); here each is the fewest statements that keep its guarantee under concurrent
requests: a conditional DELETE or UPDATE claims the row, and the loser of a race learns it from the row count.
Callers run them inside the token request's one transaction (smart.validators.save_bearer_token).
"""

import hashlib
import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from smart.models import Application

AccessToken = get_access_token_model()
Grant = get_grant_model()
RefreshToken = get_refresh_token_model()

CODE_HASH_KEY = "code_sha256"  # launch_context key linking tokens to the authorization code they came from


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
    ).update(revoked=now, updated=now)
    if not claimed:
        raise RefreshTokenAlreadyUsed(token.token_family)
    if token.access_token is not None:
        token.access_token.delete()  # sets this row's access_token to NULL, as revoke() does
    token.revoked, token.access_token = now, None


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
