"""Tests for fhirapi.indexing (pure: no database) and the registry in fhirapi.searchparams."""

from collections import Counter
from dataclasses import astuple
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhirapi import searchparams
from fhirapi.indexing import (
    DateValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
    date_range,
    evaluate_path,
    extract_index,
    normalize_string,
    parse_reference,
    patient_compartments,
)
from fhirapi.searchparams import ParamType, SearchParam

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
END = 999_999  # microseconds at the inclusive end of a second


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def whole_day(year: int, month: int, day: int) -> tuple[datetime, datetime]:
    return utc(year, month, day), utc(year, month, day, 23, 59, 59, END)


def res(resource_type: str, **elements) -> dict:
    return {"resourceType": resource_type, **elements}


def ref(reference: str) -> dict:
    return {"reference": reference}


def values_of(resource: dict, attribute: str, param: str) -> list[tuple]:
    """The extracted values of one parameter, as tuples without the parameter name."""
    return [
        astuple(value)[1:] for value in getattr(extract_index(resource), attribute) if value.param == param
    ]


# US Core 6.1 blood pressure example (us-core-blood-pressure profile), trimmed of narrative.
BLOOD_PRESSURE = {
    "resourceType": "Observation",
    "id": "blood-pressure",
    "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure"]},
    "status": "final",
    "category": [
        {
            "coding": [{"system": OBS_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}],
            "text": "Vital Signs",
        }
    ],
    "code": {
        "coding": [
            {"system": LOINC, "code": "85354-9", "display": "Blood pressure panel with all children optional"}
        ],
        "text": "Blood pressure systolic and diastolic",
    },
    "subject": {"reference": "Patient/example", "display": "Amy Shaw"},
    "encounter": {"reference": "Encounter/example-1"},
    "effectiveDateTime": "1999-07-02",
    "performer": [{"reference": "Practitioner/practitioner-1", "display": "Ronald Bone, MD"}],
    "component": [
        {
            "code": {"coding": [{"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"}]},
            "valueQuantity": {"value": 109, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        },
        {
            "code": {"coding": [{"system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure"}]},
            "valueQuantity": {"value": 44, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        },
    ],
}

# US Core 6.1 Patient example (us-core-patient profile), without narrative and race/ethnicity extensions.
US_CORE_PATIENT = {
    "resourceType": "Patient",
    "id": "example",
    "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
    "identifier": [
        {
            "use": "usual",
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                        "code": "MR",
                        "display": "Medical Record Number",
                    }
                ],
                "text": "Medical Record Number",
            },
            "system": "http://hospital.smarthealthit.org",
            "value": "1032702",
        }
    ],
    "active": True,
    "name": [
        {
            "use": "old",
            "family": "Shaw",
            "given": ["Amy", "V."],
            "period": {"start": "2016-12-06", "end": "2020-07-22"},
        },
        {"family": "Baxter", "given": ["Amy", "V."], "suffix": ["PharmD"], "period": {"start": "2020-07-22"}},
    ],
    "telecom": [
        {"system": "phone", "value": "555-555-5555", "use": "home"},
        {"system": "email", "value": "amy.shaw@example.com"},
    ],
    "gender": "female",
    "birthDate": "1987-02-20",
    "address": [
        {
            "use": "home",
            "line": ["49 Meadow St"],
            "city": "Mounds",
            "state": "OK",
            "postalCode": "74047",
            "country": "US",
            "period": {"start": "2016-12-06", "end": "2020-07-22"},
        }
    ],
    "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-US"}]}}],
}


# --- Fixtures are real FHIR --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "resource"), [("blood pressure", BLOOD_PRESSURE), ("patient", US_CORE_PATIENT)]
)
def test_fixtures_validate_as_r4b(_case, resource):
    # given a test resource / when it is validated by the R4B models / then it is accepted
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


# --- normalize_string --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "value", "expected"),
    [
        ("lower-cased", "SMITH", "smith"),
        ("accents dropped", "Éloïse Müller", "eloise muller"),
        ("whitespace collapsed", "  Mary \t Ann\n ", "mary ann"),
        ("casefold expands sharp s", "Straße", "strasse"),
        ("compatibility ligature", "\ufb01sher", "fisher"),
        ("dotted capital I", "\u0130stanbul", "istanbul"),
        ("combining marks alone", "n\u0303", "n"),
        ("empty", "", ""),
    ],
)
def test_normalize_string(_case, value, expected):
    assert normalize_string(value) == expected


