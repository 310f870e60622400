"""The authorization endpoint as a SMART app and its user see it: errors (checklist #29-#36), POST requests
(#15), consent choices (#84, #89), remembered consent, pre-authorized apps, scope negotiation (#19, #24,
#88) and framing/CSRF protection of the pages (#97)."""

from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from smart.launch import launch_create
from smart.models import ConsentRecord, LaunchContext
from tests.smart.conftest import FHIR_BASE, FORM, REDIRECT_URI, callback, page_forms

EHR_SCOPE = "launch openid fhirUser offline_access patient/*.rs"


def granted_scope(smart, response) -> list[str]:
    """Exchange the code in a callback and return the granted scopes."""
    token = smart.exchange(callback(response)["code"])
    assert token.status_code == 200, token.content
    return token.json()["scope"].split()


def checkbox_values(page) -> list[tuple[str, bool]]:
    return [(i["value"], "checked" in i) for i in page_forms(page)[-1] if i.get("type") == "checkbox"]


# ---------------------------------------------------------------- errors that never redirect (#29, #30)


def test_unknown_client_gets_an_error_page_not_a_redirect(smart_app, public_app, clinician):
    # given a request naming a client_id nobody registered
    smart = smart_app(public_app, user=clinician)

    # when the browser sends it
    response = smart.authorize(EHR_SCOPE, client_id="no-such-client")

    # then an HTML error page answers with 400 and nothing points back at the redirect URI (#29)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert "Location" not in response
    assert REDIRECT_URI not in response.content.decode()


@pytest.mark.parametrize(
    ("_case", "redirect_uri"),
    [
        ("unregistered", "https://evil.example/callback"),
        ("trailing slash differs", REDIRECT_URI + "/"),
        ("extra query", REDIRECT_URI + "?x=1"),
        ("missing", None),
    ],
)
def test_bad_redirect_uri_gets_an_error_page(smart_app, public_app, clinician, _case, redirect_uri):
    # given a redirect URI that is not exactly a registered one (#30)
    smart = smart_app(public_app, user=clinician)

    # when the browser sends the request
    response = smart.authorize(EHR_SCOPE, redirect_uri=redirect_uri)

    # then it gets a 400 page, never a redirect
    assert response.status_code == 400
    assert "Location" not in response


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_repeated_parameter_gets_an_error_page(smart_app, public_app, clinician, method):
    # given an authorization request that names its state twice (RFC 6749 §3.1: at most once)
    smart = smart_app(public_app, user=clinician)
    query = urlencode([*smart.params(EHR_SCOPE).items(), ("state", "second")])

    # when the browser sends it
    if method == "get":
        response = smart.browser.get(f"/o/authorize/?{query}")
    else:
        response = smart.browser.post("/o/authorize/", query, content_type=FORM)

    # then a 400 page says which parameter repeated, and nothing redirects to the app
    assert response.status_code == 400 and "Location" not in response
    assert "Each parameter may be given only once: state." in response.content.decode()


def test_disabled_app_gets_an_error_page(smart_app, public_app, clinician):
    # given an app the administrator disabled
    public_app.enabled = False
    public_app.save()
    smart = smart_app(public_app, user=clinician)

    # when its authorization request arrives
    response = smart.authorize(EHR_SCOPE)

    # then it is treated as unknown: an error page
    assert response.status_code == 400
    assert "Location" not in response


# ---------------------------------------------------------------- redirected errors (#31-#35)


@pytest.mark.parametrize(
    ("_case", "overrides", "error"),
    [
        ("wrong aud", {"aud": "https://inferno.healthit.gov/invalid_aud"}, "invalid_request"),
        ("missing aud", {"aud": None}, "invalid_request"),
        ("aud of another path", {"aud": FHIR_BASE + "/r4"}, "invalid_request"),
        ("response_type token", {"response_type": "token"}, "unsupported_response_type"),
        ("response_type hybrid", {"response_type": "code id_token"}, "unsupported_response_type"),
        ("response_type unknown", {"response_type": "bogus"}, "unsupported_response_type"),
        ("PKCE plain", {"code_challenge_method": "plain"}, "invalid_request"),
        ("PKCE method missing", {"code_challenge_method": None}, "invalid_request"),
        ("PKCE challenge missing", {"code_challenge": None}, "invalid_request"),
        ("no grantable scope", {"scope": "system/*.rs unknown/thing"}, "invalid_scope"),
    ],
)
def test_request_errors_redirect_with_error_and_exact_state(
    smart_app, public_app, clinician, _case, overrides, error
):
    # given a logged-in user and a request with one defect, and a state with characters that need encoding
    smart = smart_app(public_app, user=clinician)
    state = "s t+a/t=e&%é"

    # when the browser sends it
    params = {"scope": "openid fhirUser user/*.rs", "state": state, **overrides}
    response = smart.authorize(params.pop("scope"), **params)

    # then the app gets the error, a description and its exact state back, and no code (#31-#35)
    query = callback(response)
    assert query["error"] == error
    assert query["error_description"]
    assert query["state"] == state
    assert "code" not in query


