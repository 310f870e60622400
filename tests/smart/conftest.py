"""Shared fixtures of the authorization server tests: users with FHIR identities, one app of each client
type, real signing keys, a seeded Patient/Encounter, and `SmartApp`, an app plus browser driving
/authorize and /token through Django's test client the way a SMART client would (forms are read from the
served HTML)."""

import base64
import hashlib
import json
import secrets
import time
import uuid
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.contrib.auth import get_user_model
from django.test import Client
from oauth2_provider.models import get_application_model

from fhirapi.store import resource_update
from smart.launch import launch_create
from smart.models import UserFhirIdentity

Application = get_application_model()

FHIR_BASE = "http://127.0.0.1:8000/fhir"
TOKEN_URL = "http://testserver/o/token/"
REDIRECT_URI = "https://app.example/callback"
LAUNCH_URI = "https://app.example/launch"
FORM = "application/x-www-form-urlencoded"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
APP_SCOPES = (
    "launch launch/patient launch/encounter openid fhirUser profile offline_access online_access "
    "patient/*.cruds user/*.cruds"
)


# ---------------------------------------------------------------- keys and settings


def _pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="session")
def oidc_key_pem() -> str:
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def rs384_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def es384_key() -> Any:
    return ec.generate_private_key(ec.SECP384R1())


def public_jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    """The public JWK of a private key, as a client registers it."""
    algorithm = jwt.algorithms.RSAAlgorithm if alg.startswith("RS") else jwt.algorithms.ECAlgorithm
    return {**json.loads(algorithm.to_jwk(key.public_key())), "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture(autouse=True)
def smart_server_settings(settings, oidc_key_pem):
    """What ehr/settings.py must say for these tests: our validator, an id_token key, the FHIR base."""
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OAUTH2_VALIDATOR_CLASS": "smart.validators.SmartOAuth2Validator",
        "OIDC_RSA_PRIVATE_KEY": settings.OAUTH2_PROVIDER.get("OIDC_RSA_PRIVATE_KEY") or oidc_key_pem,
    }
    settings.FHIRAPI = {**settings.FHIRAPI, "BASE_URL": FHIR_BASE}
    return settings


# ---------------------------------------------------------------- users and FHIR data


@pytest.fixture
def fhir_data(db) -> dict[str, str]:
    """Two patients (pat-1 has an MRN and one encounter), a practitioner."""
    resources = [
        {
            "resourceType": "Patient",
            "id": "pat-1",
            "name": [{"use": "official", "family": "Smith", "given": ["Anna"]}],
            "birthDate": "1980-02-03",
            "gender": "female",
            "identifier": [
                {
                    "type": {
                        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
                    },
                    "system": "urn:mrn",
                    "value": "MRN-12345",
                }
            ],
        },
        {"resourceType": "Patient", "id": "pat-2", "name": [{"family": "Jones", "given": ["Bob"]}]},
        {"resourceType": "Practitioner", "id": "prac-1", "name": [{"family": "House", "given": ["Greg"]}]},
        {
            "resourceType": "Encounter",
            "id": "enc-1",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"text": "Annual check-up"}],
            "subject": {"reference": "Patient/pat-1"},
            "period": {"start": "2024-05-01T10:00:00Z"},
        },
    ]
    for resource in resources:
        resource_update(resource_type=resource["resourceType"], resource_id=resource["id"], resource=resource)
    return {"patient": "pat-1", "other_patient": "pat-2", "practitioner": "prac-1", "encounter": "enc-1"}


def _user(username: str, fhir_user: str | None) -> Any:
    user = get_user_model().objects.create_user(username, password="pw-" + username)
    if fhir_user:
        UserFhirIdentity.objects.create(user=user, fhir_user=fhir_user)
    return user


@pytest.fixture
def clinician(db, fhir_data):
    return _user("clinician", "Practitioner/prac-1")


@pytest.fixture
def other_clinician(db, fhir_data):
    return _user("other_clinician", "Practitioner/prac-1")


@pytest.fixture
def patient_user(db, fhir_data):
    return _user("anna", "Patient/pat-1")


# ---------------------------------------------------------------- apps


