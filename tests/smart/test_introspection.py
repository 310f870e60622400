"""Token introspection (RFC 7662, checklist #69-#72) and revocation (RFC 7009, checklist #67-#68), with tokens
stored hashed (token_checksum = sha256 of the raw value)."""

import base64
import hashlib
import secrets
from datetime import timedelta
from functools import lru_cache

import pytest
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model, get_refresh_token_model

from smart.authentication import token_lookup
from smart.clients import client_register
from smart.keys import private_key_generate

Application = get_application_model()
AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()

INTROSPECT = "/o/introspect/"
REVOKE = "/o/revoke_token/"
CONTEXT = {"patient": "p1", "encounter": "e1", "fhirUser": "Practitioner/9"}


@lru_cache(maxsize=1)
def _test_key() -> str:
    return private_key_generate()


@pytest.fixture(autouse=True)
def signing_key(settings):
    if not settings.OAUTH2_PROVIDER.get("OIDC_RSA_PRIVATE_KEY"):
        settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_RSA_PRIVATE_KEY": _test_key()}


@pytest.fixture
def clinician(django_user_model):
    return django_user_model.objects.create_user("dr_who", password="pw-who-12345")


@pytest.fixture
def sym(db):
    """A confidential-symmetric client and its secret."""
    return client_register(name="Sym", redirect_uris="https://sym.example.org/cb", client_type="confidential")


@pytest.fixture
def pub(db):
    client, _ = client_register(name="Pub", redirect_uris="https://pub.example.org/cb", client_type="public")
    return client


