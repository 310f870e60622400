"""private_key_jwt client authentication (checklist #26, #76-#78) and backend services (#73-#79), with real
RS384 and ES384 keys; the JWKS URL is the one process boundary faked (requests.get)."""

import hashlib
import time
from datetime import timedelta
from types import SimpleNamespace

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.cache import cache
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from smart import client_auth
from smart.models import UsedClientAssertion
from tests.smart.conftest import ASSERTION_TYPE, FHIR_BASE, TOKEN_URL, client_assertion, public_jwk

AccessToken = get_access_token_model()
JWKS_URI = "https://app.example/.well-known/jwks.json"


def assertion_body(assertion: str, **extra: str) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion, **extra}


def backend_request(smart, assertion: str, scope: str | None = "system/Patient.rs", **extra: str):
    data = {"grant_type": "client_credentials", "scope": scope, **assertion_body(assertion), **extra}
    return smart.token({name: value for name, value in data.items() if value is not None})


@pytest.fixture
def jwks_server(monkeypatch):
    """Serves JWKS documents at JWKS_URI instead of the network; records each fetch."""
    cache.clear()
    server = SimpleNamespace(jwks={"keys": []}, cache_control="max-age=600", fetches=0)

    def fake_get(url, headers=None, timeout=None, allow_redirects=True):
        assert url == JWKS_URI and headers == {"Accept": "application/json"} and timeout
        server.fetches += 1
        response_headers = {"Cache-Control": server.cache_control} if server.cache_control else {}
        return SimpleNamespace(
            json=lambda: server.jwks, headers=response_headers, raise_for_status=lambda: None, status_code=200
        )

    monkeypatch.setattr(client_auth.requests, "get", fake_get)
    yield server
    cache.clear()


# ---------------------------------------------------------------- SMART app launch with private_key_jwt (#26)


@pytest.mark.parametrize(("_case", "kid", "alg"), [("RS384", "rs-1", "RS384"), ("ES384", "es-1", "ES384")])
def test_asymmetric_client_exchanges_code_with_assertion(
    smart_app, asymmetric_app, clinician, rs384_key, es384_key, _case, kid, alg
):
    # given a confidential-asymmetric app with a code
    smart = smart_app(asymmetric_app, user=clinician)
    code = smart.code_for("openid fhirUser user/Patient.rs offline_access")
    key = rs384_key if alg == "RS384" else es384_key

    # when it authenticates with a signed assertion (#26)
    assertion = client_assertion(key, client_id=asymmetric_app.client_id, kid=kid, alg=alg)
    response = smart.exchange(code, client_id=None, **assertion_body(assertion))

    # then it gets tokens, and its refresh works with a fresh assertion
    assert response.status_code == 200
    refresh_assertion = client_assertion(key, client_id=asymmetric_app.client_id, kid=kid, alg=alg)
    refreshed = smart.refresh(
        response.json()["refresh_token"], client_id=None, **assertion_body(refresh_assertion)
    )
    assert refreshed.status_code == 200


OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _unsigned_kind(client_id: str, key: str | None, alg: str) -> str:
    """An assertion with a symmetric or no signature, which private_key_jwt must refuse."""
    claims = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": int(time.time()) + 60, "jti": alg}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": "rs-1"})


@pytest.mark.parametrize(
    ("_case", "make"),
    [
        ("bad signature", lambda k, cid: client_assertion(OTHER_RSA_KEY, client_id=cid)),
        ("wrong aud", lambda k, cid: client_assertion(k, client_id=cid, aud="https://other.example/token")),
        ("iss differs from sub", lambda k, cid: client_assertion(k, client_id=cid, sub="someone-else")),
        ("unknown client", lambda k, cid: client_assertion(k, client_id="no-such-client")),
        ("expired", lambda k, cid: client_assertion(k, client_id=cid, exp=int(time.time()) - 120)),
        ("exp too far ahead", lambda k, cid: client_assertion(k, client_id=cid, exp=int(time.time()) + 900)),
        ("no exp", lambda k, cid: client_assertion(k, client_id=cid, exp=None)),
        ("no jti", lambda k, cid: client_assertion(k, client_id=cid, jti=None)),
        ("unknown kid", lambda k, cid: client_assertion(k, client_id=cid, kid="rs-unknown")),
        ("kid of the wrong key type", lambda k, cid: client_assertion(k, client_id=cid, kid="es-1")),
        ("HS256", lambda k, cid: _unsigned_kind(cid, "shared-secret-of-32-bytes-or-more!", "HS256")),
        ("alg none", lambda k, cid: _unsigned_kind(cid, None, "none")),
        ("RS256 not allowed", lambda k, cid: client_assertion(k, client_id=cid, alg="RS256")),
        ("jku not registered", lambda k, cid: client_assertion(k, client_id=cid, headers={"jku": "https://evil.example/jwks"})),
        ("typ not JWT", lambda k, cid: client_assertion(k, client_id=cid, headers={"typ": "JOSE+JSON"})),
        ("not a JWT", lambda k, cid: "not-a-jwt"),
    ],
)  # fmt: skip
def test_bad_assertion_is_invalid_client(smart_app, asymmetric_app, clinician, rs384_key, _case, make):
    # given a code of an asymmetric app
    smart = smart_app(asymmetric_app, user=clinician)
    code = smart.code_for("openid user/Patient.rs")

    # when the assertion has one defect (#77)
    response = smart.exchange(
        code, client_id=None, **assertion_body(make(rs384_key, asymmetric_app.client_id))
    )

    # then 401 invalid_client with a reason, and no token
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert response.json()["error_description"]
    assert not AccessToken.objects.exists()


