"""Launches end to end, driven by a SMART client library nobody here wrote (fhirclient,
smart-on-fhir/client-py): EHR launch (checklist #13-#17, #53-#56, #58, #64), standalone patient launch
with the picker and for a patient user (#22-#25, #28), provider standalone launch; plus the launch service
(launch_create/url/consume, #21)."""

from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from django.test import Client
from django.utils import timezone
from fhirclient.auth import FHIROAuth2Auth
from fhirclient.client import FHIRClient
from oauth2_provider.settings import oauth2_settings

from smart.error_codes import LaunchErrorCode
from smart.launch import LaunchError, launch_check, launch_consume, launch_create, launch_url, launch_use
from smart.models import LaunchContext
from tests.smart.conftest import FHIR_BASE, FORM, LAUNCH_URI, REDIRECT_URI, SmartApp, page_forms


class DjangoFHIRServer:
    """The part of fhirclient's FHIRServer that its OAuth2 code uses, posting through Django's test client."""

    def __init__(self, smart_client: FHIRClient) -> None:
        self.smart_client = smart_client
        self.http = Client()

    @property
    def desired_scope(self) -> str:
        return self.smart_client.desired_scope

    @property
    def launch_token(self) -> str | None:
        return self.smart_client.launch_token

    def should_save_state(self) -> None:
        pass

    def post_as_form(self, url: str, formdata: dict, auth=None):  # type: ignore[no-untyped-def]
        response = self.http.post(urlsplit(url).path, urlencode(formdata), content_type=FORM)
        assert response.status_code == 200, response.content
        return response


def fhirclient_app(
    app, scope: str, launch_token: str | None = None
) -> tuple[FHIROAuth2Auth, DjangoFHIRServer]:
    """A fhirclient SMART client for `app`, configured as discovery would configure it."""
    settings = {"app_id": app.client_id, "api_base": FHIR_BASE, "redirect_uri": REDIRECT_URI, "scope": scope}
    smart_client = FHIRClient(settings={**settings, "launch_token": launch_token})
    auth = FHIROAuth2Auth(
        state={
            "app_id": app.client_id,
            "aud": FHIR_BASE,
            "authorize_uri": "http://testserver/o/authorize/",
            "token_uri": "http://testserver/o/token/",
            "redirect_uri": REDIRECT_URI,
        }
    )
    return auth, DjangoFHIRServer(smart_client)


def verified_id_token(client: Client, id_token: str, audience: str) -> dict:
    jwks = jwt.PyJWKSet.from_dict(client.get("/o/.well-known/jwks.json").json())
    kid = jwt.get_unverified_header(id_token)["kid"]
    key = next(k.key for k in jwks.keys if k.key_id == kid)
    return jwt.decode(
        id_token, key, algorithms=["RS256"], audience=audience, issuer=oauth2_settings.OIDC_ISS_ENDPOINT
    )


def fhir_read(client: Client, path: str, token: str):
    return client.get(
        f"/fhir/{path}", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT="application/fhir+json"
    )


# ---------------------------------------------------------------- EHR launch (#13-#17)


def test_ehr_launch_end_to_end(public_app, clinician, client):
    # given the EHR launching the app for a patient and encounter in the clinician's chart
    launch = launch_create(client=public_app, user=clinician, patient_id="pat-1", encounter_id="enc-1")
    query = parse_qs(urlsplit(launch_url(launch)).query)
    assert (query["iss"], query["launch"]) == ([FHIR_BASE], [launch.launch])  # (#13)
    browser = Client()
    browser.force_login(clinician)

    # when the app (fhirclient) sends the browser to authorize with launch, aud and PKCE, and the user allows
    auth, server = fhirclient_app(
        public_app, "openid fhirUser offline_access patient/*.rs", query["launch"][0]
    )
    consent = browser.get(auth.authorize_uri(server))
    callback = SmartApp(public_app, browser=browser).allow(consent)["Location"]
    context = auth.handle_callback(callback, server)

    # then the token response carries the launch context and an id_token naming the clinician (#16, #17, #53)
    assert context["scope"] == "launch openid fhirUser offline_access patient/*.rs"
    assert (context["patient"], context["encounter"], context["need_patient_banner"]) == (
        "pat-1",
        "enc-1",
        True,
    )
    assert client.get(urlsplit(context["smart_style_url"]).path).status_code == 200
    claims = verified_id_token(client, context["id_token"], public_app.client_id)
    assert claims["fhirUser"] == f"{FHIR_BASE}/Practitioner/prac-1"
    assert fhir_read(client, "Patient/pat-1", auth.access_token).status_code == 200  # (#16)

    # and when the app refreshes, the context comes again and the new token reads the patient (#58, #64, #66)
    first_token = auth.access_token
    refreshed = auth.reauthorize(server)
    assert (refreshed["patient"], refreshed["encounter"]) == ("pat-1", "enc-1")
    assert auth.access_token != first_token
    assert fhir_read(client, "Patient/pat-1", auth.access_token).status_code == 200