def test_aud_with_trailing_slash_is_accepted(smart_app, public_app, clinician):
    # given aud written with a trailing slash
    smart = smart_app(public_app, user=clinician)

    # when the request is sent
    response = smart.authorize("openid fhirUser user/*.rs", aud=FHIR_BASE + "/")

    # then the consent page is shown (trailing slashes are normalised)
    assert response.status_code == 200


def test_deny_redirects_with_access_denied(smart_app, public_app, clinician):
    # given the consent page
    smart = smart_app(public_app, user=clinician)
    page = smart.authorize("openid fhirUser user/*.rs")

    # when the user presses Deny
    response = smart.deny(page)

    # then the app learns access_denied with its state, and nothing is remembered (#36)
    query = callback(response)
    assert (query["error"], query["state"]) == ("access_denied", smart.state)
    assert not ConsentRecord.objects.exists()


def test_unticking_everything_is_a_denial(smart_app, public_app, clinician):
    # given the consent page
    smart = smart_app(public_app, user=clinician)
    page = smart.authorize("openid fhirUser user/*.rs")

    # when the user allows with no box ticked
    response = smart.allow(page, ticked=set())

    # then nothing is granted
    assert callback(response)["error"] == "access_denied"


# ---------------------------------------------------------------- EHR launch ids (#21)


def _launch(app, user, **fields):
    return launch_create(client=app, user=user, patient_id="pat-1", **fields)


@pytest.mark.parametrize(
    ("_case", "make_launch"),
    [
        ("unknown", lambda app, user, other_app, other_user: "not-a-launch"),
        ("expired", lambda app, user, other_app, other_user: _expired(_launch(app, user)).launch),
        ("consumed", lambda app, user, other_app, other_user: _consumed(_launch(app, user)).launch),
        ("another app's", lambda app, user, other_app, other_user: _launch(other_app, user).launch),
        ("another user's", lambda app, user, other_app, other_user: _launch(app, other_user).launch),
    ],
)
def test_unusable_launch_is_refused(
    smart_app, public_app, confidential_app, clinician, other_clinician, _case, make_launch
):
    # given a launch id this app and user may not use
    launch_id = make_launch(public_app, clinician, confidential_app, other_clinician)
    smart = smart_app(public_app, user=clinician)

    # when the app presents it
    response = smart.authorize(EHR_SCOPE, launch=launch_id)

    # then no code is issued (#21)
    query = callback(response)
    assert query["error"] == "invalid_request"
    assert "launch" in query["error_description"].lower()


def _expired(launch: LaunchContext) -> LaunchContext:
    LaunchContext.objects.filter(pk=launch.pk).update(expires=timezone.now() - timedelta(seconds=1))
    return launch


def _consumed(launch: LaunchContext) -> LaunchContext:
    LaunchContext.objects.filter(pk=launch.pk).update(consumed=timezone.now())
    return launch


def test_launch_is_single_use(smart_app, public_app, clinician):
    # given a launch already exchanged for a code
    launch = _launch(public_app, clinician)
    smart = smart_app(public_app, user=clinician)
    smart.code_for(EHR_SCOPE, launch=launch.launch)

    # when the same launch id is presented again
    response = smart.authorize(EHR_SCOPE, launch=launch.launch)

    # then it is refused as used
    assert callback(response)["error"] == "invalid_request"
    launch.refresh_from_db()
    assert launch.consumed is not None


