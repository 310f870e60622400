"""The demo registrations of the sample app, and the sample app's own files as served."""

import pytest
from django.core.management import call_command
from django.test import Client
from oauth2_provider.models import get_application_model

from ehr.demo.apps import SAMPLE_APP_SCOPES, demo_apps_register, loopback_twin

Application = get_application_model()
pytestmark = pytest.mark.django_db


def test_registers_three_public_clients_idempotently():
    first = demo_apps_register("http://127.0.0.1:8000")
    again = demo_apps_register("http://127.0.0.1:8000")
    assert [a.pk for a in first] == [a.pk for a in again]
    apps = {a.client_id: a for a in Application.objects.all()}
    assert set(apps) == {"sample-smart-app", "sample-smart-app-window", "sample-smart-app-patient"}
    embedded = apps["sample-smart-app"]
    assert (embedded.launch_mode, embedded.audience, embedded.client_type) == (
        "embedded",
        "clinician",
        "public",
    )
    assert embedded.allowed_scopes == SAMPLE_APP_SCOPES
    assert embedded.launch_uri == "http://127.0.0.1:8000/sample-app/launch.html?client_id=sample-smart-app"
    assert embedded.redirect_uris.split() == [
        "http://127.0.0.1:8000/sample-app/index.html", "http://localhost:8000/sample-app/index.html",
    ]  # fmt: skip
    assert (apps["sample-smart-app-window"].launch_mode, apps["sample-smart-app-window"].name) == (
        "window", "Sample app (window)",
    )  # fmt: skip
    assert apps["sample-smart-app-patient"].audience == "patient"


def test_window_apps_may_live_on_another_origin():
    embedded, window, for_patients = demo_apps_register("http://127.0.0.1:8000", "http://localhost:8000")
    assert window.launch_uri.startswith("http://localhost:8000/sample-app/launch.html")
    assert window.logo_uri == "http://localhost:8000/sample-app/logo.svg"
    assert for_patients.launch_uri.startswith("http://localhost:8000/sample-app/launch.html")
    # a cross-site iframe would not get the EHR's SameSite=Lax session at /authorize: embedded stays same-origin
    assert embedded.launch_uri.startswith("http://127.0.0.1:8000/sample-app/launch.html")


def test_loopback_twin():
    assert loopback_twin("http://127.0.0.1:8000") == "http://localhost:8000"
    assert loopback_twin("http://localhost") == "http://127.0.0.1"
    assert loopback_twin("https://ehr.example.org") is None


def test_seed_demo_registers_the_sample_app(settings):
    call_command(
        "seed_demo", patients=1, password="pw-seed-123", trust=True, base_url="http://127.0.0.1:8000"
    )
    assert Application.objects.filter(client_id="sample-smart-app", enabled=True).exists()


@pytest.mark.parametrize("path", ["launch.html", "index.html", "app.js", "launch.js", "app.css", "logo.svg",
                                  "vendor/fhirclient/fhir-client.min.js", "vendor/fhirclient/LICENSE"])  # fmt: skip
def test_sample_app_files_are_served_frameable(path):
    response = Client().get(f"/sample-app/{path}")
    assert response.status_code == 200
    assert "X-Frame-Options" not in response


def test_sample_app_refuses_paths_outside_its_folder():
    assert Client().get("/sample-app/../settings.py").status_code == 404
    assert Client().get("/sample-app/nope.html").status_code == 404


def test_sample_app_uses_the_official_client_library():
    html = b"".join(Client().get("/sample-app/launch.html").streaming_content).decode()
    assert '<script src="vendor/fhirclient/fhir-client.min.js"></script>' in html
    assert "would normally live on its own web server" in html
