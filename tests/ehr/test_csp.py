"""The EHR's Content-Security-Policy: registered app origins may be framed; our pages are framed by nobody,
except the login page (same origin only, for an embedded app's sign-in)."""

import pytest
from django.test import Client
from django.urls import reverse

from ehr.middleware import build_policy, origin_of
from tests.ehr.conftest import make_app

pytestmark = pytest.mark.django_db
MIDDLEWARE = "ehr.middleware.ContentSecurityPolicyMiddleware"


@pytest.fixture(autouse=True)
def csp_installed(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE[:2], MIDDLEWARE, *settings.MIDDLEWARE[2:]]


def directives(response) -> dict[str, list[str]]:
    parts = [p.strip().split() for p in response["Content-Security-Policy"].split(";")]
    return {p[0]: p[1:] for p in parts if p}


def test_chart_frames_only_registered_app_origins(doc_client, chart_data):
    make_app("a", origin="https://app.example")
    make_app("b", origin="http://localhost:9000")
    make_app("off", origin="https://disabled.example", enabled=False)
    policy = directives(doc_client.get(reverse("ehr:chart", args=["pat-a"])))
    assert policy["frame-src"] == ["'self'", "http://localhost:9000", "https://app.example"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:", "https://cdn.example"]
    assert policy["object-src"] == ["'none'"]


def test_redirect_uri_origins_are_frameable_too(doc_client, chart_data):
    app = make_app("a", origin="https://app.example")
    app.redirect_uris = "https://callback.example/cb https://app.example/cb"
    app.save()
    policy = directives(doc_client.get(reverse("ehr:patient-list")))
    assert policy["frame-src"] == ["'self'", "https://app.example", "https://callback.example"]


def test_login_page_may_be_framed_by_the_ehr_only():
    response = Client().get(reverse("ehr:login"))
    assert directives(response)["frame-ancestors"] == ["'self'"]
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_other_pages_may_not_be_framed(doc_client, chart_data):
    response = doc_client.get(reverse("ehr:patient-list"))
    assert directives(response)["frame-ancestors"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"


def test_authorize_pages_may_be_framed_by_the_ehr_only(clinician, client):
    # smart's authorize view opts into same-origin framing (it renders inside the chart's app panel)
    client.force_login(clinician)
    response = client.get("/o/authorize/", {"client_id": "nope", "response_type": "code"})
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert directives(response)["frame-ancestors"] == ["'self'"]


def test_sample_app_keeps_its_own_policy_and_may_be_framed(db):
    response = Client().get("/sample-app/index.html")
    assert "frame-ancestors" not in response["Content-Security-Policy"]
    assert "connect-src *" in response["Content-Security-Policy"]
    assert "X-Frame-Options" not in response


def test_json_responses_are_left_alone(db):
    assert "Content-Security-Policy" not in Client().get("/fhir/metadata")


@pytest.mark.parametrize(
    ("uri", "origin"),
    [("https://a.example/x?y=1", "https://a.example"), ("http://localhost:8000/p", "http://localhost:8000"),
     ("javascript:alert(1)", None), ("", None), ("/relative", None)],
)  # fmt: skip
def test_origin_of(uri, origin):
    assert origin_of(uri) == origin


def test_policy_without_frame_ancestors_when_exempt():
    policy = build_policy(ancestors=None, app_origins=[], logo_origins=[], strict=False)
    assert policy == "frame-src 'self'; object-src 'none'; base-uri 'self'"