# --- date_range --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "value", "low", "high"),
    [
        ("year", "2020", utc(2020, 1, 1), utc(2020, 12, 31, 23, 59, 59, END)),
        ("month", "2020-04", utc(2020, 4, 1), utc(2020, 4, 30, 23, 59, 59, END)),
        ("leap February", "2024-02", utc(2024, 2, 1), utc(2024, 2, 29, 23, 59, 59, END)),
        ("plain February", "2023-02", utc(2023, 2, 1), utc(2023, 2, 28, 23, 59, 59, END)),
        ("day taken as UTC", "1999-07-02", utc(1999, 7, 2), utc(1999, 7, 2, 23, 59, 59, END)),
        ("minute", "2020-03-04T10:15Z", utc(2020, 3, 4, 10, 15), utc(2020, 3, 4, 10, 15, 59, END)),
        ("second", "2020-03-04T10:15:30Z", utc(2020, 3, 4, 10, 15, 30), utc(2020, 3, 4, 10, 15, 30, END)),
        (
            "fraction sets precision",
            "2020-03-04T10:15:30.25Z",
            utc(2020, 3, 4, 10, 15, 30, 250_000),
            utc(2020, 3, 4, 10, 15, 30, 259_999),
        ),
        (
            "microseconds exact",
            "2020-03-04T10:15:30.123456Z",
            utc(2020, 3, 4, 10, 15, 30, 123_456),
            utc(2020, 3, 4, 10, 15, 30, 123_456),
        ),
        (
            "beyond microseconds truncated",
            "2020-03-04T10:15:30.1234567Z",
            utc(2020, 3, 4, 10, 15, 30, 123_456),
            utc(2020, 3, 4, 10, 15, 30, 123_456),
        ),
        (
            "positive offset",
            "2020-03-04T10:15:30+05:00",
            utc(2020, 3, 4, 5, 15, 30),
            utc(2020, 3, 4, 5, 15, 30, END),
        ),
        (
            "negative offset crosses midnight",
            "2020-12-31T22:00:00-03:30",
            utc(2021, 1, 1, 1, 30),
            utc(2021, 1, 1, 1, 30, 0, END),
        ),
        (
            "minus zero offset",
            "2020-03-04T10:15:30-00:00",
            utc(2020, 3, 4, 10, 15, 30),
            utc(2020, 3, 4, 10, 15, 30, END),
        ),
        (
            "time without offset taken as UTC",
            "2020-03-04T10:15:30",
            utc(2020, 3, 4, 10, 15, 30),
            utc(2020, 3, 4, 10, 15, 30, END),
        ),
        (
            "instant",
            "2015-02-07T13:28:17.239+02:00",
            utc(2015, 2, 7, 11, 28, 17, 239_000),
            utc(2015, 2, 7, 11, 28, 17, 239_999),
        ),
    ],
)
def test_date_range(_case, value, low, high):
    assert date_range(value) == (low, high)


@pytest.mark.parametrize(
    ("_case", "value"),
    [
        ("empty", ""),
        ("text", "yesterday"),
        ("no dashes", "20200101"),
        ("one-digit month", "2020-1-01"),
        ("month 13", "2020-13"),
        ("February 30", "2020-02-30"),
        ("year zero", "0000"),
        ("hour 25", "2020-01-01T25:00:00Z"),
        ("second 60", "2020-01-01T10:00:60Z"),
        ("hour without minutes", "2020-01-01T10Z"),
        ("space instead of T", "2020-01-01 10:00:00Z"),
        ("offset beyond 14 hours", "2020-01-01T10:00:00+15:00"),
        ("offset minutes 60", "2020-01-01T10:00:00+05:60"),
        ("offset without time", "2020-01-01Z"),
        ("trailing space", "2020-01-01 "),
        ("overflows after offset", "0001-01-01T00:00:00+01:00"),
        ("not a string", 2020),
    ],
)
def test_date_range_rejects(_case, value):
    with pytest.raises(ValueError):
        date_range(value)


# --- parse_reference ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "reference", "expected"),
    [
        ("relative", "Patient/123", ("Patient", "123", "")),
        ("relative with dots and dashes", "Observation/bp-1.2", ("Observation", "bp-1.2", "")),
        ("versioned", "Patient/123/_history/2", ("Patient", "123", "")),
        ("absolute", "http://x/fhir/Patient/123", ("Patient", "123", "http://x/fhir/Patient/123")),
        (
            "absolute versioned",
            "https://x/fhir/Patient/123/_history/7",
            ("Patient", "123", "https://x/fhir/Patient/123"),
        ),
        ("canonical with version", "http://x/ValueSet/y|1.0", ("", "", "http://x/ValueSet/y|1.0")),
        ("absolute, not a resource", "http://x/docs/readme", ("", "", "http://x/docs/readme")),
        ("contained", "#med1", None),
        ("urn uuid", "urn:uuid:3fdc72f4-a11d-4a9d-9260-a9f745779e1d", None),
        ("urn oid", "urn:oid:1.2.3", None),
        ("conditional", "Patient?identifier=http://x|1", None),
        ("type only", "Patient", None),
        ("lower-case type", "patient/123", None),
        ("relative with a base path", "fhir/Patient/123", None),
        ("id too long", "Patient/" + "x" * 65, None),
        ("empty", "", None),
    ],
)
def test_parse_reference(_case, reference, expected):
    assert parse_reference(reference) == expected


# --- evaluate_path -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "path", "expected"),
    [
        ("top-level primitive", "Patient.gender", ["female"]),
        ("arrays flattened at each step", "Patient.name.given", ["Amy", "V.", "Amy", "V."]),
        ("nested object", "Patient.communication.language.coding.code", ["en-US"]),
        ("missing element", "Patient.deceased", []),
        ("Resource root", "Resource.id", ["example"]),
        ("path of another type", "Observation.status", []),
        ("where filter", "Patient.telecom.where(system='email').value", ["amy.shaw@example.com"]),
        ("where with no match", "Patient.telecom.where(system='fax')", []),
    ],
)
def test_evaluate_path(_case, path, expected):
    assert evaluate_path(US_CORE_PATIENT, path) == expected


