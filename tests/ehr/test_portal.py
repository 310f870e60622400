"""The patient portal: the patient's own apps, launched for themselves or standalone, and connected apps."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from smart.models import LaunchContext
from tests.ehr.conftest import client_for, make_app

pytestmark = pytest.mark.django_db


@pytest.fixture
def portal_apps(db):
    return [make_app("for-patients", audience="patient", mode="window", origin="https://p.example"),
            make_app("for-both", audience="both"), make_app("for-clinicians")]  # fmt: skip


def test_portal_lists_apps_for_patients(patient_user, chart_data, portal_apps):
    response = client_for(patient_user).get(reverse("ehr:portal"))
    html = response.content.decode()
    assert [a.client_id for a in response.context["apps"]] == ["for-both", "for-patients"]
    assert "Hello, Anna Smith" in html
    assert reverse("smart:connected-apps") in html
    # the standalone link carries only iss
    assert 'href="https://p.example/launch?x=1&amp;iss=http%3A%2F%2F127.0.0.1%3A8000%2Ffhir"' in html


def test_patient_launches_an_app_for_themselves(patient_user, chart_data, portal_apps):
    response = client_for(patient_user).post(reverse("ehr:portal-launch", args=["for-patients"]))
    launch = LaunchContext.objects.get()
    assert (launch.user, launch.patient_id, launch.need_patient_banner) == (patient_user, "pat-a", True)
    assert parse_qs(urlsplit(response["Location"]).query)["launch"] == [launch.launch]


def test_embedded_portal_app_opens_in_the_portal_panel(patient_user, chart_data, portal_apps):
    client = client_for(patient_user)
    response = client.post(reverse("ehr:portal-launch", args=["for-both"]))
    assert response["Location"] == reverse("ehr:portal")
    portal = client.get(reverse("ehr:portal"))
    assert portal.context["open_app"].url.endswith(LaunchContext.objects.get().launch)


def test_patient_cannot_launch_clinician_apps(patient_user, chart_data, portal_apps):
    response = client_for(patient_user).post(reverse("ehr:portal-launch", args=["for-clinicians"]))
    assert response.status_code == 404
    assert not LaunchContext.objects.exists()


def test_users_without_a_patient_record_get_no_apps(clinician, portal_apps):
    response = client_for(clinician).get(reverse("ehr:portal"))
    assert response.context["apps"] == []
    assert "not linked to a patient record" in response.content.decode()
    assert client_for(clinician).post(reverse("ehr:portal-launch", args=["for-both"])).status_code == 404


def test_portal_needs_login():
    assert Client().get(reverse("ehr:portal"))["Location"] == f"{reverse('ehr:login')}?next=/portal/"
    assert (
        Client().post(reverse("ehr:portal-launch", args=["x"]))["Location"].startswith(reverse("ehr:login"))
    )
