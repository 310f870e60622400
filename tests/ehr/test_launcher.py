"""The chart's app launcher: buttons, the launch context it creates, the iframe or window it opens."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from smart.models import LaunchContext
from tests.ehr.conftest import make_app

pytestmark = pytest.mark.django_db

ISS = "http://127.0.0.1:8000/fhir"


def test_chart_shows_enabled_clinician_apps_with_logo_and_name(
    doc_client, chart_data, embedded_app, window_app
):
    make_app("patient-only", audience="patient")
    make_app("disabled", enabled=False)
    html = doc_client.get(reverse("ehr:chart", args=["pat-a"])).content.decode()
    assert 'data-client-id="embedded-app"' in html
    assert 'data-client-id="window-app"' in html
    assert 'data-client-id="patient-only"' not in html
    assert 'data-client-id="disabled"' not in html
    assert '<img src="https://cdn.example/logo.png"' in html
    assert "App embedded-app" in html
    # a window app's form opens its answer (a redirect to the app) in a new window
    assert 'action="/patients/pat-a/launch/window-app/"\n        target="_blank"' in html


def test_embedded_launch_creates_context_and_opens_the_app_in_the_panel(doc_client, clinician, chart_data,
                                                                         embedded_app):  # fmt: skip
    doc_client.post(reverse("ehr:encounter-select", args=["pat-a"]), {"encounter_id": "enc-2"})
    # when the clinician clicks the app's button
    response = doc_client.post(reverse("ehr:chart-launch", args=["pat-a", "embedded-app"]))
    # then a launch is recorded for this user, patient and encounter; the EHR shows its own banner
    launch = LaunchContext.objects.get()
    assert (launch.user, launch.patient_id, launch.encounter_id, launch.need_patient_banner) == (
        clinician, "pat-a", "enc-2", False,
    )  # fmt: skip
    assert launch.application == embedded_app
    # and the chart opens the app's launch URL, with iss and launch, in the sandboxed panel
    assert response["Location"] == reverse("ehr:chart", args=["pat-a"])
    chart = doc_client.get(response["Location"])
    src = chart.context["open_app"].url
    assert (
        src
        == f"https://app.example/launch?x=1&iss={ISS.replace(':', '%3A').replace('/', '%2F')}&launch={launch.launch}"
    )
    assert parse_qs(urlsplit(src).query) == {"x": ["1"], "iss": [ISS], "launch": [launch.launch]}
    html = chart.content.decode()
    assert f'src="{src.replace("&", "&amp;")}"' in html
    assert ('sandbox="allow-scripts allow-forms allow-same-origin allow-popups allow-popups-to-escape-sandbox '
            'allow-modals allow-downloads"') in html  # fmt: skip


def test_panel_shows_once_and_closes_on_reload_or_other_patient(
    doc_client, chart_data, many_patients, embedded_app
):
    doc_client.post(reverse("ehr:chart-launch", args=["pat-a", "embedded-app"]))
    # switching patient closes the app
    assert doc_client.get(reverse("ehr:chart", args=["pat-1"])).context["open_app"] is None
    assert doc_client.get(reverse("ehr:chart", args=["pat-a"])).context["open_app"] is None
    # relaunching starts a fresh launch
    doc_client.post(reverse("ehr:chart-launch", args=["pat-a", "embedded-app"]))
    doc_client.post(reverse("ehr:chart-launch", args=["pat-a", "embedded-app"]))
    chart = doc_client.get(reverse("ehr:chart", args=["pat-a"]))
    launches = list(LaunchContext.objects.order_by("created"))
    assert len(launches) == 3
    assert chart.context["open_app"].url.endswith(launches[-1].launch)


def test_window_launch_redirects_to_the_launch_url_with_banner_needed(doc_client, chart_data, window_app):
    response = doc_client.post(reverse("ehr:chart-launch", args=["pat-a", "window-app"]))
    launch = LaunchContext.objects.get()
    assert launch.need_patient_banner is True
    assert launch.encounter_id == ""
    assert response.status_code == 302
    assert parse_qs(urlsplit(response["Location"]).query) == {
        "x": ["1"],
        "iss": [ISS],
        "launch": [launch.launch],
    }
    assert response["Location"].startswith("https://window.example/launch?")


def test_launch_needs_post_with_csrf(clinician, chart_data, embedded_app):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician)
    url = reverse("ehr:chart-launch", args=["pat-a", "embedded-app"])
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403
    assert not LaunchContext.objects.exists()


@pytest.mark.parametrize(
    ("_case", "patient_id", "client_id"),
    [("unknown patient", "nobody", "embedded-app"), ("unknown app", "pat-a", "nope"),
     ("patient app", "pat-a", "patient-only"), ("disabled app", "pat-a", "disabled")],
)  # fmt: skip
def test_launch_refuses(doc_client, chart_data, embedded_app, _case, patient_id, client_id):
    make_app("patient-only", audience="patient")
    make_app("disabled", enabled=False)
    response = doc_client.post(reverse("ehr:chart-launch", args=[patient_id, client_id]))
    assert response.status_code == 404
    assert not LaunchContext.objects.exists()


def test_anonymous_launch_goes_to_login(chart_data, embedded_app):
    response = Client().post(reverse("ehr:chart-launch", args=["pat-a", "embedded-app"]))
    assert response["Location"].startswith(reverse("ehr:login"))
    assert not LaunchContext.objects.exists()
