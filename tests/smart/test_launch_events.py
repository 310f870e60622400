"""The launch timeline: every step of a launch is recorded for the developer launcher, never a secret."""

import json

from smart.events import launch_events
from smart.launch import launch_create
from smart.models import LaunchEvent


def test_timeline_records_each_step_of_a_launch(smart_app, public_app, clinician, fhir_data):
    # given an EHR launch of a patient's chart
    launch = launch_create(client=public_app, user=clinician, patient_id="pat-1")
    smart = smart_app(public_app, user=clinician)

    # when the app authorizes, the user consents, the app gets a token and calls the FHIR API
    token = smart.tokens_for("launch openid fhirUser patient/Patient.rs", launch=launch.launch)
    headers = {
        "HTTP_AUTHORIZATION": f"Bearer {token['access_token']}",
        "HTTP_ACCEPT": "application/fhir+json",
    }
    smart.backend.get("/fhir/Patient/pat-1", **headers)
    smart.backend.get("/fhir/Observation?patient=pat-1", **headers)

    # then the timeline shows each step in order, with the FHIR calls' status codes and reasons
    events = list(launch_events(launch))
    assert [e.kind for e in events] == [
        "launch-created",
        "authorize-request",
        "consent",
        "token-issued",
        "fhir-call",
        "fhir-call",
    ]
    assert events[1].detail["launch"] == launch.launch
    assert "code_challenge" not in events[1].detail
    assert events[2].detail["allowed"] is True
    assert events[3].detail["patient"] == "pat-1"
    assert events[4].detail == {"method": "GET", "path": "/fhir/Patient/pat-1", "status": 200}
    assert events[5].detail["status"] == 403
    assert "Observation" in events[5].detail["reason"]
    # and nothing secret was recorded
    recorded = json.dumps([e.detail for e in events])
    assert token["access_token"] not in recorded
    assert token["id_token"] not in recorded


def test_timeline_records_authorize_errors(smart_app, public_app, clinician):
    launch = launch_create(client=public_app, user=clinician, patient_id="pat-1")
    smart = smart_app(public_app, user=clinician)
    smart.authorize("launch patient/*.rs", launch=launch.launch, aud="https://elsewhere.example/fhir")
    events = list(launch_events(launch))
    assert events[-1].kind == "authorize-error"
    assert events[-1].detail["error"] == "invalid_request"
    assert "aud" in events[-1].detail["error_description"]


def test_an_error_after_the_request_is_recorded_after_it(smart_app, public_app, clinician):
    # given a launch whose app asks only for a scope no one gets through /authorize
    launch = launch_create(client=public_app, user=clinician, patient_id="pat-1")
    smart = smart_app(public_app, user=clinician)

    # when it authorizes
    response = smart.authorize("system/Patient.rs", launch=launch.launch)

    # then it is refused, and the timeline shows the request, then the error
    assert "error=invalid_scope" in response["Location"]
    kinds = [e.kind for e in launch_events(launch)]
    assert kinds == ["launch-created", "authorize-request", "authorize-error"]


def test_the_timeline_starts_with_the_launch_as_the_ehr_made_it(public_app, clinician):
    # given an EHR launch nothing has used yet
    launch = launch_create(client=public_app, user=clinician, patient_id="pat-1", encounter_id="enc-1")

    # then its timeline holds its creation, read from the launch itself: one row written per launch
    (created,) = launch_events(launch)
    assert created.kind == "launch-created"
    assert created.created == launch.created
    assert created.detail == {"app": public_app.name, "user": clinician.get_username(), "patient": "pat-1",
                              "encounter": "enc-1", "need_patient_banner": True}  # fmt: skip
    assert not LaunchEvent.objects.filter(launch=launch).exists()

    # and a creation event stored by an earlier version is not shown twice
    LaunchEvent.objects.create(launch=launch, kind="launch-created", detail={"app": public_app.name})
    assert [e.kind for e in launch_events(launch)] == ["launch-created"]
