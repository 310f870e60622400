"""Tests for the demo population generator (ehr.demo.population): pure, no database."""

import json
import re
import statistics
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from fhir.resources.R4B import get_fhir_model_class

from ehr.demo.population import (
    cohort_groups,
    estimated_resources_per_patient,
    iter_population,
    patient_resources,
    practitioners_and_organization,
)

TODAY = date(2025, 3, 14)
PATIENTS = 30
UCUM = "http://unitsofmeasure.org"
VITAL_UNITS = {
    "85354-9": None,  # blood pressure panel: the values live in the components
    "8867-4": "/min",
    "9279-1": "/min",
    "8310-5": "Cel",
    "59408-5": "%",
    "8302-2": "cm",
    "29463-7": "kg",
    "39156-5": "kg/m2",
}
BP_COMPONENTS = {"8480-6", "8462-4"}
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?$")


@pytest.fixture(scope="module")
def by_patient() -> dict[int, list[dict]]:
    return {index: patient_resources(index, today=TODAY) for index in range(PATIENTS)}


@pytest.fixture(scope="module")
def population(by_patient) -> list[dict]:
    """What iter_population streams, assembled from the parts already generated."""
    patients = [resource for resources in by_patient.values() for resource in resources]
    return practitioners_and_organization() + patients + cohort_groups(PATIENTS)