def test_ehr_launch_carries_fhir_context_intent_and_banner_choice(smart_app, public_app, clinician):
    # given an embedded launch (no banner needed) with an intent and a fhirContext reference
    launch = launch_create(
        client=public_app,
        user=clinician,
        patient_id="pat-1",
        need_patient_banner=False,
        intent="reconcile-medications",
        fhir_context=[{"reference": "Encounter/enc-1", "role": "https://example.org/role"}],
    )
    smart = smart_app(public_app, user=clinician)

    # when the app completes the launch
    token = smart.tokens_for("launch patient/*.rs", launch=launch.launch)

    # then those fields come back as launched, and absent ones (encounter) stay absent
    assert token["need_patient_banner"] is False
    assert token["intent"] == "reconcile-medications"
    assert token["fhirContext"] == [{"reference": "Encounter/enc-1", "role": "https://example.org/role"}]
    assert "encounter" not in token


# ---------------------------------------------------------------- standalone launch (#22-#25, #28)


@pytest.mark.parametrize(
    ("_case", "query"), [("name", "Smith"), ("MRN", "MRN-12345"), ("birth date", "1980-02-03")]
)
def test_standalone_patient_launch_with_picker(public_app, clinician, client, _case, query):
    # given a clinician starting the app outside the EHR (fhirclient adds launch/patient itself)
    browser = Client()
    browser.force_login(clinician)
    driver = SmartApp(public_app, browser=browser)
    auth, server = fhirclient_app(public_app, "openid fhirUser offline_access patient/*.rs")
    picker = browser.get(auth.authorize_uri(server))
    assert "Search for a patient" in picker.content.decode()

    # when they search by name, MRN or birth date and choose the patient
    results = driver.submit(picker, form=0, q=query)
    assert "Anna Smith" in results.content.decode() and "Jones" not in results.content.decode()
    consent = driver.submit(results, form=1, patient="pat-1")
    assert "Anna Smith" in consent.content.decode()
    context = auth.handle_callback(driver.allow(consent)["Location"], server)

    # then the token is for that patient, launch/patient is granted, and an id_token comes too (#22-#25)
    assert context["patient"] == "pat-1"
    assert context["scope"].split()[:2] == ["launch/patient", "openid"]
    assert "id_token" in context
    assert fhir_read(client, "Patient/pat-1", auth.access_token).status_code == 200


def test_picker_offers_recent_patients(smart_app, public_app, clinician):
    # given a clinician who recently launched an app for pat-2
    launch_create(client=public_app, user=clinician, patient_id="pat-2")
    smart = smart_app(public_app, user=clinician)

    # when a standalone launch shows the picker
    picker = smart.authorize("launch/patient patient/*.rs")

    # then pat-2 is offered as a recent patient
    radios = [i["value"] for i in page_forms(picker)[1] if i.get("type") == "radio"]
    assert radios == ["pat-2"]


def test_picker_refuses_a_patient_that_is_not_offered(smart_app, public_app, clinician):
    # given the picker
    smart = smart_app(public_app, user=clinician)
    picker = smart.authorize("launch/patient patient/*.rs")

    # when a tampered form posts an id that does not exist (or the user may not see)
    fields = {i["name"]: i.get("value", "") for i in page_forms(picker)[1] if i.get("type") == "hidden"}
    response = smart.browser.post(
        "/o/authorize/", urlencode({**fields, "patient": "pat-404"}), content_type=FORM
    )

    # then the picker comes back with an error and no code is issued
    assert response.status_code == 200
    assert "not available" in response.content.decode()


def test_patient_user_gets_themself_without_picker(public_app, patient_user, client):
    # given a patient using a patient-facing app standalone
    browser = Client()
    browser.force_login(patient_user)
    auth, server = fhirclient_app(public_app, "openid fhirUser offline_access patient/*.rs")

    # when they authorize
    consent = browser.get(auth.authorize_uri(server))
    context = auth.handle_callback(SmartApp(public_app, browser=browser).allow(consent)["Location"], server)

    # then no picker was shown and the token is for their own record, naming them as fhirUser
    assert "Your record" in consent.content.decode()
    assert context["patient"] == "pat-1"
    claims = verified_id_token(client, context["id_token"], public_app.client_id)
    assert claims["fhirUser"] == f"{FHIR_BASE}/Patient/pat-1"
    assert fhir_read(client, "Patient/pat-2", auth.access_token).status_code == 404


def test_standalone_encounter_launch_with_picker(smart_app, public_app, clinician):
    # given a standalone launch asking for a patient and an encounter (#28)
    smart = smart_app(public_app, user=clinician)
    picker = smart.authorize("launch/patient launch/encounter openid patient/*.rs")

    # when the user picks the patient, then one of their encounters
    encounters = smart.submit(smart.submit(picker, form=0, q="Smith"), form=1, patient="pat-1")
    assert "Annual check-up" in encounters.content.decode()
    consent = smart.submit(encounters, encounter="enc-1")
    response = smart.allow(consent)

    # then both are in the token response
    token = smart.exchange(parse_qs(urlsplit(response["Location"]).query)["code"][0]).json()
    assert (token["patient"], token["encounter"]) == ("pat-1", "enc-1")
    assert token["scope"] == "launch/patient launch/encounter openid patient/*.rs"


