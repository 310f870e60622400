"""The developer launcher: staff only, launches any app as any user, shows the launch URL and its timeline."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from smart.events import launch_event_record
from smart.models import LaunchContext
from tests.ehr.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("_case", "who", "status"),
    [("anonymous", None, 302), ("clinician", "clinician", 403), ("patient", "patient_user", 403),
     ("staff", "staff", 200)],
)  # fmt: skip
def test_only_staff_may_use_it(request, _case, who, status):
    client = client_for(request.getfixturevalue(who)) if who else Client()
    for url in (reverse("ehr:dev-launcher"),):
        assert client.get(url).status_code == status


def test_staff_creates_a_launch_and_sees_its_exact_url(staff, clinician, chart_data, embedded_app):
    client = client_for(staff)
    page = client.get(reverse("ehr:dev-launcher"))
    assert 'value="embedded-app"' in page.content.decode()
    # when staff launch the app as the clinician for a patient and encounter, embedded
    response = client.post(reverse("ehr:dev-launcher"), {
        "client": "embedded-app", "user": "doc", "patient_id": "pat-a", "encounter_id": "enc-1", "mode": "embedded",
    })  # fmt: skip
    launch = LaunchContext.objects.get()
    assert (launch.user, launch.patient_id, launch.encounter_id, launch.need_patient_banner) == (
        clinician, "pat-a", "enc-1", False,
    )  # fmt: skip
    assert response["Location"] == reverse("ehr:dev-launch", args=[launch.pk])
    # then the launch page shows the URL the app will be opened with, and opens it in its panel
    detail = client.get(response["Location"])
    url = detail.context["launch_url"]
    assert parse_qs(urlsplit(url).query)["launch"] == [launch.launch]
    html = detail.content.decode()
    assert f'<code class="launch-url" id="launch-url">{url.replace("&", "&amp;")}</code>' in html
    assert 'target="dev-app-frame"' in html


def test_window_mode_opens_a_new_window(staff, chart_data, embedded_app):
    client = client_for(staff)
    client.post(reverse("ehr:dev-launcher"), {"client": "embedded-app", "user": "dev", "patient_id": "pat-a",
                                              "mode": "window"})  # fmt: skip
    launch = LaunchContext.objects.get()
    assert launch.need_patient_banner is True
    assert 'target="_blank"' in client.get(reverse("ehr:dev-launch", args=[launch.pk])).content.decode()


def test_timeline_lists_the_launchs_events_without_secrets(staff, clinician, chart_data, embedded_app):
    client = client_for(staff)
    client.post(reverse("ehr:dev-launcher"), {"client": "embedded-app", "user": "doc", "patient_id": "pat-a",
                                              "mode": "embedded"})  # fmt: skip
    launch = LaunchContext.objects.get()
    # given what smart and fhirapi recorded while the app ran
    launch_event_record(
        launch=launch,
        kind="token-issued",
        detail={"scope": "launch patient/*.rs", "patient": "pat-a", "access_token": "SECRET"},
    )
    launch_event_record(launch=launch, kind="fhir-call",
                        detail={"method": "GET", "path": "/fhir/Condition?patient=pat-a", "status": 403,
                                "reason": "The token does not allow reading Condition."})  # fmt: skip
    # then the timeline shows them in order, errors with their reason, and never a token
    response = client.get(reverse("ehr:dev-timeline", args=[launch.pk]))
    events = response.context["events"]
    assert [e.kind for e in events][-2:] == ["token-issued", "fhir-call"]
    html = response.content.decode()
    assert "SECRET" not in html
    assert "GET /fhir/Condition?patient=pat-a → 403 (The token does not allow reading Condition.)" in html
    assert 'class="timeline-event kind-fhir-call is-error"' in html


def test_invalid_form_shows_errors(staff, db):
    response = client_for(staff).post(reverse("ehr:dev-launcher"), {"client": "nope", "user": "nobody"})
    assert response.status_code == 200
    assert set(response.context["form"].errors) >= {"client", "user", "mode"}
    assert not LaunchContext.objects.exists()


def test_unknown_launch_is_404(staff, db):
    assert client_for(staff).get(reverse("ehr:dev-launch", args=[999])).status_code == 404
