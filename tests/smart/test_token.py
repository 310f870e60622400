"""The token endpoint as a SMART app sees it: the code exchange (checklist #37-#46), PKCE (#47-#52), id_token
(#53-#57), refresh (#58-#66), offline/online access, and confidential clients with client secrets (#27,
#44)."""

import json
import logging
import secrets
from datetime import timedelta
from urllib.parse import urlencode

import jwt
import pytest
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model
from oauth2_provider.settings import oauth2_settings

from smart.models import Application
from tests.smart.conftest import EHR_SCOPE as SCOPE
from tests.smart.conftest import FHIR_BASE, FORM, REDIRECT_URI, callback, ehr_code, pkce_pair

AccessToken = get_access_token_model()
Grant = get_grant_model()
RefreshToken = get_refresh_token_model()


def assert_no_store(response) -> None:
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"


def id_token_claims(client, token: dict, audience: str) -> dict:
    """The id_token verified against the JWKS the server publishes."""
    keys = jwt.PyJWKSet.from_dict(client.get("/o/.well-known/jwks.json").json())
    header = jwt.get_unverified_header(token["id_token"])
    key = next(k for k in keys.keys if k.key_id == header["kid"])
    issuer = oauth2_settings.OIDC_ISS_ENDPOINT
    return jwt.decode(token["id_token"], key.key, algorithms=["RS256"], audience=audience, issuer=issuer)


# ---------------------------------------------------------------- the code exchange (#38-#40)


def test_code_exchange_returns_token_and_launch_context(ehr_app):
    # given a code from an EHR launch
    code = ehr_code(ehr_app)

    # when the app exchanges it
    response = ehr_app.exchange(code)

    # then the token response carries the bearer token, the granted scope and the context, not cacheable
    assert response.status_code == 200
    assert_no_store(response)
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == SCOPE
    assert (body["patient"], body["encounter"], body["need_patient_banner"]) == ("pat-1", "enc-1", True)
    assert body["smart_style_url"].startswith("http://127.0.0.1:8000/smart/style.json?v=")
    assert {"access_token", "refresh_token", "id_token"} <= body.keys()


def test_token_stores_context_audience_and_last_use(ehr_app):
    # given an exchanged EHR launch code
    body = ehr_app.exchange(ehr_code(ehr_app)).json()

    # when the stored token is looked up
    token = AccessToken.objects.get(application=ehr_app.app)

    # then it carries the context, the FHIR base as audience and the relative fhirUser; the app was used now
    assert token.launch_context["aud"] == FHIR_BASE
    assert token.launch_context["fhirUser"] == "Practitioner/prac-1"
    assert token.launch_context["patient"] == body["patient"]
    assert token.launch == ehr_app.launch
    ehr_app.app.refresh_from_db()
    assert timezone.now() - ehr_app.app.last_used < timedelta(seconds=10)


def test_reused_code_is_refused_and_revokes_its_tokens(ehr_app):
    # given a code already exchanged once
    code = ehr_code(ehr_app)
    first = ehr_app.exchange(code).json()

    # when it is presented again
    again = ehr_app.exchange(code)

    # then the second exchange fails and the tokens of the first are revoked (#37, RFC 6749 §4.1.2)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert_no_store(again)
    assert not AccessToken.objects.filter(application=ehr_app.app).exists()
    assert ehr_app.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("_case", "overrides", "status", "error"),
    [
        ("bad code", {"code": "BAD_CODE"}, 400, "invalid_grant"),
        ("unknown client", {"client_id": "BAD_CLIENT_ID"}, 401, "invalid_client"),
        ("other redirect_uri", {"redirect_uri": "https://app.example/other"}, 400, "invalid_grant"),
        ("missing redirect_uri", {"redirect_uri": None}, 400, "invalid_request"),
        ("missing code_verifier", {"code_verifier": None}, 400, "invalid_request"),
        ("empty code_verifier", {"code_verifier": ""}, 400, "invalid_grant"),
        (
            "wrong code_verifier",
            {"code_verifier": f"{secrets.token_hex(18)}-{secrets.token_hex(18)}"},
            400,
            "invalid_grant",
        ),
        ("challenge as verifier", {"code_verifier": "CHALLENGE"}, 400, "invalid_grant"),
    ],
)
def test_bad_exchange_is_refused(ehr_app, _case, overrides, status, error):
    # given a fresh authorization (#52: each negative case on its own code)
    code = ehr_code(ehr_app)
    if overrides.get("code_verifier") == "CHALLENGE":
        overrides = {"code_verifier": ehr_app.challenge}
    code = overrides.pop("code", code)

    # when the exchange has one defect (#41-#43, #47-#50)
    response = ehr_app.exchange(code, **overrides)

    # then it is refused with the RFC 6749 error and no token is issued
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert_no_store(response)
    assert not AccessToken.objects.exists()


