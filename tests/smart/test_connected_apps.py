"""The management endpoint: /smart/connected-apps/ lists the apps a user authorized and revokes them."""

import hashlib
import secrets
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model, get_refresh_token_model

from smart.authentication import token_lookup
from smart.models import ConsentRecord

Application = get_application_model()
AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()

PAGE = "/smart/connected-apps/"


def make_app(name: str) -> Application:
    return Application.objects.create(
        name=name,
        client_type="public",
        authorization_grant_type="authorization-code",
        redirect_uris=f"https://{name.lower()}.example.org/cb",
        smart_client_type="public",
    )


def mint(app, user, scope, *, expires_in=3600, last_used=None):
    raw = secrets.token_urlsafe(32)
    token = AccessToken.objects.create(
        token="",
        token_checksum=hashlib.sha256(raw.encode()).hexdigest(),
        application=app,
        user=user,
        scope=scope,
        expires=timezone.now() + timedelta(seconds=expires_in),
        last_used=last_used,
    )
    return raw, token


def mint_refresh(access_token):
    raw = secrets.token_urlsafe(32)
    RefreshToken.objects.create(
        token="",
        token_checksum=hashlib.sha256(raw.encode()).hexdigest(),
        application=access_token.application,
        user=access_token.user,
        access_token=access_token,
    )
    return raw


@pytest.fixture
def patient_user(django_user_model):
    return django_user_model.objects.create_user("anna", password="pw-anna-12345")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-bob-123456")


@pytest.fixture
def logged_in(client, patient_user):
    client.force_login(patient_user)
    return client


def test_page_requires_login(client, db, settings):
    # given
    settings.LOGIN_URL = "/login/"

    # when
    response = client.get(PAGE)

    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_page_is_named_and_is_the_management_endpoint(db):
    # then
    assert reverse("smart:connected-apps") == PAGE


def test_page_lists_authorized_apps_in_plain_words(logged_in, patient_user, other_user):
    # given
    charts, diary, foreign, unused = (make_app(n) for n in ("Charts", "Diary", "Foreign", "Unused"))
    used = timezone.now() - timedelta(hours=2)
    mint(charts, patient_user, "launch/patient openid fhirUser patient/Observation.rs", last_used=used)
    ConsentRecord.objects.create(user=patient_user, application=diary, scope="offline_access patient/*.rs")
    mint(foreign, other_user, "patient/*.rs")
    mint(unused, patient_user, "patient/*.rs", expires_in=-10)

    # when
    response = logged_in.get(PAGE)

    # then
    assert response.status_code == 200
    apps = response.context["apps"]
    assert [app.client.name for app in apps] == ["Charts", "Diary"]
    assert apps[0].access == [
        "Open with the patient you choose",
        "Know who you are",
        "Read and search your observations (vital signs, labs and other results)",
    ]
    assert apps[0].last_used == used
    assert apps[1].access == [
        "Keep access when you are not using the app (until you revoke it)",
        "Read and search all your data",
    ]
    content = response.content.decode()
    assert "Read and search all your data" in content
    assert "Foreign" not in content and "Unused" not in content
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]


def test_an_app_with_only_a_live_refresh_token_is_listed(logged_in, patient_user):
    # given
    app = make_app("Offline")
    _, access = mint(app, patient_user, "offline_access patient/*.rs", expires_in=-10)
    mint_refresh(access)

    # when
    apps = logged_in.get(PAGE).context["apps"]

    # then
    assert [connected.client.name for connected in apps] == ["Offline"]


def test_empty_page(logged_in):
    # when
    response = logged_in.get(PAGE)

    # then
    assert "You have not connected any apps." in response.content.decode()


def test_revoke_ends_all_of_the_users_access_to_the_app(logged_in, patient_user, other_user):
    # given
    app, kept = make_app("Charts"), make_app("Diary")
    raw_access, access = mint(app, patient_user, "patient/*.rs offline_access")
    mint_refresh(access)
    raw_second, _ = mint(app, patient_user, "patient/*.rs")
    raw_other_user, _ = mint(app, other_user, "patient/*.rs")
    raw_other_app, _ = mint(kept, patient_user, "patient/*.rs")
    ConsentRecord.objects.create(user=patient_user, application=app, scope="patient/*.rs")
    ConsentRecord.objects.create(user=other_user, application=app, scope="patient/*.rs")

    # when
    response = logged_in.post(reverse("smart:connected-app-revoke", args=[app.client_id]))

    # then
    assert response.status_code == 302
    assert response["Location"] == PAGE
    assert token_lookup(raw_access) is None and token_lookup(raw_second) is None
    assert RefreshToken.objects.get().revoked is not None
    assert not ConsentRecord.objects.filter(user=patient_user, application=app).exists()
    assert token_lookup(raw_other_user) is not None
    assert token_lookup(raw_other_app) is not None
    assert ConsentRecord.objects.filter(user=other_user, application=app).exists()
    page = logged_in.get(PAGE)
    assert [connected.client.name for connected in page.context["apps"]] == ["Diary"]
    assert "Charts can no longer access your data." in page.content.decode()


def test_revoke_needs_post(logged_in):
    # given
    app = make_app("Charts")

    # when
    response = logged_in.get(reverse("smart:connected-app-revoke", args=[app.client_id]))

    # then
    assert response.status_code == 405


def test_revoke_needs_a_csrf_token(patient_user):
    # given
    app = make_app("Charts")
    raw, _ = mint(app, patient_user, "patient/*.rs")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(patient_user)

    # when
    response = browser.post(reverse("smart:connected-app-revoke", args=[app.client_id]))

    # then
    assert response.status_code == 403
    assert token_lookup(raw) is not None


def test_revoke_of_an_unknown_app_is_404(logged_in):
    # when
    response = logged_in.post(reverse("smart:connected-app-revoke", args=["nope"]))

    # then
    assert response.status_code == 404
