"""Discovery: .well-known/smart-configuration, openid-configuration, JWKS, style JSON, CapabilityStatement
security, CORS, signing keys and system checks (checklist #1-#12, #17, #93-#96)."""

import json
import os
import stat
from functools import lru_cache
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from oauth2_provider.models import get_application_model

from smart import checks
from smart.discovery import capability_security, style_url
from smart.keys import inactive_keys, key_id, load_signing_keys, private_key_generate, signing_key_rotate

WELL_KNOWN = "/fhir/.well-known/smart-configuration"


@lru_cache(maxsize=1)
def _test_key() -> str:
    return private_key_generate()


@pytest.fixture(autouse=True)
def signing_key(settings):
    if not settings.OAUTH2_PROVIDER.get("OIDC_RSA_PRIVATE_KEY"):
        settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_RSA_PRIVATE_KEY": _test_key()}
    return settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"]


@pytest.fixture
def discovery(client):
    return client.get(WELL_KNOWN).json()


def _path(url: str) -> str:
    return urlsplit(url).path


# .well-known/smart-configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "accept"),
    [
        ("json", "application/json"),
        ("no accept header", None),
        ("fhir json", "application/fhir+json"),
        ("html", "text/html"),
    ],
)
def test_smart_configuration_is_json_whatever_the_accept_header(client, _case, accept):
    # given
    headers = {"HTTP_ACCEPT": accept} if accept else {}

    # when
    response = client.get(WELL_KNOWN, **headers)

    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert isinstance(json.loads(response.content), dict)


def test_smart_configuration_has_the_required_and_recommended_fields(discovery, settings):
    # given
    base = settings.FHIRAPI["BASE_URL"].rstrip("/")
    root = base.removesuffix("/fhir")

    # then
    assert discovery["issuer"] == settings.OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"]
    assert discovery["jwks_uri"] == f"{root}/o/.well-known/jwks.json"
    assert discovery["authorization_endpoint"] == f"{root}/o/authorize/"
    assert discovery["token_endpoint"] == f"{root}/o/token/"
    assert discovery["introspection_endpoint"] == f"{root}/o/introspect/"
    assert discovery["revocation_endpoint"] == f"{root}/o/revoke_token/"
    assert discovery["management_endpoint"] == f"{root}/smart/connected-apps/"
    assert discovery["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials"]
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["response_types_supported"] == ["code"]
    assert "registration_endpoint" not in discovery


def test_smart_configuration_endpoints_are_absolute(discovery):
    # when
    urls = [
        value for key, value in discovery.items() if key.endswith(("_endpoint", "_uri")) or key == "issuer"
    ]

    # then
    assert len(urls) == 7
    assert all(urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc for url in urls)


def test_smart_configuration_capabilities_cover_the_g10_lists(discovery):
    # given
    standalone_patient = {
        "launch-standalone",
        "client-public",
        "client-confidential-symmetric",
        "client-confidential-asymmetric",
        "sso-openid-connect",
        "context-standalone-patient",
        "permission-offline",
        "permission-patient",
        "authorize-post",
        "permission-v2",
        "permission-v1",
    }
    ehr_practitioner = {
        "launch-ehr",
        "client-confidential-symmetric",
        "client-confidential-asymmetric",
        "sso-openid-connect",
        "context-banner",
        "context-style",
        "context-ehr-patient",
        "permission-offline",
        "permission-user",
        "authorize-post",
        "permission-v2",
        "permission-v1",
        "context-ehr-encounter",
    }

    # then
    capabilities = discovery["capabilities"]
    assert all(isinstance(capability, str) for capability in capabilities)
    assert standalone_patient | ehr_practitioner <= set(capabilities)


