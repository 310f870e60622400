"""Provides the token store writes of the token endpoint: new tokens, consuming a code, rotating a refresh token.

A token response's writes (the id_token row, the access token and its refresh token with their launch
context, the timeline event, the app's last use) go to the database as one batch (smart.rows.Batch): one
round trip and one transaction on PostgreSQL. A code or refresh token is claimed inside the same batch: its
row is locked, every write is conditional on it being still unclaimed, and the batch ends with the statement
that claims it. Of two requests presenting the same code or refresh token at once, one stores its tokens and
the other stores nothing and learns it from its claim returning no row (CodeAlreadyUsed,
RefreshTokenAlreadyUsed), which the validator treats as a replay.
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import router
from django.db.models.signals import post_delete
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)
from oauth2_provider.settings import oauth2_settings

from smart.events import launch_event_add
from smart.models import Application
from smart.rows import SQL, Batch, Claim, ClaimLost, Insert, prepared, table
from smart.settings import smart_settings

AccessToken = get_access_token_model()
Grant = get_grant_model()
IDToken = get_id_token_model()
RefreshToken = get_refresh_token_model()

CODE_HASH_KEY = "code_sha256"  # launch_context key linking tokens to the authorization code they came from

_INSERT_ID_TOKEN = Insert(IDToken)
_INSERT_ACCESS_TOKEN = Insert(AccessToken)
_INSERT_REFRESH_TOKEN = Insert(RefreshToken)


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


@dataclass
class NewTokens:
    """What one token response stores: an access token, and the id_token and refresh token that came with it."""

    client: Application
    user_id: int | None
    scope: str
    expires: datetime
    access_token: str
    context: dict[str, Any] = field(default_factory=dict)
    launch_id: int | None = None
    resource: list[str] = field(default_factory=list)
    refresh_token: str | None = None
    family: uuid.UUID | None = None  # the refresh token's family (a rotation keeps its predecessor's)
    source_refresh_token_id: int | None = None  # the refresh token this access token was refreshed from
    id_token: Any = None  # an unsaved IDToken


class TokenWrites:
    """The writes of one token response, sent as one batch by `run()`.

    Made with the code or the refresh token presented (if any): every write is made only if that is still
    unused, and `run()` raises CodeAlreadyUsed or RefreshTokenAlreadyUsed when another request used it first.
    """

    def __init__(self, *, grant_id: int | None = None, previous: Any = None) -> None:
        self.using = router.db_for_write(AccessToken)
        self.previous = previous
        self.lost: Exception | None = None
        claim = None
        if grant_id is not None:
            claim = _code_claim(grant_id)
            self.lost = CodeAlreadyUsed(grant_id)
        elif previous is not None:
            claim = _refresh_token_claim(previous, self.using)
            self.lost = RefreshTokenAlreadyUsed(previous.token_family)
        self.batch = Batch(self.using, claim=claim)
        if previous is not None:  # the rotated token's access token goes with it, as DOT's revoke() does
            self.batch.add(
                f"DELETE FROM {table(AccessToken)} WHERE id = %s AND {self.batch.gate.text}",
                [previous.access_token_id, *self.batch.gate.params],
            )

    def tokens(self, new: NewTokens) -> None:
        """The id_token row, the access token and the refresh token of `new`."""
        id_token_id = None
        if new.id_token is not None:
            jti = new.id_token.jti
            self.batch.insert(
                _INSERT_ID_TOKEN,
                {"user_id": new.user_id, "application_id": new.client.pk, "jti": jti,
                 "expires": new.id_token.expires, "scope": new.id_token.scope},
                where=self.batch.gate,
            )  # fmt: skip
            id_token_id = SQL(
                f"(SELECT id FROM {table(IDToken)} WHERE jti = %s)",
                (prepared(IDToken, "jti", jti, self.using),),
            )
        access_checksum = sha256_hex(new.access_token)
        shared = {"user_id": new.user_id, "application_id": new.client.pk, "resource": new.resource,
                  "launch_context": new.context, "launch_id": new.launch_id}  # fmt: skip
        self.batch.insert(
            _INSERT_ACCESS_TOKEN,
            {**shared, "token": _stored(new.access_token), "token_checksum": access_checksum,
             "source_refresh_token_id": new.source_refresh_token_id, "id_token_id": id_token_id,
             "expires": new.expires, "scope": new.scope},
            where=self.batch.gate,
        )  # fmt: skip
        if new.refresh_token:
            access_token_id = SQL(
                f"(SELECT id FROM {table(AccessToken)} WHERE token_checksum = %s)", (access_checksum,)
            )
            self.batch.insert(
                _INSERT_REFRESH_TOKEN,
                {**shared, "token": _stored(new.refresh_token), "token_checksum": sha256_hex(new.refresh_token),
                 "access_token_id": access_token_id, "token_family": new.family or uuid.uuid4()},
                where=self.batch.gate,
            )  # fmt: skip

    def event(self, *, launch_id: int | None, kind: str, detail: dict[str, Any]) -> None:
        launch_event_add(self.batch, launch_id=launch_id, kind=kind, detail=detail, where=self.batch.gate)

    def app_touch(self, client: Application) -> None:
        """Record the app's last use, at most once per LAST_USED_RESOLUTION_SECONDS."""
        now = timezone.now()
        if client.last_used is None or (now - client.last_used).total_seconds() >= (
            smart_settings.LAST_USED_RESOLUTION_SECONDS
        ):
            self.batch.add(
                f"UPDATE {table(Application)} SET last_used = %s WHERE id = %s",
                [prepared(Application, "last_used", now, self.using), client.pk],
            )
            client.last_used = now

    def run(self) -> None:
        try:
            self.batch.run()
        except ClaimLost as lost:
            raise self.lost from lost  # type: ignore[misc]
        if self.previous is not None and self.previous.access_token is not None:
            # listeners (the bearer grant cache) hear of the deleted access token as from delete()
            token = self.previous.access_token
            post_delete.send(sender=AccessToken, instance=token, using=self.using, origin=token)


def _code_claim(grant_id: int) -> Claim:
    """Delete the authorization code (single use)."""
    return Claim(
        Grant,
        SQL("id = %s", (grant_id,)),
        SQL(f"DELETE FROM {table(Grant)} WHERE id = %s RETURNING id", (grant_id,)),
    )


def _refresh_token_claim(previous: Any, using: str) -> Claim:
    """Revoke the refresh token being rotated, unlinking its access token (deleted in the same batch)."""
    live = SQL(
        "id = %s AND revoked IS NULL AND access_token_id = %s", (previous.pk, previous.access_token_id)
    )
    now = timezone.now()
    revoked, updated = (
        prepared(RefreshToken, "revoked", now, using),
        prepared(RefreshToken, "updated", now, using),
    )
    return Claim(
        RefreshToken,
        live,
        SQL(
            f"UPDATE {table(RefreshToken)} SET revoked = %s, updated = %s, access_token_id = NULL "
            f"WHERE {live.text} RETURNING id",
            (revoked, updated, *live.params),
        ),
    )


def _stored(raw: str) -> str:
    """The token column's value: blank when tokens are stored hashed only (RFC 9700, DOT's setting)."""
    return "" if oauth2_settings.COMPLIANT_BCP_RFC9700_TOKEN_STORAGE else raw


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
