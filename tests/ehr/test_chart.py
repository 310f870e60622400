"""The chart: banner with allergy alert, the clinical sections, vital trends, and the current encounter."""

import json

import pytest
from django.urls import reverse

from tests.conftest import patient, put_resource

pytestmark = pytest.mark.django_db


@pytest.fixture
def chart(doc_client, chart_data):
    response = doc_client.get(reverse("ehr:chart", args=[chart_data]))
    assert response.status_code == 200
    return response


def test_banner_shows_name_sex_age_birth_date_and_mrn(chart):
    patient = chart.context["patient"]
    assert (patient.name, patient.sex_label, patient.birth_date, patient.mrn) == (
        "Anna Smith", "Female", "1961-04-12", "MRN100001",
    )  # fmt: skip
    html = chart.content.decode()
    assert '<h1 class="banner-name"><a href="/patients/pat-a/">Anna Smith</a></h1>' in html
    assert f"<dd>{patient.age} y</dd>" in html


def test_banner_alerts_active_allergies_only(chart):
    assert chart.context["chart"].allergy_alert == ["Penicillin allergy"]
    assert '<p class="allergy-alert" role="alert">' in chart.content.decode()


def test_banner_says_no_known_allergies(doc_client, db):
    put_resource(patient("pat-n", "Nobody", "Nora"))
    html = doc_client.get(reverse("ehr:chart", args=["pat-n"])).content.decode()
    assert "No known allergies" in html
    assert "allergy-alert" not in html


def test_sections_list_the_record(chart):
    data = chart.context["chart"]
    assert [p.title for p in data.problems] == ["Hypertension"]
    assert [(m.title, m.status, m.detail) for m in data.medications] == [
        ("lisinopril 10 MG Oral Tablet", "active", "1 tablet daily")
    ]
    assert [a.title for a in data.allergies] == ["Penicillin allergy", "Shellfish allergy"]
    assert [(i.title, i.when) for i in data.immunizations] == [("Influenza, injectable", "2023-10-01")]
    assert [e.id for e in data.encounters] == ["enc-2", "enc-1"]
    assert [(lab.title, lab.status, lab.flag) for lab in data.labs] == [("Glucose", "130 mg/dL", "high")]
    html = chart.content.decode()
    for heading in ("Vital signs", "Problems", "Medications", "Allergies", "Immunizations", "Encounters",
                    "Recent lab results"):  # fmt: skip
        assert f">{heading}</h2>" in html


def test_vital_trends_are_plotted_from_observations(chart):
    data = json.loads(chart.content.decode().split('<script id="vital-data" type="application/json">')[1]
                      .split("</script>")[0])  # fmt: skip
    by_key = {v["key"]: v for v in data}
    assert by_key["hr"]["series"] == [{"name": "Heart rate", "data": [72.0, 80.0]}]
    assert by_key["bp"]["series"] == [
        {"name": "Systolic", "data": [128.0]},
        {"name": "Diastolic", "data": [82.0]},
    ]
    html = chart.content.decode()
    assert '<canvas id="vital-chart-hr"' in html
    assert "/static/ehr/vendor/chartjs/chart.umd.js" in html
    latest = {v.key: v.latest for v in chart.context["chart"].latest_vitals}
    assert latest == {"bp": "128/82 mmHg", "hr": "80 /min"}


def test_unknown_patient_is_404(doc_client, db):
    assert doc_client.get(reverse("ehr:chart", args=["nobody"])).status_code == 404


def test_choosing_the_current_encounter_is_remembered_per_patient(doc_client, chart_data):
    url = reverse("ehr:encounter-select", args=["pat-a"])
    # when the clinician makes enc-1 current
    response = doc_client.post(url, {"encounter_id": "enc-1"})
    assert response["Location"] == reverse("ehr:chart", args=["pat-a"])
    # then the chart shows it as current
    chart = doc_client.get(reverse("ehr:chart", args=["pat-a"]))
    assert chart.context["current_encounter"] == "enc-1"
    assert "Current ✓" in chart.content.decode()
    # and clearing it works too
    doc_client.post(url, {"encounter_id": ""})
    assert doc_client.get(reverse("ehr:chart", args=["pat-a"])).context["current_encounter"] is None


def test_another_patients_encounter_cannot_be_chosen(doc_client, chart_data):
    put_resource(patient("pat-b", "Other", "Olga"))
    response = doc_client.post(reverse("ehr:encounter-select", args=["pat-b"]), {"encounter_id": "enc-1"})
    assert response.status_code == 404


def test_encounter_choice_needs_post(doc_client, chart_data):
    assert doc_client.get(reverse("ehr:encounter-select", args=["pat-a"])).status_code == 405