CHOICES = res(
    "Observation",
    effectivePeriod={"start": "2020-01-01"},
    valueCodeableConcept={"text": "positive"},
    component=[{"valueQuantity": {"value": 1}}, {"valueString": "high"}, {"valueBoolean": False}],
    extension=[{"url": "http://x.org/a.b", "valueCode": "yes"}, {"url": "http://x.org/c", "valueCode": "no"}],
)


@pytest.mark.parametrize(
    ("_case", "path", "expected"),
    [
        ("choice named without [x]", "Observation.effective", [{"start": "2020-01-01"}]),
        ("choice across array items", "Observation.component.value", [{"value": 1}, "high", False]),
        ("ofType keeps one type", "Observation.component.value.ofType(string)", ["high"]),
        ("as keeps one type", "Observation.component.value.as(boolean)", [False]),
        ("ofType with no match", "Observation.value.ofType(Quantity)", []),
        ("path after ofType", "Observation.value.ofType(CodeableConcept).text", ["positive"]),
        ("concrete choice key", "Observation.valueCodeableConcept.text", ["positive"]),
        ("where on a dotted URL", "Observation.extension.where(url='http://x.org/a.b').value", ["yes"]),
    ],
)
def test_evaluate_path_choice_types(_case, path, expected):
    assert evaluate_path(CHOICES, path) == expected


@pytest.mark.parametrize(
    ("_case", "path"),
    [
        ("function outside the subset", "Observation.code.first()"),
        ("resolve", "Observation.subject.where(resolve() is Patient)"),
        ("empty step", "Observation..code"),
    ],
)
def test_evaluate_path_rejects_unsupported_steps(_case, path):
    with pytest.raises(ValueError):
        evaluate_path(CHOICES, path)


# --- Tokens ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "resource", "param", "expected"),
    [
        (
            "CodeableConcept: each coding",
            res(
                "Condition",
                code={"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}, {"code": "E11"}]},
            ),
            "code",
            [("http://snomed.info/sct", "44054006"), ("", "E11")],
        ),
        ("CodeableConcept with text only", res("Condition", code={"text": "Diabetes"}), "code", []),
        (
            "Coding",
            res(
                "DocumentReference",
                content=[
                    {
                        "format": {
                            "system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
                            "code": "urn:ihe:pcc:xphr:2007",
                        }
                    }
                ],
            ),
            "format",
            [("http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode", "urn:ihe:pcc:xphr:2007")],
        ),
        (
            "Identifier",
            res("Patient", identifier=[{"system": "urn:oid:1.2.36", "value": "MRN-7"}, {"value": "A1"}]),
            "identifier",
            [("urn:oid:1.2.36", "MRN-7"), ("", "A1")],
        ),
        (
            "masterIdentifier and identifier",
            res(
                "DocumentReference",
                masterIdentifier={"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.3.6"},
                identifier=[{"value": "doc-1"}],
            ),
            "identifier",
            [("urn:ietf:rfc:3986", "urn:oid:1.3.6"), ("", "doc-1")],
        ),
        (
            "ContactPoint: value without system",
            res(
                "Practitioner",
                telecom=[{"system": "phone", "value": "555-0100"}, {"system": "email", "value": "a@b.org"}],
            ),
            "telecom",
            [("", "555-0100"), ("", "a@b.org")],
        ),
        (
            "email filters by ContactPoint.system",
            res(
                "Practitioner",
                telecom=[{"system": "phone", "value": "555-0100"}, {"system": "email", "value": "a@b.org"}],
            ),
            "email",
            [("", "a@b.org")],
        ),
        (
            "phone filters by ContactPoint.system",
            res(
                "PractitionerRole",
                telecom=[{"system": "phone", "value": "555-0100"}, {"system": "fax", "value": "555-0199"}],
            ),
            "phone",
            [("", "555-0100")],
        ),
        ("code primitive", res("Patient", gender="other"), "gender", [("", "other")]),
        ("boolean true", res("Group", actual=True), "actual", [("", "true")]),
        ("boolean false", res("Patient", active=False), "active", [("", "false")]),
        ("string primitive", res("Medication", batch={"lotNumber": "L-42"}), "lot-number", [("", "L-42")]),
        (
            "choice value CodeableConcept",
            res(
                "Observation",
                valueCodeableConcept={"coding": [{"system": "http://snomed.info/sct", "code": "260385009"}]},
            ),
            "value-concept",
            [("http://snomed.info/sct", "260385009")],
        ),
        (
            "choice of another type is not a concept",
            res("Observation", valueString="negative"),
            "value-concept",
            [],
        ),
        (
            "medication code, not the reference",
            res("MedicationRequest", medicationReference=ref("Medication/m1")),
            "code",
            [],
        ),
        (
            "Group characteristic value boolean",
            res(
                "Group", characteristic=[{"code": {"text": "smoker"}, "valueBoolean": True, "exclude": False}]
            ),
            "value",
            [("", "true")],
        ),
        (
            "code truncated to the column",
            res("Condition", code={"coding": [{"system": "s" * 300, "code": "c" * 300}]}),
            "code",
            [("s" * 255, "c" * 255)],
        ),
        (
            "duplicates removed",
            res(
                "Condition",
                category=[
                    {"coding": [{"code": "problem-list-item"}]},
                    {"coding": [{"code": "problem-list-item"}]},
                ],
            ),
            "category",
            [("", "problem-list-item")],
        ),
    ],
)
def test_token_values(_case, resource, param, expected):
    assert values_of(resource, "tokens", param) == expected