def test_smart_configuration_advertises_asymmetric_client_auth(discovery):
    # then
    assert "private_key_jwt" in discovery["token_endpoint_auth_methods_supported"]
    assert discovery["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]


def test_smart_configuration_scopes_are_known_scopes(discovery):
    # given
    from smart.scopes import is_known_scope

    # then
    assert {"openid", "fhirUser", "launch", "launch/patient", "offline_access", "patient/*.cruds"} <= set(
        discovery["scopes_supported"]
    )
    assert all(is_known_scope(scope) for scope in discovery["scopes_supported"])


def test_smart_configuration_capabilities_follow_the_setting(client, settings):
    # given
    settings.SMART = {**settings.SMART, "CAPABILITIES": ["launch-ehr"]}

    # when
    body = client.get(WELL_KNOWN).json()

    # then
    assert body["capabilities"] == ["launch-ehr"]


@pytest.mark.parametrize(
    ("_case", "method", "status"),
    [("head", "head", 200), ("post", "post", 405), ("delete", "delete", 405)],
)
def test_smart_configuration_methods(client, _case, method, status):
    # when
    response = getattr(client, method)(WELL_KNOWN)

    # then
    assert response.status_code == status


# OpenID Connect discovery and JWKS -------------------------------------------------------------------------


def test_openid_configuration_lives_under_the_issuer(client, discovery):
    # when
    response = client.get(_path(discovery["issuer"]) + "/.well-known/openid-configuration")

    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["issuer"] == discovery["issuer"]
    assert body["jwks_uri"] == discovery["jwks_uri"]
    assert "RS256" in body["id_token_signing_alg_values_supported"]
    for field in (
        "authorization_endpoint",
        "token_endpoint",
        "response_types_supported",
        "subject_types_supported",
    ):
        assert body[field]


def test_jwks_publishes_the_rsa_signing_key(client, discovery, signing_key):
    # when
    response = client.get(_path(discovery["jwks_uri"]))

    # then
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert [(key["kty"], key["kid"]) for key in keys] == [("RSA", key_id(signing_key))]
    assert keys[0]["n"] and keys[0]["e"]
    assert "d" not in keys[0]


def test_jwks_keeps_retired_keys_during_rotation(client, discovery, settings, signing_key):
    # given
    retired = private_key_generate()
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_RSA_PRIVATE_KEYS_INACTIVE": [retired]}

    # when
    keys = client.get(_path(discovery["jwks_uri"])).json()["keys"]

    # then
    assert [key["kid"] for key in keys] == [key_id(signing_key), key_id(retired)]


# Style -----------------------------------------------------------------------------------------------------

STYLE_KEYS = {
    "color_background",
    "color_error",
    "color_highlight",
    "color_modal_backdrop",
    "color_success",
    "color_text",
    "dim_border_radius",
    "dim_font_size",
    "dim_spacing_size",
    "font_family_body",
    "font_family_heading",
}


def test_style_url_serves_the_style_json(client):
    # when
    response = client.get(style_url())

    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert set(response.json()) == STYLE_KEYS


def test_style_is_cached_by_etag(client):
    # given
    etag = client.get(style_url())["ETag"]

    # when
    response = client.get(style_url(), HTTP_IF_NONE_MATCH=etag)

    # then
    assert response.status_code == 304


def test_style_url_changes_when_the_style_changes(client, settings):
    # given
    before = style_url()

    # when
    settings.SMART = {**settings.SMART, "STYLE": {"color_highlight": "#123456"}}

    # then
    after = style_url()
    assert after != before
    assert client.get(after).json()["color_highlight"] == "#123456"


# CapabilityStatement security ------------------------------------------------------------------------------


def test_capability_security_uris_equal_the_well_known_ones(discovery):
    # when
    security = capability_security()

    # then
    assert security["service"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
        "code": "SMART-on-FHIR",
        "display": "SMART-on-FHIR",
    }
    (oauth_uris,) = security["extension"]
    assert oauth_uris["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert {e["url"]: e["valueUri"] for e in oauth_uris["extension"]} == {
        "authorize": discovery["authorization_endpoint"],
        "token": discovery["token_endpoint"],
        "introspect": discovery["introspection_endpoint"],
        "revoke": discovery["revocation_endpoint"],
        "manage": discovery["management_endpoint"],
    }


# CORS ------------------------------------------------------------------------------------------------------


@pytest.fixture
def cors_settings(settings):
    """The recommended CORS settings: origins decided by smart.cors."""
    settings.CORS_ALLOW_ALL_ORIGINS = False
    settings.CORS_URLS_REGEX = (
        r"^/(fhir/(?!\.well-known/).*|o/token/|o/revoke_token/|o/introspect/|o/userinfo/)$"
    )
    return settings


@pytest.fixture
def browser_app(db):
    return get_application_model().objects.create(
        name="Browser app",
        client_type="public",
        authorization_grant_type="authorization-code",
        redirect_uris="https://app.example.org/callback http://localhost:3000/cb",
    )


def _preflight(client, path, origin):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )


