"""Tests for fhirapi.query, the search compiler: which stored resources each parsed search returns, in order."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fhirapi.access import DENIED, UNRESTRICTED, AccessDecision, AccessFilter
from fhirapi.indexing import IndexEntries, extract_index
from fhirapi.models import NumberIndex, QuantityIndex, Resource
from fhirapi.query import include_targets, revinclude_sources, search_page, search_queryset, search_total
from fhirapi.search import parse_search
from fhirapi.searchparams import ParamType, SearchParam
from fhirapi.writeindex import write_index_rows

pytestmark = pytest.mark.django_db

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MRN = "http://hospital.example.org/mrn"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
BASE_TIME = datetime(2024, 6, 1, tzinfo=UTC)  # the n-th stored resource was last updated n minutes later


# -- a small store: Resource rows and their index rows, as fhirapi.store writes them --------------------------


def put(resource: dict, *, deleted: bool = False) -> Resource:
    row = Resource.objects.create(
        resource_type=resource["resourceType"],
        fhir_id=resource["id"],
        last_updated=BASE_TIME + timedelta(minutes=Resource.objects.count()),
        deleted=deleted,
        content=json.dumps(resource),
    )
    write_index(row, extract_index(resource))
    return row


def write_index(row: Resource, entries: IndexEntries) -> None:
    write_index_rows([(row, entries)])


def patient(pid, family, given, **extra):
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family, "given": [given]}], **extra}


def observation(oid, subject, *, code="8867-4", category="vital-signs", value=None, unit="/min", **extra):
    resource = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": subject},
        **extra,
    }
    if category:
        resource["category"] = [{"coding": [{"system": OBS_CATEGORY, "code": category}]}]
    if value is not None:
        resource["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    return resource


@pytest.fixture
def population():
    """p1: o1-o4, p2: o5-o6, Group g1: o7, deleted p4: o8; a deleted odel on p1; medication and provenance."""
    # fmt: off
    put(patient("p1", "Gómez", "José", birthDate="1980-03-15", gender="male",
                identifier=[{"system": MRN, "value": "MRN1"}], managingOrganization={"reference": "Organization/org1"}))
    put(patient("p2", "Smith", "Anna", birthDate="1975-11-02", gender="female",
                identifier=[{"system": MRN, "value": "MRN2"}]))
    put(patient("p3", "Smithers", "Zoë", birthDate="2001-01-20", gender="female"))
    put(patient("p4", "Ghost", "Casper"), deleted=True)
    put({"resourceType": "Organization", "id": "org1", "name": "Good Health"})
    put({"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "House"}]})
    put({"resourceType": "Group", "id": "g1", "type": "person", "actual": True})
    put(observation("o1", "Patient/p1", value=70, effectiveDateTime="2024-01-10T08:00:00Z",
                    performer=[{"reference": "Practitioner/dr1"}]))
    put(observation("o2", "Patient/p1", value=95, effectiveDateTime="2024-03-05T08:00:00Z"))
    put(observation("o3", "Patient/p1", value=88, effectiveDateTime="2023-12-31T23:30:00-02:00"))
    put(observation("o4", "Patient/p1", code="4548-4", category="laboratory", value=6.1, unit="%",
                    effectiveDateTime="2024-02-01"))
    put(observation("o5", "Patient/p2", value=60, effectiveDateTime="2024-01-10T09:00:00Z"))
    put(observation("o6", "Patient/p2", code="4548-4", category="laboratory", valueString="Positive",
                    effectivePeriod={"start": "2024-01-01"}))
    put(observation("o7", "Group/g1", code="9999-9", category=None))
    put(observation("o8", "Patient/p4", effectiveDateTime="2024-01-10"))
    put(observation("odel", "Patient/p1", effectiveDateTime="2024-01-10"), deleted=True)
    put({"resourceType": "Medication", "id": "med1", "code": {"coding": [{"system": "rx", "code": "1"}]}})
    put({"resourceType": "MedicationRequest", "id": "mr1", "status": "active", "intent": "order",
         "subject": {"reference": "Patient/p1"}, "medicationReference": {"reference": "Medication/med1"}})
    put({"resourceType": "Provenance", "id": "prov1", "recorded": "2024-01-10T08:00:00Z",
         "target": [{"reference": "Observation/o1"}], "agent": [{"who": {"reference": "Practitioner/dr1"}}]})
    # fmt: on


def found(resource_type, params, access=UNRESTRICTED):
    """The fhir_ids the search finds, after checking that search_page and search_total agree with them."""
    query = parse_search(resource_type, params, strict=True)
    matches = list(search_queryset(query, access).values_list("fhir_id", flat=True))
    assert [row.fhir_id for row in search_page(query, access)] == matches[: query.count]
    assert search_total(query, access) == len(matches)
    return matches


def test_every_current_resource_of_the_type_in_storage_order(population):
    assert found("Observation", []) == ["o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8"]
    assert found("Patient", []) == ["p1", "p2", "p3"]


@pytest.mark.parametrize(
    ("_case", "resource_type", "params", "expected"),
    [
        ("_code, any system", "Observation", [("code", "4548-4")], ["o4", "o6"]),
        ("_system|code", "Observation", [("code", f"{LOINC}|8867-4")], ["o1", "o2", "o3", "o5", "o8"]),
        ("_wrong system", "Observation", [("code", "http://other|4548-4")], []),
        ("_|code: no system", "Patient", [("gender", "|female")], ["p2", "p3"]),
        ("_|code does not match a coded value", "Observation", [("code", "|4548-4")], []),
        ("_system|: any code", "Patient", [("identifier", f"{MRN}|")], ["p1", "p2"]),
        ("_comma is OR", "Observation", [("code", "4548-4,9999-9")], ["o4", "o6", "o7"]),
        ("_repeat is AND", "Observation", [("code", "4548-4"), ("patient", "p2")], ["o6"]),
        ("_:not keeps resources without the parameter", "Observation", [("category:not", "vital-signs")],
         ["o4", "o6", "o7"]),
        ("_:not with OR", "Observation", [("code:not", "8867-4,9999-9")], ["o4", "o6"]),
        ("_id", "Patient", [("_id", "p1,p3")], ["p1", "p3"]),
        ("_id:not", "Patient", [("_id:not", "p1")], ["p2", "p3"]),
        ("_id of a deleted resource", "Patient", [("_id", "p4")], []),
    ],
)  # fmt: skip
def test_tokens(population, _case, resource_type, params, expected):
    assert found(resource_type, params) == expected


@pytest.mark.parametrize(
    ("_case", "params", "expected"),
    [
        ("_starts with, accents and case ignored", [("name", "GOMEZ")], ["p1"]),
        ("_prefix", [("name", "smi")], ["p2", "p3"]),
        ("_any part of the name", [("name", "zoe")], ["p3"]),
        ("_not a prefix", [("name", "mith")], []),
        ("_:exact", [("family:exact", "Smith")], ["p2"]),
        ("_:exact is case sensitive", [("family:exact", "smith")], []),
        ("_:exact keeps accents", [("family:exact", "Gomez")], []),
        ("_:contains", [("family:contains", "MITHE")], ["p3"]),
        ("_OR", [("given", "anna,jose")], ["p1", "p2"]),
    ],
)
def test_strings(population, _case, params, expected):
    assert found("Patient", params) == expected


@pytest.mark.parametrize(
    ("_case", "value", "expected"),
    [
        ("_day", "2024-01-10", ["o1", "o5", "o8"]),
        ("_month, offsets normalized to UTC", "2024-01", ["o1", "o3", "o5", "o8"]),
        ("_a local evening is the next UTC day", "2023-12-31", []),
        ("_minute", "2024-01-10T08:00", ["o1"]),
        ("_instant with offset", "2024-01-10T10:00:00+02:00", ["o1"]),
        ("_eq needs the whole value inside", "eq2024", ["o1", "o2", "o3", "o4", "o5", "o8"]),
        ("_ne", "ne2024-01-10", ["o2", "o3", "o4", "o6"]),
        ("_gt: an open end counts", "gt2024-02-01", ["o2", "o6"]),
        ("_ge", "ge2024-02-01", ["o2", "o4", "o6"]),
        ("_lt: an open start counts, and a period starting earlier", "lt2024-01-10", ["o3", "o6"]),
        ("_le", "le2024-01-10", ["o1", "o3", "o5", "o6", "o8"]),
        ("_sa", "sa2024-01-10", ["o2", "o4"]),
        ("_eb", "eb2024-01-10", ["o3"]),
    ],
)
def test_dates(population, _case, value, expected):
    assert found("Observation", [("date", value)]) == expected


@pytest.mark.parametrize(
    ("_case", "now", "expected"),
    [
        ("_near now: at least a day", datetime(2024, 1, 20, tzinfo=UTC), ["o1", "o5", "o6", "o8"]),
        ("_ten years on: 10% of the gap", datetime(2034, 1, 10, tzinfo=UTC),
         ["o1", "o2", "o3", "o4", "o5", "o6", "o8"]),
    ],
)  # fmt: skip
def test_date_approximately(population, monkeypatch, _case, now, expected):
    monkeypatch.setattr(timezone, "now", lambda: now)
    assert found("Observation", [("date", "ap2024-01-10")]) == expected


def test_date_range_as_two_clauses(population):
    assert found("Observation", [("date", "ge2024-01-01"), ("date", "lt2024-02-01"), ("patient", "p1")]) == [
        "o1",
        "o3",
    ]


@pytest.mark.parametrize(
    ("_case", "value", "expected"),
    [
        ("_eq within the precision", "70", ["o1"]),
        ("_eq with more precision", "70.0", ["o1"]),
        ("_eq outside the precision", "70.6", []),
        ("_ne", "ne70", ["o2", "o3", "o4", "o5"]),
        ("_gt", "gt88", ["o2"]),
        ("_ge", "ge88", ["o2", "o3"]),
        ("_lt", "lt70", ["o4", "o5"]),
        ("_le", "le70", ["o1", "o4", "o5"]),
        ("_sa", "sa88", ["o2"]),
        ("_eb", "eb70", ["o4", "o5"]),
        ("_ap: 10%", "ap90", ["o2", "o3"]),
        ("_system and code", f"6.1|{UCUM}|%", ["o4"]),
        ("_other system", "6.1|http://other|%", []),
        ("_code only", "lt100||/min", ["o1", "o2", "o3", "o5"]),
        ("_neither code nor unit", "6.1||percent", []),
    ],
)
def test_quantities(population, _case, value, expected):
    assert found("Observation", [("value-quantity", value)]) == expected


def test_quantity_code_or_unit(population):
    put(
        observation("o9", "Patient/p3", value=5, unit="mg")
        | {"valueQuantity": {"value": 5, "unit": "milligram"}}
    )
    assert found("Observation", [("value-quantity", "5||milligram")]) == ["o9"]


@pytest.mark.parametrize(
    ("_case", "value", "expected"),
    [("_eq", "0.25", ["o1"]), ("_gt", "gt0.25", ["o2"]), ("_ap", "ap0.8", ["o2"]), ("_ne", "ne0.8", ["o1"])],
)
def test_numbers(population, monkeypatch, _case, value, expected):
    from fhirapi import searchparams

    probability = SearchParam("probability", ParamType.NUMBER, ("Observation.value.ofType(decimal)",))
    monkeypatch.setitem(searchparams.REGISTRY["Observation"], "probability", probability)
    for fhir_id, number in (("o1", "0.25"), ("o2", "0.8")):
        row = Resource.objects.get(fhir_id=fhir_id)
        NumberIndex.objects.create(
            resource=row, resource_type="Observation", param="probability", value=number
        )
    assert found("Observation", [("probability", value)]) == expected


@pytest.mark.parametrize(
    ("_case", "params", "expected"),
    [
        ("_id", [("subject", "p2")], ["o5", "o6"]),
        ("_Type/id", [("subject", "Patient/p2")], ["o5", "o6"]),
        ("_:Type", [("subject:Patient", "p2")], ["o5", "o6"]),
        ("_:Type excludes other types", [("subject:Patient", "g1")], []),
        ("_another type", [("subject", "Group/g1")], ["o7"]),
        ("_single-target param", [("patient", "p1")], ["o1", "o2", "o3", "o4"]),
        ("_absolute URL: type and id", [("subject", "http://elsewhere.org/fhir/Patient/p2")], ["o5", "o6"]),
        ("_OR", [("subject", "Patient/p2,Group/g1")], ["o5", "o6", "o7"]),
        ("_to a deleted target", [("patient", "p4")], ["o8"]),
        ("_performer", [("performer", "Practitioner/dr1")], ["o1"]),
    ],
)
def test_references(population, _case, params, expected):
    assert found("Observation", params) == expected


def test_absolute_references_match_by_url_or_type_and_id(population):
    put(observation("ext", "http://ext.example.org/fhir/Patient/x9"))
    assert found("Observation", [("subject", "http://ext.example.org/fhir/Patient/x9")]) == ["ext"]
    assert found("Observation", [("subject", "Patient/x9")]) == ["ext"]
    assert found("Observation", [("subject", "http://ext.example.org/fhir/Patient/p1")]) == [
        "o1",
        "o2",
        "o3",
        "o4",
    ]


@pytest.mark.parametrize(
    ("_case", "resource_type", "params", "expected"),
    [
        ("_token missing", "Patient", [("identifier:missing", "true")], ["p3"]),
        ("_token present", "Patient", [("identifier:missing", "false")], ["p1", "p2"]),
        ("_date missing", "Observation", [("date:missing", "true")], ["o7"]),
        ("_quantity missing", "Observation", [("value-quantity:missing", "true")], ["o6", "o7", "o8"]),
        ("_reference present", "Observation", [("performer:missing", "false")], ["o1"]),
        ("_string missing", "Observation", [("value-string:missing", "false")], ["o6"]),
        ("_both", "Patient", [("identifier:missing", "true,false")], ["p1", "p2", "p3"]),
        ("__id is never missing", "Patient", [("_id:missing", "true")], []),
        ("__id is always present", "Patient", [("_id:missing", "false")], ["p1", "p2", "p3"]),
    ],
)
def test_missing(population, _case, resource_type, params, expected):
    assert found(resource_type, params) == expected


@pytest.mark.parametrize(
    ("_case", "params", "expected"),
    [
        ("_typed chain on a string", [("subject:Patient.name", "smith")], ["o5", "o6"]),
        (
            "_single-target chain on a token",
            [("patient.identifier", f"{MRN}|MRN1")],
            ["o1", "o2", "o3", "o4"],
        ),
        ("_chain on _id", [("patient._id", "p2")], ["o5", "o6"]),
        ("_chain with other clauses", [("patient.gender", "female"), ("category", "laboratory")], ["o6"]),
        ("_deleted targets do not match", [("subject:Patient.name", "ghost")], []),
        ("_chain with an inner modifier", [("subject:Patient.name:exact", "Smith")], ["o5", "o6"]),
    ],
)
def test_chains(population, _case, params, expected):
    assert found("Observation", params) == expected


@pytest.mark.parametrize(
    ("_case", "resource_type", "params", "expected"),
    [
        ("_date ascending", "Observation", [("patient", "p1"), ("_sort", "date")], ["o3", "o1", "o4", "o2"]),
        ("_date descending", "Observation", [("patient", "p1"), ("_sort", "-date")], ["o2", "o4", "o1", "o3"]),
        ("_date, NULLs last", "Observation", [("_sort", "date")], ["o6", "o3", "o8", "o1", "o5", "o4", "o2", "o7"]),
        ("_date descending, NULLs last", "Observation", [("_sort", "-date")],
         ["o2", "o4", "o5", "o1", "o8", "o3", "o6", "o7"]),
        ("_quantity", "Observation", [("_sort", "value-quantity")], ["o4", "o5", "o1", "o3", "o2", "o6", "o7", "o8"]),
        ("_quantity descending", "Observation", [("_sort", "-value-quantity")],
         ["o2", "o3", "o1", "o5", "o4", "o6", "o7", "o8"]),
        ("_token, then date descending", "Observation", [("_sort", "code,-date")],
         ["o4", "o6", "o2", "o5", "o1", "o8", "o3", "o7"]),
        ("_ties keep storage order", "Observation", [("_sort", "code")],
         ["o4", "o6", "o1", "o2", "o3", "o5", "o8", "o7"]),
        ("_string: the least value", "Patient", [("_sort", "name")], ["p2", "p1", "p3"]),
        ("_string descending: the greatest value", "Patient", [("_sort", "-name")], ["p3", "p2", "p1"]),
        ("_date of birth", "Patient", [("_sort", "-birthdate")], ["p3", "p1", "p2"]),
        ("__id", "Patient", [("_sort", "-_id")], ["p3", "p2", "p1"]),
        ("__lastUpdated", "Patient", [("_sort", "-_lastUpdated")], ["p3", "p2", "p1"]),
    ],
)  # fmt: skip
def test_sort(population, _case, resource_type, params, expected):
    assert found(resource_type, params) == expected


@pytest.mark.parametrize(
    ("_case", "value", "expected"),
    [
        ("_a point within the second", "2024-06-01T00:01:00Z", ["p2"]),
        ("_a minute", "2024-06-01T00:02", ["p3"]),
        ("_gt", "gt2024-06-01T00:01:00Z", ["p3"]),
        ("_ge", "ge2024-06-01T00:01:00Z", ["p2", "p3"]),
        ("_lt, the day", "lt2024-06-02", ["p1", "p2", "p3"]),
    ],
)
def test_last_updated(population, _case, value, expected):
    assert found("Patient", [("_lastUpdated", value)]) == expected


def test_system_search(population):
    assert found(None, [("_id", "o1,p2,odel")]) == ["p2", "o1"]
    assert found(None, [("_id", "o1,p2"), ("_sort", "-_lastUpdated")]) == ["o1", "p2"]


@pytest.mark.parametrize(
    ("_case", "params", "driver_table"),
    [
        ("_from the patient's timeline", [("patient", "p1"), ("category", "vital-signs"), ("_sort", "-date"),
                                           ("_count", "1")], "fhirapi_timelineindex"),
        ("_from the patient's references", [("patient", "p1"), ("category", "vital-signs")],
         "fhirapi_referenceindex"),
        ("_from a chain", [("subject:Patient.name", "smith")], "fhirapi_referenceindex"),
        ("_from tokens, after a :not", [("category:not", "laboratory"), ("code", "8867-4")], "fhirapi_tokenindex"),
        ("_from Resource without a positive clause", [("category:not", "laboratory")], "fhirapi_resource"),
        ("_from Resource to sort by _lastUpdated", [("patient", "p1"), ("_sort", "_lastUpdated")],
         "fhirapi_resource"),
    ],
)  # fmt: skip
def test_search_page_starts_from_index_rows(population, _case, params, driver_table):
    query = parse_search("Observation", params)
    with CaptureQueriesContext(connection) as queries:
        search_page(query, UNRESTRICTED)
    first_column = queries[0]["sql"].removeprefix("SELECT ").removeprefix("DISTINCT ").split(".")[0]
    assert first_column == f'"{driver_table}"'


@pytest.mark.parametrize(
    ("_case", "params", "expected"),
    [
        ("_first page", [("patient", "p1"), ("_sort", "-date"), ("_count", "2")], ["o2", "o4"]),
        ("_second page", [("patient", "p1"), ("_sort", "-date"), ("_count", "2"), ("_offset", "2")], ["o1", "o3"]),
        ("_past the end", [("patient", "p1"), ("_count", "2"), ("_offset", "4")], []),
        ("_count only", [("patient", "p1"), ("_count", "0")], []),
        ("_unsorted pages by storage order", [("code", "8867-4"), ("_count", "3"), ("_offset", "1")],
         ["o2", "o3", "o5"]),
        ("_Resource-driven page", [("_sort", "-_lastUpdated"), ("_count", "2"), ("_offset", "1")], ["o7", "o6"]),
    ],
)  # fmt: skip
def test_search_page(population, _case, params, expected):
    query = parse_search("Observation", params)
    assert [row.fhir_id for row in search_page(query, UNRESTRICTED)] == expected


def test_search_total_counts_resources_not_index_rows(population):
    query = parse_search("Observation", [("code", "8867-4,4548-4"), ("combo-code", "8867-4,4548-4")])
    assert search_total(query, UNRESTRICTED) == 7


# -- access ---------------------------------------------------------------------------------------------------


def patient_scope(patient_id, *constraints):
    return AccessFilter(patient_id, tuple(constraints))


@pytest.mark.parametrize(
    ("_case", "resource_type", "params", "access", "expected"),
    [
        ("_unrestricted", "Observation", [("code", "8867-4")], UNRESTRICTED, ["o1", "o2", "o3", "o5", "o8"]),
        ("_denied", "Observation", [], DENIED, []),
        ("_patient compartment", "Observation", [], AccessDecision(True, (patient_scope("p1"),)),
         ["o1", "o2", "o3", "o4"]),
        ("_compartment and search", "Observation", [("code", "8867-4")],
         AccessDecision(True, (patient_scope("p1"),)), ["o1", "o2", "o3"]),
        ("_a patient in their own compartment", "Patient", [], AccessDecision(True, (patient_scope("p2"),)), ["p2"]),
        ("_granular within the compartment", "Observation", [],
         AccessDecision(True, (patient_scope("p1", ("category", f"{OBS_CATEGORY}|laboratory")),)), ["o4"]),
        ("_granular without a compartment", "Observation", [],
         AccessDecision(True, (patient_scope(None, ("category", "vital-signs")),)), ["o1", "o2", "o3", "o5", "o8"]),
        ("_granular constraints AND-ed", "Observation", [],
         AccessDecision(True, (patient_scope(None, ("category", "vital-signs"), ("patient", "p2")),)), ["o5"]),
        ("_filters OR-ed", "Observation", [],
         AccessDecision(True, (patient_scope("p2"), patient_scope("p1", ("category", "laboratory")))),
         ["o4", "o5", "o6"]),
        ("_an unparseable constraint reaches nothing", "Observation", [],
         AccessDecision(True, (patient_scope("p1", ("shoe-size", "9")),)), []),
        ("_but the other filters still apply", "Observation", [],
         AccessDecision(True, (patient_scope("p1", ("shoe-size", "9")), patient_scope("p2"))), ["o5", "o6"]),
    ],
)  # fmt: skip
def test_access(population, _case, resource_type, params, access, expected):
    assert found(resource_type, params, access) == expected


def test_access_on_a_system_search(population):
    access = AccessDecision(True, (patient_scope("p2"),))
    assert found(None, [("_id", "p1,p2,o5,o1")], access) == ["p2", "o5"]
    granular = AccessDecision(True, (patient_scope("p2", ("category", "laboratory")),))
    assert found(None, [("_id", "o5,o6")], granular) == []


# -- _include and _revinclude ---------------------------------------------------------------------------------


def page(resource_type, params):
    return list(search_queryset(parse_search(resource_type, params, strict=True), UNRESTRICTED))


def included(resource_type, params, access_for=lambda _type: UNRESTRICTED):
    query = parse_search(resource_type, params, strict=True)
    rows = list(search_queryset(query, UNRESTRICTED))
    return [str(r) for r in include_targets(rows, query.includes, access_for)] + [
        str(r) for r in revinclude_sources(rows, query.revincludes, access_for)
    ]


@pytest.mark.parametrize(
    ("_case", "resource_type", "params", "expected"),
    [
        ("_include", "Observation", [("patient", "p1"), ("_include", "Observation:patient")], ["Patient/p1"]),
        ("_include two", "Observation", [("patient", "p1"), ("_include", "Observation:patient"),
                                          ("_include", "Observation:performer")], ["Patient/p1", "Practitioner/dr1"]),
        ("_include *", "Observation", [("_id", "o1"), ("_include", "*")], ["Patient/p1", "Practitioner/dr1"]),
        ("_include with a target type", "Observation", [("_include", "Observation:subject:Group")], ["Group/g1"]),
        ("_include to another resource's type", "MedicationRequest",
         [("_include", "MedicationRequest:medication:Medication")], ["Medication/med1"]),
        ("_include skips deleted targets", "Observation", [("_id", "o8"), ("_include", "Observation:patient")], []),
        ("_include:iterate runs one level", "Observation",
         [("_id", "o1"), ("_include", "Observation:patient"), ("_include:iterate", "Patient:organization")],
         ["Patient/p1"]),
        ("_nothing to include", "Observation", [("_id", "o7"), ("_include", "Observation:performer")], []),
        ("_revinclude", "Patient", [("_id", "p2"), ("_revinclude", "Observation:patient")],
         ["Observation/o5", "Observation/o6"]),
        ("_revinclude skips deleted sources", "Patient", [("_id", "p1"), ("_revinclude", "Observation:subject")],
         ["Observation/o1", "Observation/o2", "Observation/o3", "Observation/o4"]),
        ("_revinclude of any parameter", "Observation", [("_id", "o1"), ("_revinclude", "Provenance:*")],
         ["Provenance/prov1"]),
        ("_revinclude *", "Patient", [("_id", "p1"), ("_revinclude", "*")],
         ["MedicationRequest/mr1", "Observation/o1", "Observation/o2", "Observation/o3", "Observation/o4"]),
        ("_revinclude with a target type", "Practitioner", [("_revinclude", "Provenance:agent:Patient")], []),
        ("_include and _revinclude", "Observation",
         [("_id", "o1"), ("_include", "Observation:patient"), ("_revinclude", "Provenance:target")],
         ["Patient/p1", "Provenance/prov1"]),
    ],
)  # fmt: skip
def test_includes(population, _case, resource_type, params, expected):
    assert included(resource_type, params) == expected


def test_includes_leave_out_the_page(population):
    query = parse_search(
        "Observation", [("_include", "Observation:subject"), ("_revinclude", "Observation:subject")]
    )
    rows = page("Patient", []) + page("Observation", [("patient", "p2")])
    assert include_targets(rows, query.includes, lambda _type: UNRESTRICTED) == []
    assert revinclude_sources(rows, query.revincludes, lambda _type: UNRESTRICTED) == [
        Resource.objects.get(fhir_id=fhir_id) for fhir_id in ("o1", "o2", "o3", "o4")
    ]


def test_includes_obey_access_per_type(population):
    def access_for(resource_type):
        if resource_type == "Practitioner":
            return DENIED
        return AccessDecision(True, (patient_scope("p2"),))

    params = [("_include", "Observation:patient"), ("_include", "Observation:performer")]
    assert included("Observation", [("_id", "o1"), *params], access_for) == []
    assert included("Observation", [("_id", "o5"), *params], access_for) == ["Patient/p2"]
    revinclude = [("_revinclude", "Observation:patient")]
    assert included("Patient", revinclude, access_for) == ["Observation/o5", "Observation/o6"]
    granular = AccessDecision(True, (patient_scope("p2", ("category", "laboratory")),))
    assert included("Patient", revinclude, lambda _type: granular) == ["Observation/o6"]


def test_no_page_no_includes(population):
    query = parse_search("Observation", [("_include", "*"), ("_revinclude", "*")])
    assert include_targets([], query.includes, lambda _type: UNRESTRICTED) == []
    assert revinclude_sources([], query.revincludes, lambda _type: UNRESTRICTED) == []


def test_decimal_values_survive_the_index(population):
    assert QuantityIndex.objects.get(resource__fhir_id="o4", param="value-quantity").value == Decimal("6.1")


def test_includes_stop_at_the_limit(population):
    rows = page("Patient", [("_id", "p1")])
    query = parse_search("Patient", [("_revinclude", "*")])
    sources = revinclude_sources(rows, query.revincludes, lambda _type: UNRESTRICTED, limit=3)
    assert [str(r) for r in sources] == ["MedicationRequest/mr1", "Observation/o1", "Observation/o2"]
    observations = page("Observation", [("_id", "o1")])
    query = parse_search("Observation", [("_include", "*")])
    targets = include_targets(observations, query.includes, lambda _type: UNRESTRICTED, limit=1)
    assert [str(r) for r in targets] == ["Patient/p1"]


# -- a patient's timeline: `patient=X&_sort=date` read in date order from TimelineIndex ----------------------


@pytest.fixture
def timeline():
    """Patient t1's vital signs: ties, a period, an absolute reference, an undated one, a deleted one; t2's."""
    put(patient("t1", "Lane", "Lois"))
    put(patient("t2", "Kent", "Clark"))
    moments = ["2024-05-01T08:00:00Z", "2024-05-03T08:00:00Z", "2024-05-03T08:00:00Z", "2024-05-02T08:00:00Z",
               "2024-04-30T08:00:00Z", "2024-05-04T08:00:00Z"]  # fmt: skip
    for n, moment in enumerate(moments, start=1):
        put(observation(f"v{n}", "Patient/t1", effectiveDateTime=moment))
    put(observation("vperiod", "Patient/t1", effectivePeriod={"start": "2024-05-02T12:00:00Z"}))
    put(observation("vabs", "http://elsewhere.example/fhir/Patient/t1", effectiveDateTime="2024-05-05"))
    put(observation("vnone", "Patient/t1"))
    put(observation("vlab", "Patient/t1", category="laboratory", effectiveDateTime="2024-05-06"))
    put(observation("vgone", "Patient/t1", effectiveDateTime="2024-05-07"), deleted=True)
    put(observation("vother", "Patient/t2", effectiveDateTime="2024-05-08"))


NEWEST_FIRST = ["vabs", "v6", "v2", "v3", "vperiod", "v4", "v1", "v5", "vnone"]


def every_page(resource_type, params, count, access=UNRESTRICTED):
    """The fhir_ids of every page, `count` at a time, checked against the whole result in one query."""
    pages = []
    for offset in range(0, 20, count):
        query = parse_search(resource_type, [*params, ("_count", str(count)), ("_offset", str(offset))])
        page = [row.fhir_id for row in search_page(query, access)]
        assert page == list(search_queryset(query, access).values_list("fhir_id", flat=True))[offset:][:count]
        pages.extend(page)
    return pages


@pytest.mark.parametrize("count", [1, 2, 3, 4, 9, 10])
def test_timeline_pages_newest_first_ties_by_storage_order_undated_last(timeline, count):
    params = [("patient", "t1"), ("category", "vital-signs"), ("_sort", "-date")]
    assert every_page("Observation", params, count) == NEWEST_FIRST


@pytest.mark.parametrize("patient_param", [("patient", "Patient/t1"), ("subject", "Patient/t1"),
                                           ("subject:Patient", "t1"), ("patient", "t1")])  # fmt: skip
def test_timeline_oldest_first_through_each_way_of_naming_the_patient(timeline, patient_param):
    params = [patient_param, ("category", "vital-signs"), ("_sort", "date")]
    oldest_first = ["v5", "v1", "v4", "vperiod", "v2", "v3", "v6", "vabs", "vnone"]
    assert every_page("Observation", params, 2) == oldest_first


def test_timeline_is_read_page_by_page(timeline):
    query = parse_search("Observation", [("patient", "t1"), ("_sort", "-date"), ("_count", "2")])
    with CaptureQueriesContext(connection) as queries:
        page = search_page(query, UNRESTRICTED)
    assert [row.fhir_id for row in page] == ["vlab", "vabs"]
    assert len(queries) == 1  # the page's rows, found on the timeline
    assert '"fhirapi_timelineindex"' in queries[0]["sql"]


def test_timeline_keeps_to_the_grant(timeline):
    own = AccessDecision(allowed=True, filters=(AccessFilter(patient_id="t1"),))
    constrained = AccessDecision(
        allowed=True, filters=(AccessFilter(constraints=(("category", "laboratory"),)),)
    )
    elsewhere = AccessDecision(allowed=True, filters=(AccessFilter(patient_id="t2"),))
    params = [("patient", "t1"), ("_sort", "-date")]
    assert every_page("Observation", params, 2, own) == [
        "vlab",
        "v6",
        "v2",
        "v3",
        "vperiod",
        "v4",
        "v1",
        "v5",
        "vnone",
    ]  # fmt: skip  (vabs: not in t1's compartment)
    assert every_page("Observation", params, 2, constrained) == ["vlab"]
    assert every_page("Observation", params, 2, elsewhere) == []


def test_timeline_sorts_a_resource_with_several_dates_by_its_greatest_or_least(timeline):
    for mid, events in (("mr1", ["2024-01-01", "2024-09-01"]), ("mr2", ["2024-05-01"]),
                        ("mr3", ["2024-02-01", "2024-03-01", "2024-04-01", "2024-08-01"])):  # fmt: skip
        put({"resourceType": "MedicationRequest", "id": mid, "status": "active", "intent": "order",
             "subject": {"reference": "Patient/t1"}, "medicationCodeableConcept": {"text": "x"},
             "dosageInstruction": [{"timing": {"event": events}}]})  # fmt: skip
    assert every_page("MedicationRequest", [("patient", "t1"), ("_sort", "-date")], 1) == [
        "mr1",
        "mr3",
        "mr2",
    ]
    assert every_page("MedicationRequest", [("patient", "t1"), ("_sort", "date")], 1) == ["mr1", "mr3", "mr2"]
    assert every_page("MedicationRequest", [("patient", "t1"), ("_sort", "date")], 2) == ["mr1", "mr3", "mr2"]