# --- Strings -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "resource", "param", "expected"),
    [
        (
            "HumanName: every part",
            res(
                "Practitioner",
                name=[
                    {
                        "text": "Dr. José Núñez Jr.",
                        "family": "Núñez",
                        "given": ["José", "María"],
                        "prefix": ["Dr."],
                        "suffix": ["Jr."],
                    }
                ],
            ),
            "name",
            [
                ("nunez", "Núñez"),
                ("jose", "José"),
                ("maria", "María"),
                ("dr.", "Dr."),
                ("jr.", "Jr."),
                ("dr. jose nunez jr.", "Dr. José Núñez Jr."),
            ],
        ),
        (
            "family only",
            res("Patient", name=[{"family": "O'Brien", "given": ["Seán"]}]),
            "family",
            [("o'brien", "O'Brien")],
        ),
        (
            "given",
            res("Patient", name=[{"family": "X", "given": ["Seán", "  Óg "]}]),
            "given",
            [("sean", "Seán"), ("og", "  Óg ")],
        ),
        (
            "Address: every part",
            res(
                "Location",
                address={
                    "line": ["1 Rue de l'Église", "Bât. B"],
                    "city": "Québec",
                    "district": "Capitale",
                    "state": "QC",
                    "postalCode": "G1R 4S9",
                    "country": "CA",
                    "text": "1 Rue de l'Église, Québec",
                },
            ),
            "address",
            [
                ("1 rue de l'eglise, quebec", "1 Rue de l'Église, Québec"),
                ("1 rue de l'eglise", "1 Rue de l'Église"),
                ("bat. b", "Bât. B"),
                ("quebec", "Québec"),
                ("capitale", "Capitale"),
                ("qc", "QC"),
                ("g1r 4s9", "G1R 4S9"),
                ("ca", "CA"),
            ],
        ),
        (
            "address-city",
            res("Organization", address=[{"city": "MOUNDS"}, {"city": "Tulsa"}]),
            "address-city",
            [("mounds", "MOUNDS"), ("tulsa", "Tulsa")],
        ),
        (
            "name and alias",
            res("Organization", name="Hôpital Central", alias=["HC"]),
            "name",
            [("hopital central", "Hôpital Central"), ("hc", "HC")],
        ),
        (
            "value-string: string and CodeableConcept.text",
            res("Observation", valueCodeableConcept={"coding": [{"code": "x"}], "text": "Trace"}),
            "value-string",
            [("trace", "Trace")],
        ),
        ("value-string ignores dateTime", res("Observation", valueDateTime="2020-01-01"), "value-string", []),
        ("onset-info", res("Condition", onsetString="Childhood"), "onset-info", [("childhood", "Childhood")]),
        ("blank string skipped", res("Immunization", lotNumber="   "), "lot-number", []),
        (
            "truncated to the column",
            res("Device", udiCarrier=[{"deviceIdentifier": "É" * 300}]),
            "udi-di",
            [("e" * 255, "É" * 255)],
        ),
        (
            "device-name from name and type",
            res(
                "Device",
                deviceName=[{"name": "Pump", "type": "user-friendly-name"}],
                type={"coding": [{"display": "Infusion pump"}], "text": "IV pump"},
            ),
            "device-name",
            [("pump", "Pump"), ("infusion pump", "Infusion pump"), ("iv pump", "IV pump")],
        ),
    ],
)
def test_string_values(_case, resource, param, expected):
    assert values_of(resource, "strings", param) == expected


