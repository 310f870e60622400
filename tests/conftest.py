"""Shared fixtures: access tokens minted straight into the database, a FHIR HTTP client, store helpers."""

import json
import secrets
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model, set_token_value

from fhirapi import store

FHIR_JSON = "application/fhir+json"


class FHIRClient:
    """Django's test client speaking FHIR JSON to /fhir with an optional bearer token."""

    def __init__(self, token: str | None = None) -> None:
        self.client = Client()
        self.token = token

    def _headers(self, headers: dict | None) -> dict:
        out = {"HTTP_ACCEPT": FHIR_JSON}
        if self.token:
            out["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        for key, value in (headers or {}).items():
            out["HTTP_" + key.upper().replace("-", "_")] = value
        return out

    def get(self, path: str, params=None, headers: dict | None = None):
        return self.client.get(f"/fhir/{path}", params or {}, **self._headers(headers))

    def post(self, path: str, body, headers: dict | None = None, content_type: str = FHIR_JSON):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.client.post(f"/fhir/{path}", data, content_type=content_type, **self._headers(headers))

    def put(self, path: str, body, headers: dict | None = None, content_type: str = FHIR_JSON):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.client.put(f"/fhir/{path}", data, content_type=content_type, **self._headers(headers))

    def delete(self, path: str, headers: dict | None = None):
        return self.client.delete(f"/fhir/{path}", **self._headers(headers))


@pytest.fixture
def test_app(db):
    return get_application_model().objects.create(
        name="Test app",
        client_type="public",
        authorization_grant_type="authorization-code",
        redirect_uris="http://127.0.0.1:9999/callback",
        allowed_scopes="patient/*.cruds user/*.cruds system/*.cruds",
    )


@pytest.fixture
def mint_token(db, test_app):
    """mint_token("patient/*.rs", patient="p1") -> raw bearer token value."""

    def mint(
        scope: str, *, patient=None, encounter=None, fhir_user=None, user=None, expires_in=3600, app=None
    ):
        token = get_access_token_model()(
            user=user,
            application=app or test_app,
            scope=scope,
            expires=timezone.now() + timedelta(seconds=expires_in),
            launch_context={
                k: v
                for k, v in {"patient": patient, "encounter": encounter, "fhirUser": fhir_user}.items()
                if v
            },
        )
        raw = secrets.token_urlsafe(32)
        set_token_value(token, raw)
        token.save()
        return raw

    return mint


@pytest.fixture
def fhir(mint_token):
    """fhir("patient/*.rs", patient="p1") -> FHIRClient with a fresh token of that grant; fhir(None) has none."""

    def make(scope: str | None = "system/*.cruds", **context) -> FHIRClient:
        return FHIRClient(mint_token(scope, **context) if scope is not None else None)

    return make


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("dr_test", password="pw-test-123")


def put_resource(resource: dict) -> store.StoredResource:
    """Store a resource with its own id (test data setup through the real store)."""
    stored, _ = store.resource_update(
        resource_type=resource["resourceType"], resource_id=resource["id"], resource=resource
    )
    return stored


def patient(pid: str, family: str = "Smith", given: str = "Anna", **extra) -> dict:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family, "given": [given]}], **extra}


def observation(
    oid: str, patient_id: str, *, code="8867-4", category="vital-signs", value=72, when="2024-05-01T10:00:00Z"
):
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }
