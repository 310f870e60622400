"""Admin registration of SMART apps: fieldsets, validation, one-time secrets and rotation."""

import json
from functools import lru_cache

import pytest
import requests
from django.contrib.auth.hashers import check_password
from django.urls import reverse
from jwcrypto import jwk
from oauth2_provider.models import get_application_model

from smart.keys import private_key_generate

Application = get_application_model()
PATIENT_PRESET = "launch/patient openid fhirUser offline_access patient/*.rs"
ADD_URL = reverse("admin:smart_application_add")
CHANGELIST_URL = reverse("admin:smart_application_changelist")


@lru_cache(maxsize=1)
def _test_key() -> str:
    return private_key_generate()


@pytest.fixture(autouse=True)
def signing_key(settings):
    if not settings.OAUTH2_PROVIDER.get("OIDC_RSA_PRIVATE_KEY"):
        settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_RSA_PRIVATE_KEY": _test_key()}


@lru_cache(maxsize=1)
def _client_key() -> jwk.JWK:
    return jwk.JWK.generate(kty="EC", crv="P-384", kid="client-key-1")


def public_jwks() -> dict:
    return {"keys": [{**json.loads(_client_key().export_public()), "alg": "ES384"}]}


def form_data(**overrides) -> dict:
    data = {
        "name": "Growth Chart",
        "description": "",
        "logo_uri": "",
        "smart_client_type": "public",
        "launch_uri": "https://growth.example.org/launch",
        "launch_mode": "embedded",
        "audience": "clinician",
        "redirect_uris": "https://growth.example.org/callback",
        "scope_preset": "",
        "allowed_scopes": "",
        "client_jwks": "",
        "client_jwks_uri": "",
        "enabled": "on",
    }
    return {**data, **overrides}


def change_url(app) -> str:
    return reverse("admin:smart_application_change", args=[app.pk])


# Add -------------------------------------------------------------------------------------------------------


def test_add_form_shows_the_fieldsets(admin_client):
    # when
    response = admin_client.get(ADD_URL)

    # then
    assert response.status_code == 200
    names = [fieldset.name for fieldset in response.context["adminform"]]
    assert names == ["Identity", "Launch", "Security", "Scopes", "Status"]


def test_add_public_app_derives_the_oauth_fields(admin_client):
    # when
    response = admin_client.post(ADD_URL, form_data())

    # then
    assert response.status_code == 302
    app = Application.objects.get(name="Growth Chart")
    assert (app.client_type, app.authorization_grant_type) == ("public", "authorization-code")
    assert (app.token_endpoint_auth_method, app.algorithm) == ("none", "RS256")
    assert app.allowed_scopes == "launch openid fhirUser online_access user/*.rs patient/*.rs"


@pytest.mark.parametrize(
    ("_case", "overrides", "scopes"),
    [
        ("patient audience", {"audience": "patient"}, PATIENT_PRESET),
        ("explicit preset", {"scope_preset": "patient"}, PATIENT_PRESET),
        (
            "explicit scopes win",
            {"scope_preset": "patient", "allowed_scopes": "launch  patient/Observation.rs"},
            "launch patient/Observation.rs",
        ),
    ],
)
def test_add_fills_scopes_from_the_preset(admin_client, _case, overrides, scopes):
    # when
    admin_client.post(ADD_URL, form_data(**overrides))

    # then
    assert Application.objects.get().allowed_scopes == scopes


def test_add_confidential_app_shows_the_secret_once(admin_client):
    # when
    response = admin_client.post(ADD_URL, form_data(smart_client_type="confidential"))

    # then
    assert response.status_code == 200
    secret = response.context["secret"]
    assert len(secret) == 64
    assert secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    app = Application.objects.get()
    assert app.client_secret.startswith("smart_hmac_sha256$")
    assert secret not in app.client_secret
    assert check_password(secret, app.client_secret)
    assert (app.client_type, app.token_endpoint_auth_method) == ("confidential", "client_secret_basic")
    assert secret not in admin_client.get(change_url(app)).content.decode()


