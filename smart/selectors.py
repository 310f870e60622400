"""Provides the authorization server's hot reads: an app by client_id, a code's grant, a refresh or access token.

Each is one fixed statement (smart.rows) that brings the row with what the request needs next, as
select_related would: a code's grant with its app, its user and the user's fhirUser link; a refresh token with
its access token and user; an access token with its app and user. Tokens are looked up by the SHA-256
checksum DOT stores (raw tokens are never stored).
"""

from django.contrib.auth import get_user_model
from django.db import router
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from smart.models import Application, LaunchContext, UserFhirIdentity
from smart.rows import Columns, relate, table
from smart.tokens import sha256_hex

AccessToken = get_access_token_model()
Grant = get_grant_model()
RefreshToken = get_refresh_token_model()
User = get_user_model()

_IDENTITY_JOIN = f"LEFT JOIN {table(UserFhirIdentity)} i ON i.user_id = u.{User._meta.pk.column}"

_APPLICATION = Columns([("a", Application)])
_APPLICATION_SQL = f"SELECT {_APPLICATION.sql} FROM {table(Application)} a WHERE a.client_id = %s"

_APPLICATION_LAUNCH = Columns([("a", Application), ("l", LaunchContext)])
_APPLICATION_LAUNCH_SQL = (
    f"SELECT {_APPLICATION_LAUNCH.sql} FROM {table(Application)} a "
    f"LEFT JOIN {table(LaunchContext)} l ON l.launch = %s WHERE a.client_id = %s"
)

_GRANT = Columns([("g", Grant), ("a", Application), ("u", User), ("i", UserFhirIdentity)])
_GRANT_SQL = (
    f"SELECT {_GRANT.sql} FROM {table(Grant)} g "
    f"JOIN {table(Application)} a ON a.id = g.application_id "
    f"JOIN {table(User)} u ON u.{User._meta.pk.column} = g.user_id {_IDENTITY_JOIN} "
    "WHERE g.code = %s"
)

_REFRESH = Columns([("r", RefreshToken), ("t", AccessToken), ("u", User), ("i", UserFhirIdentity)])
_REFRESH_SQL = (
    f"SELECT {_REFRESH.sql} FROM {table(RefreshToken)} r "
    f"LEFT JOIN {table(AccessToken)} t ON t.id = r.access_token_id "
    f"JOIN {table(User)} u ON u.{User._meta.pk.column} = r.user_id {_IDENTITY_JOIN} "
    # the live row first, else the latest revoked one (reuse detection needs its family)
    "WHERE r.token_checksum = %s ORDER BY r.revoked DESC NULLS FIRST LIMIT 1"
)

_APPLICATION_REFRESH = Columns(
    [("a", Application), ("r", RefreshToken), ("t", AccessToken), ("u", User), ("i", UserFhirIdentity)]
)
_APPLICATION_REFRESH_SQL = (
    f"SELECT {_APPLICATION_REFRESH.sql} FROM {table(Application)} a "
    f"LEFT JOIN {table(RefreshToken)} r ON r.token_checksum = %s "
    f"LEFT JOIN {table(AccessToken)} t ON t.id = r.access_token_id "
    f"LEFT JOIN {table(User)} u ON u.{User._meta.pk.column} = r.user_id {_IDENTITY_JOIN} "
    "WHERE a.client_id = %s ORDER BY r.revoked DESC NULLS FIRST LIMIT 1"
)

_ACCESS = Columns([("t", AccessToken), ("a", Application), ("u", User), ("i", UserFhirIdentity)])
_ACCESS_SQL = (
    f"SELECT {_ACCESS.sql} FROM {table(AccessToken)} t "
    f"LEFT JOIN {table(Application)} a ON a.id = t.application_id "
    f"LEFT JOIN {table(User)} u ON u.{User._meta.pk.column} = t.user_id {_IDENTITY_JOIN} "
    "WHERE t.token_checksum = %s"
)


def application_get(*, client_id: str) -> Application | None:
    """The registered app with this client_id (enabled or not), or None."""
    if not client_id or "\x00" in client_id:  # no client_id holds a NUL; PostgreSQL refuses to compare one
        return None
    found = _APPLICATION.fetch(_APPLICATION_SQL, [client_id], router.db_for_read(Application))
    return found[0] if found else None  # type: ignore[return-value]


def application_with_launch(
    *, client_id: str, launch: str
) -> tuple[Application | None, LaunchContext | None]:
    """The app and the EHR launch an authorization request names, in one query (the launch whichever app it
    was made for: the caller checks it belongs to this one)."""
    if not client_id or "\x00" in client_id + launch:
        return None, None
    found = _APPLICATION_LAUNCH.fetch(
        _APPLICATION_LAUNCH_SQL, [launch, client_id], router.db_for_read(Application)
    )
    return found or (None, None)  # type: ignore[return-value]


def grant_get(*, code: str) -> "Grant | None":
    """The grant of an authorization code, with its app, user and the user's fhirUser link loaded."""
    if "\x00" in code:
        return None
    found = _GRANT.fetch(_GRANT_SQL, [code], router.db_for_read(Grant))
    if found is None:
        return None
    grant, application, user, identity = found
    relate(grant, "application", application)
    relate(grant, "user", _with_identity(user, identity))
    return grant


def refresh_token_get(*, raw: str) -> "RefreshToken | None":
    """The refresh token with this value (the live one, else the latest revoked), with its access token, user
    and the user's fhirUser link loaded."""
    found = _REFRESH.fetch(_REFRESH_SQL, [sha256_hex(raw)], router.db_for_read(RefreshToken))
    if found is None:
        return None
    token, access_token, user, identity = found
    relate(token, "access_token", access_token)
    relate(token, "user", _with_identity(user, identity))
    return token


def application_with_refresh_token(
    *, client_id: str, raw: str
) -> tuple[Application | None, "RefreshToken | None"]:
    """The app and the refresh token a refresh request presents, in one query (the token whichever app it
    was issued to: the caller checks), loaded as refresh_token_get loads it."""
    if not client_id or "\x00" in client_id:
        return None, None
    found = _APPLICATION_REFRESH.fetch(
        _APPLICATION_REFRESH_SQL, [sha256_hex(raw), client_id], router.db_for_read(Application)
    )
    if found is None:
        return None, None
    application, token, access_token, user, identity = found
    if token is not None:
        relate(token, "access_token", access_token)
        relate(token, "user", _with_identity(user, identity))
    return application, token  # type: ignore[return-value]


def access_token_get(*, raw: str) -> "AccessToken | None":
    """The access token with this value, with its app, user and the user's fhirUser link loaded."""
    found = _ACCESS.fetch(_ACCESS_SQL, [sha256_hex(raw)], router.db_for_read(AccessToken))
    if found is None:
        return None
    token, application, user, identity = found
    relate(token, "application", application)
    relate(token, "user", _with_identity(user, identity) if user is not None else None)
    return token


def _with_identity(user, identity):  # type: ignore[no-untyped-def]
    relate(user, "fhir_identity", identity)
    return user
