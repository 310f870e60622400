"""One authorization matrix over every FHIR endpoint: no token, bad token, wrong scope, other patient, right scope.

Refused writes must leave the store unchanged (the number of versions is compared before and after).
"""

import pytest

from fhirapi.models import ResourceVersion
from tests.conftest import FHIRClient, observation, patient, put_resource

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(db):
    put_resource(patient("p1", family="Mine"))
    put_resource(patient("p2", family="Other"))
    put_resource(observation("o1", "p1"))
    put_resource(observation("o2", "p2"))


def _obs_for(pid, oid="new"):
    return observation(oid, pid)


# (case, method, path, body) -- {pid} is the in-context patient's, {other} another patient's
ENDPOINTS = [
    ("_read", "get", "Observation/{oid}", None, "r"),
    ("_vread", "get", "Observation/{oid}/_history/1", None, "r"),
    ("_instance history", "get", "Observation/{oid}/_history", None, "r"),
    ("_search", "get", "Observation?patient={pid}", None, "s"),
    ("_post search", "post_search", "Observation/_search", "patient={pid}", "s"),
    ("_type history", "get", "Observation/_history", None, "s"),
    ("_create", "post", "Observation", "create", "c"),
    ("_update", "put", "Observation/{oid}", "update", "u"),
    ("_delete", "delete", "Observation/{oid}", None, "d"),
]


def _call(api: FHIRClient, method: str, path: str, body, pid: str, oid: str):
    path = path.format(pid=pid, oid=oid)
    if method == "get":
        return api.get(path)
    if method == "post_search":
        return api.client.post(
            f"/fhir/{path}",
            body.format(pid=pid),
            content_type="application/x-www-form-urlencoded",
            **api._headers(None),
        )
    if method == "post":
        return api.post(path, _obs_for(pid))
    if method == "put":
        return api.put(path, _obs_for(pid, oid))
    return api.delete(path)


@pytest.mark.parametrize(("_case", "method", "path", "body", "letter"), ENDPOINTS)
def test_no_token_is_401_with_bearer_challenge(records, _case, method, path, body, letter):
    before = ResourceVersion.objects.count()
    response = _call(FHIRClient(None), method, path, body, "p1", "o1")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert response.json()["resourceType"] == "OperationOutcome"
    assert ResourceVersion.objects.count() == before


@pytest.mark.parametrize(("_case", "method", "path", "body", "letter"), ENDPOINTS)
@pytest.mark.parametrize("token_kind", ["garbage", "expired"])
def test_bad_token_is_401(records, mint_token, token_kind, _case, method, path, body, letter):
    token = (
        "not-a-token"
        if token_kind == "garbage"
        else mint_token("patient/*.cruds", patient="p1", expires_in=-5)
    )
    before = ResourceVersion.objects.count()
    response = _call(FHIRClient(token), method, path, body, "p1", "o1")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert ResourceVersion.objects.count() == before


@pytest.mark.parametrize(("_case", "method", "path", "body", "letter"), ENDPOINTS)
def test_scope_without_the_letter_is_403_insufficient_scope(records, fhir, _case, method, path, body, letter):
    others = "".join(c for c in "cruds" if c != letter)
    api = fhir(f"patient/Observation.{others} patient/Patient.cruds", patient="p1")
    before = ResourceVersion.objects.count()
    response = _call(api, method, path, body, "p1", "o1")
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]
    assert response.json()["issue"][0]["code"] == "forbidden"
    assert ResourceVersion.objects.count() == before


@pytest.mark.parametrize(("_case", "method", "path", "body", "letter"), ENDPOINTS)
def test_other_patients_data_is_invisible(records, fhir, _case, method, path, body, letter):
    api = fhir("patient/Observation.cruds", patient="p1")
    before = ResourceVersion.objects.count()
    # when the token of p1 reaches for p2's observation (or writes one for p2)
    response = _call(api, method, path, body, "p2", "o2")
    # then it is as if it did not exist: 404 for one resource, nothing of p2 in searches, refused writes
    if method in ("get", "post_search") and ("{oid}" not in path):
        assert response.status_code == 200
        assert "o2" not in response.content.decode()
    elif method == "post":
        assert response.status_code == 403
    else:
        assert response.status_code == 404
        assert response.json()["resourceType"] == "OperationOutcome"
    assert ResourceVersion.objects.count() == before


@pytest.mark.parametrize(("_case", "method", "path", "body", "letter"), ENDPOINTS)
def test_right_scope_succeeds(records, fhir, _case, method, path, body, letter):
    api = fhir(f"patient/Observation.{letter}", patient="p1")
    response = _call(api, method, path, body, "p1", "o1")
    assert response.status_code in (200, 201, 204)
    if method == "get" and "{oid}" not in path:
        assert "o2" not in response.content.decode()


def test_search_total_and_paging_respect_the_patient(records, fhir):
    for n in range(5):
        put_resource(observation(f"x{n}", "p2"))
    api = fhir("patient/Observation.rs", patient="p1")
    bundle = api.get("Observation", {"_count": 1}).json()
    assert bundle["total"] == 1
    assert [link["relation"] for link in bundle["link"]] == ["self"]


def test_include_does_not_reach_outside_the_grant(records, fhir):
    api = fhir("patient/Observation.rs", patient="p1")
    bundle = api.get("Observation", {"_include": "Observation:subject"}).json()
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Observation"]


def test_granular_category_scope_limits_reads_and_searches(db, fhir):
    put_resource(patient("p1"))
    put_resource(observation("vital", "p1", category="vital-signs"))
    put_resource(observation("lab", "p1", category="laboratory", code="4548-4"))
    scope = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"
    api = fhir(scope, patient="p1")
    ids = [e["resource"]["id"] for e in api.get("Observation", {"patient": "p1"}).json()["entry"]]
    assert ids == ["vital"]
    assert api.get("Observation/vital").status_code == 200
    assert api.get("Observation/lab").status_code == 404


def test_user_scope_for_patient_user_is_their_compartment(records, fhir):
    api = fhir("user/*.rs", fhir_user="Patient/p1")
    assert api.get("Patient/p1").status_code == 200
    assert api.get("Patient/p2").status_code == 404
    practitioner = fhir("user/*.rs", fhir_user="Practitioner/d1")
    assert practitioner.get("Patient/p2").status_code == 200


def test_patient_scope_denied_type_is_403(records, fhir):
    api = fhir("patient/Patient.rs patient/Observation.rs patient/Condition.rs", patient="p1")
    assert api.get("Condition", {"patient": "p1"}).status_code == 200
    denied = api.get("MedicationRequest", {"patient": "p1"})
    assert denied.status_code == 403
    assert 'error="insufficient_scope"' in denied["WWW-Authenticate"]


def test_system_history_needs_unrestricted_scope(records, fhir):
    assert fhir("patient/*.rs", patient="p1").get("_history").status_code == 403
    assert fhir("system/*.rs").get("_history").status_code == 200


def test_metadata_is_open(db):
    response = FHIRClient(None).get("metadata")
    assert response.status_code == 200
    assert response.json()["resourceType"] == "CapabilityStatement"
