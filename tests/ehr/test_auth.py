"""Sign-in and sign-out, who lands where, and the login page's framing rule."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.ehr.conftest import PASSWORD, client_for

pytestmark = pytest.mark.django_db


def test_login_page_renders_accessible_form():
    response = Client().get(reverse("ehr:login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_username">Username</label>' in html
    assert 'autocomplete="current-password"' in html
    # the login page may render inside the EHR's own app panel (an embedded app's /authorize), nowhere else
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_clinician_logs_in_to_the_patient_list(clinician):
    # when a clinician posts valid credentials
    response = Client().post(reverse("ehr:login"), {"username": "doc", "password": PASSWORD})
    # then they land on the patient list
    assert response.status_code == 302
    assert response["Location"] == reverse("ehr:patient-list")


def test_wrong_password_shows_error(clinician):
    response = Client().post(reverse("ehr:login"), {"username": "doc", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_login_returns_to_next(clinician):
    response = Client().post(
        reverse("ehr:login"), {"username": "doc", "password": PASSWORD, "next": "/o/authorize/?client_id=x"}
    )
    assert response["Location"] == "/o/authorize/?client_id=x"


def test_logout_is_post_only_and_ends_the_session(clinician):
    client = client_for(clinician)
    # a GET cannot log out (a link on any page could otherwise do it)
    assert client.get(reverse("ehr:logout")).status_code == 405
    # when the clinician signs out
    response = client.post(reverse("ehr:logout"))
    # then they are back at the login page and the chart needs a new login
    assert response["Location"] == reverse("ehr:login")
    assert client.get(reverse("ehr:patient-list"))["Location"].startswith(reverse("ehr:login"))


def test_anonymous_users_go_to_login():
    response = Client().get(reverse("ehr:patient-list"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('ehr:login')}?next={reverse('ehr:patient-list')}"


def test_patient_users_are_sent_to_the_portal(patient_user, chart_data):
    client = client_for(patient_user)
    assert client.get(reverse("ehr:patient-list"))["Location"] == reverse("ehr:portal")
    assert client.get(reverse("ehr:chart", args=["pat-a"]))["Location"] == reverse("ehr:portal")


def test_home_redirects_to_patient_list(doc_client):
    assert doc_client.get("/")["Location"] == reverse("ehr:patient-list")


def test_favicon_points_at_the_static_icon():
    response = Client().get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/ehr/favicon.svg"