@pytest.mark.parametrize(
    ("_case", "origin"),
    [("https origin", "https://app.example.org"), ("loopback origin with port", "http://localhost:3000")],
)
def test_token_endpoint_preflight_allows_registered_origins(
    client, cors_settings, browser_app, _case, origin
):
    # when
    response = _preflight(client, "/o/token/", origin)

    # then
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == origin
    assert "authorization" in response["Access-Control-Allow-Headers"]
    assert "POST" in response["Access-Control-Allow-Methods"]


@pytest.mark.parametrize(
    ("_case", "origin"),
    [
        ("unregistered", "https://evil.example.com"),
        ("registered host as a prefix", "https://app.example.org.evil.com"),
        ("other scheme", "http://app.example.org"),
        ("null", "null"),
    ],
)
def test_token_endpoint_refuses_other_origins(client, cors_settings, browser_app, _case, origin):
    # when
    response = _preflight(client, "/o/token/", origin)

    # then
    assert "Access-Control-Allow-Origin" not in response


def test_token_endpoint_refuses_origins_of_disabled_apps(client, cors_settings, browser_app):
    # given
    browser_app.enabled = False
    browser_app.save()

    # when
    response = _preflight(client, "/o/token/", "https://app.example.org")

    # then
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.parametrize(("_case", "path"), [("fhir read", "/fhir/Patient/1"), ("userinfo", "/o/userinfo/")])
def test_bearer_endpoints_allow_any_origin(client, cors_settings, db, _case, path):
    # when
    response = _preflight(client, path, "https://anywhere.example.net")

    # then
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://anywhere.example.net"


@pytest.mark.parametrize(("_case", "cors"), [("recommended settings", True), ("project settings", False)])
def test_well_known_allows_any_origin(client, settings, _case, cors):
    # given
    if cors:
        settings.CORS_ALLOW_ALL_ORIGINS = False

    # when
    response = client.get(WELL_KNOWN, HTTP_ORIGIN="https://anywhere.example.net")

    # then
    assert response["Access-Control-Allow-Origin"] in ("*", "https://anywhere.example.net")


def test_ehr_pages_get_no_cors_headers(client, cors_settings, browser_app):
    # when
    response = _preflight(client, "/admin/", "https://app.example.org")

    # then
    assert "Access-Control-Allow-Origin" not in response


# Signing keys ----------------------------------------------------------------------------------------------


