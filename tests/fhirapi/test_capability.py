"""GET /fhir/metadata: a CapabilityStatement generated from what the server supports."""

import pytest

from tests.conftest import FHIRClient

pytestmark = pytest.mark.django_db


def test_capability_statement_lists_types_interactions_and_search_params():
    response = FHIRClient(None).get("metadata")
    assert response.status_code == 200
    statement = response.json()
    assert statement["fhirVersion"] == "4.0.1"
    rest = statement["rest"][0]
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch", "history-system"}
    types = {r["type"]: r for r in rest["resource"]}
    for name in ("Patient", "Observation", "Condition", "Encounter", "MedicationRequest", "Group"):
        assert name in types
    observation = types["Observation"]
    assert {"read", "vread", "search-type", "create", "update", "delete"} <= {
        i["code"] for i in observation["interaction"]
    }
    params = {p["name"]: p["type"] for p in observation["searchParam"]}
    assert params["patient"] == "reference"
    assert params["category"] == "token"
    assert params["date"] == "date"
    assert params["_lastUpdated"] == "date"


def test_metadata_answers_any_origin_for_cors():
    response = FHIRClient(None).client.get("/fhir/metadata", HTTP_ORIGIN="https://app.example.com")
    assert response["Access-Control-Allow-Origin"] in ("*", "https://app.example.com")