def test_code_of_another_client_is_refused(ehr_app, smart_app, confidential_app):
    # given a code issued to one app
    code = ehr_code(ehr_app)

    # when another (authenticated) client presents it
    thief = smart_app(confidential_app, secret=confidential_app.plain_secret)
    thief.verifier = ehr_app.verifier
    response = thief.exchange(code)

    # then it is invalid_grant
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_expired_code_is_refused(ehr_app):
    # given a code older than its 60-second life
    code = ehr_code(ehr_app)
    Grant.objects.filter(code=code).update(expires=timezone.now() - timedelta(seconds=1))

    # when it is exchanged
    response = ehr_app.exchange(code)

    # then it is invalid_grant
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(("_case", "length"), [("shortest", 43), ("Inferno's", 73), ("longest", 128)])
def test_verifier_lengths_allowed_by_rfc7636_work(smart_app, public_app, clinician, _case, length):
    # given a PKCE verifier of 43-128 unreserved characters (#51)
    smart = smart_app(public_app, user=clinician)
    verifier, _ = pkce_pair()
    smart.verifier = (verifier * 3)[:length]
    smart.challenge = pkce_challenge(smart.verifier)

    # when the app goes through the flow
    response = smart.exchange(smart.code_for("openid user/Patient.rs"))

    # then the exchange succeeds
    assert response.status_code == 200


def pkce_challenge(verifier: str) -> str:
    import base64
    import hashlib

    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


# ---------------------------------------------------------------- request shape (#44, #45)


@pytest.mark.parametrize(
    ("_case", "body", "content_type", "error"),
    [
        ("unknown grant type", "grant_type=not_a_grant_type", FORM, "unsupported_grant_type"),
        ("password grant", "grant_type=password&username=a&password=b", FORM, "unsupported_grant_type"),
        (
            "device grant",
            "grant_type=urn:ietf:params:oauth:grant-type:device_code",
            FORM,
            "unsupported_grant_type",
        ),
        ("missing grant type", "code=x", FORM, "invalid_request"),
        ("repeated parameter", "grant_type=authorization_code&code=a&code=b", FORM, "invalid_request"),
        (
            "JSON body",
            json.dumps({"grant_type": "authorization_code"}),
            "application/json",
            "invalid_request",
        ),
    ],
)
def test_malformed_token_request_is_400(client, db, _case, body, content_type, error):
    # when a token request has the wrong shape
    response = client.post("/o/token/", body, content_type=content_type)

    # then it is a 400 RFC 6749 error, not cacheable
    assert (response.status_code, response.json()["error"]) == (400, error)
    assert response["Content-Type"] == "application/json"
    assert_no_store(response)


def test_resource_may_be_repeated(ehr_app):
    # given a code exchange naming the FHIR server twice as a resource (RFC 8707 lets `resource` repeat)
    code = ehr_code(ehr_app)
    body = urlencode(
        [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT_URI),
         ("code_verifier", ehr_app.verifier), ("client_id", ehr_app.app.client_id),
         ("resource", FHIR_BASE), ("resource", FHIR_BASE)]
    )  # fmt: skip

    # when it is sent
    response = ehr_app.backend.post("/o/token/", body, content_type=FORM)

    # then the repetition is not refused as other repeated parameters are
    assert response.status_code == 200, response.content
    assert response.json()["patient"] == "pat-1"


def test_every_repeated_resource_is_checked(ehr_app):
    # given a code exchange whose first `resource` is not a resource indicator and whose second is
    code = ehr_code(ehr_app)
    body = urlencode(
        [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT_URI),
         ("code_verifier", ehr_app.verifier), ("client_id", ehr_app.app.client_id),
         ("resource", "urn:example:not-a-server"), ("resource", FHIR_BASE)]
    )  # fmt: skip

    # when it is sent
    response = ehr_app.backend.post("/o/token/", body, content_type=FORM)

    # then the first value was not lost behind the second: the request is refused for it
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"
    assert "urn:example:not-a-server" in response.json()["error_description"]


