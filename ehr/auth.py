"""Provides the signed-in user from the statement that read the session (ehr.sessions), checked by Django.

Django's get_user() takes the user id and backend path from the session's signed data, asks that backend for
the user, then checks the session's auth hash (SECRET_KEY_FALLBACKS included) and flushes the session on a
mismatch. SessionUserBackend answers with the user the session store read along with the session, so all of
those checks stay Django's while the user costs no statement of its own. A backend is not given the request:
SessionUserMiddleware makes the request's session visible to it while the request runs.
"""

from contextvars import ContextVar
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse

from ehr.sessions import SessionStore

# Set for the duration of one request and reset after it, so no session outlives its request on a thread.
_request_session: ContextVar[SessionBase | None] = ContextVar("ehr_request_session", default=None)


class SessionUserBackend(ModelBackend):
    """ModelBackend (authenticate(), permissions), whose get_user() first uses the user read with the session.

    That user is used only if it is the one the session's signed data names; otherwise (no request, another
    session engine, a session changed since its read) the user is read as ModelBackend reads it, with its
    fhirUser link in the same statement.
    """

    def get_user(self, user_id: Any) -> AbstractBaseUser | None:
        user = _prefetched_user()
        if user is None or user.pk != user_id:
            user_model = get_user_model()
            try:
                user = user_model._default_manager.select_related("fhir_identity").get(pk=user_id)
            except user_model.DoesNotExist:
                return None
        return user if self.user_can_authenticate(user) else None

    async def aget_user(self, user_id: Any) -> AbstractBaseUser | None:
        # ModelBackend's async read would skip the prefetched user (asgiref copies the context to the thread).
        return await sync_to_async(self.get_user)(user_id)


class SessionUserMiddleware(AuthenticationMiddleware):
    """Django's AuthenticationMiddleware, with the request's session visible to SessionUserBackend meanwhile."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.async_mode:
            return self.__acall__(request)  # type: ignore[return-value]
        token = _request_session.set(getattr(request, "session", None))
        try:
            return super().__call__(request)
        finally:
            _request_session.reset(token)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        token = _request_session.set(getattr(request, "session", None))
        try:
            return await super().__acall__(request)
        finally:
            _request_session.reset(token)


def _prefetched_user() -> AbstractBaseUser | None:
    session = _request_session.get()
    return session.prefetched_user_take() if isinstance(session, SessionStore) else None