def test_launch_is_not_consumed_by_showing_consent(smart_app, public_app, clinician):
    # given an EHR launch whose consent page is shown twice (e.g. the user reloads it)
    launch = _launch(public_app, clinician)
    smart = smart_app(public_app, user=clinician)
    smart.authorize(EHR_SCOPE, launch=launch.launch)
    page = smart.authorize(EHR_SCOPE, launch=launch.launch)

    # when the user allows
    response = smart.allow(page)

    # then the code is issued and only now is the launch used up
    assert "code" in callback(response)
    launch.refresh_from_db()
    assert launch.consumed is not None


# ---------------------------------------------------------------- login and POST requests (#15)


def test_anonymous_user_is_sent_to_the_ehr_login(smart_app, public_app, settings):
    # given a browser without an EHR session
    settings.LOGIN_URL = "/accounts/login/"
    smart = smart_app(public_app)

    # when the app sends it to /authorize
    response = smart.authorize(EHR_SCOPE)

    # then it goes to the EHR's login page, coming back to the same request afterwards
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/accounts/login/"
    next_url = parse_qs(location.query)["next"][0]
    assert next_url.startswith("/o/authorize/?") and f"state={smart.state}" in next_url
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_posted_request_behaves_like_get(smart_app, public_app, clinician):
    # given an authorization request sent as a form POST (#15)
    smart = smart_app(public_app, user=clinician)
    page = smart.authorize("openid fhirUser user/*.rs offline_access", method="post")

    # when the user allows on the consent page that comes back
    response = smart.allow(page)

    # then the app gets a code it can exchange
    assert page.status_code == 200
    assert granted_scope(smart, response) == ["openid", "fhirUser", "user/*.rs", "offline_access"]


def test_posted_request_errors_redirect_too(smart_app, public_app, clinician):
    # given a POSTed request with a wrong aud
    smart = smart_app(public_app, user=clinician)

    # when it arrives
    response = smart.authorize(EHR_SCOPE, method="post", aud="https://elsewhere.example/fhir")

    # then it is redirected with the error and state like a GET would be
    query = callback(response)
    assert (query["error"], query["state"]) == ("invalid_request", smart.state)


def test_posted_request_from_anonymous_user_survives_login(smart_app, public_app, settings):
    # given a POSTed request from a browser without an EHR session
    settings.LOGIN_URL = "/accounts/login/"
    smart = smart_app(public_app)

    # when it arrives
    response = smart.authorize(EHR_SCOPE, method="post")

    # then login comes back to the equivalent GET request (the body would otherwise be lost)
    next_url = parse_qs(urlsplit(response["Location"]).query)["next"][0]
    assert parse_qs(urlsplit(next_url).query)["scope"] == [EHR_SCOPE]


# ---------------------------------------------------------------- the consent screen (#84, #89)


def test_consent_screen_lists_each_scope_as_a_ticked_checkbox(smart_app, public_app, clinician):
    # given an app with a logo asking for several scopes
    public_app.logo_uri = "https://app.example/logo.png"
    public_app.save()
    smart = smart_app(public_app, user=clinician)

    # when the consent page is shown
    page = smart.authorize("openid fhirUser offline_access user/Observation.rs user/Patient.r")

    # then the app's name and logo, plain words, a ticked box per scope and an offline warning appear (#84)
    html = page.content.decode()
    assert "Growth Chart" in html and 'src="https://app.example/logo.png"' in html
    assert "Read and search patients&#x27; observations" in html
    assert "when you are not using it" in html
    boxes = checkbox_values(page)
    assert [v for v, ticked in boxes if ticked] == [
        "openid", "fhirUser", "offline_access", "user/Observation.rs", "user/Patient.r"
    ]  # fmt: skip
    assert {v for v, ticked in boxes if not ticked} == {
        s for s in (v for v, _ in boxes) if s.startswith("user/Observation.rs?category=")
    }


def test_deselected_scope_is_not_granted(smart_app, public_app, clinician):
    # given the consent page for three scopes
    smart = smart_app(public_app, user=clinician)
    page = smart.authorize("openid user/Observation.rs user/Patient.rs offline_access")

    # when the user unticks Observation and offline_access
    response = smart.allow(page, ticked={"openid", "user/Patient.rs"})

    # then neither is granted, and no refresh token comes back
    token = smart.exchange(callback(response)["code"]).json()
    assert token["scope"] == "openid user/Patient.rs"
    assert "refresh_token" not in token