def test_query_parameters_are_refused(ehr_app):
    # given a code exchange that puts the code in the URL's query instead of the body
    code = ehr_code(ehr_app)
    body = urlencode(
        {"grant_type": "authorization_code", "redirect_uri": REDIRECT_URI,
         "code_verifier": ehr_app.verifier, "client_id": ehr_app.app.client_id}
    )  # fmt: skip

    # when it is sent
    response = ehr_app.backend.post(f"/o/token/?{urlencode({'code': code})}", body, content_type=FORM)

    # then it is refused, with no token issued
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "access_token" not in response.json()


# ---------------------------------------------------------------- confidential clients (#27, #44)


def _confidential_code(smart_app, app, user, **kwargs):
    smart = smart_app(app, user=user, **kwargs)
    return smart, smart.code_for("openid fhirUser user/Patient.rs offline_access")


def test_confidential_client_with_basic_auth(smart_app, confidential_app, clinician):
    # given a confidential app sending only Basic auth (as Inferno does)
    smart, code = _confidential_code(
        smart_app, confidential_app, clinician, secret=confidential_app.plain_secret
    )

    # when it exchanges the code
    response = smart.exchange(code)

    # then it is authenticated
    assert response.status_code == 200


def test_confidential_client_with_secret_in_body(smart_app, confidential_app, clinician):
    # given a confidential app sending client_id and client_secret in the body (client_secret_post)
    smart, code = _confidential_code(smart_app, confidential_app, clinician)

    # when it exchanges the code
    response = smart.exchange(code, client_secret=confidential_app.plain_secret)

    # then it is authenticated
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("_case", "known_client", "secret"),
    [("wrong secret", True, "WRONG"), ("empty secret", True, ""), ("unknown client", False, None)],
)
def test_bad_basic_credentials_get_401_with_basic_challenge(
    smart_app, confidential_app, clinician, _case, known_client, secret
):
    # given a code of a confidential app
    smart, code = _confidential_code(smart_app, confidential_app, clinician)
    client_id = confidential_app.client_id if known_client else "BAD_CLIENT_ID"

    # when the Basic credentials are wrong (#42, #44)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    response = smart.token(
        {**data, "code_verifier": smart.verifier},
        basic=(client_id, confidential_app.plain_secret if secret is None else secret),
    )

    # then 401 invalid_client, with a Basic challenge (RFC 6749 §5.2)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert response["WWW-Authenticate"].startswith("Basic ")
    assert_no_store(response)


def test_confidential_client_without_credentials_is_refused(smart_app, confidential_app, clinician):
    # given a code of a confidential app
    smart, code = _confidential_code(smart_app, confidential_app, clinician)

    # when it presents only its client_id, like a public client
    response = smart.exchange(code)

    # then it is invalid_client
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


def test_disabled_app_cannot_exchange(ehr_app):
    # given a code of an app disabled since
    code = ehr_code(ehr_app)
    Application.objects.filter(pk=ehr_app.app.pk).update(enabled=False)

    # when it is exchanged
    response = ehr_app.exchange(code)

    # then the client is unknown
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


# ---------------------------------------------------------------- id_token (#53-#57)


def test_id_token_is_signed_rs256_with_fhir_user(smart_app, public_app, clinician, client):
    # given a standalone provider launch asking for openid fhirUser with a nonce
    smart = smart_app(public_app, user=clinician)
    token = smart.tokens_for("openid fhirUser user/*.rs", nonce="n-0S6_WzA2Mj")

    # when the id_token is verified with the published JWKS
    claims = id_token_claims(client, token, audience=public_app.client_id)

    # then it names the user as an absolute Practitioner URL and echoes the nonce (#53-#57)
    assert jwt.get_unverified_header(token["id_token"])["alg"] == "RS256"
    assert claims["fhirUser"] == f"{FHIR_BASE}/Practitioner/prac-1"
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["sub"] == str(clinician.pk)
    assert claims["exp"] > claims["iat"]


def test_id_token_without_fhir_user_scope_has_no_fhir_user(smart_app, public_app, clinician, client):
    # given a grant of openid without fhirUser
    token = smart_app(public_app, user=clinician).tokens_for("openid user/*.rs")

    # when the id_token is read
    claims = id_token_claims(client, token, audience=public_app.client_id)

    # then fhirUser is left out
    assert "fhirUser" not in claims


def test_no_openid_no_id_token(smart_app, public_app, clinician):
    # when the grant has no openid
    token = smart_app(public_app, user=clinician).tokens_for("user/*.rs")

    # then no id_token is issued
    assert "id_token" not in token