def test_replayed_assertion_is_refused(smart_app, asymmetric_app, clinician, rs384_key):
    # given an assertion already used once
    smart = smart_app(asymmetric_app, user=clinician)
    assertion = client_assertion(rs384_key, client_id=asymmetric_app.client_id)
    assert (
        smart.exchange(
            smart.code_for("openid user/Patient.rs"), client_id=None, **assertion_body(assertion)
        ).status_code
        == 200
    )

    # when the same assertion (same jti) comes again
    response = smart.exchange(
        smart.code_for("openid user/Patient.rs"), client_id=None, **assertion_body(assertion)
    )

    # then it is a replay (#77)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert "jti" in response.json()["error_description"]


def test_client_id_must_match_assertion(smart_app, asymmetric_app, public_app, clinician, rs384_key):
    # given a valid assertion of the asymmetric app
    smart = smart_app(asymmetric_app, user=clinician)
    assertion = client_assertion(rs384_key, client_id=asymmetric_app.client_id)

    # when the body names another client_id
    response = smart.exchange(
        smart.code_for("openid user/Patient.rs"), client_id=public_app.client_id, **assertion_body(assertion)
    )

    # then it is refused
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


def test_bad_assertion_type_is_refused(smart_app, asymmetric_app, clinician, rs384_key):
    # when the client_assertion_type is not the JWT bearer URN (#76)
    smart = smart_app(asymmetric_app, user=clinician)
    assertion = client_assertion(rs384_key, client_id=asymmetric_app.client_id)
    data = assertion_body(assertion, client_assertion_type="not_an_assertion_type")
    response = smart.exchange(smart.code_for("openid user/Patient.rs"), client_id=None, **data)

    # then 401 invalid_client
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


def test_asymmetric_client_cannot_use_a_secret(smart_app, asymmetric_app, clinician):
    # given an asymmetric app (whose generated secret leaked)
    asymmetric_app.client_secret = "leaked-secret"
    asymmetric_app.save()
    smart = smart_app(asymmetric_app, user=clinician)

    # when it authenticates with the secret instead of an assertion
    response = smart.exchange(smart.code_for("openid user/Patient.rs"), client_secret="leaked-secret")

    # then it is refused
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


def test_expired_jti_rows_are_pruned(smart_app, asymmetric_app, clinician, rs384_key, settings):
    # given a remembered jti whose assertion expired long ago, and a process that sweeps on every assertion
    settings.SMART = {**settings.SMART, "CLIENT_ASSERTION_JTI_SWEEP_SECONDS": 0}
    UsedClientAssertion.objects.create(
        client_id="x", jti_hash="0" * 64, expires=timezone.now() - timedelta(hours=1)
    )
    smart = smart_app(asymmetric_app, user=clinician)

    # when a new assertion is checked
    assertion = client_assertion(rs384_key, client_id=asymmetric_app.client_id)
    smart.exchange(smart.code_for("openid user/Patient.rs"), client_id=None, **assertion_body(assertion))

    # then the expired row is gone and only the new jti is kept
    assert list(UsedClientAssertion.objects.values_list("client_id", flat=True)) == [asymmetric_app.client_id]


def test_expired_jti_row_not_swept_yet_does_not_block_its_jti(
    smart_app, backend_app, rs384_key, settings, monkeypatch
):
    # given a jti remembered from an assertion that expired, not yet swept by this process
    settings.SMART = {**settings.SMART, "CLIENT_ASSERTION_JTI_SWEEP_SECONDS": 3600}
    monkeypatch.setattr(client_auth, "_last_jti_sweep", time.monotonic())
    jti_hash = hashlib.sha256(b"jti-1").hexdigest()
    UsedClientAssertion.objects.create(
        client_id=backend_app.client_id, jti_hash=jti_hash, expires=timezone.now() - timedelta(minutes=1)
    )
    service = smart_app(backend_app)

    # when a new assertion with the same jti arrives, and then that assertion again
    assertion = client_assertion(rs384_key, client_id=backend_app.client_id, jti="jti-1")
    accepted = backend_request(service, assertion)
    replayed = backend_request(service, assertion)

    # then the first is accepted (the earlier assertion is dead) and its replay is not
    assert accepted.status_code == 200, accepted.content
    assert (replayed.status_code, replayed.json()["error"]) == (401, "invalid_client")
    assert UsedClientAssertion.objects.get(jti_hash=jti_hash).expires > timezone.now()