def test_category_subscopes_can_replace_whole_types(smart_app, public_app, patient_user):
    # given a patient asked for Condition, Observation and Patient (g10 granular scope selection, #89)
    smart = smart_app(public_app, user=patient_user)
    page = smart.authorize("launch/patient patient/Condition.rs patient/Observation.rs patient/Patient.rs")

    # when they tick only some categories instead of the whole Condition and Observation types
    labs = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
    problems = "patient/Condition.rs?category=http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item"
    response = smart.allow(page, ticked={"launch/patient", "patient/Patient.rs", labs, problems})

    # then the grant has those category scopes, no whole Condition/Observation scope, and Patient
    assert granted_scope(smart, response) == ["launch/patient", problems, labs, "patient/Patient.rs"]


def test_scope_not_offered_cannot_be_ticked_in(smart_app, public_app, clinician):
    # given the consent page for user/Patient.rs
    smart = smart_app(public_app, user=clinician)
    page = smart.authorize("openid user/Patient.rs")

    # when a tampered form adds a wider scope
    response = smart.allow(page, ticked={"openid", "user/Patient.rs", "user/*.cruds"})

    # then only what was offered is granted
    assert granted_scope(smart, response) == ["openid", "user/Patient.rs"]


# ---------------------------------------------------------------- remembered consent, pre-authorized apps


def test_returning_app_is_not_asked_again_for_the_same_scopes(smart_app, public_app, clinician):
    # given a user who allowed the app before
    smart = smart_app(public_app, user=clinician)
    smart.allow(smart.authorize("openid fhirUser user/Patient.rs"))

    # when the app asks for the same (or less)
    response = smart.authorize("openid user/Patient.r")

    # then a code comes back straight away
    assert "code" in callback(response)


def test_returning_app_asking_for_more_is_asked_again(smart_app, public_app, clinician):
    # given a user who allowed user/Patient.rs, unticking offline_access
    smart = smart_app(public_app, user=clinician)
    smart.allow(
        smart.authorize("openid user/Patient.rs offline_access"), ticked={"openid", "user/Patient.rs"}
    )

    # when the app asks for offline_access again, or for another type
    again_offline = smart.authorize("openid user/Patient.rs offline_access")
    again_type = smart.authorize("openid user/Patient.rs user/Observation.rs")

    # then the consent page comes back each time
    assert again_offline.status_code == 200
    assert again_type.status_code == 200


def test_pre_authorized_app_skips_consent(smart_app, public_app, clinician):
    # given an EHR-internal app registered as pre-authorized
    public_app.skip_authorization = True
    public_app.save()
    smart = smart_app(public_app, user=clinician)

    # when a clinician launches it
    response = smart.authorize(EHR_SCOPE, launch=_launch(public_app, clinician).launch)

    # then no consent page is shown
    assert "code" in callback(response)


def test_pre_authorized_app_still_asks_a_patient_for_their_data(smart_app, public_app, patient_user):
    # given a pre-authorized app
    public_app.skip_authorization = True
    public_app.save()
    smart = smart_app(public_app, user=patient_user)

    # when a patient user is asked for patient/ scopes
    response = smart.authorize("launch/patient openid fhirUser patient/*.rs")

    # then the patient is asked all the same
    assert response.status_code == 200
    assert "patient/*.rs" in [v for v, _ in checkbox_values(response)]


def test_prompt_none_without_consent_fails_silently(smart_app, public_app, clinician):
    # given an app never allowed by this user
    smart = smart_app(public_app, user=clinician)

    # when it asks with prompt=none
    response = smart.authorize("openid user/Patient.rs", prompt="none")

    # then it learns consent_required instead of a page being shown
    query = callback(response)
    assert (query["error"], query["state"]) == ("consent_required", smart.state)


# ---------------------------------------------------------------- scope negotiation (#19, #24, #88)