def _app(**fields: Any) -> Any:
    defaults = {
        "name": "Growth Chart",
        "client_type": Application.CLIENT_PUBLIC,
        "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
        "redirect_uris": REDIRECT_URI,
        "launch_uri": LAUNCH_URI,
        "allowed_scopes": APP_SCOPES,
        "algorithm": Application.RS256_ALGORITHM,
        "smart_client_type": Application.SmartClientType.PUBLIC,
        "token_endpoint_auth_method": "none",
        "client_secret": "",
    }
    return Application.objects.create(**{**defaults, **fields})


@pytest.fixture
def public_app(db):
    return _app()


@pytest.fixture
def confidential_app(db):
    secret = "s3cret-" + secrets.token_urlsafe(16)
    app = _app(
        name="Confidential app",
        client_type=Application.CLIENT_CONFIDENTIAL,
        smart_client_type=Application.SmartClientType.CONFIDENTIAL,
        token_endpoint_auth_method="client_secret_basic",
        client_secret=secret,
    )
    app.plain_secret = secret
    return app


@pytest.fixture
def asymmetric_app(db, rs384_key, es384_key):
    return _app(
        name="Asymmetric app",
        client_type=Application.CLIENT_CONFIDENTIAL,
        smart_client_type=Application.SmartClientType.ASYMMETRIC,
        token_endpoint_auth_method="private_key_jwt",
        client_jwks={
            "keys": [public_jwk(rs384_key, "rs-1", "RS384"), public_jwk(es384_key, "es-1", "ES384")]
        },
    )


@pytest.fixture
def backend_app(db, es384_key, rs384_key):
    return _app(
        name="Nightly export",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        redirect_uris="",
        launch_uri="",
        smart_client_type=Application.SmartClientType.BACKEND,
        token_endpoint_auth_method="private_key_jwt",
        allowed_scopes="system/Patient.rs system/Observation.rs",
        client_jwks={
            "keys": [public_jwk(es384_key, "es-1", "ES384"), public_jwk(rs384_key, "rs-1", "RS384")]
        },
    )


# ---------------------------------------------------------------- client assertions


def client_assertion(
    key: Any,
    *,
    client_id: str,
    kid: str = "rs-1",
    alg: str = "RS384",
    headers: dict | None = None,
    **claims: Any,
) -> str:
    """A private_key_jwt assertion (SMART client-confidential-asymmetric); `claims` override the defaults."""
    now = int(time.time())
    payload = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": now + 240, "iat": now}
    payload["jti"] = str(uuid.uuid4())
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid, "typ": "JWT", **(headers or {})})


@pytest.fixture
def assertion_for():
    return client_assertion


# ---------------------------------------------------------------- the app + browser driver


