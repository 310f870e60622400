"""Management commands: smart_register_app and smart_launch (call_command, plain and --json output)."""

import json
from functools import lru_cache
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import CommandError, call_command
from jwcrypto import jwk
from oauth2_provider.models import get_application_model

from smart.keys import private_key_generate
from smart.models import LaunchContext

Application = get_application_model()


@lru_cache(maxsize=1)
def _test_key() -> str:
    return private_key_generate()


@pytest.fixture(autouse=True)
def signing_key(settings):
    if not settings.OAUTH2_PROVIDER.get("OIDC_RSA_PRIVATE_KEY"):
        settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_RSA_PRIVATE_KEY": _test_key()}


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def register(*args: str) -> dict:
    return json.loads(run("smart_register_app", "--name", "Growth Chart", *args, "--json"))


# smart_register_app ----------------------------------------------------------------------------------------


def test_register_public_app_prints_only_the_client_id(db):
    # when
    output = register(
        "--redirect-uri", "https://growth.example.org/cb", "--launch-url", "https://growth.example.org/"
    )

    # then
    app = Application.objects.get()
    assert output == {"client_id": app.client_id}
    assert (app.smart_client_type, app.client_type, app.token_endpoint_auth_method) == (
        "public",
        "public",
        "none",
    )
    assert app.launch_uri == "https://growth.example.org/"
    assert app.allowed_scopes == "launch openid fhirUser online_access user/*.rs patient/*.rs"


def test_register_confidential_app_prints_the_secret_once(db):
    # when
    output = run(
        "smart_register_app",
        "--name",
        "Sym",
        "--type",
        "confidential",
        "--redirect-uri",
        "https://s.example.org/cb",
    )

    # then
    app = Application.objects.get()
    lines = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    assert lines["client_id"] == app.client_id
    assert check_password(lines["client_secret"], app.client_secret)
    assert lines["client_secret"] not in app.client_secret


def test_register_confidential_app_json_has_the_secret(db):
    # when
    output = register("--type", "confidential", "--redirect-uri", "https://s.example.org/cb")

    # then
    app = Application.objects.get()
    assert set(output) == {"client_id", "client_secret"}
    assert check_password(output["client_secret"], app.client_secret)


def test_register_takes_every_option(db):
    # when
    register(
        "--redirect-uri", "https://a.example.org/cb",
        "--redirect-uri", "http://127.0.0.1:9000/cb",
        "--scopes", "launch/patient openid fhirUser patient/Observation.rs",
        "--skip-consent", "--launch-mode", "window", "--audience", "patient",
        "--logo-uri", "https://a.example.org/logo.png", "--description", "Charts",
    )  # fmt: skip

    # then
    app = Application.objects.get()
    assert app.redirect_uris == "https://a.example.org/cb http://127.0.0.1:9000/cb"
    assert app.allowed_scopes == "launch/patient openid fhirUser patient/Observation.rs"
    assert (app.skip_authorization, app.launch_mode, app.audience) == (True, "window", "patient")
    assert (app.logo_uri, app.description) == ("https://a.example.org/logo.png", "Charts")


def test_register_asymmetric_app_with_a_jwks_file(db, tmp_path):
    # given
    key = jwk.JWK.generate(kty="RSA", size=2048, kid="rsa-1")
    jwks = {"keys": [json.loads(key.export_public())]}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))

    # when
    output = register(
        "--type", "asymmetric", "--redirect-uri", "https://a.example.org/cb", "--jwks-file", str(path)
    )

    # then
    app = Application.objects.get(client_id=output["client_id"])
    assert app.client_jwks == jwks
    assert (app.client_type, app.token_endpoint_auth_method) == ("confidential", "private_key_jwt")
    assert "client_secret" not in output


def test_register_backend_service(db, tmp_path):
    # given
    key = jwk.JWK.generate(kty="EC", crv="P-384", kid="ec-1")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [json.loads(key.export_public())]}))

    # when
    register("--type", "backend", "--jwks-file", str(path))

    # then
    app = Application.objects.get()
    assert (app.authorization_grant_type, app.allowed_scopes) == ("client-credentials", "system/*.rs")


REDIRECT = ["--redirect-uri", "https://a.example.org/cb"]