def basic(client_id: str, secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def mint(
    application, user=None, *, scope="launch openid fhirUser patient/*.rs", expires_in=3600, context=None
):
    """An access token stored as DOT stores it (checksum only); returns (raw value, row)."""
    raw = secrets.token_urlsafe(32)
    token = AccessToken.objects.create(
        token="",
        token_checksum=hashlib.sha256(raw.encode()).hexdigest(),
        application=application,
        user=user,
        scope=scope,
        expires=timezone.now() + timedelta(seconds=expires_in),
        launch_context=CONTEXT if context is None else context,
    )
    return raw, token


def mint_refresh(access_token):
    raw = secrets.token_urlsafe(32)
    RefreshToken.objects.create(
        token="",
        token_checksum=hashlib.sha256(raw.encode()).hexdigest(),
        application=access_token.application,
        user=access_token.user,
        access_token=access_token,
        launch_context=access_token.launch_context,
    )
    return raw


# Introspection ---------------------------------------------------------------------------------------------


def test_active_access_token(client, sym, clinician, settings):
    # given
    app, secret = sym
    raw, token = mint(app, clinician)

    # when
    response = client.post(
        INTROSPECT, {"token": raw}, HTTP_ACCEPT="application/json", **basic(app.client_id, secret)
    )

    # then
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert response.json() == {
        "active": True,
        "scope": "launch openid fhirUser patient/*.rs",
        "client_id": app.client_id,
        "exp": int(token.expires.timestamp()),
        "iat": int(token.created.timestamp()),
        "iss": settings.OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"],
        "sub": str(clinician.pk),
        "username": "dr_who",
        "token_type": "Bearer",
        "fhirUser": settings.FHIRAPI["BASE_URL"] + "/Practitioner/9",
        "patient": "p1",
        "encounter": "e1",
    }


@pytest.mark.parametrize(
    ("_case", "value"),
    [("unknown", "invalid_token_value"), ("empty-looking", " "), ("another token's prefix", None)],
)
def test_unknown_token_is_inactive(client, sym, clinician, _case, value):
    # given
    app, secret = sym
    raw, _ = mint(app, clinician)

    # when
    response = client.post(INTROSPECT, {"token": value or raw[:-1]}, **basic(app.client_id, secret))

    # then
    assert response.status_code == 200
    assert response.json() == {"active": False}


def test_expired_token_is_inactive(client, sym, clinician):
    # given
    app, secret = sym
    raw, _ = mint(app, clinician, expires_in=-1)

    # when
    body = client.post(INTROSPECT, {"token": raw}, **basic(app.client_id, secret)).json()

    # then
    assert body == {"active": False}


def test_token_of_a_disabled_app_is_inactive(client, sym, pub, clinician):
    # given
    resource_server, _ = sym
    caller, _ = mint(resource_server, scope="introspection")
    raw, _ = mint(pub, clinician)
    Application.objects.filter(pk=pub.pk).update(enabled=False)

    # when
    body = client.post(INTROSPECT, {"token": raw}, **bearer(caller)).json()

    # then
    assert body == {"active": False}


def test_a_disabled_app_cannot_introspect(client, sym, clinician):
    # given
    app, secret = sym
    raw, _ = mint(app, clinician)
    Application.objects.filter(pk=app.pk).update(enabled=False)

    # when
    response = client.post(INTROSPECT, {"token": raw}, **basic(app.client_id, secret))

    # then
    assert response.status_code == 401


def test_bearer_with_introspection_scope_sees_any_client(client, pub, sym, clinician):
    # given
    resource_server, _ = sym
    caller, _ = mint(resource_server, scope="introspection")
    raw, _ = mint(pub, clinician)

    # when
    body = client.post(INTROSPECT, {"token": raw}, **bearer(caller)).json()

    # then
    assert body["active"] is True
    assert body["client_id"] == pub.client_id


def test_basic_client_sees_only_its_own_tokens(client, pub, sym, clinician):
    # given
    app, secret = sym
    raw, _ = mint(pub, clinician)

    # when
    body = client.post(INTROSPECT, {"token": raw}, **basic(app.client_id, secret)).json()

    # then
    assert body == {"active": False}


@pytest.mark.parametrize(
    ("_case", "headers"),
    [
        ("no auth", lambda app, secret, pub, raw: {}),
        ("wrong secret", lambda app, secret, pub, raw: basic(app.client_id, secret + "x")),
        ("public client", lambda app, secret, pub, raw: basic(pub.client_id, "")),
        ("garbage basic", lambda app, secret, pub, raw: {"HTTP_AUTHORIZATION": "Basic !!!"}),
        ("bearer without scope", lambda app, secret, pub, raw: bearer(raw)),
        ("unknown bearer", lambda app, secret, pub, raw: bearer("nope")),
    ],
)
def test_unauthorized_callers_get_401(client, sym, pub, clinician, _case, headers):
    # given
    app, secret = sym
    raw, _ = mint(app, clinician)

    # when
    response = client.post(INTROSPECT, {"token": raw}, **headers(app, secret, pub, raw))

    # then
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "Basic" in response["WWW-Authenticate"]


def test_missing_token_parameter_is_400(client, sym):
    # given
    app, secret = sym

    # when
    response = client.post(INTROSPECT, {}, **basic(app.client_id, secret))

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_backend_service_token_has_client_id_and_exp(client, sym, db):
    # given
    app, secret = sym
    raw, token = mint(app, scope="system/Observation.rs", expires_in=300, context={})

    # when
    body = client.post(INTROSPECT, {"token": raw}, **basic(app.client_id, secret)).json()

    # then
    assert body == {
        "active": True,
        "scope": "system/Observation.rs",
        "client_id": app.client_id,
        "exp": int(token.expires.timestamp()),
        "iat": int(token.created.timestamp()),
        "iss": body["iss"],
        "token_type": "Bearer",
    }


@pytest.mark.parametrize(("_case", "hint"), [("hinted", "refresh_token"), ("unhinted", None)])
def test_active_refresh_token(client, sym, clinician, settings, _case, hint):
    # given
    app, secret = sym
    _, access = mint(app, clinician)
    raw = mint_refresh(access)
    data = {"token": raw, **({"token_type_hint": hint} if hint else {})}

    # when
    body = client.post(INTROSPECT, data, **basic(app.client_id, secret)).json()

    # then
    lifetime = settings.OAUTH2_PROVIDER["REFRESH_TOKEN_EXPIRE_SECONDS"]
    assert body["active"] is True
    assert body["exp"] == int(access.expires.timestamp()) + lifetime
    assert (body["patient"], body["encounter"], body["client_id"]) == ("p1", "e1", app.client_id)
    assert body["scope"] == access.scope
    assert "token_type" not in body


def test_revoked_refresh_token_is_inactive(client, sym, clinician):
    # given
    app, secret = sym
    _, access = mint(app, clinician)
    raw = mint_refresh(access)
    RefreshToken.objects.get().revoke()

    # when
    body = client.post(INTROSPECT, {"token": raw}, **basic(app.client_id, secret)).json()

    # then
    assert body == {"active": False}


def test_get_is_not_allowed(client, sym):
    # when
    response = client.get(INTROSPECT, {"token": "x"})

    # then
    assert response.status_code == 405


# Revocation ------------------------------------------------------------------------------------------------


def test_public_client_revokes_its_access_token(client, pub, clinician):
    # given
    raw, _ = mint(pub, clinician)

    # when
    response = client.post(REVOKE, {"token": raw, "client_id": pub.client_id})

    # then
    assert response.status_code == 200
    assert token_lookup(raw) is None
    assert not AccessToken.objects.exists()


def test_confidential_client_revoking_a_refresh_token_kills_its_access_token(client, sym, clinician):
    # given
    app, secret = sym
    access_raw, access = mint(app, clinician)
    refresh_raw = mint_refresh(access)

    # when
    response = client.post(
        REVOKE, {"token": refresh_raw, "token_type_hint": "refresh_token"}, **basic(app.client_id, secret)
    )

    # then
    assert response.status_code == 200
    assert token_lookup(access_raw) is None
    assert RefreshToken.objects.get().revoked is not None
    introspected = client.post(INTROSPECT, {"token": access_raw}, **basic(app.client_id, secret)).json()
    assert introspected == {"active": False}


def test_revoking_an_access_token_also_revokes_its_refresh_token(client, sym, clinician):
    # given
    app, secret = sym
    access_raw, access = mint(app, clinician)
    mint_refresh(access)

    # when
    client.post(REVOKE, {"token": access_raw}, **basic(app.client_id, secret))

    # then
    assert RefreshToken.objects.get().revoked is not None


@pytest.mark.parametrize(("_case", "token"), [("unknown", "no-such-token"), ("already revoked", None)])
def test_revoking_unknown_tokens_answers_200(client, sym, clinician, _case, token):
    # given
    app, secret = sym
    raw, row = mint(app, clinician)
    row.delete()

    # when
    response = client.post(REVOKE, {"token": token or raw}, **basic(app.client_id, secret))

    # then
    assert response.status_code == 200


def test_revocation_needs_the_confidential_clients_secret(client, sym, clinician):
    # given
    app, secret = sym
    raw, _ = mint(app, clinician)

    # when
    response = client.post(REVOKE, {"token": raw}, **basic(app.client_id, "wrong"))

    # then
    assert response.status_code == 401
    assert token_lookup(raw) is not None


def test_a_client_cannot_revoke_another_clients_token(client, pub, sym, clinician):
    # given
    app, secret = sym
    raw, _ = mint(pub, clinician)

    # when
    response = client.post(REVOKE, {"token": raw}, **basic(app.client_id, secret))

    # then
    assert response.status_code == 200
    assert token_lookup(raw) is not None