def test_provider_standalone_launch_has_no_patient(smart_app, public_app, clinician):
    # given a provider app asking only for user-level access
    smart = smart_app(public_app, user=clinician)

    # when the clinician authorizes
    token = smart.tokens_for("openid fhirUser offline_access user/*.rs")

    # then no picker, no patient context, and a refresh token for offline use
    assert "patient" not in token
    assert token["scope"] == "openid fhirUser offline_access user/*.rs"
    assert "refresh_token" in token


# ---------------------------------------------------------------- the launch service (#21)


def test_launch_id_is_opaque_random_and_short_lived(public_app, clinician):
    # when the EHR creates a launch
    launch = launch_create(client=public_app, user=clinician, patient_id="pat-1")
    other = launch_create(client=public_app, user=clinician, patient_id="pat-1")

    # then its id is ≥128 random bits, unique, and it expires after 5 minutes (default)
    assert len(launch.launch) >= 22 and launch.launch != other.launch
    assert timedelta(seconds=295) < launch.expires - timezone.now() <= timedelta(seconds=300)
    assert launch.consumed is None


def test_launch_url_keeps_the_apps_query(public_app, clinician):
    # given an app whose launch URL already has a query
    public_app.launch_uri = LAUNCH_URI + "?tenant=7"
    public_app.save()
    launch = launch_create(client=public_app, user=clinician, patient_id="pat-1")

    # when the launch URL is built
    url = launch_url(launch)

    # then iss and launch are added to it
    assert parse_qs(urlsplit(url).query) == {"tenant": ["7"], "iss": [FHIR_BASE], "launch": [launch.launch]}


@pytest.mark.parametrize(
    ("_case", "change", "code"),
    [
        ("unknown", lambda launch, other_app, other_user: {"launch_id": "nope"}, LaunchErrorCode.UNKNOWN),
        ("expired", lambda launch, other_app, other_user: _expire(launch), LaunchErrorCode.EXPIRED),
        ("consumed", lambda launch, other_app, other_user: _consume(launch), LaunchErrorCode.CONSUMED),
        (
            "other client",
            lambda launch, other_app, other_user: {"client": other_app},
            LaunchErrorCode.WRONG_CLIENT,
        ),
        (
            "other user",
            lambda launch, other_app, other_user: {"user": other_user},
            LaunchErrorCode.WRONG_USER,
        ),
    ],
)
def test_launch_consume_refuses(
    public_app, confidential_app, clinician, other_clinician, _case, change, code
):
    # given a launch, and one thing wrong with using it
    launch = launch_create(client=public_app, user=clinician, patient_id="pat-1")
    arguments = {"launch_id": launch.launch, "client": public_app, "user": clinician}
    arguments.update(change(launch, confidential_app, other_clinician) or {})

    # when it is consumed
    with pytest.raises(LaunchError) as raised:
        launch_consume(**arguments)

    # then the error says why
    assert raised.value.code is code


def _expire(launch: LaunchContext) -> None:
    LaunchContext.objects.filter(pk=launch.pk).update(expires=timezone.now() - timedelta(seconds=1))


def _consume(launch: LaunchContext) -> None:
    launch_consume(launch_id=launch.launch, client=launch.application, user=launch.user)


@pytest.mark.parametrize(
    ("_case", "fhir_context"),
    [
        ("absolute reference", [{"reference": "http://other.example/fhir/Encounter/1"}]),
        ("nothing to point at", [{"role": "x"}]),
    ],
)
def test_launch_create_refuses_bad_fhir_context(public_app, clinician, _case, fhir_context):
    # when the EHR passes a fhirContext item that STU2.2 forbids (#39), then it is refused
    with pytest.raises(ValueError):
        launch_create(client=public_app, user=clinician, patient_id="pat-1", fhir_context=fhir_context)


def test_launch_create_refuses_disabled_app(public_app, clinician):
    # given a disabled app
    public_app.enabled = False
    public_app.save()

    # when the EHR tries to launch it, then it is refused
    with pytest.raises(ValueError):
        launch_create(client=public_app, user=clinician, patient_id="pat-1")


@pytest.mark.parametrize(
    ("_case", "meanwhile", "code"),
    [
        ("the other request used it", lambda launch: launch_use(launch), LaunchErrorCode.CONSUMED),
        ("it expired since", _expire, LaunchErrorCode.EXPIRED),
    ],
)
def test_launch_checked_by_two_requests_is_used_once(public_app, clinician, _case, meanwhile, code):
    # given a launch that two authorization requests checked, and what happened before the second uses it
    launch = launch_create(client=public_app, user=clinician, patient_id="pat-1")
    first, second = (launch_check(launch_id=launch.launch, client=public_app, user=clinician) for _ in "12")
    meanwhile(first)

    # when the second request uses it
    with pytest.raises(LaunchError) as raised:
        launch_use(second)

    # then it is refused and says why
    assert raised.value.code is code