def test_add_backend_service_uses_client_credentials(admin_client):
    # when
    response = admin_client.post(
        ADD_URL,
        form_data(
            smart_client_type="backend",
            launch_uri="",
            redirect_uris="",
            client_jwks=json.dumps(public_jwks()),
        ),
    )

    # then
    assert response.status_code == 302
    app = Application.objects.get()
    assert (app.authorization_grant_type, app.token_endpoint_auth_method) == (
        "client-credentials",
        "private_key_jwt",
    )
    assert (app.allowed_scopes, app.algorithm) == ("system/*.rs", "")
    assert app.client_jwks == public_jwks()


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "localhost:3000", "[::1]:9000"])
def test_add_accepts_http_on_loopback(admin_client, host):
    # when
    response = admin_client.post(
        ADD_URL, form_data(redirect_uris=f"http://{host}/cb\nhttps://x.example.org/cb")
    )

    # then
    assert response.status_code == 302
    assert Application.objects.get().redirect_uris == f"http://{host}/cb https://x.example.org/cb"


def _private_jwks() -> str:
    return json.dumps({"keys": [json.loads(_client_key().export_private())]})


ASYMMETRIC = {"smart_client_type": "asymmetric"}
BACKEND = {
    "smart_client_type": "backend",
    "redirect_uris": "",
    "launch_uri": "",
    "client_jwks": json.dumps(public_jwks()),
}


@pytest.mark.parametrize(
    ("_case", "overrides", "field", "message"),
    [
        ("http redirect", {"redirect_uris": "http://app.example.org/cb"}, "redirect_uris", "must use https"),
        ("no redirect", {"redirect_uris": ""}, "redirect_uris", "at least one redirect URI"),
        ("fragment", {"redirect_uris": "https://a.example.org/cb#x"}, "redirect_uris", "#fragment"),
        ("http launch", {"launch_uri": "http://app.example.org/launch"}, "launch_uri", "must use https"),
        ("unknown scope", {"allowed_scopes": "openid patient/Observation.dus"}, "allowed_scopes", "Unknown"),
        ("system scope for app", {"allowed_scopes": "launch system/*.rs"}, "allowed_scopes", "Only backend"),
        ("keys on public app", {"client_jwks": json.dumps(public_jwks())}, "client_jwks", "Only asymmetric"),
        ("asymmetric without keys", {"smart_client_type": "asymmetric"}, "client_jwks", "give a JWKS"),
        ("private key", {**ASYMMETRIC, "client_jwks": _private_jwks()}, "client_jwks", "private"),
        ("empty jwks", {**ASYMMETRIC, "client_jwks": '{"keys": []}'}, "client_jwks", "non-empty"),
        (
            "backend patient scope",
            {**BACKEND, "allowed_scopes": "patient/*.rs"},
            "allowed_scopes",
            "only have system/",
        ),
    ],
)
def test_add_rejects_invalid_input(admin_client, _case, overrides, field, message):
    # when
    response = admin_client.post(ADD_URL, form_data(**overrides))

    # then
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field])
    assert not Application.objects.exists()


def test_add_rejects_a_jwk_of_the_wrong_type(admin_client):
    # given
    symmetric_key = json.loads(jwk.JWK.generate(kty="oct", size=256, kid="k").export())

    # when
    response = admin_client.post(
        ADD_URL, form_data(smart_client_type="asymmetric", client_jwks=json.dumps({"keys": [symmetric_key]}))
    )

    # then
    assert "RSA key (RS384) or an EC P-384 key" in " ".join(
        response.context["adminform"].form.errors["client_jwks"]
    )


class FakeResponse:
    def __init__(self, body, status=200):
        self.body, self.status_code = body, status

    def raise_for_status(self):
        if self.status_code >= 400:
            raise requests.HTTPError(f"{self.status_code}")

    def json(self):
        return self.body


@pytest.fixture
def jwks_server(monkeypatch):
    """Answers JWKS URL fetches (the network boundary) from a dict of URL -> FakeResponse; records calls."""
    calls, responses = [], {}

    def fake_get(url, **kwargs):
        calls.append((url, kwargs))
        if url not in responses:
            raise requests.ConnectionError("unreachable")
        return responses[url]

    monkeypatch.setattr("smart.clients.requests.get", fake_get)
    return responses, calls


def test_add_fetches_the_jwks_url(admin_client, jwks_server):
    # given
    responses, calls = jwks_server
    responses["https://keys.example.org/jwks.json"] = FakeResponse(public_jwks())

    # when
    response = admin_client.post(
        ADD_URL,
        form_data(smart_client_type="asymmetric", client_jwks_uri="https://keys.example.org/jwks.json"),
    )

    # then
    assert response.status_code == 302
    assert Application.objects.get().client_jwks_uri == "https://keys.example.org/jwks.json"
    assert calls[0][1]["timeout"] == 5


