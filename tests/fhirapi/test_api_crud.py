"""FHIR REST interactions over HTTP: create, read, vread, update, delete, history, Prefer, If-Match, formats."""

import json

import pytest

from fhirapi.models import Resource
from tests.conftest import observation, patient, put_resource

pytestmark = pytest.mark.django_db


def test_create_assigns_id_version_and_location(fhir):
    api = fhir("system/*.cruds")
    # when a client POSTs a Patient with its own id
    response = api.post("Patient", patient("ignored-id", family="Ngata"))
    # then the server assigns the id and version, and says where the resource lives
    assert response.status_code == 201
    body = response.json()
    assert body["id"] != "ignored-id"
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("Z")
    assert response["ETag"] == 'W/"1"'
    assert response["Location"] == f"http://127.0.0.1:8000/fhir/Patient/{body['id']}/_history/1"
    assert response["Content-Type"].startswith("application/fhir+json")


def test_read_serves_stored_json_with_decimals_as_written(fhir):
    api = fhir("system/*.cruds")
    put_resource(patient("p1"))
    # given an Observation whose value has trailing-zero precision
    raw = json.dumps(observation("o1", "p1")).replace('"value": 72', '"value": 72.50')
    created = api.post("Observation", raw).json()
    # when it is read
    response = api.get(f"Observation/{created['id']}")
    # then the decimal keeps its precision
    assert response.status_code == 200
    assert b'"value":72.50' in response.content
    assert response["ETag"] == 'W/"1"'
    assert "Last-Modified" in response


def test_update_versions_and_vread_keeps_old_versions(fhir):
    api = fhir("system/*.cruds")
    put_resource(patient("p1", family="Old"))
    # when the patient is updated
    response = api.put("Patient/p1", patient("p1", family="New"))
    # then version 2 is current and version 1 is still readable
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    assert api.get("Patient/p1").json()["name"][0]["family"] == "New"
    old = api.get("Patient/p1/_history/1")
    assert old.status_code == 200
    assert old.json()["name"][0]["family"] == "Old"
    assert api.get("Patient/p1/_history/9").status_code == 404


def test_update_as_create_with_client_id(fhir):
    api = fhir("system/*.cruds")
    response = api.put("Patient/client-chosen-1", patient("client-chosen-1"))
    assert response.status_code == 201
    assert response["Location"].endswith("/Patient/client-chosen-1/_history/1")


def test_update_with_stale_if_match_is_412_and_changes_nothing(fhir):
    api = fhir("system/*.cruds")
    put_resource(patient("p1", family="First"))
    api.put("Patient/p1", patient("p1", family="Second"))
    # when a client updates with the version it read before
    response = api.put("Patient/p1", patient("p1", family="Third"), headers={"If-Match": 'W/"1"'})
    # then it is refused and the current version stays
    assert response.status_code == 412
    assert response.json()["resourceType"] == "OperationOutcome"
    assert api.get("Patient/p1").json()["name"][0]["family"] == "Second"
    assert (
        api.put("Patient/p1", patient("p1", family="Third"), headers={"If-Match": 'W/"2"'}).status_code == 200
    )


def test_update_with_mismatched_id_is_400(fhir):
    response = fhir().put("Patient/p1", patient("p2"))
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "invalid"


def test_delete_then_read_is_410_and_history_keeps_versions(fhir):
    api = fhir("system/*.cruds")
    put_resource(patient("p1"))
    assert api.delete("Patient/p1").status_code == 204
    gone = api.get("Patient/p1")
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    history = api.get("Patient/p1/_history").json()
    assert history["type"] == "history"
    assert history["total"] == 2
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT"]
    assert "resource" not in history["entry"][0]
    # deleting again is harmless
    assert api.delete("Patient/p1").status_code == 204


def test_type_and_system_history(fhir):
    api = fhir("system/*.cruds")
    put_resource(patient("p1"))
    put_resource(patient("p2"))
    put_resource(observation("o1", "p1"))
    assert api.get("Patient/_history").json()["total"] == 2
    system = api.get("_history").json()
    assert system["total"] == 3
    assert system["entry"][0]["fullUrl"] == "http://127.0.0.1:8000/fhir/Observation/o1"
    paged = api.get("_history", {"_count": 1}).json()
    assert len(paged["entry"]) == 1
    assert [link["relation"] for link in paged["link"]] == ["self", "next"]


def test_invalid_resource_is_refused_naming_the_element_and_nothing_is_stored(fhir):
    api = fhir("system/*.cruds")
    bad = observation("o1", "p1")
    bad["valueQuantity"]["value"] = "seventy"
    bad["unknownElement"] = True
    response = api.post("Observation", bad)
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Observation.valueQuantity.value" in outcome["issue"][0]["expression"]
    assert "Observation.unknownElement" in outcome["issue"][0]["expression"]
    assert Resource.objects.count() == 0


