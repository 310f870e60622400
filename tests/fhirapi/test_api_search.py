"""FHIR search over HTTP (R4 search.html): parameter types, modifiers, prefixes, result controls, paging."""

import pytest

from tests.conftest import observation, patient, put_resource

pytestmark = pytest.mark.django_db

LOINC = "http://loinc.org"


@pytest.fixture
def population(db):
    put_resource(
        patient(
            "p1",
            family="Gómez",
            given="José",
            birthDate="1980-03-15",
            gender="male",
            identifier=[{"system": "http://hospital.example.org/mrn", "value": "MRN100"}],
        )
    )
    put_resource(
        patient(
            "p2",
            family="Smith",
            given="Anna",
            birthDate="1975-11-02",
            gender="female",
            identifier=[{"system": "http://hospital.example.org/mrn", "value": "MRN200"}],
        )
    )
    put_resource(patient("p3", family="Smithers", given="Zoë", birthDate="2001-01-20", gender="female"))
    put_resource(observation("hr1", "p1", value=70, when="2024-01-10T08:00:00Z"))
    put_resource(observation("hr2", "p1", value=95, when="2024-03-05T08:00:00Z"))
    put_resource(observation("hr3", "p1", value=88, when="2023-12-31T23:30:00-02:00"))
    put_resource(
        observation("lab1", "p1", code="4548-4", category="laboratory", value=6.1, when="2024-02-01")
    )
    put_resource(observation("hr4", "p2", value=60, when="2024-01-10T09:00:00Z"))