@pytest.mark.parametrize(
    ("_case", "response", "message"),
    [
        ("unreachable", None, "Could not fetch a JWKS"),
        ("server error", FakeResponse({}, status=500), "Could not fetch a JWKS"),
        ("not a jwks", FakeResponse({"hello": "world"}), "non-empty"),
    ],
)
def test_add_rejects_a_bad_jwks_url(admin_client, jwks_server, _case, response, message):
    # given
    responses, _ = jwks_server
    if response is not None:
        responses["https://keys.example.org/jwks.json"] = response

    # when
    page = admin_client.post(
        ADD_URL,
        form_data(smart_client_type="asymmetric", client_jwks_uri="https://keys.example.org/jwks.json"),
    )

    # then
    assert message in " ".join(page.context["adminform"].form.errors["client_jwks_uri"])


# Change, list, rotate --------------------------------------------------------------------------------------


@pytest.fixture
def confidential_app(admin_client):
    admin_client.post(ADD_URL, form_data(smart_client_type="confidential"))
    return Application.objects.get()


def test_change_form_keeps_the_secret_and_shows_derived_fields(admin_client, confidential_app):
    # given
    stored = confidential_app.client_secret

    # when
    page = admin_client.get(change_url(confidential_app))
    response = admin_client.post(
        change_url(confidential_app), form_data(smart_client_type="confidential", name="New")
    )

    # then
    assert confidential_app.client_id in page.content.decode()
    assert "Rotate secret" in page.content.decode()
    assert response.status_code == 302
    confidential_app.refresh_from_db()
    assert (confidential_app.name, confidential_app.client_secret) == ("New", stored)


def test_changing_the_type_to_confidential_shows_a_new_secret(admin_client):
    # given
    admin_client.post(ADD_URL, form_data())
    app = Application.objects.get()

    # when
    response = admin_client.post(change_url(app), form_data(smart_client_type="confidential"))

    # then
    assert response.status_code == 200
    app.refresh_from_db()
    assert check_password(response.context["secret"], app.client_secret)


def test_changelist_shows_the_app_columns(admin_client, confidential_app):
    # when
    response = admin_client.get(CHANGELIST_URL)

    # then
    content = response.content.decode()
    assert response.status_code == 200
    for text in ("Growth Chart", confidential_app.client_id, "Confidential with a client secret", "Embedded"):
        assert text in content
    assert [c.split(" ")[-1] for c in response.context["cl"].list_display] == [
        "action_checkbox",
        "name",
        "client_id",
        "smart_client_type",
        "launch_mode",
        "enabled",
        "last_used",
    ]


def test_rotate_secret_button_rotates_and_shows_the_new_secret_once(admin_client, confidential_app):
    # given
    old = confidential_app.client_secret
    url = reverse("admin:smart_application_rotate_secret", args=[confidential_app.pk])

    # when
    confirm = admin_client.get(url)
    response = admin_client.post(url)

    # then
    assert confirm.status_code == 200
    assert response.status_code == 200
    secret = response.context["secret"]
    confidential_app.refresh_from_db()
    assert confidential_app.client_secret != old
    assert check_password(secret, confidential_app.client_secret)
    assert confidential_app.secret_rotated is not None
    assert "no-store" in response["Cache-Control"]


def test_rotate_secret_action(admin_client, confidential_app):
    # when
    response = admin_client.post(
        CHANGELIST_URL, {"action": "rotate_secret", "_selected_action": [confidential_app.pk]}
    )

    # then
    confidential_app.refresh_from_db()
    assert check_password(response.context["secret"], confidential_app.client_secret)


def test_rotate_secret_refuses_public_apps(admin_client):
    # given
    admin_client.post(ADD_URL, form_data())
    app = Application.objects.get()
    stored = app.client_secret

    # when
    response = admin_client.post(reverse("admin:smart_application_rotate_secret", args=[app.pk]))

    # then
    assert response.status_code == 302
    app.refresh_from_db()
    assert (app.client_secret, app.secret_rotated) == (stored, None)


def test_non_staff_cannot_rotate(client, confidential_app, django_user_model):
    # given
    django_user_model.objects.create_user("nurse", password="pw-nurse-123")
    client.login(username="nurse", password="pw-nurse-123")
    stored = confidential_app.client_secret

    # when
    client.post(reverse("admin:smart_application_rotate_secret", args=[confidential_app.pk]))

    # then
    confidential_app.refresh_from_db()
    assert confidential_app.client_secret == stored
