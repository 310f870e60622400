"""Sessions (ehr.sessions, ehr.auth): one statement reads a request's session, user and fhirUser link, and
every check of Django's session authentication still holds."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.management import call_command
from django.db import connection
from django.http import HttpResponse
from django.test import AsyncClient, Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from ehr.auth import SessionUserBackend, SessionUserMiddleware
from ehr.models import Session
from ehr.sessions import SessionStore
from smart.models import UserFhirIdentity
from tests.ehr.conftest import PASSWORD, client_for

pytestmark = pytest.mark.django_db

User = get_user_model()
SESSION_TABLES = (Session._meta.db_table, User._meta.db_table, UserFhirIdentity._meta.db_table)
PATIENT_LIST = reverse("ehr:patient-list")
LOGIN = reverse("ehr:login")


class Statements:
    """Every statement sent to the database, as the code wrote it.

    Read through Django's execute wrapper rather than CaptureQueriesContext: on PostgreSQL with prepared
    statements the captured text of smart.rows' statements is None.
    """

    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        self.sql.append(sql)
        return execute(sql, params, many, context)

    def touching(self, *tables: str) -> list[str]:
        return [sql for sql in self.sql if any(f'"{table}"' in sql for table in tables)]


def get(client: Client, path: str) -> tuple[HttpResponse, Statements]:
    statements = Statements()
    with connection.execute_wrapper(statements):
        response = client.get(path)
    return response, statements


def session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def with_cookie(key: str) -> Client:
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = key
    return client


def signed_in(response: HttpResponse) -> bool:
    """Whether the patient list was served rather than sent to the login page."""
    if response.status_code == 302:
        return not response["Location"].startswith(LOGIN)
    return response.status_code == 200


# ---------------------------------------------------------------- one statement


@pytest.mark.parametrize(
    ("_case", "user_fixture", "status"),
    [
        ("a clinician with a fhirUser link", "clinician", 200),
        ("staff without a fhirUser link", "staff", 200),
        ("a patient user, sent to the portal", "patient_user", 302),
    ],
)
def test_a_signed_in_page_reads_session_user_and_fhir_user_in_one_statement(
    request, many_patients, _case, user_fixture, status
):
    # given a signed-in user (the page's guard reads `user.fhir_identity` to tell patients from clinicians)
    client = client_for(request.getfixturevalue(user_fixture))
    # when they open the patient list
    response, statements = get(client, PATIENT_LIST)
    # then the session, its user and the user's fhirUser link came back in one statement
    assert response.status_code == status
    (read,) = statements.touching(*SESSION_TABLES)
    assert all(f'"{table}"' in read for table in SESSION_TABLES)
    assert read.startswith("SELECT") and read.count("LEFT JOIN") == 2


def test_the_fhir_user_link_is_read_with_the_session(clinician, patient_user):
    # given a request whose view reads the user's fhirUser link
    seen = {}

    def view(request):  # type: ignore[no-untyped-def]
        statements = Statements()
        with connection.execute_wrapper(statements):
            seen["fhir_user"] = request.user.fhir_identity.fhir_user
        seen["statements"] = statements.sql
        return HttpResponse()

    request = RequestFactory().get("/")
    request.COOKIES[settings.SESSION_COOKIE_NAME] = session_key(client_for(clinician))
    # when it runs
    SessionMiddleware(SessionUserMiddleware(view))(request)
    # then the link came with the session: reading it cost no statement besides the session's own read
    assert seen["fhir_user"] == "Practitioner/pract-1"
    (read,) = seen["statements"]
    assert f'"{Session._meta.db_table}"' in read


def test_an_async_request_is_signed_in_with_the_same_statement(clinician, many_patients):
    # given a signed-in clinician's cookie on an ASGI request
    client = AsyncClient()
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key(client_for(clinician))
    statements = Statements()
    # when the patient list is served by the async handler
    with connection.execute_wrapper(statements):
        response = async_to_sync(client.get)(PATIENT_LIST)
    # then the user came from the session's read there too
    assert response.status_code == 200
    assert len(statements.touching(*SESSION_TABLES)) == 1


def test_outside_a_request_the_backend_reads_the_user_with_its_fhir_user_link(
    clinician, django_assert_num_queries
):
    # given a request has come and gone on this thread
    assert client_for(clinician).get(PATIENT_LIST).status_code == 200
    # when the backend is asked for the user with no request running, nothing of that request is left
    with django_assert_num_queries(1):
        user = SessionUserBackend().get_user(clinician.pk)
        assert user.fhir_identity.fhir_user == "Practitioner/pract-1"
    assert user == clinician


# ---------------------------------------------------------------- the row's user column


def test_the_rows_user_follows_login_and_logout(clinician):
    # given a session saved before anyone signed in
    client = Client()
    session = client.session
    session["seen"] = True
    session.save()
    anonymous_key = session.session_key
    assert Session.objects.get(session_key=anonymous_key).user_id is None
    # when the clinician signs in through the login form
    response = client.post(LOGIN, {"username": "doc", "password": PASSWORD})
    # then the session has a new key, and its row names the user
    assert response.status_code == 302
    signed_in_key = session_key(client)
    assert signed_in_key != anonymous_key
    assert not Session.objects.filter(session_key=anonymous_key).exists()
    assert Session.objects.get(session_key=signed_in_key).user == clinician
    # when they sign out, then the row is gone and no row names them
    client.post(reverse("ehr:logout"))
    assert not Session.objects.filter(session_key=signed_in_key).exists()
    assert not Session.objects.filter(user=clinician).exists()


def test_the_rows_user_column_is_not_a_credential(clinician, staff):
    # given a clinician's session whose row was rewritten to name a staff user
    client = client_for(clinician)
    Session.objects.filter(session_key=session_key(client)).update(user=staff)
    # then the request is still the clinician's (the signed session data decides), not the staff user's
    assert client.get(PATIENT_LIST).status_code == 200
    assert client.get(reverse("ehr:dev-launcher")).status_code == 403


def test_deleting_a_user_ends_their_sessions(clinician, staff):
    client_for(clinician), client_for(clinician), client_for(staff)
    clinician.delete()
    assert list(Session.objects.values_list("user", flat=True)) == [staff.pk]


@pytest.mark.django_db(transaction=True)
def test_a_session_naming_a_deleted_user_is_interrupted_rather_than_retried():
    # given a request's session, whose user is then deleted (and their sessions with them)
    user = User.objects.create_user("gone", password=PASSWORD)
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store.save()
    user.delete()
    # when the request gives the session a new key (login, a new auth hash), the new row cannot name that
    # user: the request ends as for a session deleted under it, instead of trying key after key
    with pytest.raises(SessionInterrupted):
        store.cycle_key()


# ---------------------------------------------------------------- Django's checks still hold


def test_logout_ends_the_session(clinician):
    # given a clinician signed in through the login form
    client = Client()
    client.post(LOGIN, {"username": "doc", "password": PASSWORD})
    old_key = session_key(client)
    assert signed_in(with_cookie(old_key).get(PATIENT_LIST))
    # when they sign out
    client.post(reverse("ehr:logout"))
    # then their old cookie no longer signs anyone in
    assert not signed_in(with_cookie(old_key).get(PATIENT_LIST))


def test_a_password_change_ends_the_users_other_sessions(clinician):
    # given the clinician signed in on two browsers
    first, second = client_for(clinician), client_for(clinician)
    # when the password changes
    clinician.set_password("pw-changed-42")
    clinician.save()
    # then both sessions' auth hashes are stale: neither signs in, and the session is flushed
    second_key = session_key(second)
    assert not signed_in(second.get(PATIENT_LIST))
    assert not Session.objects.filter(session_key=second_key).exists()
    assert not signed_in(first.get(PATIENT_LIST))


def test_a_session_changed_before_its_user_is_read_is_checked_against_the_user_afresh(clinician):
    # given a request that reads its session (and with it the user as the password then was), then changes
    # the password and stores the new auth hash (as update_session_auth_hash does) before reading the user
    seen = {}

    def view(request):  # type: ignore[no-untyped-def]
        request.session.get("anything")
        user = User.objects.get(pk=clinician.pk)
        user.set_password("pw-changed-42")
        user.save()
        request.session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        seen["user_pk"] = request.user.pk
        return HttpResponse()

    request = RequestFactory().get("/")
    request.COOKIES[settings.SESSION_COOKIE_NAME] = session_key(client_for(clinician))
    SessionMiddleware(SessionUserMiddleware(view))(request)
    # then the user is checked as re-read (the new hash matches), not as read with the session
    assert seen["user_pk"] == clinician.pk


def test_an_old_secret_key_in_the_fallbacks_still_signs_in_and_moves_the_session(clinician, settings):
    # given a session made under a secret key that has since been rotated into SECRET_KEY_FALLBACKS
    settings.SECRET_KEY = "old-secret-key-" + "x" * 40
    client = client_for(clinician)
    old_key = session_key(client)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-secret-key-" + "y" * 40, [settings.SECRET_KEY]
    # when the clinician comes back
    response = client.get(PATIENT_LIST)
    # then Django accepts the old hash, moves the session to a new key, and the new row names the user
    assert response.status_code == 200
    assert session_key(client) != old_key
    assert Session.objects.get(session_key=session_key(client)).user == clinician


def test_a_session_made_under_a_retired_secret_key_does_not_sign_in(clinician, settings):
    settings.SECRET_KEY = "old-secret-key-" + "x" * 40
    client = client_for(clinician)
    settings.SECRET_KEY = "new-secret-key-" + "y" * 40
    assert not signed_in(client.get(PATIENT_LIST))


def test_an_inactive_users_session_does_not_sign_in(clinician):
    client = client_for(clinician)
    clinician.is_active = False
    clinician.save()
    assert not signed_in(client.get(PATIENT_LIST))


def test_an_expired_session_does_not_sign_in(clinician):
    client = client_for(clinician)
    Session.objects.filter(session_key=session_key(client)).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    assert not signed_in(client.get(PATIENT_LIST))


def test_a_tampered_session_cookie_does_not_sign_in(clinician):
    key = session_key(client_for(clinician))
    tampered = key[:-1] + ("a" if key[-1] != "a" else "b")
    assert not signed_in(with_cookie(tampered).get(PATIENT_LIST))


def test_corrupt_session_data_does_not_sign_in_and_is_logged(clinician, caplog):
    client = client_for(clinician)
    Session.objects.filter(session_key=session_key(client)).update(session_data="not-signed-data")
    assert not signed_in(client.get(PATIENT_LIST))
    assert ("django.security.SuspiciousSession", "Session data corrupted") in [
        (record.name, record.getMessage()) for record in caplog.records
    ]


def test_clearsessions_removes_expired_sessions(clinician, staff):
    live, expired = session_key(client_for(clinician)), session_key(client_for(staff))
    Session.objects.filter(session_key=expired).update(expire_date=timezone.now() - timedelta(seconds=1))
    call_command("clearsessions")
    assert list(Session.objects.values_list("session_key", flat=True)) == [live]