def ids(response):
    assert response.status_code == 200, response.content
    return [e["resource"]["id"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"]


@pytest.mark.parametrize(
    ("_case", "path", "params", "expected"),
    [
        ("_string starts-with, case and accents", "Patient", {"name": "gomez"}, ["p1"]),
        ("_family prefix", "Patient", {"family": "smith", "_sort": "_id"}, ["p2", "p3"]),
        ("_exact", "Patient", {"family:exact": "Smith"}, ["p2"]),
        ("_contains", "Patient", {"family:contains": "mithe"}, ["p3"]),
        ("_given accent", "Patient", {"given": "zoe"}, ["p3"]),
        ("_token code only", "Patient", {"identifier": "MRN200"}, ["p2"]),
        ("_token system|code", "Patient", {"identifier": "http://hospital.example.org/mrn|MRN100"}, ["p1"]),
        ("_token wrong system", "Patient", {"identifier": "http://other|MRN100"}, []),
        ("_gender", "Patient", {"gender": "female", "_sort": "_id"}, ["p2", "p3"]),
        ("_comma is OR", "Patient", {"_id": "p1,p3", "_sort": "_id"}, ["p1", "p3"]),
        ("_birthdate year", "Patient", {"birthdate": "1980"}, ["p1"]),
        ("_birthdate lt", "Patient", {"birthdate": "lt1980-01-01", "_sort": "_id"}, ["p2"]),
        ("_birthdate ge", "Patient", {"birthdate": "ge1980-03-15", "_sort": "_id"}, ["p1", "p3"]),
        ("_missing", "Patient", {"identifier:missing": "true"}, ["p3"]),
        ("_reference id", "Observation", {"patient": "p2"}, ["hr4"]),
        ("_reference Type/id", "Observation", {"subject": "Patient/p2"}, ["hr4"]),
        ("_reference absolute", "Observation", {"subject": "http://127.0.0.1:8000/fhir/Patient/p2"}, ["hr4"]),
        (
            "_category + sort desc",
            "Observation",
            {"patient": "p1", "category": "vital-signs", "_sort": "-date"},
            ["hr2", "hr1", "hr3"],
        ),
        ("_code system|code", "Observation", {"code": f"{LOINC}|4548-4"}, ["lab1"]),
        (
            "_date month with offset",
            "Observation",
            {"date": "2024-01", "patient": "p1", "_sort": "date"},
            ["hr3", "hr1"],
        ),
        (
            "_date AND range",
            "Observation",
            {"date": ["ge2024-01-01", "lt2024-03-01"], "patient": "p1", "_sort": "date"},
            ["hr3", "hr1", "lab1"],
        ),
        ("_quantity gt", "Observation", {"value-quantity": "gt90", "patient": "p1"}, ["hr2"]),
        ("_chain", "Observation", {"subject:Patient.name": "smith"}, ["hr4"]),
        (
            "_chain identifier",
            "Observation",
            {"patient.identifier": "MRN100", "category": "laboratory"},
            ["lab1"],
        ),
        (
            "_sort two keys",
            "Observation",
            {"patient": "p1", "_sort": "category,-date"},
            ["lab1", "hr2", "hr1", "hr3"],
        ),
    ],
)
def test_search(population, fhir, _case, path, params, expected):
    response = fhir("system/*.rs").get(path, params)
    assert ids(response) == expected


def test_post_search_equals_get(population, fhir):
    api = fhir("system/*.rs")
    posted = api.client.post(
        "/fhir/Patient/_search",
        "family=smith&_sort=_id",
        content_type="application/x-www-form-urlencoded",
        **api._headers(None),
    )
    assert ids(posted) == ids(api.get("Patient", {"family": "smith", "_sort": "_id"})) == ["p2", "p3"]


def test_paging_links_walk_every_result_once(population, fhir):
    api = fhir("system/*.rs")
    bundle = api.get("Observation", {"_count": 2, "_sort": "_id"}).json()
    assert bundle["total"] == 5
    seen = [e["resource"]["id"] for e in bundle["entry"]]
    while next_link := next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None):
        bundle = api.client.get(next_link.replace("http://127.0.0.1:8000", ""), **api._headers(None)).json()
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        assert any(link["relation"] == "previous" for link in bundle["link"])
    assert seen == sorted(["hr1", "hr2", "hr3", "hr4", "lab1"])


def test_summary_count_and_total(population, fhir):
    bundle = fhir("system/*.rs").get("Observation", {"patient": "p1", "_summary": "count"}).json()
    assert bundle["total"] == 4
    assert "entry" not in bundle


def test_elements_subsets_and_tags(population, fhir):
    bundle = fhir("system/*.rs").get("Patient", {"_id": "p1", "_elements": "gender"}).json()
    resource = bundle["entry"][0]["resource"]
    assert resource["gender"] == "male"
    assert "name" not in resource
    assert resource["meta"]["tag"][-1]["code"] == "SUBSETTED"


def test_include_and_revinclude(population, fhir):
    api = fhir("system/*.rs")
    bundle = api.get("Observation", {"_id": "hr4", "_include": "Observation:subject"}).json()
    modes = [(e["resource"]["id"], e["search"]["mode"]) for e in bundle["entry"]]
    assert modes == [("hr4", "match"), ("p2", "include")]
    rev = api.get("Patient", {"_id": "p2", "_revinclude": "Observation:subject"}).json()
    assert [(e["resource"]["id"], e["search"]["mode"]) for e in rev["entry"]] == [
        ("p2", "match"),
        ("hr4", "include"),
    ]


def test_unknown_parameter_lenient_is_reported(population, fhir):
    bundle = fhir("system/*.rs").get("Patient", {"shoe-size": "42", "_id": "p1"}).json()
    outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcome) == 1
    assert "shoe-size" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    assert ids_from(bundle) == ["p1"]


def ids_from(bundle):
    return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


def test_unknown_parameter_strict_is_400(population, fhir):
    response = fhir("system/*.rs").get("Patient", {"shoe-size": "42"}, headers={"Prefer": "handling=strict"})
    assert response.status_code == 400
    assert "shoe-size" in response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("_case", "params"),
    [
        ("_bad date", {"birthdate": "yesterday"}),
        ("_bad prefix", {"birthdate": "xx2020"}),
        ("_bad count", {"_count": "many"}),
        ("_bad sort", {"_sort": "shoe-size"}),
    ],
)
def test_invalid_values_are_400(population, fhir, _case, params):
    response = fhir("system/*.rs").get("Patient", params)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