def test_load_signing_keys_creates_a_private_key_file(tmp_path, monkeypatch):
    # given
    monkeypatch.delenv("OIDC_RSA_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("OIDC_RSA_PRIVATE_KEY_FILE", raising=False)

    # when
    active, inactive = load_signing_keys(tmp_path)

    # then
    path = tmp_path / "oidc.key"
    assert active == path.read_text()
    assert active.startswith("-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert inactive == []
    assert load_signing_keys(tmp_path) == (active, [])


def test_load_signing_keys_prefers_the_environment(tmp_path, monkeypatch, signing_key):
    # given
    monkeypatch.setenv("OIDC_RSA_PRIVATE_KEY", signing_key)

    # when
    active, inactive = load_signing_keys(tmp_path)

    # then
    assert key_id(active) == key_id(signing_key)
    assert inactive == []
    assert not (tmp_path / "oidc.key").exists()


def test_rotation_keeps_the_old_key_and_prunes_expired_ones(tmp_path, monkeypatch):
    # given
    monkeypatch.delenv("OIDC_RSA_PRIVATE_KEY", raising=False)
    monkeypatch.setenv("OIDC_RSA_PRIVATE_KEY_FILE", str(tmp_path / "oidc.key"))
    first, _ = load_signing_keys()
    signing_key_rotate(tmp_path / "oidc.key", keep_seconds=100, now=1_000)
    second = (tmp_path / "oidc.key").read_text()

    # when
    rotation = signing_key_rotate(tmp_path / "oidc.key", keep_seconds=100, now=2_000)

    # then
    active, inactive = load_signing_keys()
    assert rotation.retired_kid == key_id(second)
    assert [key_id(pem) for pem in inactive] == [key_id(second)]
    assert key_id(active) == rotation.active_kid
    assert len(rotation.pruned) == 1
    assert key_id(first) not in {key_id(pem) for pem in inactive}


def test_rotate_key_command(tmp_path, monkeypatch, capsys):
    # given
    monkeypatch.delenv("OIDC_RSA_PRIVATE_KEY", raising=False)
    monkeypatch.setenv("OIDC_RSA_PRIVATE_KEY_FILE", str(tmp_path / "oidc.key"))
    old, _ = load_signing_keys()

    # when
    call_command("smart_rotate_key")

    # then
    active, inactive = load_signing_keys()
    assert key_id(active) != key_id(old)
    assert [key_id(pem) for pem in inactive] == [key_id(old)]
    assert inactive_keys(tmp_path / "oidc.key") == inactive
    assert f"Retired key {key_id(old)}" in capsys.readouterr().out


# System checks ---------------------------------------------------------------------------------------------


def _ids(messages) -> list[str]:
    return [message.id for message in messages]


@pytest.mark.parametrize(
    ("_case", "overrides", "check", "expected"),
    [
        ("validator unset", {}, checks.check_validator_class, ["smart.E001"]),
        (
            "validator is ours",
            {"OAUTH2_VALIDATOR_CLASS": "smart.validators.SmartOAuth2Validator"},
            checks.check_validator_class,
            [],
        ),
        ("pkce off", {"PKCE_REQUIRED": False}, checks.check_pkce_required, ["smart.E002"]),
        ("pkce on", {"PKCE_REQUIRED": True}, checks.check_pkce_required, []),
        ("oidc off", {"OIDC_ENABLED": False}, checks.check_oidc_enabled, ["smart.E003"]),
        ("oidc on", {"OIDC_ENABLED": True}, checks.check_oidc_enabled, []),
        ("no signing key", {"OIDC_RSA_PRIVATE_KEY": ""}, checks.check_signing_key, ["smart.W001"]),
    ],
)
def test_system_checks(settings, _case, overrides, check, expected):
    # given
    base = {k: v for k, v in settings.OAUTH2_PROVIDER.items() if k != "OAUTH2_VALIDATOR_CLASS"}
    settings.OAUTH2_PROVIDER = {**base, **overrides}

    # when
    messages = check(None)

    # then
    assert _ids(messages) == expected


def test_system_check_fhir_base_url(settings):
    # given
    settings.FHIRAPI = {**settings.FHIRAPI, "BASE_URL": ""}

    # when
    messages = checks.check_fhir_base_url(None)

    # then
    assert _ids(messages) == ["smart.E004"]


@pytest.mark.django_db
def test_endpoints_follow_the_public_root_and_the_script_prefix(client, settings):
    """Deployed under a path prefix: the published URLs carry the prefix once, and follow the settings when
    they change (the route paths are computed once per process)."""
    settings.SMART = {**settings.SMART, "PUBLIC_ROOT_URL": "https://ehr.example.org/clinic"}
    settings.FORCE_SCRIPT_NAME = "/clinic/"
    prefixed = client.get(WELL_KNOWN).json()
    assert prefixed["token_endpoint"] == "https://ehr.example.org/clinic/o/token/"
    assert prefixed["authorization_endpoint"] == "https://ehr.example.org/clinic/o/authorize/"

    settings.SMART = {**settings.SMART, "PUBLIC_ROOT_URL": "https://other.example.org"}
    settings.FORCE_SCRIPT_NAME = None
    plain = client.get(WELL_KNOWN).json()
    assert plain["token_endpoint"] == "https://other.example.org/o/token/"