@pytest.mark.parametrize(
    ("_case", "allowed", "requested", "granted"),
    [
        (
            "v1 kept in v1 form",
            None,
            "openid user/Patient.read user/Observation.*",
            ["openid", "user/Patient.read", "user/Observation.*"],
        ),
        ("unknown dropped", None, "openid foo bar/baz user/Patient.rs", ["openid", "user/Patient.rs"]),
        ("system dropped", None, "openid system/*.rs user/Patient.rs", ["openid", "user/Patient.rs"]),
        (
            "launch dropped without a launch",
            None,
            "launch openid user/Patient.rs",
            ["openid", "user/Patient.rs"],
        ),
        (
            "unregistered dropped",
            "openid user/Patient.rs",
            "openid user/*.rs offline_access",
            ["openid", "user/Patient.rs"],
        ),
        (
            "narrowed to registered",
            "openid user/*.rs",
            "openid user/Patient.cruds",
            ["openid", "user/Patient.rs"],
        ),
    ],
)
def test_clinician_grant_is_requested_within_registered(
    smart_app, public_app, clinician, _case, allowed, requested, granted
):
    # given an app registered for some scopes
    if allowed:
        public_app.allowed_scopes = allowed
        public_app.save()
    smart = smart_app(public_app, user=clinician)

    # when a clinician allows everything offered
    response = smart.allow(smart.authorize(requested))

    # then the grant is requested ∩ registered ∩ role, unknown scopes silently dropped
    assert granted_scope(smart, response) == granted


def test_patient_user_gets_no_user_scopes_on_their_record(smart_app, public_app, patient_user):
    # given a patient user
    smart = smart_app(public_app, user=patient_user)

    # when an app asks for user/ scopes on clinical data and on reference data
    response = smart.allow(
        smart.authorize("openid user/*.rs user/Observation.rs user/Practitioner.rs patient/*.rs")
    )

    # then only reference-data user/ scopes survive; the record comes through patient/ scopes
    assert granted_scope(smart, response) == ["openid", "user/Practitioner.rs", "patient/*.rs"]


def test_ehr_launch_grant_drops_launch_patient(smart_app, public_app, clinician):
    # given an EHR launch (the patient comes from the EHR, nobody picks one)
    smart = smart_app(public_app, user=clinician)

    # when the app asks for launch and launch/patient
    response = smart.allow(
        smart.authorize(EHR_SCOPE + " launch/patient", launch=_launch(public_app, clinician).launch)
    )

    # then launch is echoed and launch/patient is not (#19, gotcha 11)
    assert granted_scope(smart, response) == [
        "launch",
        "openid",
        "fhirUser",
        "offline_access",
        "patient/*.rs",
    ]


# ---------------------------------------------------------------- page protection (#97, CSRF)


def test_authorization_pages_may_be_framed_only_by_the_ehr(smart_app, public_app, clinician):
    # given the consent page, the patient picker and an error page
    smart = smart_app(public_app, user=clinician)
    pages = [
        smart.authorize("openid user/Patient.rs"),
        smart.authorize("launch/patient patient/*.rs"),
        smart.authorize("openid", client_id="unknown"),
    ]

    # then each allows framing by the same origin only
    for page in pages:
        assert page["X-Frame-Options"] == "SAMEORIGIN"
        assert page["Content-Security-Policy"] == "frame-ancestors 'self'"


def test_other_pages_refuse_framing(client, db):
    # given a page outside the authorization flow
    response = client.post("/o/token/", "grant_type=bogus", content_type="application/x-www-form-urlencoded")

    # then it keeps the site-wide DENY
    assert response["X-Frame-Options"] == "DENY"


def test_consent_post_without_csrf_token_is_refused(smart_app, public_app, clinician):
    # given a consent page and a browser that enforces CSRF like a real one
    smart = smart_app(public_app, user=clinician)
    smart.browser = Client(enforce_csrf_checks=True)
    smart.browser.force_login(clinician)
    page = smart.authorize("openid user/Patient.rs")

    # when a cross-site form posts the same fields without the CSRF token
    forged = [i for i in page_forms(page)[-1] if i.get("name") != "csrfmiddlewaretoken"]
    data = {i["name"]: i.get("value", "") for i in forged if i.get("name")} | {"allow": "1"}
    response = smart.browser.post("/o/authorize/", data)

    # then it is refused and no code is issued
    assert response.status_code == 403
    assert "Location" not in response


def test_authorization_request_post_needs_no_csrf_token(smart_app, public_app, clinician):
    # given a browser that enforces CSRF
    smart = smart_app(public_app, user=clinician)
    smart.browser = Client(enforce_csrf_checks=True)
    smart.browser.force_login(clinician)

    # when an app's page POSTs an authorization request cross-site (SMART authorize-post)
    response = smart.authorize("openid user/Patient.rs", method="post")

    # then the consent page is shown
    assert response.status_code == 200
