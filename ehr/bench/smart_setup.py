"""Provides the authorization server benchmark's database side: its user, patient, apps and launches.

The apps are registered through smart.clients.client_register as an EHR administrator would: a public app
and a confidential-symmetric app, both pre-authorized (skip_consent), and a backend service with a fresh
RS384 key. Earlier runs' apps (named `bench_smart ...`) are deleted first, with their tokens. The
confidential app's secret is hashed under the SECRET_KEY the server runs with (smart.hashers keys its
HMAC with it).
"""

import secrets
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test.utils import override_settings

from ehr.bench.smart_cases import (
    APP_NAME_PREFIX,
    APP_SCOPES,
    BACKEND_KID,
    BACKEND_SCOPES,
    LAUNCH_URI,
    PATIENT_ID,
    PRACTITIONER_ID,
    REDIRECT_URI,
    USERNAME,
    Actors,
)
from fhirapi.store import resource_ids_existing, resource_update
from smart.clients import client_register
from smart.launch import launch_create
from smart.models import Application, UserFhirIdentity


def _resources_ensure() -> None:
    if not resource_ids_existing("Patient", [PATIENT_ID]):
        resource_update(resource_type="Patient", resource_id=PATIENT_ID, resource={
            "resourceType": "Patient", "id": PATIENT_ID, "gender": "female", "birthDate": "1970-01-01",
            "name": [{"use": "official", "family": "Benchmark", "given": ["Sandra"]}],
        })  # fmt: skip
    if not resource_ids_existing("Practitioner", [PRACTITIONER_ID]):
        resource_update(resource_type="Practitioner", resource_id=PRACTITIONER_ID, resource={
            "resourceType": "Practitioner", "id": PRACTITIONER_ID,
            "name": [{"family": "Bench", "given": ["Pat"]}],
        })  # fmt: skip


def actors_ensure(*, fhir_base: str, token_url: str, secret_key: str) -> Actors:
    """(Re)create the benchmark's user, patient and three apps; their ids and secrets."""
    _resources_ensure()
    password = secrets.token_urlsafe(16)
    user, _ = get_user_model().objects.get_or_create(username=USERNAME)
    user.set_password(password)
    user.is_active = True
    user.save()
    UserFhirIdentity.objects.update_or_create(
        user=user, defaults={"fhir_user": f"Practitioner/{PRACTITIONER_ID}"}
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": BACKEND_KID,
           "alg": "RS384", "use": "sig"}  # fmt: skip
    with transaction.atomic(), override_settings(SECRET_KEY=secret_key):
        Application.objects.filter(name__startswith=APP_NAME_PREFIX).delete()
        public, _ = client_register(
            name=APP_NAME_PREFIX + "public", redirect_uris=[REDIRECT_URI], client_type="public",
            launch_uri=LAUNCH_URI, scopes=APP_SCOPES, skip_consent=True,
        )  # fmt: skip
        confidential, secret = client_register(
            name=APP_NAME_PREFIX + "confidential", redirect_uris=[REDIRECT_URI], client_type="confidential",
            launch_uri=LAUNCH_URI, scopes=APP_SCOPES, skip_consent=True,
        )  # fmt: skip
        backend, _ = client_register(
            name=APP_NAME_PREFIX + "backend", redirect_uris=[], client_type="backend", scopes=BACKEND_SCOPES,
            jwks={"keys": [jwk]},
        )  # fmt: skip
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return Actors(
        username=USERNAME, password=password, patient_id=PATIENT_ID, public_client_id=public.client_id,
        confidential_client_id=confidential.client_id, confidential_secret=secret or "",
        backend_client_id=backend.client_id, backend_key_pem=pem, fhir_base=fhir_base, token_url=token_url,
    )  # fmt: skip


def launch_creator(actors: Actors) -> Any:
    """A function creating one EHR launch of an app (by client_id) for the user and patient; its launch id."""
    clients = {c.client_id: c for c in Application.objects.filter(name__startswith=APP_NAME_PREFIX)}
    user = get_user_model().objects.get(username=actors.username)

    def create(client_id: str) -> str:
        return launch_create(client=clients[client_id], user=user, patient_id=actors.patient_id).launch

    return create
