"""Fixtures of the EHR tests: demo-like users, one well-filled chart, more patients, apps to launch."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from oauth2_provider.models import get_application_model

from ehr.services import user_ensure
from tests.conftest import observation, patient, put_resource

Application = get_application_model()
PASSWORD = "pw-ehr-test-1"
MRN = "http://hospital.example.org/mrn"
SNOMED = "http://snomed.info/sct"


def with_mrn(body: dict, mrn: str, birth_date: str, gender: str = "female") -> dict:
    return {**body, "identifier": [{"system": MRN, "value": mrn}], "birthDate": birth_date, "gender": gender}


def concept(code: str, display: str, system: str = SNOMED) -> dict:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def clinical(code: str) -> dict:
    system = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
    return {"coding": [{"system": system, "code": code}]}


def condition_clinical(code: str) -> dict:
    return {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": code}]}


def blood_pressure(oid: str, patient_id: str, systolic: int, diastolic: int, when: str) -> dict:
    body = observation(oid, patient_id, code="85354-9", when=when)
    del body["valueQuantity"]
    ucum = {"unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
    body["component"] = [
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": value, **ucum},
        }
        for code, value in (("8480-6", systolic), ("8462-4", diastolic))
    ]
    return body


@pytest.fixture
def chart_data(db):
    """Anna Smith (pat-a): allergy, problems, a medication, an immunization, two encounters, vitals, a lab."""
    put_resource(with_mrn(patient("pat-a", "Smith", "Anna"), "MRN100001", "1961-04-12"))
    put_resource(
        {
            "resourceType": "AllergyIntolerance",
            "id": "alg-1",
            "patient": {"reference": "Patient/pat-a"},
            "clinicalStatus": clinical("active"),
            "code": concept("91936005", "Penicillin allergy"),
            "reaction": [{"manifestation": [concept("271807003", "Skin rash")], "severity": "moderate"}],
        }
    )
    put_resource(
        {
            "resourceType": "AllergyIntolerance",
            "id": "alg-2",
            "patient": {"reference": "Patient/pat-a"},
            "clinicalStatus": clinical("resolved"),
            "code": concept("300913006", "Shellfish allergy"),
        }
    )
    put_resource(
        {
            "resourceType": "Condition",
            "id": "cond-1",
            "subject": {"reference": "Patient/pat-a"},
            "clinicalStatus": condition_clinical("active"),
            "code": concept("38341003", "Hypertension"),
            "onsetDateTime": "2015-03-01",
        }
    )
    put_resource(
        {
            "resourceType": "MedicationRequest",
            "id": "med-1",
            "status": "active",
            "intent": "order",
            "subject": {"reference": "Patient/pat-a"},
            "authoredOn": "2024-01-05",
            "medicationCodeableConcept": concept(
                "314076", "lisinopril 10 MG Oral Tablet", "http://www.nlm.nih.gov/research/umls/rxnorm"
            ),
            "dosageInstruction": [{"text": "1 tablet daily"}],
        }
    )
    put_resource(
        {
            "resourceType": "Immunization",
            "id": "imm-1",
            "status": "completed",
            "patient": {"reference": "Patient/pat-a"},
            "occurrenceDateTime": "2023-10-01",
            "vaccineCode": concept("158", "Influenza, injectable", "http://hl7.org/fhir/sid/cvx"),
        }
    )
    for eid, start in (("enc-1", "2024-05-01T09:00:00Z"), ("enc-2", "2024-06-10T14:00:00Z")):
        put_resource(
            {
                "resourceType": "Encounter",
                "id": eid,
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                    "display": "ambulatory",
                },
                "type": [concept("185349003", "Check-up")],
                "subject": {"reference": "Patient/pat-a"},
                "period": {"start": start, "end": start},
            }
        )
    put_resource(observation("hr-1", "pat-a", value=72, when="2024-05-01T10:00:00Z"))
    put_resource(observation("hr-2", "pat-a", value=80, when="2024-06-10T14:10:00Z"))
    put_resource(blood_pressure("bp-1", "pat-a", 128, 82, "2024-06-10T14:10:00Z"))
    lab = observation(
        "lab-1", "pat-a", code="2345-7", category="laboratory", value=130, when="2024-06-10T15:00:00Z"
    )
    lab["code"]["coding"][0]["display"] = "Glucose"
    lab["valueQuantity"] = {
        "value": 130,
        "unit": "mg/dL",
        "system": "http://unitsofmeasure.org",
        "code": "mg/dL",
    }
    lab["interpretation"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                          "code": "H", "display": "High"}]}]  # fmt: skip
    put_resource(lab)
    return "pat-a"


@pytest.fixture
def many_patients(db):
    """25 more patients, family names P00..P24, MRNs MRN2000xx, born 1990-01-xx."""
    for i in range(25):
        put_resource(
            with_mrn(patient(f"pat-{i}", f"P{i:02d}", "Test"), f"MRN2000{i:02d}", f"1990-01-{i + 1:02d}")
        )


@pytest.fixture
def clinician(db):
    return user_ensure(
        username="doc",
        password=PASSWORD,
        fhir_user="Practitioner/pract-1",
        first_name="Grace",
        last_name="Hopper",
    )


@pytest.fixture
def patient_user(db):
    return user_ensure(username="anna", password=PASSWORD, fhir_user="Patient/pat-a")


@pytest.fixture
def staff(db):
    return user_ensure(username="dev", password=PASSWORD, is_staff=True)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def doc_client(clinician):
    return client_for(clinician)


def make_app(client_id: str, *, mode: str = "embedded", audience: str = "clinician", enabled: bool = True,
             origin: str = "https://app.example") -> Application:  # fmt: skip
    return Application.objects.create(
        client_id=client_id, name=f"App {client_id}", client_type="public",
        authorization_grant_type="authorization-code", redirect_uris=f"{origin}/callback",
        launch_uri=f"{origin}/launch?x=1", allowed_scopes="launch openid fhirUser patient/*.rs",
        launch_mode=mode, audience=audience, enabled=enabled, logo_uri="https://cdn.example/logo.png",
    )  # fmt: skip


@pytest.fixture
def embedded_app(db):
    return make_app("embedded-app")


@pytest.fixture
def window_app(db):
    return make_app("window-app", mode="window", origin="https://window.example")


@pytest.fixture
def users_model():
    return get_user_model()