# --- Dates -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "resource", "param", "expected"),
    [
        (
            "date",
            res("Patient", birthDate="1987-02"),
            "birthdate",
            [(utc(1987, 2, 1), utc(1987, 2, 28, 23, 59, 59, END))],
        ),
        (
            "choice dateTime with offset",
            res("Observation", effectiveDateTime="2020-03-04T01:00:00+02:00"),
            "date",
            [(utc(2020, 3, 3, 23), utc(2020, 3, 3, 23, 0, 0, END))],
        ),
        (
            "choice instant",
            res("Observation", effectiveInstant="2020-03-04T01:00:00.5Z"),
            "date",
            [(utc(2020, 3, 4, 1, 0, 0, 500_000), utc(2020, 3, 4, 1, 0, 0, 599_999))],
        ),
        (
            "Period with both ends",
            res("Encounter", period={"start": "2020-01-01T08:00:00Z", "end": "2020-01-03"}),
            "date",
            [(utc(2020, 1, 1, 8), utc(2020, 1, 3, 23, 59, 59, END))],
        ),
        (
            "Period open at the end",
            res("CarePlan", period={"start": "2020-05"}),
            "date",
            [(utc(2020, 5, 1), None)],
        ),
        (
            "Period open at the start",
            res("CareTeam", period={"end": "2020"}),
            "date",
            [(None, utc(2020, 12, 31, 23, 59, 59, END))],
        ),
        ("empty Period skipped", res("CareTeam", period={}), "date", []),
        (
            "Timing events",
            res("Observation", effectiveTiming={"event": ["2020-01-01", "2020-01-02"]}),
            "date",
            [whole_day(2020, 1, 1), whole_day(2020, 1, 2)],
        ),
        (
            "dosage timing events",
            res("MedicationRequest", dosageInstruction=[{"timing": {"event": ["2021-06-01T09:00:00Z"]}}]),
            "date",
            [(utc(2021, 6, 1, 9), utc(2021, 6, 1, 9, 0, 0, END))],
        ),
        (
            "onset dateTime",
            res("Condition", onsetDateTime="2019"),
            "onset-date",
            [(utc(2019, 1, 1), utc(2019, 12, 31, 23, 59, 59, END))],
        ),
        (
            "onset Period",
            res("Condition", onsetPeriod={"start": "2019-03-01"}),
            "onset-date",
            [(utc(2019, 3, 1), None)],
        ),
        ("onset Age skipped", res("Condition", onsetAge={"value": 40, "unit": "a"}), "onset-date", []),
        ("onset string skipped", res("Condition", onsetString="2019"), "onset-date", []),
        (
            "abatement dateTime",
            res("Condition", abatementDateTime="2021-02-03"),
            "abatement-date",
            [whole_day(2021, 2, 3)],
        ),
        (
            "recorded-date",
            res("Condition", recordedDate="2021-02-03"),
            "recorded-date",
            [whole_day(2021, 2, 3)],
        ),
        (
            "asserted-date extension",
            res(
                "Condition",
                extension=[
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/condition-assertedDate",
                        "valueDateTime": "2020-10-10",
                    }
                ],
            ),
            "asserted-date",
            [whole_day(2020, 10, 10)],
        ),
        (
            "authoredon",
            res("MedicationRequest", authoredOn="2008-07"),
            "authoredon",
            [(utc(2008, 7, 1), utc(2008, 7, 31, 23, 59, 59, END))],
        ),
        (
            "target-date from dueDate",
            res("Goal", target=[{"dueDate": "2016-04-05"}, {"dueDuration": {"value": 1}}]),
            "target-date",
            [whole_day(2016, 4, 5)],
        ),
        ("occurrence string skipped", res("Immunization", occurrenceString="last spring"), "date", []),
        (
            "DocumentReference.date instant",
            res("DocumentReference", date="2005-12-24T09:43:41+11:00"),
            "date",
            [(utc(2005, 12, 23, 22, 43, 41), utc(2005, 12, 23, 22, 43, 41, END))],
        ),
        (
            "DocumentReference period is context.period",
            res("DocumentReference", context={"period": {"start": "2004-12-23"}}),
            "period",
            [(utc(2004, 12, 23), None)],
        ),
        (
            "Provenance recorded",
            res("Provenance", recorded="2015-06-27T08:39:24Z"),
            "recorded",
            [(utc(2015, 6, 27, 8, 39, 24), utc(2015, 6, 27, 8, 39, 24, END))],
        ),
        ("invalid date skipped", res("Patient", birthDate="02/20/1987"), "birthdate", []),
    ],
)
def test_date_values(_case, resource, param, expected):
    assert values_of(resource, "dates", param) == expected


