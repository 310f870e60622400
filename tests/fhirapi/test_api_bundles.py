"""Batch and transaction Bundles at POST /fhir (R4 http.html#transaction)."""

import pytest

from fhirapi.models import Resource
from tests.conftest import observation, patient, put_resource

pytestmark = pytest.mark.django_db


def tx(kind, *entries):
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post_entry(resource, full_url=None, if_none_exist=None):
    request = {"method": "POST", "url": resource["resourceType"]}
    if if_none_exist:
        request["ifNoneExist"] = if_none_exist
    return {"fullUrl": full_url, "resource": resource, "request": request}


def test_transaction_rewrites_urn_uuid_references(fhir):
    api = fhir("system/*.cruds")
    new_patient = patient("tmp")
    obs = observation("tmp-o", "x")
    obs["subject"] = {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"}
    bundle = tx(
        "transaction",
        post_entry(obs, "urn:uuid:22222222-2222-2222-2222-222222222222"),
        post_entry(new_patient, "urn:uuid:11111111-1111-1111-1111-111111111111"),
    )
    response = api.post("", bundle)
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["type"] == "transaction-response"
    assert [e["response"]["status"] for e in result["entry"]] == ["201 Created", "201 Created"]
    patient_id = result["entry"][1]["resource"]["id"]
    assert result["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{patient_id}"
    assert api.get("Observation", {"patient": patient_id}).json()["total"] == 1


def test_transaction_is_all_or_nothing(fhir):
    api = fhir("system/*.cruds")
    bad = observation("b", "p1")
    del bad["status"]
    response = api.post("", tx("transaction", post_entry(patient("a")), post_entry(bad)))
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert Resource.objects.count() == 0


def test_transaction_entries_are_authorised_one_by_one(fhir):
    put_resource(patient("p1"))
    api = fhir("patient/Observation.c patient/Patient.r", patient="p1")
    response = api.post("", tx("transaction", post_entry(observation("a", "p1")), post_entry(patient("new"))))
    assert response.status_code == 403
    assert Resource.objects.count() == 1


def test_batch_entries_succeed_or_fail_independently(fhir):
    put_resource(patient("p1"))
    api = fhir("system/*.cruds")
    bundle = tx(
        "batch",
        post_entry(patient("n1")),
        {"request": {"method": "GET", "url": "Patient/p1"}},
        {"request": {"method": "GET", "url": "Patient/missing"}},
        {"request": {"method": "GET", "url": "Patient?_id=p1"}},
        {"request": {"method": "DELETE", "url": "Patient/p1"}},
    )
    result = api.post("", bundle).json()
    assert result["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created", "200 OK", "404", "200 OK", "204 No Content"]
    assert result["entry"][2]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert result["entry"][3]["resource"]["type"] == "searchset"


def test_bundle_of_wrong_type_is_400(fhir):
    response = fhir().post("", {"resourceType": "Bundle", "type": "collection", "entry": []})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle"]


def test_conditional_create_in_transaction_reuses_match(fhir):
    api = fhir("system/*.cruds")
    mrn = {"identifier": [{"system": "urn:mrn", "value": "42"}]}
    put_resource(patient("existing", **mrn))
    obs = observation("o", "x")
    obs["subject"] = {"reference": "urn:uuid:33333333-3333-3333-3333-333333333333"}
    bundle = tx(
        "transaction",
        post_entry(
            patient("n", **mrn), "urn:uuid:33333333-3333-3333-3333-333333333333", "identifier=urn:mrn|42"
        ),
        post_entry(obs),
    )
    result = api.post("", bundle).json()
    assert result["entry"][0]["response"]["status"] == "200 OK"
    assert result["entry"][1]["resource"]["subject"]["reference"] == "Patient/existing"


def test_transaction_with_dangling_reference_is_422_and_saves_nothing(fhir):
    api = fhir("system/*.cruds")
    response = api.post(
        "", tx("transaction", post_entry(patient("a")), post_entry(observation("o", "ghost")))
    )
    assert response.status_code == 422
    assert "Patient/ghost" in response.json()["issue"][0]["diagnostics"]
    assert Resource.objects.count() == 0
