"""Provides the EHR's session model: Django's database session with the signed-in user as a column.

The column lets one statement read a request's session together with its user (ehr.sessions), where Django's
own table would need a second read for the user. It is a copy of what the session's signed data says
(`_auth_user_id`), written whenever the session is saved; authentication still trusts only that data
(ehr.auth), so the column is a join hint, never a credential.
"""

from django.conf import settings
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models


class Session(AbstractBaseSession):
    # Deleting a user ends their sessions (Django's own table keeps them until they expire).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, db_index=True
    )

    @classmethod
    def get_session_store_class(cls):  # type: ignore[no-untyped-def]
        from ehr.sessions import SessionStore  # ehr.sessions reads this model: import it when asked

        return SessionStore