# --- References --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "resource", "param", "expected"),
    [
        ("relative", res("Observation", subject=ref("Patient/p1")), "patient", [("Patient", "p1", "")]),
        (
            "relative, wider targets",
            res("Observation", subject=ref("Patient/p1")),
            "subject",
            [("Patient", "p1", "")],
        ),
        (
            "absolute",
            res("Observation", subject=ref("https://ehr.example/fhir/Patient/p1")),
            "patient",
            [("Patient", "p1", "https://ehr.example/fhir/Patient/p1")],
        ),
        (
            "versioned",
            res("Provenance", target=[ref("Observation/o1/_history/3")]),
            "target",
            [("Observation", "o1", "")],
        ),
        ("contained skipped", res("MedicationRequest", medicationReference=ref("#med")), "medication", []),
        (
            "urn:uuid skipped",
            res("Observation", subject=ref("urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a")),
            "subject",
            [],
        ),
        (
            "identifier-only reference skipped",
            res("Observation", subject={"identifier": {"value": "123"}}),
            "subject",
            [],
        ),
        ("wrong target type dropped", res("Observation", subject=ref("Group/g1")), "patient", []),
        (
            "right type for subject",
            res("Observation", subject=ref("Group/g1")),
            "subject",
            [("Group", "g1", "")],
        ),
        ("type not allowed by R4", res("Condition", subject=ref("Device/d1")), "subject", []),
        ("any type allowed", res("Provenance", target=[ref("Goal/g1")]), "target", [("Goal", "g1", "")]),
        (
            "absolute URL of unknown type kept by URL",
            res("Observation", subject=ref("http://x/people/42")),
            "patient",
            [("", "", "http://x/people/42")],
        ),
        (
            "canonical element by URL only",
            res("CarePlan", instantiatesCanonical=["http://example.org/PlanDefinition/p|2.0"]),
            "instantiates-canonical",
            [("", "", "http://example.org/PlanDefinition/p|2.0")],
        ),
        (
            "Provenance patient from targets",
            res("Provenance", target=[ref("Patient/p1/_history/1"), ref("Observation/o1")]),
            "patient",
            [("Patient", "p1", "")],
        ),
        (
            "Encounter practitioner only practitioners",
            res(
                "Encounter",
                participant=[
                    {"individual": ref("Practitioner/d1")},
                    {"individual": ref("PractitionerRole/r1")},
                ],
            ),
            "practitioner",
            [("Practitioner", "d1", "")],
        ),
        (
            "Group member",
            res("Group", member=[{"entity": ref("Patient/p1")}, {"entity": ref("Patient/p2")}]),
            "member",
            [("Patient", "p1", ""), ("Patient", "p2", "")],
        ),
        (
            "DocumentReference relatesto",
            res("DocumentReference", relatesTo=[{"code": "replaces", "target": ref("DocumentReference/d0")}]),
            "relatesto",
            [("DocumentReference", "d0", "")],
        ),
        (
            "url truncated to the column",
            res("CarePlan", instantiatesCanonical=["http://x/" + "a" * 600]),
            "instantiates-canonical",
            [("", "", ("http://x/" + "a" * 600)[:512])],
        ),
    ],
)
def test_reference_values(_case, resource, param, expected):
    assert values_of(resource, "references", param) == expected


# --- Quantities, numbers, URIs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "resource", "param", "expected"),
    [
        (
            "float value",
            res(
                "Observation",
                valueQuantity={"value": 6.3, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"},
            ),
            "value-quantity",
            [(Decimal("6.3"), UCUM, "mmol/L", "mmol/L")],
        ),
        (
            "Decimal keeps its digits",
            res("Observation", valueQuantity={"value": Decimal("1.50"), "unit": "g"}),
            "value-quantity",
            [(Decimal("1.50"), "", "", "g")],
        ),
        (
            "integer value",
            res("Encounter", length={"value": 3, "system": UCUM, "code": "d"}),
            "length",
            [(Decimal(3), UCUM, "d", "")],
        ),
        (
            "Age onset",
            res("Condition", onsetAge={"value": 52, "system": UCUM, "code": "a", "unit": "years"}),
            "onset-age",
            [(Decimal(52), UCUM, "a", "years")],
        ),
        ("Range onset skipped", res("Condition", onsetRange={"low": {"value": 1}}), "onset-age", []),
        ("value of another type skipped", res("Observation", valueInteger=5), "value-quantity", []),
        ("no value skipped", res("Observation", valueQuantity={"unit": "g"}), "value-quantity", []),
        ("boolean value skipped", res("Observation", valueQuantity={"value": True}), "value-quantity", []),
        (
            "too large for the column skipped",
            res("Observation", valueQuantity={"value": 1e25}),
            "value-quantity",
            [],
        ),
        (
            "combo includes components",
            res(
                "Observation",
                valueQuantity={"value": 1},
                component=[{"valueQuantity": {"value": 2}}, {"valueString": "x"}],
            ),
            "combo-value-quantity",
            [(Decimal(1), "", "", ""), (Decimal(2), "", "", "")],
        ),
    ],
)
def test_quantity_values(_case, resource, param, expected):
    assert values_of(resource, "quantities", param) == expected


@pytest.mark.parametrize(
    ("_case", "quantity", "expected"),
    [
        ("integer", 12, [(Decimal(12),)]),
        ("float", 2.5, [(Decimal("2.5"),)]),
        ("Decimal", Decimal("0.10"), [(Decimal("0.10"),)]),
        ("boolean skipped", True, []),
        ("string skipped", "12", []),
    ],
)
def test_number_values(monkeypatch, _case, quantity, expected):
    # given a number parameter (R4 defines none on the supported types, so the test registers one)
    param = SearchParam("quantity", ParamType.NUMBER, ("Group.quantity",))
    monkeypatch.setitem(searchparams.REGISTRY, "Group", {**searchparams.REGISTRY["Group"], "quantity": param})
    # when / then
    assert values_of(res("Group", quantity=quantity), "numbers", "quantity") == expected


@pytest.mark.parametrize(
    ("_case", "resource", "param", "expected"),
    [
        (
            "uri",
            res("Device", url="http://device.example/pump/7"),
            "url",
            [("http://device.example/pump/7",)],
        ),
        (
            "url inside an array",
            res(
                "DocumentReference",
                content=[{"attachment": {"url": "Binary/1"}}, {"attachment": {"url": "http://x/a.pdf"}}],
            ),
            "location",
            [("Binary/1",), ("http://x/a.pdf",)],
        ),
        (
            "uri array",
            res("CarePlan", instantiatesUri=["http://x/protocol"]),
            "instantiates-uri",
            [("http://x/protocol",)],
        ),
        ("truncated to the column", res("Device", url="u" * 600), "url", [("u" * 512,)]),
    ],
)
def test_uri_values(_case, resource, param, expected):
    assert values_of(resource, "uris", param) == expected