# ---------------------------------------------------------------- JWKS by URL (#77, #78)


@pytest.fixture
def jwks_app(asymmetric_app, jwks_server, rs384_key):
    asymmetric_app.client_jwks = None
    asymmetric_app.client_jwks_uri = JWKS_URI
    asymmetric_app.save()
    jwks_server.jwks = {"keys": [public_jwk(rs384_key, "rs-1", "RS384")]}
    return asymmetric_app


def _exchange_with(smart, key, kid="rs-1", alg="RS384", **headers):
    assertion = client_assertion(
        key, client_id=smart.app.client_id, kid=kid, alg=alg, headers=headers or None
    )
    return smart.exchange(
        smart.code_for("openid user/Patient.rs"), client_id=None, **assertion_body(assertion)
    )


def test_keys_from_jwks_url_are_cached_as_allowed(smart_app, jwks_app, jwks_server, clinician, rs384_key):
    # given a JWKS URL answering with max-age=600
    smart = smart_app(jwks_app, user=clinician)

    # when the app authenticates twice
    first, second = _exchange_with(smart, rs384_key), _exchange_with(smart, rs384_key)

    # then both succeed with one fetch
    assert (first.status_code, second.status_code, jwks_server.fetches) == (200, 200, 1)


def test_no_store_jwks_is_fetched_every_time(smart_app, jwks_app, jwks_server, clinician, rs384_key):
    # given a JWKS URL answering Cache-Control: no-store (#78)
    jwks_server.cache_control = "no-store"
    smart = smart_app(jwks_app, user=clinician)

    # when the app authenticates twice
    _exchange_with(smart, rs384_key)
    _exchange_with(smart, rs384_key)

    # then the JWKS was never cached
    assert jwks_server.fetches == 2


def test_unknown_kid_refetches_jwks_once(smart_app, jwks_app, jwks_server, clinician, rs384_key):
    # given a cached JWKS, then the app rotates to a new key
    smart = smart_app(jwks_app, user=clinician)
    _exchange_with(smart, rs384_key)
    new_key = ec.generate_private_key(ec.SECP384R1())
    jwks_server.jwks = {"keys": [public_jwk(new_key, "es-new", "ES384")]}

    # when it signs with the new kid
    response = _exchange_with(smart, new_key, kid="es-new", alg="ES384")

    # then the server refetched once and accepted it
    assert (response.status_code, jwks_server.fetches) == (200, 2)


def test_unknown_kid_after_refetch_is_refused(smart_app, jwks_app, jwks_server, clinician):
    # given a JWKS without the assertion's kid
    smart = smart_app(jwks_app, user=clinician)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    # when the app signs with an unregistered key
    response = _exchange_with(smart, stranger, kid="rs-stranger")

    # then it is refused after exactly one refetch
    assert (response.status_code, jwks_server.fetches) == (401, 2)


def test_jku_equal_to_registered_url_is_accepted(smart_app, jwks_app, clinician, rs384_key):
    # when the assertion names the registered JWKS URL in jku
    response = _exchange_with(smart_app(jwks_app, user=clinician), rs384_key, jku=JWKS_URI)

    # then it is accepted
    assert response.status_code == 200


def test_http_jwks_url_is_refused(smart_app, jwks_app, jwks_server, clinician, rs384_key):
    # given a JWKS URL that is not https
    jwks_app.client_jwks_uri = "http://app.example/jwks.json"
    jwks_app.save()

    # when the app authenticates
    response = _exchange_with(smart_app(jwks_app, user=clinician), rs384_key)

    # then the keys are not fetched and the client is refused
    assert (response.status_code, jwks_server.fetches) == (401, 0)


@pytest.mark.parametrize(
    ("_case", "header", "seconds"),
    [("absent", None, 300), ("max-age", "public, max-age=120", 120), ("no-cache", "no-cache", 0),
     ("capped", "max-age=999999", 3600)],
)  # fmt: skip
def test_jwks_cache_lifetime_follows_cache_control(_case, header, seconds):
    # when a JWKS response carries this Cache-Control, then it is cached that long
    assert client_auth.cache_seconds(header) == seconds


# ---------------------------------------------------------------- backend services (#73-#79)