def test_missing_required_element_is_refused(fhir):
    response = fhir().post("Observation", {"resourceType": "Observation", "code": {"text": "x"}})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Observation.status"]


def test_malformed_json_is_400_operation_outcome(fhir):
    response = fhir().post("Patient", "{not json")
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_wrong_resource_type_in_body_is_400(fhir):
    response = fhir().post("Patient", observation("o1", "p1"))
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("_case", "prefer", "expect_body"),
    [
        ("_minimal", "return=minimal", None),
        ("_representation", "return=representation", "Patient"),
        ("_outcome", "return=OperationOutcome", "OperationOutcome"),
        ("_default", None, "Patient"),
    ],
)
def test_prefer_return(fhir, _case, prefer, expect_body):
    headers = {"Prefer": prefer} if prefer else {}
    response = fhir().post("Patient", patient("x"), headers=headers)
    assert response.status_code == 201
    assert "Location" in response
    if expect_body is None:
        assert response.content == b""
    else:
        assert response.json()["resourceType"] == expect_body


def test_conditional_create(fhir):
    api = fhir("system/*.cruds")
    mrn = {"identifier": [{"system": "http://hospital.example.org/mrn", "value": "MRN1"}]}
    first = api.post("Patient", patient("a", **mrn), headers={"If-None-Exist": "identifier=MRN1"})
    again = api.post("Patient", patient("a", **mrn), headers={"If-None-Exist": "identifier=MRN1"})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    api.post("Patient", patient("b", **mrn))
    assert api.post("Patient", patient("c"), headers={"If-None-Exist": "identifier=MRN1"}).status_code == 412


@pytest.mark.parametrize(
    ("_case", "params", "accept", "status", "content_type"),
    [
        ("_format json", {"_format": "json"}, None, 200, "application/fhir+json"),
        ("_format fhir+json", {"_format": "application/fhir+json"}, None, 200, "application/fhir+json"),
        ("_accept json", {}, "application/json", 200, "application/json"),
        ("_accept any", {}, "*/*", 200, "application/fhir+json"),
        ("_format xml", {"_format": "xml"}, None, 406, "application/fhir+json"),
        ("_accept xml", {}, "application/fhir+xml", 406, "application/fhir+json"),
    ],
)
def test_formats(fhir, _case, params, accept, status, content_type):
    put_resource(patient("p1"))
    api = fhir("system/*.rs")
    headers = {"Accept": accept} if accept else {}
    response = api.get("Patient/p1", params, headers=headers)
    assert response.status_code == status
    assert response["Content-Type"].startswith(content_type)
    if status != 200:
        assert response.json()["resourceType"] == "OperationOutcome"


def test_xml_body_is_415(fhir):
    response = fhir().post("Patient", "<Patient/>", content_type="application/fhir+xml")
    assert response.status_code == 415
    assert response.json()["issue"][0]["code"] == "not-supported"


def test_unknown_type_is_404_and_bad_method_405(fhir):
    api = fhir()
    assert api.get("Spaceship/1").status_code == 404
    response = api.client.patch(
        "/fhir/Patient/p1", "{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api.token}"
    )
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"


def test_create_with_dangling_reference_is_422_and_stores_nothing(fhir):
    api = fhir("system/*.cruds")
    # when an Observation names a patient this server does not have
    response = api.post("Observation", observation("o1", "nobody"))
    # then it is refused as a business-rule violation naming the element
    assert response.status_code == 422
    outcome = response.json()
    assert outcome["issue"][0]["code"] == "processing"
    assert (
        outcome["issue"][0]["expression"] == ["Observation.subject"]
        or "Patient/nobody" in outcome["issue"][0]["diagnostics"]
    )
    assert Resource.objects.filter(resource_type="Observation").count() == 0


def test_delete_of_a_referenced_resource_is_409(fhir):
    api = fhir("system/*.cruds")
    put_resource(patient("p1"))
    put_resource(observation("o1", "p1"))
    # when the patient is deleted while an observation still points at it
    response = api.delete("Patient/p1")
    # then the delete is refused, and works once the observation is gone
    assert response.status_code == 409
    assert "Observation/o1" in response.json()["issue"][0]["diagnostics"]
    assert api.get("Patient/p1").status_code == 200
    assert api.delete("Observation/o1").status_code == 204
    assert api.delete("Patient/p1").status_code == 204


def test_delete_of_unknown_resource_is_404(fhir):
    assert fhir().delete("Patient/never-was").status_code == 404