@pytest.mark.parametrize(
    ("_case", "args", "message"),
    [
        (
            "http redirect",
            ["--redirect-uri", "http://a.example.org/cb"],
            "--redirect-uri: 'http://a.example.org/cb'",
        ),
        ("no redirect", [], "--redirect-uri: Give at least one redirect URI."),
        ("bad scope", [*REDIRECT, "--scopes", "patient/Foo"], "--scopes: Unknown scope(s): patient/Foo."),
        ("asymmetric without keys", ["--type", "asymmetric", *REDIRECT], "--jwks-file: This client type"),
        (
            "bad launch url",
            [*REDIRECT, "--launch-url", "ftp://x"],
            "--launch-url: 'ftp://x' must be an absolute",
        ),
    ],
)
def test_register_rejects_bad_input(db, _case, args, message):
    # when
    with pytest.raises(CommandError) as error:
        run("smart_register_app", "--name", "Bad", *args)

    # then
    assert message in str(error.value)
    assert not Application.objects.exists()


@pytest.mark.parametrize(
    ("_case", "content", "message"),
    [("not json", "{nope", "is not JSON"), ("not a jwks", '{"keys": "x"}', "non-empty")],
)
def test_register_rejects_a_bad_jwks_file(db, tmp_path, _case, content, message):
    # given
    path = tmp_path / "jwks.json"
    path.write_text(content)

    # when
    with pytest.raises(CommandError) as error:
        run("smart_register_app", "--name", "Bad", "--type", "backend", "--jwks-file", str(path))

    # then
    assert message in str(error.value)


def test_register_rejects_a_missing_jwks_file(db, tmp_path):
    # when
    with pytest.raises(CommandError) as error:
        run(
            "smart_register_app",
            "--name",
            "Bad",
            "--type",
            "backend",
            "--jwks-file",
            str(tmp_path / "nope.json"),
        )

    # then
    assert "cannot read" in str(error.value)


# smart_launch ----------------------------------------------------------------------------------------------


@pytest.fixture
def launchable_app(db):
    output = register(
        "--redirect-uri",
        "https://growth.example.org/cb",
        "--launch-url",
        "https://growth.example.org/launch?x=1",
    )
    return Application.objects.get(client_id=output["client_id"])


@pytest.fixture
def clinician(django_user_model):
    return django_user_model.objects.create_user("dr_launch", password="pw-launch-123")


def test_launch_prints_the_launch_url(launchable_app, clinician, settings):
    # when
    output = run("smart_launch", "--app", launchable_app.client_id, "--user", "dr_launch", "--patient", "p1")

    # then
    url = urlsplit(output.strip())
    query = parse_qs(url.query)
    launch = LaunchContext.objects.get()
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://growth.example.org/launch"
    assert query == {"x": ["1"], "iss": [settings.FHIRAPI["BASE_URL"]], "launch": [launch.launch]}
    assert (launch.application, launch.user, launch.patient_id, launch.encounter_id) == (
        launchable_app,
        clinician,
        "p1",
        "",
    )


def test_launch_json(launchable_app, clinician, settings):
    # when
    output = json.loads(
        run("smart_launch", "--app", launchable_app.client_id, "--user", "dr_launch", "--patient", "p1",
            "--encounter", "e7", "--json")
    )  # fmt: skip

    # then
    launch = LaunchContext.objects.get()
    assert set(output) == {"launch", "launch_url", "iss"}
    assert output["launch"] == launch.launch
    assert output["iss"] == settings.FHIRAPI["BASE_URL"]
    assert f"launch={launch.launch}" in output["launch_url"]
    assert launch.encounter_id == "e7"


@pytest.mark.parametrize(
    ("_case", "app", "user", "message"),
    [
        ("unknown app", "nope", "dr_launch", "No app with client_id 'nope'."),
        ("unknown user", None, "nobody", "No user 'nobody'."),
    ],
)
def test_launch_rejects_unknown_names(launchable_app, clinician, _case, app, user, message):
    # when
    with pytest.raises(CommandError) as error:
        run("smart_launch", "--app", app or launchable_app.client_id, "--user", user, "--patient", "p1")

    # then
    assert str(error.value) == message
    assert not LaunchContext.objects.exists()


def test_launch_requires_a_launch_url(db, clinician):
    # given
    client_id = register("--redirect-uri", "https://a.example.org/cb")["client_id"]

    # when
    with pytest.raises(CommandError) as error:
        run("smart_launch", "--app", client_id, "--user", "dr_launch", "--patient", "p1")

    # then
    assert "has no launch URL" in str(error.value)