def test_backend_service_gets_short_lived_system_token(smart_app, backend_app, es384_key, client, fhir_data):
    # given a backend service registered for system/Patient.rs and system/Observation.rs
    smart = smart_app(backend_app)

    # when it asks with an ES384 assertion (#73)
    assertion = client_assertion(es384_key, client_id=backend_app.client_id, kid="es-1", alg="ES384")
    response = backend_request(smart, assertion, scope="system/Patient.rs")

    # then it gets a short-lived bearer token for that scope and no refresh token (#74)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert (body["token_type"], body["scope"], body["expires_in"]) == ("Bearer", "system/Patient.rs", 300)
    assert "refresh_token" not in body
    token = AccessToken.objects.get()
    assert (token.user, token.launch_context) == (None, {"aud": FHIR_BASE})
    assert (
        client.get("/fhir/Patient/pat-1", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}").status_code
        == 200
    )


@pytest.mark.parametrize(
    ("_case", "scope", "granted"),
    [
        ("wildcard narrowed to registered", "system/*.rs", "system/Patient.rs system/Observation.rs"),
        ("letters narrowed", "system/Patient.cruds", "system/Patient.rs"),
        ("v1 read kept", "system/Observation.read", "system/Observation.read"),
        ("no scope: all registered", None, "system/Patient.rs system/Observation.rs"),
    ],
)
def test_backend_scope_is_intersected_with_registration(
    smart_app, backend_app, rs384_key, _case, scope, granted
):
    # when a backend service asks for these scopes (#79)
    assertion = client_assertion(rs384_key, client_id=backend_app.client_id)
    response = backend_request(smart_app(backend_app), assertion, scope=scope)

    # then it gets requested ∩ registered
    assert (response.status_code, response.json()["scope"]) == (200, granted)


@pytest.mark.parametrize(
    ("_case", "scope"),
    [
        ("patient scope", "patient/Patient.rs"),
        ("user scope", "user/Patient.rs"),
        ("launch scope mixed in", "system/Patient.rs offline_access"),
        ("unregistered system scope", "system/Encounter.rs"),
    ],
)
def test_backend_non_system_or_unregistered_scope_is_invalid_scope(
    smart_app, backend_app, rs384_key, _case, scope
):
    # when a backend service asks for a scope it cannot have (#79)
    assertion = client_assertion(rs384_key, client_id=backend_app.client_id)
    response = backend_request(smart_app(backend_app), assertion, scope=scope)

    # then invalid_scope with a description, and no token
    assert (response.status_code, response.json()["error"]) == (400, "invalid_scope")
    assert response.json()["error_description"]
    assert not AccessToken.objects.exists()


def test_backend_bad_grant_type_is_400(smart_app, backend_app, rs384_key):
    # when the grant type is bogus (#75)
    assertion = client_assertion(rs384_key, client_id=backend_app.client_id)
    response = backend_request(smart_app(backend_app), assertion, grant_type="not_a_grant_type")

    # then exactly 400 unsupported_grant_type
    assert (response.status_code, response.json()["error"]) == (400, "unsupported_grant_type")


def test_backend_bad_assertion_type_is_refused(smart_app, backend_app, rs384_key):
    # when the assertion type is bogus (#76)
    assertion = client_assertion(rs384_key, client_id=backend_app.client_id)
    response = backend_request(
        smart_app(backend_app), assertion, client_assertion_type="not_an_assertion_type"
    )

    # then 401 invalid_client
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


def test_backend_replayed_assertion_is_refused(smart_app, backend_app, rs384_key):
    # given an assertion already used
    smart = smart_app(backend_app)
    assertion = client_assertion(rs384_key, client_id=backend_app.client_id)
    assert backend_request(smart, assertion).status_code == 200

    # when it is replayed
    response = backend_request(smart, assertion)

    # then it is refused
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


def test_client_credentials_only_for_backend_services(smart_app, asymmetric_app, rs384_key):
    # given an app launch client (not a backend service) with a valid assertion
    assertion = client_assertion(rs384_key, client_id=asymmetric_app.client_id)

    # when it asks for client_credentials
    response = backend_request(smart_app(asymmetric_app), assertion)

    # then it is not authorized for that grant
    assert (response.status_code, response.json()["error"]) == (400, "unauthorized_client")


def test_backend_service_cannot_use_a_secret(smart_app, backend_app):
    # given a backend service trying a client secret
    backend_app.client_secret = "guessable"
    backend_app.save()

    # when it asks with Basic auth
    response = smart_app(backend_app).token(
        {"grant_type": "client_credentials", "scope": "system/Patient.rs"},
        basic=(backend_app.client_id, "guessable"),
    )

    # then it is refused: private_key_jwt only
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert response["WWW-Authenticate"].startswith("Basic ")