def test_app_without_algorithm_still_gets_rs256_id_tokens(smart_app, public_app, clinician, client):
    # given an app registered without an id_token algorithm
    public_app.algorithm = ""
    public_app.save()

    # when it is granted openid
    token = smart_app(public_app, user=clinician).tokens_for("openid fhirUser user/*.rs")

    # then the id_token is RS256 and verifies
    assert id_token_claims(client, token, audience=public_app.client_id)["fhirUser"].endswith(
        "/Practitioner/prac-1"
    )


# ---------------------------------------------------------------- refresh (#58-#66)


def test_refresh_without_scope_keeps_grant_and_context(ehr_app):
    # given tokens from an EHR launch with offline_access
    first = ehr_app.exchange(ehr_code(ehr_app)).json()

    # when the app refreshes without a scope
    response = ehr_app.refresh(first["refresh_token"])

    # then it gets a new access token with the same scope, the context repeated, and a rotated refresh token
    assert response.status_code == 200
    assert_no_store(response)
    body = response.json()
    assert body["scope"] == SCOPE
    assert (body["patient"], body["encounter"], body["need_patient_banner"]) == ("pat-1", "enc-1", True)
    assert body["expires_in"] == 3600
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    refreshed = AccessToken.objects.get(token_checksum=_checksum(body["access_token"]))
    assert refreshed.launch_context["patient"] == "pat-1"


def _checksum(raw: str) -> str:
    import hashlib

    return hashlib.sha256(raw.encode()).hexdigest()


@pytest.mark.parametrize(
    ("_case", "scope", "granted"),
    [
        ("same scope", SCOPE, SCOPE),
        (
            "narrower scope",
            "launch offline_access patient/Patient.r",
            "launch offline_access patient/Patient.r",
        ),
        ("v1 equivalent", "offline_access patient/*.read", "offline_access patient/*.read"),
    ],
)
def test_refresh_with_scope_may_narrow(ehr_app, _case, scope, granted):
    # given tokens from an EHR launch
    first = ehr_app.exchange(ehr_code(ehr_app)).json()

    # when the app refreshes naming a scope within the grant (#59)
    response = ehr_app.refresh(first["refresh_token"], scope=scope)

    # then it gets exactly that scope
    assert (response.status_code, response.json()["scope"]) == (200, granted)


def test_refresh_cannot_widen(ehr_app):
    # given tokens from an EHR launch limited to patient/*.rs
    first = ehr_app.exchange(ehr_code(ehr_app)).json()

    # when the app asks for more at refresh (#60)
    response = ehr_app.refresh(first["refresh_token"], scope=SCOPE + " patient/*.cruds")

    # then invalid_scope
    assert (response.status_code, response.json()["error"]) == (400, "invalid_scope")


def test_unknown_refresh_token_is_invalid_grant(ehr_app):
    # when a random refresh token is presented (#62)
    response = ehr_app.refresh("1b4c9d4e-6f0d-4f1b-9d7a-2f1e3c4b5a69")

    # then invalid_grant
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_refresh_token_is_bound_to_its_client(ehr_app, smart_app, confidential_app):
    # given a refresh token of one app
    first = ehr_app.exchange(ehr_code(ehr_app)).json()

    # when another client presents it (#63)
    other = smart_app(confidential_app, secret=confidential_app.plain_secret)
    response = other.refresh(first["refresh_token"])

    # then invalid_grant
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_replayed_rotated_refresh_token_revokes_the_family(ehr_app, settings):
    # given a refresh token already rotated (past the grace period)
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0}
    first = ehr_app.exchange(ehr_code(ehr_app)).json()
    second = ehr_app.refresh(first["refresh_token"]).json()

    # when the old one is replayed (a stolen copy)
    replay = ehr_app.refresh(first["refresh_token"])

    # then it is refused and the current refresh token dies with it
    assert replay.json()["error"] == "invalid_grant"
    assert ehr_app.refresh(second["refresh_token"]).json()["error"] == "invalid_grant"


def test_no_offline_or_online_access_no_refresh_token(smart_app, public_app, clinician):
    # when the grant has neither offline_access nor online_access
    token = smart_app(public_app, user=clinician).tokens_for("openid user/*.rs")

    # then no refresh token is issued
    assert "refresh_token" not in token