# --- Compartments ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "resource", "expected"),
    [
        ("Patient is in its own compartment", res("Patient", id="p1"), {"p1"}),
        (
            "Patient link",
            res(
                "Patient",
                id="p1",
                link=[
                    {"other": ref("Patient/p0"), "type": "replaces"},
                    {"other": ref("RelatedPerson/r1"), "type": "seealso"},
                ],
            ),
            {"p1", "p0"},
        ),
        ("Patient without id", res("Patient"), set()),
        (
            "Observation subject and performer",
            res(
                "Observation",
                subject=ref("Patient/p1"),
                performer=[ref("Patient/p2"), ref("Practitioner/d1")],
            ),
            {"p1", "p2"},
        ),
        ("Observation about a group", res("Observation", subject=ref("Group/g1")), set()),
        (
            "absolute reference not trusted",
            res("Observation", subject=ref("http://other/fhir/Patient/p1")),
            set(),
        ),
        ("versioned reference", res("Encounter", subject=ref("Patient/p1/_history/4")), {"p1"}),
        (
            "Condition asserter",
            res("Condition", subject=ref("Patient/p1"), asserter=ref("Patient/p2")),
            {"p1", "p2"},
        ),
        (
            "AllergyIntolerance recorder",
            res("AllergyIntolerance", patient=ref("Patient/p1"), recorder=ref("Patient/p1")),
            {"p1"},
        ),
        (
            "MedicationRequest requester not a compartment link",
            res("MedicationRequest", subject=ref("Patient/p1"), requester=ref("Patient/p2")),
            {"p1"},
        ),
        (
            "DocumentReference author",
            res("DocumentReference", subject=ref("Patient/p1"), author=[ref("Patient/p3")]),
            {"p1", "p3"},
        ),
        (
            "CareTeam participant",
            res("CareTeam", subject=ref("Patient/p1"), participant=[{"member": ref("Patient/p4")}]),
            {"p1", "p4"},
        ),
        (
            "Provenance target",
            res("Provenance", target=[ref("Patient/p1/_history/2"), ref("Observation/o1")]),
            {"p1"},
        ),
        (
            "Group member",
            res("Group", member=[{"entity": ref("Patient/p1")}, {"entity": ref("Device/d1")}]),
            {"p1"},
        ),
        ("Device patient (US Core)", res("Device", patient=ref("Patient/p1")), {"p1"}),
        ("Practitioner has none", res("Practitioner", id="d1"), set()),
        ("Medication has none", res("Medication", id="m1"), set()),
        ("unsupported type", res("Basic", subject=ref("Patient/p1")), set()),
    ],
)
def test_patient_compartments(_case, resource, expected):
    assert patient_compartments(resource) == expected
    assert extract_index(resource).compartments == expected


# --- Whole resources ---------------------------------------------------------------------------------------


def test_blood_pressure_observation():
    # given a US Core blood pressure Observation / when it is indexed
    entries = extract_index(BLOOD_PRESSURE)

    # then
    panel, systolic, diastolic = (LOINC, "85354-9"), (LOINC, "8480-6"), (LOINC, "8462-4")
    assert Counter(entries.tokens) == Counter(
        [
            TokenValue("status", "", "final"),
            TokenValue("category", OBS_CATEGORY, "vital-signs"),
            TokenValue("code", *panel),
            TokenValue("component-code", *systolic),
            TokenValue("component-code", *diastolic),
            TokenValue("combo-code", *panel),
            TokenValue("combo-code", *systolic),
            TokenValue("combo-code", *diastolic),
        ]
    )
    assert entries.dates == [DateValue("date", utc(1999, 7, 2), utc(1999, 7, 2, 23, 59, 59, END))]
    assert Counter(entries.references) == Counter(
        [
            ReferenceValue("patient", "Patient", "example", ""),
            ReferenceValue("subject", "Patient", "example", ""),
            ReferenceValue("encounter", "Encounter", "example-1", ""),
            ReferenceValue("performer", "Practitioner", "practitioner-1", ""),
        ]
    )
    mmhg = (UCUM, "mm[Hg]", "mmHg")
    assert Counter(entries.quantities) == Counter(
        [
            QuantityValue("component-value-quantity", Decimal(109), *mmhg),
            QuantityValue("component-value-quantity", Decimal(44), *mmhg),
            QuantityValue("combo-value-quantity", Decimal(109), *mmhg),
            QuantityValue("combo-value-quantity", Decimal(44), *mmhg),
        ]
    )
    assert (entries.strings, entries.numbers, entries.uris) == ([], [], [])
    assert entries.compartments == {"example"}