class FormReader(HTMLParser):
    """The forms of a page: each a list of its <input>/<button> attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[list[dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self.forms.append([])
        elif tag in ("input", "button") and self.forms:
            self.forms[-1].append({"tag": tag, **{k: v or "" for k, v in attrs}})


def page_forms(response: Any) -> list[list[dict[str, str]]]:
    reader = FormReader()
    reader.feed(response.content.decode())
    return reader.forms


def form_data(
    fields: list[dict[str, str]], *, button: str | None, ticked: set[str] | None, **chosen: str
) -> dict:
    """What a browser submits: hidden and text inputs, ticked boxes, chosen radios, and the pressed button."""
    data: dict[str, list[str]] = {}
    for item in fields:
        name, kind = item.get("name"), item.get("type", "text")
        if not name or item["tag"] == "button":
            continue
        if kind == "checkbox":
            is_ticked = item["value"] in ticked if ticked is not None else "checked" in item
            if is_ticked:
                data.setdefault(name, []).append(item["value"])
        elif kind == "radio":
            if chosen.get(name) == item["value"]:
                data[name] = [item["value"]]
        elif name in chosen:
            data[name] = [chosen[name]]
        else:
            data.setdefault(name, []).append(item.get("value", ""))
    if button:
        data[button] = ["1"]
    return data


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(54)  # 72 characters, like Inferno's 73
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


class SmartApp:
    """A SMART app and its user's browser, talking to the server through Django's test client."""

    def __init__(self, app: Any, *, secret: str | None = None, browser: Client | None = None) -> None:
        self.app = app
        self.secret = secret
        self.browser = browser or Client()
        self.backend = Client()  # the app's server side: no session cookies
        self.verifier, self.challenge = pkce_pair()
        self.state = str(uuid.uuid4())

    def params(self, scope: str, **overrides: Any) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": self.app.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": scope,
            "state": self.state,
            "aud": FHIR_BASE,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {name: value for name, value in params.items() if value is not None}

    def authorize(self, scope: str, *, method: str = "get", **overrides: Any) -> Any:
        params = self.params(scope, **overrides)
        if method == "post":
            return self.browser.post("/o/authorize/", urlencode(params), content_type=FORM)
        return self.browser.get("/o/authorize/", params)

    def submit(
        self, page: Any, *, form: int = -1, button: str | None = None, ticked=None, **chosen: str
    ) -> Any:
        data = form_data(page_forms(page)[form], button=button, ticked=ticked, **chosen)
        return self.browser.post("/o/authorize/", urlencode(data, doseq=True), content_type=FORM)

    def allow(self, page: Any, ticked: set[str] | None = None) -> Any:
        return self.submit(page, button="allow", ticked=ticked)

    def deny(self, page: Any) -> Any:
        return self.submit(page, button="deny")

    def token(self, data: dict[str, Any], *, basic: tuple[str, str] | None = None, **extra: Any) -> Any:
        if basic is not None:
            raw = f"{basic[0]}:{basic[1]}".encode()
            extra["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(raw).decode()
        return self.backend.post("/o/token/", urlencode(data), content_type=FORM, **extra)

    def exchange(self, code: str, **overrides: Any) -> Any:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": self.verifier,
            "client_id": self.app.client_id,
        }
        data.update(overrides)
        data = {name: value for name, value in data.items() if value is not None}
        if self.secret is not None:
            data.pop("client_id")
            return self.token(data, basic=(self.app.client_id, self.secret))
        return self.token(data)

    def refresh(self, refresh_token: str, **overrides: Any) -> Any:
        data = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self.app.client_id,
        }
        data.update(overrides)
        data = {name: value for name, value in data.items() if value is not None}
        if self.secret is not None:
            data.pop("client_id")
            return self.token(data, basic=(self.app.client_id, self.secret))
        return self.token(data)

    def code_for(self, scope: str, **overrides: Any) -> str:
        """Authorize (allowing consent if asked) and return the code."""
        response = self.authorize(scope, **overrides)
        if response.status_code == 200:
            response = self.allow(response)
        return callback(response)["code"]

    def tokens_for(self, scope: str, **overrides: Any) -> dict[str, Any]:
        response = self.exchange(self.code_for(scope, **overrides))
        assert response.status_code == 200, response.content
        return response.json()


def callback(response: Any) -> dict[str, str]:
    """The query of the redirect back to the app (asserting it is one)."""
    assert response.status_code == 302, (response.status_code, response.content[:500])
    location = response["Location"]
    assert location.startswith(REDIRECT_URI), location
    return {name: values[-1] for name, values in parse_qs(urlsplit(location).query).items()}


@pytest.fixture
def smart_app():
    """smart_app(app, user=None, secret=None) -> SmartApp whose browser is logged in as `user`."""

    def make(app: Any, *, user: Any = None, secret: str | None = None) -> SmartApp:
        driver = SmartApp(app, secret=secret)
        if user is not None:
            driver.browser.force_login(user)
        return driver

    return make


EHR_SCOPE = "launch openid fhirUser offline_access patient/*.rs"


@pytest.fixture
def ehr_app(smart_app, public_app, clinician):
    """A public app launched from the EHR by the clinician, for patient pat-1 and encounter enc-1."""
    smart = smart_app(public_app, user=clinician)
    smart.launch = launch_create(client=public_app, user=clinician, patient_id="pat-1", encounter_id="enc-1")
    return smart


def ehr_code(smart) -> str:
    """An authorization code of `smart`'s EHR launch, for EHR_SCOPE."""
    return smart.code_for(EHR_SCOPE, launch=smart.launch.launch)
