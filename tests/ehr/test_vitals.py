"""Recording vital signs: US Core shapes, validation next to the fields, and the new values everywhere at once."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from ehr.vitals import VitalsEntry, vital_observations
from fhirapi.store import resource_search
from tests.conftest import observation, put_resource

pytestmark = pytest.mark.django_db

WHEN = datetime(2024, 7, 1, 9, 30, tzinfo=UTC)


def stored_vitals(patient_id: str) -> list[dict]:
    result = resource_search(
        resource_type="Observation", params=[("patient", patient_id), ("category", "vital-signs")]
    )
    return [r.as_dict() for r in result.resources]


def test_observations_follow_us_core_vital_signs():
    entry = VitalsEntry(effective=WHEN, systolic=Decimal(120), diastolic=Decimal(80), heart_rate=Decimal(64),
                        temperature=Decimal("37.2"), spo2=Decimal(97), weight=Decimal("70.0"),
                        height=Decimal("175.0"))  # fmt: skip
    bodies = vital_observations(patient_id="p1", entry=entry, encounter_id="e1", performer="Practitioner/x")
    by_code = {b["code"]["coding"][0]["code"]: b for b in bodies}
    assert sorted(by_code) == ["29463-7", "39156-5", "59408-5", "8302-2", "8310-5", "85354-9", "8867-4"]
    bp = by_code["85354-9"]
    assert bp["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs",
        "display": "Vital Signs",
    }  # fmt: skip
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]) for c in bp["component"]] == [
        ("8480-6", {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}),
        ("8462-4", {"value": 80, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}),
    ]
    assert bp["subject"] == {"reference": "Patient/p1"}
    assert bp["encounter"] == {"reference": "Encounter/e1"}
    assert bp["performer"] == [{"reference": "Practitioner/x"}]
    assert bp["effectiveDateTime"] == "2024-07-01T09:30:00+00:00"
    assert by_code["8867-4"]["valueQuantity"]["code"] == "/min"
    assert by_code["8310-5"]["valueQuantity"] == {"value": 37.2, "unit": "°C", "system": "http://unitsofmeasure.org",
                                                  "code": "Cel"}  # fmt: skip
    assert [c["code"] for c in by_code["59408-5"]["code"]["coding"]] == ["59408-5", "2708-6"]
    assert by_code["39156-5"]["valueQuantity"] == {"value": 22.9, "unit": "kg/m2",
                                                   "system": "http://unitsofmeasure.org", "code": "kg/m2"}  # fmt: skip


def test_bmi_uses_the_latest_recorded_height(doc_client, chart_data):
    height = observation("ht-1", "pat-a", code="8302-2", value=160, when="2024-01-01T00:00:00Z")
    height["valueQuantity"] = {
        "value": 160,
        "unit": "cm",
        "system": "http://unitsofmeasure.org",
        "code": "cm",
    }
    put_resource(height)
    doc_client.post(
        reverse("ehr:vitals", args=["pat-a"]), {"effective": "2024-07-01T09:30", "weight": "64.0"}
    )
    bmi = [o for o in stored_vitals("pat-a") if o["code"]["coding"][0]["code"] == "39156-5"]
    assert [o["valueQuantity"]["value"] for o in bmi] == [25.0]


def test_valid_entry_is_stored_and_shown_in_chart_and_api(doc_client, chart_data, fhir):
    doc_client.post(reverse("ehr:encounter-select", args=["pat-a"]), {"encounter_id": "enc-2"})
    # when the clinician records a blood pressure and heart rate
    response = doc_client.post(reverse("ehr:vitals", args=["pat-a"]), {
        "effective": "2024-07-01T09:30", "systolic": "141", "diastolic": "91", "heart_rate": "77",
    })  # fmt: skip
    # then the chart shows them at once
    assert response.status_code == 302
    chart = doc_client.get(response["Location"])
    assert "Vital signs recorded (2 observations)." in chart.content.decode()
    # once: the message is gone when the chart is shown again
    assert "Vital signs recorded" not in doc_client.get(response["Location"]).content.decode()
    latest = {v.key: v.latest for v in chart.context["chart"].latest_vitals}
    assert latest["bp"] == "141/91 mmHg"
    assert latest["hr"] == "77 /min"
    # and so does an app with a patient-scoped token
    api = fhir("patient/Observation.rs", patient="pat-a")
    bundle = api.get(
        "Observation", {"patient": "pat-a", "code": "http://loinc.org|85354-9", "date": "2024-07-01"}
    )
    entries = [e["resource"] for e in bundle.json()["entry"]]
    assert [(e["encounter"]["reference"], e["performer"]) for e in entries] == [
        ("Encounter/enc-2", [{"reference": "Practitioner/pract-1"}])
    ]


@pytest.mark.parametrize(
    ("_case", "data", "field", "message"),
    [
        ("systolic too high", {"systolic": "300", "diastolic": "80"}, "systolic",
         "Outside the plausible range 50–260 mmHg: check the value and unit."),
        ("fahrenheit for celsius", {"temperature": "98.6"}, "temperature",
         "Outside the plausible range 30–45 °C: check the value and unit."),
        ("diastolic above systolic", {"systolic": "90", "diastolic": "95"}, "diastolic",
         "Diastolic pressure must be lower than systolic pressure."),
        ("half a blood pressure", {"systolic": "120"}, "diastolic", "Enter both systolic and diastolic pressure."),
        ("not a number", {"heart_rate": "fast"}, "heart_rate", "Enter a number."),
        ("future", {"heart_rate": "70", "effective": "2999-01-01T00:00"}, "effective",
         "The time cannot be in the future."),
    ],
)  # fmt: skip
def test_invalid_entry_shows_errors_next_to_fields_and_stores_nothing(doc_client, chart_data, _case, data, field,
                                                                      message):  # fmt: skip
    before = len(stored_vitals("pat-a"))
    response = doc_client.post(
        reverse("ehr:vitals", args=["pat-a"]), {"effective": "2024-07-01T09:30", **data}
    )
    assert response.status_code == 200
    assert response.context["form"].errors[field] == [message]
    html = response.content.decode()
    # the error sits under its own input, which points at it for screen readers
    assert f'<p class="field-error" id="id_{field}_error">{message}</p>' in html
    assert f'aria-describedby="id_{field}_helptext id_{field}_error"' in html or f'id_{field}_error"' in html
    assert 'aria-invalid="true"' in html
    assert len(stored_vitals("pat-a")) == before


def test_empty_form_asks_for_a_measurement(doc_client, chart_data):
    response = doc_client.post(reverse("ehr:vitals", args=["pat-a"]), {"effective": "2024-07-01T09:30"})
    assert response.context["form"].non_field_errors() == ["Enter at least one measurement."]


def test_form_page_has_labels_and_units(doc_client, chart_data):
    html = doc_client.get(reverse("ehr:vitals", args=["pat-a"])).content.decode()
    assert '<label for="id_systolic">Systolic</label>' in html
    assert "mmHg, 50–260" in html
    assert 'type="datetime-local"' in html


def test_vitals_for_unknown_patient_is_404(doc_client, db):
    assert doc_client.get(reverse("ehr:vitals", args=["nobody"])).status_code == 404