def test_us_core_patient():
    # given a US Core Patient / when it is indexed
    entries = extract_index(US_CORE_PATIENT)

    # then
    assert Counter(entries.tokens) == Counter(
        [
            TokenValue("identifier", "http://hospital.smarthealthit.org", "1032702"),
            TokenValue("active", "", "true"),
            TokenValue("gender", "", "female"),
            TokenValue("address-use", "", "home"),
            TokenValue("telecom", "", "555-555-5555"),
            TokenValue("telecom", "", "amy.shaw@example.com"),
            TokenValue("email", "", "amy.shaw@example.com"),
            TokenValue("phone", "", "555-555-5555"),
            TokenValue("language", "urn:ietf:bcp:47", "en-US"),
        ]
    )
    strings = [(value.param, value.normalized, value.exact) for value in entries.strings]
    assert Counter(strings) == Counter(
        [
            ("name", "shaw", "Shaw"),
            ("name", "amy", "Amy"),
            ("name", "v.", "V."),
            ("name", "baxter", "Baxter"),
            ("name", "pharmd", "PharmD"),
            ("family", "shaw", "Shaw"),
            ("family", "baxter", "Baxter"),
            ("given", "amy", "Amy"),
            ("given", "v.", "V."),
            ("address", "49 meadow st", "49 Meadow St"),
            ("address", "mounds", "Mounds"),
            ("address", "ok", "OK"),
            ("address", "74047", "74047"),
            ("address", "us", "US"),
            ("address-city", "mounds", "Mounds"),
            ("address-state", "ok", "OK"),
            ("address-postalcode", "74047", "74047"),
            ("address-country", "us", "US"),
        ]
    )
    assert entries.dates == [DateValue("birthdate", utc(1987, 2, 20), utc(1987, 2, 20, 23, 59, 59, END))]
    assert (entries.references, entries.quantities, entries.numbers, entries.uris) == ([], [], [], [])
    assert entries.compartments == {"example"}


def test_unsupported_type_has_no_entries():
    entries = extract_index(res("Basic", id="b1", code={"coding": [{"code": "x"}]}))

    assert (entries.tokens, entries.strings, entries.dates, entries.references) == ([], [], [], [])
    assert (entries.quantities, entries.numbers, entries.uris, entries.compartments) == ([], [], [], set())


def test_column_params_are_not_indexed():
    entries = extract_index(res("Patient", id="p1", meta={"lastUpdated": "2024-01-01T00:00:00Z"}))

    assert entries.tokens == []
    assert entries.dates == []


# --- The registry ------------------------------------------------------------------------------------------


ALL_PARAMS = [(rt, param) for rt, params in searchparams.REGISTRY.items() for param in params.values()]


def test_supported_types_are_the_registry():
    assert tuple(searchparams.REGISTRY) == searchparams.SUPPORTED_TYPES
    assert len(searchparams.SUPPORTED_TYPES) == 21


@pytest.mark.parametrize("resource_type", searchparams.SUPPORTED_TYPES)
def test_supported_type_loads_in_r4b(resource_type):
    assert get_fhir_model_class(resource_type).get_resource_type() == resource_type


@pytest.mark.parametrize(
    ("resource_type", "param"), ALL_PARAMS, ids=[f"{rt}.{p.name}" for rt, p in ALL_PARAMS]
)
def test_registered_param_is_well_formed(resource_type, param):
    assert param.paths
    assert all(path.split(".")[0] in (resource_type, "Resource") for path in param.paths)
    assert all(evaluate_path(res(resource_type), path) == [] for path in param.paths)  # parses
    assert param.description
    assert not param.is_column
    assert param.type in ParamType
    if param.type != ParamType.REFERENCE:
        assert param.targets == ()


@pytest.mark.parametrize(
    ("resource_type", "names"),
    list(searchparams.COMPARTMENT_PARAMS.items()),
    ids=list(searchparams.COMPARTMENT_PARAMS),
)
def test_compartment_params_are_patient_references(resource_type, names):
    for name in names:
        param = searchparams.get_search_param(resource_type, name)
        assert param is not None
        assert param.type == ParamType.REFERENCE
        assert "Patient" in param.targets


@pytest.mark.parametrize(
    ("_case", "resource_type", "name", "paths", "targets"),
    [
        ("Observation patient is subject", "Observation", "patient", ("Observation.subject",), ("Patient",)),
        ("Observation date", "Observation", "date", ("Observation.effective",), ()),
        (
            "DocumentReference format",
            "DocumentReference",
            "format",
            ("DocumentReference.content.format",),
            (),
        ),
        (
            "DocumentReference period",
            "DocumentReference",
            "period",
            ("DocumentReference.context.period",),
            (),
        ),
        ("PractitionerRole role", "PractitionerRole", "role", ("PractitionerRole.code",), ()),
        (
            "Group member",
            "Group",
            "member",
            ("Group.member.entity",),
            ("Practitioner", "Group", "Device", "Medication", "Patient", "Substance", "PractitionerRole"),
        ),
        ("common _id", "Goal", "_id", ("Resource.id",), ()),
    ],
)
def test_selected_r4_definitions(_case, resource_type, name, paths, targets):
    param = searchparams.get_search_param(resource_type, name)

    assert (param.paths, param.targets) == (paths, targets)


def test_uri_and_number_value_types_are_exported():
    # the store writes these rows; keep their field order stable
    assert astuple(UriValue("p", "u")) == ("p", "u")
    assert astuple(NumberValue("p", Decimal(1))) == ("p", Decimal(1))
    assert astuple(StringValue("p", "n", "e")) == ("p", "n", "e")