def test_online_access_ends_with_the_ehr_session(smart_app, public_app, clinician):
    # given one online and one offline grant of the same user
    online_app = smart_app(public_app, user=clinician)
    online = online_app.tokens_for("openid online_access user/*.rs")
    offline = online_app.tokens_for("openid offline_access user/Patient.rs")
    assert "refresh_token" in online

    # when the user logs out of the EHR
    online_app.browser.logout()

    # then the online refresh and access tokens are revoked; the offline ones live on
    assert online_app.refresh(online["refresh_token"]).json()["error"] == "invalid_grant"
    assert not AccessToken.objects.filter(token_checksum=_checksum(online["access_token"])).exists()
    assert online_app.refresh(offline["refresh_token"]).status_code == 200


def test_refresh_of_inactive_user_is_refused(ehr_app, clinician):
    # given tokens of a user deactivated since
    first = ehr_app.exchange(ehr_code(ehr_app)).json()
    clinician.is_active = False
    clinician.save()

    # when the app refreshes
    response = ehr_app.refresh(first["refresh_token"])

    # then invalid_grant
    assert response.json()["error"] == "invalid_grant"


def test_refresh_retires_the_previous_access_token_at_once(ehr_app, client):
    # given an access token that has just read the patient (its grant is now cached by the API)
    first = ehr_app.exchange(ehr_code(ehr_app)).json()
    before = client.get("/fhir/Patient/pat-1", HTTP_AUTHORIZATION=f"Bearer {first['access_token']}")

    # when its refresh token is used
    refreshed = ehr_app.refresh(first["refresh_token"]).json()

    # then the old access token is refused right away and the new one reads
    after = client.get("/fhir/Patient/pat-1", HTTP_AUTHORIZATION=f"Bearer {first['access_token']}")
    new = client.get("/fhir/Patient/pat-1", HTTP_AUTHORIZATION=f"Bearer {refreshed['access_token']}")
    assert before.status_code == 200
    assert after.status_code == 401
    assert 'error="invalid_token"' in after["WWW-Authenticate"]
    assert new.status_code == 200
    assert len(refreshed["access_token"]) >= 43 and refreshed["access_token"] != first["access_token"]


def test_refreshed_token_can_read_the_patient(ehr_app, client):
    # given a refreshed access token of an EHR launch for pat-1
    first = ehr_app.exchange(ehr_code(ehr_app)).json()
    token = ehr_app.refresh(first["refresh_token"]).json()

    # when it reads the patient in context and another one (#64, #85)
    own = client.get("/fhir/Patient/pat-1", HTTP_AUTHORIZATION=f"Bearer {token['access_token']}")
    other = client.get("/fhir/Patient/pat-2", HTTP_AUTHORIZATION=f"Bearer {token['access_token']}")

    # then only the patient in context is readable
    assert own.status_code == 200
    assert own.json()["id"] == "pat-1"
    assert other.status_code == 404


def test_refresh_token_dies_after_its_lifetime(ehr_app):
    # given a refresh token whose access token expired more than 90 days ago (REFRESH_TOKEN_EXPIRE_SECONDS)
    first = ehr_app.exchange(ehr_code(ehr_app)).json()
    AccessToken.objects.update(expires=timezone.now() - timedelta(days=91))

    # when it is used
    response = ehr_app.refresh(first["refresh_token"])

    # then invalid_grant
    assert response.json()["error"] == "invalid_grant"


def test_code_exchange_callback_carries_state_only(ehr_app):
    # given an EHR launch
    response = ehr_app.allow(ehr_app.authorize(SCOPE, launch=ehr_app.launch.launch))

    # then the redirect carries the code and the exact state, nothing else
    assert set(callback(response)) == {"code", "state"}
    assert RefreshToken.objects.count() == 0


def test_codes_tokens_and_secrets_never_reach_the_logs(smart_app, confidential_app, clinician, caplog):
    # given logging switched on at DEBUG for everything the project's LOGGING lets through
    caplog.set_level(logging.DEBUG)
    smart = smart_app(confidential_app, user=clinician, secret=confidential_app.plain_secret)

    # when a confidential app goes through authorize, exchange and refresh
    code = smart.code_for("openid fhirUser offline_access user/*.rs")
    token = smart.exchange(code).json()
    refreshed = smart.refresh(token["refresh_token"]).json()

    # then no log record contains the code, a token or the client secret
    secrets_seen = [code, token["access_token"], token["refresh_token"], refreshed["access_token"]]
    secrets_seen += [refreshed["refresh_token"], confidential_app.plain_secret]
    assert not [s for s in secrets_seen if s in caplog.text]
