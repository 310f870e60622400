"""What a token request writes, and what it does when another request changed the same rows meanwhile:
the id_token row bound to its access token, the code deleted with its tokens in one transaction, a code or
refresh token used by a concurrent request treated as a replay, and the number of SQL statements a request
issues (a regression guard for the token endpoint's speed, docs/benchmarks-smart.md)."""

from datetime import timedelta

import jwt
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

import smart.tokens
from smart.launch import launch_create
from tests.smart.conftest import ehr_code

AccessToken = get_access_token_model()
Grant = get_grant_model()
IDToken = get_id_token_model()
RefreshToken = get_refresh_token_model()


def test_access_token_is_bound_to_the_id_token_it_came_with(ehr_app):
    # when a code is exchanged for tokens with an id_token
    body = ehr_app.exchange(ehr_code(ehr_app)).json()

    # then the stored access token points at the stored id_token of that response
    jti = jwt.decode(body["id_token"], options={"verify_signature": False})["jti"]
    token = AccessToken.objects.select_related("id_token").get(application=ehr_app.app)
    assert str(token.id_token.jti).replace("-", "") == jti.replace("-", "")
    assert IDToken.objects.filter(application=ehr_app.app).count() == 1


def test_refreshed_tokens_get_a_new_id_token_row(ehr_app):
    # given tokens from a code exchange
    first = ehr_app.exchange(ehr_code(ehr_app)).json()

    # when they are refreshed
    second = ehr_app.refresh(first["refresh_token"]).json()

    # then the new access token has the new id_token's row; the old access token is gone
    jti = jwt.decode(second["id_token"], options={"verify_signature": False})["jti"]
    token = AccessToken.objects.select_related("id_token").get(application=ehr_app.app)
    assert token.id_token.jti.hex == jti.replace("-", "")
    assert IDToken.objects.filter(application=ehr_app.app).count() == 2


def test_code_consumed_by_a_concurrent_exchange_issues_nothing(ehr_app, monkeypatch):
    # given a code that another request exchanges after this one validated it
    code = ehr_code(ehr_app)
    real_run = smart.tokens.TokenWrites.run

    def other_request_first(writes):  # type: ignore[no-untyped-def]
        Grant.objects.filter(code=code).delete()
        real_run(writes)

    monkeypatch.setattr(smart.tokens.TokenWrites, "run", other_request_first)

    # when this request stores its tokens
    response = ehr_app.exchange(code)

    # then it is refused as a reused code, and none of its tokens were stored
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    assert not AccessToken.objects.filter(application=ehr_app.app).exists()
    assert not RefreshToken.objects.filter(application=ehr_app.app).exists()
    assert not IDToken.objects.filter(application=ehr_app.app).exists()


def test_refresh_token_rotated_by_a_concurrent_request_revokes_the_family(ehr_app, monkeypatch):
    # given a refresh token that another request rotates after this one validated it
    first = ehr_app.exchange(ehr_code(ehr_app)).json()
    real_run = smart.tokens.TokenWrites.run

    def other_request_first(writes):  # type: ignore[no-untyped-def]
        RefreshToken.objects.filter(application=ehr_app.app).update(revoked=timezone.now())
        real_run(writes)

    monkeypatch.setattr(smart.tokens.TokenWrites, "run", other_request_first)

    # when this request rotates it
    response = ehr_app.refresh(first["refresh_token"])

    # then it is refused as a reuse, nothing new was stored, and the family is revoked
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    assert RefreshToken.objects.filter(application=ehr_app.app).count() == 1
    assert not RefreshToken.objects.filter(application=ehr_app.app, revoked__isnull=True).exists()
    assert not AccessToken.objects.filter(application=ehr_app.app).exists()


@pytest.mark.parametrize(
    ("_case", "most"),
    [
        # the grant (with its app, user and fhirUser link), then one batch (PostgreSQL: one round trip;
        # SQLite, in a test's transaction: between a SAVEPOINT and its RELEASE): the grant locked, id_token,
        # access and refresh tokens, timeline event, the app's last use, the code deleted
        ("code exchange", 9),
        # the app with the refresh token (its access token, user and fhirUser link), then one batch: the
        # token locked, its access token deleted, id_token, new access and refresh tokens, timeline event,
        # the old refresh token revoked
        ("refresh", 9),
    ],
)
def test_token_request_statement_budget(ehr_app, _case, most):
    # given a code, or tokens to refresh
    code = ehr_code(ehr_app)
    refresh_token = ehr_app.exchange(code).json()["refresh_token"] if _case == "refresh" else None

    # when the token request is made
    with CaptureQueriesContext(connection) as queries:
        response = ehr_app.refresh(refresh_token) if refresh_token else ehr_app.exchange(code)

    # then it succeeds within its statement budget (before the first guard: 26 and 28; then 9 and 13)
    assert response.status_code == 200, response.content
    assert len(queries) <= most, "\n".join(q["sql"][:120] for q in queries.captured_queries)


def test_fhir_reads_record_last_use_without_rewriting_it_each_time(ehr_app, client):
    # given two fresh tokens of one app, the app used a moment ago
    first = ehr_app.exchange(ehr_code(ehr_app)).json()["access_token"]
    ehr_app.launch = launch_create(client=ehr_app.app, user=ehr_app.launch.user, patient_id="pat-1")
    second = ehr_app.exchange(ehr_code(ehr_app)).json()["access_token"]
    used = timezone.now() - timedelta(seconds=5)
    type(ehr_app.app).objects.filter(pk=ehr_app.app.pk).update(last_used=used)

    # when each token reads the patient for the first time
    for token in (first, second):
        assert client.get("/fhir/Patient/pat-1", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200

    # then each token's first use is recorded, and the app's recent last use is left as it was
    assert AccessToken.objects.filter(application=ehr_app.app, last_used__isnull=True).count() == 0
    ehr_app.app.refresh_from_db()
    assert ehr_app.app.last_used == used