def _references(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def _category(resource: dict) -> str:
    return resource["category"][0]["coding"][0]["code"]


def _vitals(resources: list[dict]) -> list[dict]:
    return [r for r in resources if r["resourceType"] == "Observation" and _category(r) == "vital-signs"]


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_same_patient_is_generated_identically():
    # given/when: the same patient generated twice
    first = patient_resources(7, today=TODAY)
    second = patient_resources(7, today=TODAY)

    # then
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert cohort_groups(PATIENTS) == cohort_groups(PATIENTS)
    assert practitioners_and_organization() == practitioners_and_organization()


def test_different_patients_differ(by_patient):
    patients = [resources[0] for resources in by_patient.values()]

    assert len({json.dumps(p["name"], sort_keys=True) + p["birthDate"] for p in patients}) == PATIENTS
    assert by_patient[0][0]["id"] == "pat-0"
    assert by_patient[1][0]["id"] == "pat-1"


def test_every_resource_validates_against_r4b_models():
    # given: the hospital, the first three patients and the cohort groups
    resources = practitioners_and_organization() + cohort_groups(3)
    for index in range(3):
        resources += patient_resources(index, today=TODAY)

    # when
    errors = []
    for resource in resources:
        try:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except ValueError as error:
            errors.append(f"{resource['resourceType']}/{resource['id']}: {error}")

    # then
    assert errors == []
    assert len({r["resourceType"] for r in resources}) >= 19


def test_hospital_has_fixed_ids_and_valid_npis():
    resources = practitioners_and_organization()
    ids = [f"{r['resourceType']}/{r['id']}" for r in resources]
    npis = [
        r["identifier"][0]["value"]
        for r in resources
        if r["resourceType"] in ("Practitioner", "Organization")
    ]

    assert ids[:3] == ["Organization/org-1", "Location/loc-1", "Location/loc-2"]
    assert [i for i in ids if i.startswith("Practitioner/")] == [
        f"Practitioner/pract-{n}" for n in range(1, 7)
    ]
    assert all(_luhn_valid("80840" + npi) for npi in npis)


def _luhn_valid(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def test_ids_are_unique_across_the_population(population):
    keys = Counter(f"{r['resourceType']}/{r['id']}" for r in population)

    assert [key for key, count in keys.items() if count > 1] == []


def test_references_are_relative_and_point_to_earlier_resources(population):
    # given: resources in the order iter_population streams them
    seen: set[str] = set()
    dangling = []

    # when: every reference is checked against what came before it
    for resource in population:
        dangling += [ref for ref in _references(resource) if ref not in seen]
        seen.add(f"{resource['resourceType']}/{resource['id']}")

    # then
    assert dangling == []


def test_population_is_streamed_hospital_first_and_groups_last(population):
    assert list(iter_population(3, today=TODAY)) == (
        practitioners_and_organization()
        + [r for index in range(3) for r in patient_resources(index, today=TODAY)]
        + cohort_groups(3)
    )
    assert population[0]["resourceType"] == "Organization"
    assert [r["id"] for r in population[-3:]] == ["group-diabetes", "group-hypertension", "group-all-adults"]
    assert sum(r["resourceType"] == "Patient" for r in population) == PATIENTS


def test_vitals_carry_loinc_codes_ucum_units_and_category(by_patient):
    vitals = [v for resources in by_patient.values() for v in _vitals(resources)]

    for vital in vitals:
        codes = {coding["code"] for coding in vital["code"]["coding"]}
        assert vital["category"][0]["coding"][0]["system"] == (
            "http://terminology.hl7.org/CodeSystem/observation-category"
        )
        assert vital["status"] == "final"
        assert vital["code"]["coding"][0]["system"] == "http://loinc.org"
        assert vital["encounter"]["reference"].startswith("Encounter/")
        assert vital["subject"]["reference"].startswith("Patient/")
        assert DATE_RE.match(vital["effectiveDateTime"]) and "T" in vital["effectiveDateTime"]
        code = vital["code"]["coding"][0]["code"]
        if code == "85354-9":
            components = {
                comp["code"]["coding"][0]["code"]: comp["valueQuantity"] for comp in vital["component"]
            }
            assert set(components) == BP_COMPONENTS
            assert all(q["code"] == "mm[Hg]" and q["system"] == UCUM for q in components.values())
            assert components["8480-6"]["value"] > components["8462-4"]["value"]
        else:
            assert vital["valueQuantity"]["code"] == VITAL_UNITS[code]
            assert vital["valueQuantity"]["system"] == UCUM
            assert isinstance(vital["valueQuantity"]["value"], int | float)
        if code == "59408-5":
            assert codes == {"59408-5", "2708-6"}
    assert set(VITAL_UNITS) <= {v["code"]["coding"][0]["code"] for v in vitals}


def test_each_patient_has_two_years_of_vitals(by_patient):
    for resources in by_patient.values():
        # given
        birth = date.fromisoformat(resources[0]["birthDate"])
        days = sorted(date.fromisoformat(v["effectiveDateTime"][:10]) for v in _vitals(resources))

        # then: two years of history, or every day since a newborn visit for the youngest
        assert days, resources[0]["id"]
        if birth < TODAY - timedelta(days=2 * 365 + 30):
            assert (days[-1] - days[0]).days >= 730, resources[0]["id"]
        else:
            assert (days[0] - birth).days <= 10, resources[0]["id"]
        assert days[-1] >= TODAY - timedelta(days=120)


def test_observations_fall_within_their_encounter_period(by_patient):
    for resources in by_patient.values():
        periods = {f"Encounter/{r['id']}": r["period"] for r in resources if r["resourceType"] == "Encounter"}
        for resource in resources:
            if resource["resourceType"] != "Observation":
                continue
            period = periods[resource["encounter"]["reference"]]
            when = _instant(resource["effectiveDateTime"])
            assert _instant(period["start"]) <= when
            assert "end" not in period or when <= _instant(period["end"])


def _late_dates(resources: list[dict], today: date) -> list[str]:
    limit = today.isoformat()
    candidates = (value for value in _strings(resources) if value[:1].isdigit() and value[:10] >= limit)
    return [value for value in candidates if DATE_RE.match(value)]


def test_all_dates_fall_before_today(by_patient):
    for index, resources in by_patient.items():
        assert _late_dates(resources, TODAY) == [], f"pat-{index}"


def test_dates_fall_before_a_leap_day_today():
    leap_day = date(2024, 2, 29)
    for index in range(10):
        assert _late_dates(patient_resources(index, today=leap_day), leap_day) == [], f"pat-{index}"


def test_mrns_are_unique_and_well_formed(by_patient):
    mrns = [
        identifier["value"]
        for resources in by_patient.values()
        for identifier in resources[0]["identifier"]
        if identifier["system"] == "http://hospital.example.org/mrn"
    ]

    assert len(mrns) == PATIENTS
    assert len(set(mrns)) == PATIENTS
    assert all(re.fullmatch(r"MRN\d{6}", mrn) for mrn in mrns)


def test_labs_have_ranges_interpretations_and_reports(by_patient):
    for resources in by_patient.values():
        labs = {
            r["id"]: r
            for r in resources
            if r["resourceType"] == "Observation" and _category(r) == "laboratory"
        }
        reports = [r for r in resources if r["resourceType"] == "DiagnosticReport"]

        for lab in labs.values():
            assert lab["referenceRange"] and lab["interpretation"][0]["coding"][0]["code"] in {"H", "L", "N"}
            assert lab["valueQuantity"]["system"] == UCUM
        for report in reports:
            assert report["category"][0]["coding"][0]["code"] == "LAB"
            assert all(ref["reference"].removeprefix("Observation/") in labs for ref in report["result"])
        assert sum(len(r["result"]) for r in reports) == len(labs)


def test_groups_list_exactly_the_matching_patients(by_patient):
    # given: who has diabetes or hypertension on their problem list, and who is an adult
    def with_code(code: str) -> list[str]:
        return [
            f"Patient/pat-{index}"
            for index, resources in by_patient.items()
            if any(
                r["resourceType"] == "Condition" and r["code"]["coding"][0]["code"] == code for r in resources
            )
        ]

    adults = [
        f"Patient/pat-{index}"
        for index, resources in by_patient.items()
        if date.fromisoformat(resources[0]["birthDate"]) <= date(TODAY.year - 18, TODAY.month, TODAY.day)
    ]

    # when
    groups = {g["id"]: [m["entity"]["reference"] for m in g["member"]] for g in cohort_groups(PATIENTS)}

    # then
    assert groups == {
        "group-diabetes": with_code("44054006"),
        "group-hypertension": with_code("38341003"),
        "group-all-adults": adults,
    }


def test_every_patient_has_the_core_chart(by_patient):
    required = {"Patient", "Encounter", "Observation", "Condition", "AllergyIntolerance", "Immunization"}
    required |= {"Procedure", "DocumentReference", "CarePlan", "Goal", "CareTeam", "Provenance"}

    for resources in by_patient.values():
        types = {r["resourceType"] for r in resources}
        assert required <= types, resources[0]["id"]
        assert resources[0]["resourceType"] == "Patient"


def test_estimated_resources_per_patient_matches_a_sample(by_patient):
    counts = [len(resources) for resources in by_patient.values()]

    assert 150 <= statistics.mean(counts) <= 250
    assert abs(estimated_resources_per_patient() - statistics.mean(counts)) <= 0.25 * statistics.mean(counts)
