"""Provides the EHR's session engine (SESSION_ENGINE = "ehr.sessions"): Django's database sessions, read with
their user and the user's fhirUser link in one statement.

A signed-in request otherwise costs three reads before its view does any work: the session, its user
(ModelBackend.get_user) and the user's `fhir_identity`, which every clinician page and /authorize read. This
store reads the session row (ehr.models.Session) joined to both with one fixed statement (smart.rows) and
keeps the user for the one authentication that follows (ehr.auth), where Django's get_user() still makes all
of its checks. Expiry, corrupt data, saving, deleting and clearsessions are Django's db.SessionStore's.
"""

import logging
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import CreateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db import router
from django.utils import timezone

from smart.rows import Columns, prepared, quote, relate, table

if TYPE_CHECKING:  # a model module: importing it needs the app registry, which SESSION_ENGINE may precede
    from django.contrib.auth.base_user import AbstractBaseUser


class SessionStore(db.SessionStore):
    prefetched_user: "AbstractBaseUser | None" = None

    @classmethod
    def get_model_class(cls):  # type: ignore[no-untyped-def]
        from ehr.models import Session  # not at import time: SESSION_ENGINE may be imported before the apps

        return Session

    def _get_session_from_db(self):  # type: ignore[no-untyped-def]
        self.prefetched_user = None
        read = _session_read()
        using = router.db_for_read(self.model)
        try:
            found = read.columns.fetch(
                read.sql,
                [self.session_key, prepared(self.model, "expire_date", timezone.now(), using)],
                using,
            )
        except SuspiciousOperation as e:  # as Django's store: log it and start a new session
            logging.getLogger(f"django.security.{e.__class__.__name__}").warning(str(e))
            found = None
        if found is None:  # missing or expired: the next save makes a new key, as Django's store does
            self._session_key = None
            return None
        session, user, identity = found
        if user is not None:
            relate(user, "fhir_identity", identity)
            relate(session, "user", user)
            self.prefetched_user = user
        return session

    async def _aget_session_from_db(self):  # type: ignore[no-untyped-def]
        return await sync_to_async(self._get_session_from_db)()

    def prefetched_user_take(self) -> "AbstractBaseUser | None":
        """The user read with this session, for the first authentication after the read only.

        Once taken, or once the session's data has changed (a login, a logout, a new auth hash after a password
        change), a later authentication in the same request reads the user afresh as ModelBackend would: a
        user read before the change could carry a stale password hash.
        """
        user, self.prefetched_user = self.prefetched_user, None
        return None if self.modified else user

    def create_model_instance(self, data: dict[str, Any]):  # type: ignore[no-untyped-def]
        session = super().create_model_instance(data)
        session.user_id = _user_pk(data)  # every save (login, logout, cycle_key) keeps the column in step
        return session

    async def acreate_model_instance(self, data: dict[str, Any]):  # type: ignore[no-untyped-def]
        session = await super().acreate_model_instance(data)
        session.user_id = _user_pk(data)
        return session

    def save(self, must_create: bool = False) -> None:
        try:
            super().save(must_create=must_create)
        except CreateError:
            self._raise_if_user_gone(must_create)
            raise

    async def asave(self, must_create: bool = False) -> None:
        try:
            await super().asave(must_create=must_create)
        except CreateError:
            await sync_to_async(self._raise_if_user_gone)(must_create)
            raise

    def _raise_if_user_gone(self, must_create: bool) -> None:
        """A new row naming a user deleted since this request read them breaks the foreign key, and create()
        would retry it with new keys forever: end the request as Django does for a session deleted under it."""
        user_pk = _user_pk(self._get_session(no_load=True)) if must_create else None
        if user_pk is None:
            return  # a clash of keys: create() tries another
        using = router.db_for_write(self.model)
        if not get_user_model()._default_manager.using(using).filter(pk=user_pk).exists():
            raise SessionInterrupted("The session's user was deleted before the request completed.")


def _user_pk(data: dict[str, Any]) -> Any:
    """The signed-in user's primary key as the session's data holds it (django.contrib.auth's SESSION_KEY)."""
    value = data.get(SESSION_KEY)
    if value is None:
        return None
    try:
        return get_user_model()._meta.pk.to_python(value)
    except ValidationError:
        return None


@dataclass(frozen=True)
class _SessionRead:
    sql: str
    columns: Columns


@cache
def _session_read() -> _SessionRead:
    """The live session with a key, its user (if any) and the user's fhirUser link (if any): one statement,
    built once from the models' metadata."""
    from ehr.models import Session
    from smart.models import UserFhirIdentity

    user_model = get_user_model()
    columns = Columns([("s", Session), ("u", user_model), ("i", UserFhirIdentity)])

    def column(model: Any, name: str) -> str:
        return quote(model._meta.get_field(name).column)

    user_pk = quote(user_model._meta.pk.column)
    sql = (
        f"SELECT {columns.sql} FROM {table(Session)} s"
        f" LEFT JOIN {table(user_model)} u ON u.{user_pk} = s.{column(Session, 'user')}"
        f" LEFT JOIN {table(UserFhirIdentity)} i ON i.{column(UserFhirIdentity, 'user')} = u.{user_pk}"
        f" WHERE s.{column(Session, 'session_key')} = %s AND s.{column(Session, 'expire_date')} > %s"
    )
    return _SessionRead(sql, columns)
