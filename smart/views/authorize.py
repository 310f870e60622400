"""Provides the SMART authorization endpoint: DOT's AuthorizationView with launch, aud, pickers and consent.

SMART App Launch 2.x app-launch.html#request-4 (checklist #13-#37, #84, #88, #89). One pipeline serves an
authorization request sent by GET or by POST (#15) and each step page posting back (patient picker,
encounter picker, consent): validate the request (oauthlib, then PKCE S256, `aud`, `launch`), negotiate
scopes, settle the launch context, ask for consent unless it is remembered or the app is pre-authorized,
then issue the code through DOT's `create_authorization_response`. Errors before the client and redirect
URI are trusted render an HTML page (400); later ones redirect with `error`, `error_description` and the
exact `state` (RFC 6749 §4.1.2.1). DOT's own `get`/`form_valid` are not used: its `get` indexes a fixed
scope table (KeyError on SMART scopes) and its `form_valid` debug-logs the redirect URL with the code.
"""

from dataclasses import dataclass, field
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render, resolve_url
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.exceptions import FatalClientError, OAuthToolkitError
from oauth2_provider.views import AuthorizationView
from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.utils import scope_to_list

from smart.consent import (
    consent_items,
    consent_remember,
    consent_required,
    needs_patient,
    scopes_chosen,
    scopes_for_context,
    scopes_offered,
)
from smart.events import authorize_params_shown, launch_event_record
from smart.forms import AUTHORIZATION_PARAMS, STEP_FIELD, AuthorizationStepForm
from smart.launch import (
    EncounterChoice,
    LaunchError,
    PatientChoice,
    encounter_choice_get,
    encounter_search,
    fhir_base_url,
    launch_context_fields,
    launch_get_by_token,
    launch_verify,
    patient_choice_get,
    patient_id_of,
    patient_search,
    patients_recent,
)
from smart.models import Application, LaunchContext, LaunchEvent
from smart.oauth_request import ParsedRequest, repeated_params
from smart.selectors import application_with_launch
from smart.settings import smart_settings
from smart.tokens import token_generate
from smart.validators import SmartOAuth2Validator

Step = AuthorizationStepForm.Step


def frame_ancestors_self(view):  # type: ignore[no-untyped-def]
    """Content-Security-Policy `frame-ancestors 'self'`: only the EHR's own pages may frame these pages."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = "frame-ancestors 'self'"
        return response

    return wrapped


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request: the client, what may be granted, and the EHR launch if any."""

    params: dict[str, str]
    application: Application
    credentials: dict[str, Any]
    offered: list[str]
    launch: LaunchContext | None
    patient_user_id: str | None
    fhir_user: str | None = None  # the user's own FHIR resource ("Practitioner/x"), resolved once
    oauth_request: Any = None  # oauthlib's request, as its validation left it

    def error(self, kind: type[errors.OAuth2Error], description: str) -> OAuthToolkitError:
        """An error to redirect back to the client with the exact `state`."""
        error = kind(description=description, state=self.credentials.get("state"))
        return OAuthToolkitError(error=error, redirect_uri=self.credentials["redirect_uri"])

    @property
    def silent(self) -> bool:
        return "none" in self.params.get("prompt", "").split()


@dataclass(frozen=True)
class Selection:
    """The launch context settled so far: from the EHR launch, or picked by (or being) the user."""

    patient: PatientChoice | None = None
    encounter: EncounterChoice | None = None
    patient_picked: bool = False
    encounter_picked: bool = False
    context: dict[str, Any] = field(default_factory=dict)


class SmartAuthorizationView(AuthorizationView):
    """GET and POST /o/authorize/ (SMART App Launch 2.x, app-launch.html#request-4)."""

    validator_class = SmartOAuth2Validator
    template_name = "oauth2_provider/authorize.html"
    error_template_name = "smart/authorize_error.html"
    patient_template_name = "smart/patient_picker.html"
    encounter_template_name = "smart/encounter_picker.html"

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        """The view function, decorated once (method_decorator on `dispatch` decorates anew on every request):
        CSRF-exempt, as apps POST authorization requests cross-site (see post()); framed by the EHR's own
        pages only."""
        view = super().as_view(**initkwargs)
        return csrf_exempt(xframe_options_sameorigin(frame_ancestors_self(view)))

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if repeated := repeated_params(request.GET):
            return self.repeated_error(repeated)
        if "login" in request.GET.get("prompt", "").split():
            return self.handle_prompt_login()
        return self.authorize(request.GET.dict(), {})

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if STEP_FIELD not in request.POST:  # an authorization request sent by POST (#15)
            if repeated := repeated_params(request.POST):
                return self.repeated_error(repeated)
            return self.authorize(request.POST.dict(), {})
        # The pages' own forms are CSRF-checked here, as CsrfViewMiddleware would have done.
        rejected = CsrfViewMiddleware(lambda r: HttpResponse()).process_view(request, _csrf_protected, (), {})
        if rejected is not None:
            return rejected
        form = AuthorizationStepForm(request.POST)
        if not form.is_valid():
            return self.error_page("invalid_request", "The form was incomplete or malformed.")
        step = {
            **form.cleaned_data,
            "choice": request.POST.getlist("scope"),
            "allow": "allow" in request.POST,
        }
        return self.authorize(form.authorization_params(), step)

    def handle_no_permission(self) -> HttpResponse:
        """Log in through the EHR; a POSTed request comes back as the equivalent GET after login."""
        if self.request.method != "POST":
            return super().handle_no_permission()
        post = self.request.POST
        params = {name: post.get(name, "") for name in AUTHORIZATION_PARAMS}
        if STEP_FIELD in post:
            params["scope"] = post.get("requested_scope", "")
        query = urlencode({name: value for name, value in params.items() if value})
        login_url = resolve_url(self.get_login_url())
        return redirect_to_login(f"{self.request.path}?{query}", login_url, self.get_redirect_field_name())

    # ---------------------------------------------------------------- the pipeline

    def authorize(self, params: dict[str, str], step: dict[str, Any]) -> HttpResponse:
        self.application: Application | None = None
        # The launch timeline's events of this request: written with the code when one is issued (one
        # batch), else at the end of the request.
        self.events: list[dict[str, Any]] = []
        try:
            auth_request = self.authorization_request(params)
            if not step:
                self.record(
                    auth_request.launch, LaunchEvent.Kind.AUTHORIZE_REQUEST, authorize_params_shown(params)
                )
            return self.next_step(auth_request, step)
        except OAuthToolkitError as error:
            self.record_error(params.get("launch"), error)
            return self.error_response(error, application=self.application)
        finally:
            for event in self.events:
                launch_event_record(launch=event["launch_id"], kind=event["kind"], detail=event["detail"])

    def record(self, launch: LaunchContext | None, kind: str, detail: dict[str, Any]) -> None:
        if launch is not None:
            self.events.append({"launch_id": launch.pk, "kind": kind, "detail": detail})

    def record_error(self, launch_id: str | None, error: OAuthToolkitError) -> None:
        """Put an authorize error on the timeline of the launch it names, if it names a real one."""
        oauthlib_error = error.oauthlib_error
        detail = {"error": oauthlib_error.error, "error_description": oauthlib_error.description or ""}
        self.record(launch_get_by_token(launch_id or ""), LaunchEvent.Kind.AUTHORIZE_ERROR, detail)

    def next_step(self, auth_request: AuthorizationRequest, step: dict[str, Any]) -> HttpResponse:
        selection = self.selection(auth_request, step)
        if isinstance(selection, HttpResponse):
            return selection  # a picker page
        scopes = scopes_for_context(
            auth_request.offered,
            has_patient=bool(selection.context.get("patient")),
            patient_picked=selection.patient_picked,
            encounter_picked=selection.encounter_picked,
        )
        if not scopes:
            raise auth_request.error(errors.InvalidScopeError, "None of the requested scopes can be granted.")
        if step.get(STEP_FIELD) == Step.CONSENT:
            return self.consent_posted(auth_request, selection, scopes, step)
        user, client = self.request.user, auth_request.application
        if consent_required(
            user=user, client=client, scopes=scopes, patient_user=bool(auth_request.patient_user_id)
        ):
            return self.consent_page(auth_request, selection, scopes)
        return self.issue(auth_request, selection, scopes)

    def authorization_request(self, params: dict[str, str]) -> AuthorizationRequest:
        """Validate the request: client and redirect URI (fatal), then PKCE S256, `aud`, `launch`, scopes."""
        if not params.get("redirect_uri"):
            raise FatalClientError(error=errors.MissingRedirectURIError())
        client, launch = None, None
        if params.get("launch"):  # the app and the launch in one query; oauthlib then reuses the app
            client, launch = application_with_launch(
                client_id=params.get("client_id", ""), launch=params["launch"]
            )
        requested, credentials = self.validate_params(params, client)
        oauth_request = credentials.pop("request")
        self.application = oauth_request.client
        auth_request = AuthorizationRequest(params, self.application, credentials, [], None, None)
        if credentials.get("code_challenge_method") != "S256":
            raise auth_request.error(
                errors.InvalidRequestError, "PKCE with code_challenge_method S256 is required."
            )
        if (params.get("aud") or "").rstrip("/") != fhir_base_url():
            raise auth_request.error(
                errors.InvalidRequestError, f"aud must be the FHIR base URL {fhir_base_url()}."
            )
        launch = self.launch_peek(auth_request, params.get("launch"), launch)
        fhir_user = smart_settings.FHIR_USER_RESOLVER(self.request.user)
        patient_user_id = patient_id_of(fhir_user)
        offered = scopes_offered(
            requested=requested,
            client=self.application,
            patient_user=bool(patient_user_id),
            has_launch=bool(launch),
        )
        return AuthorizationRequest(
            params, self.application, credentials, offered, launch, patient_user_id, fhir_user, oauth_request
        )

    def validate_params(
        self, params: dict[str, str], client: Application | None = None
    ) -> tuple[list[str], dict[str, Any]]:
        """oauthlib's validation of the parameters, however they arrived (DOT reads only the request); with
        the client already read, oauthlib's validator uses it instead of reading it again.

        As oauthlib's AuthorizationEndpoint.validate_authorization_request, which makes the request itself."""
        core = self.get_oauthlib_core()
        request = ParsedRequest(
            self.request.path, "GET", list(params.items()), core.extract_headers(self.request)
        )
        request.scopes = scope_to_list(request.scope)
        request.client = client
        server = core.server
        grant_type = server.response_types.get(request.response_type, server.default_response_type_handler)
        try:
            return grant_type.validate_authorization_request(request)
        except errors.FatalClientError as error:
            raise FatalClientError(error=error) from error
        except (errors.UnauthorizedClientError, errors.UnsupportedResponseTypeError) as error:
            if params.get("response_type") == "code":
                raise OAuthToolkitError(error=error) from error
            # oauthlib routes token/id_token/hybrid types to grants this server disables (checklist #32).
            unsupported = errors.UnsupportedResponseTypeError(
                description="Only response_type=code is supported.", state=params.get("state")
            )
            raise OAuthToolkitError(error=unsupported, redirect_uri=error.redirect_uri) from error
        except errors.OAuth2Error as error:
            raise OAuthToolkitError(error=error) from error

    def launch_peek(
        self, auth_request: AuthorizationRequest, launch_id: str | None, found: LaunchContext | None
    ) -> LaunchContext | None:
        """The EHR launch named by `launch` (`found` with the app), still unconsumed (it is consumed when the
        code is issued)."""
        if not launch_id:
            return None
        try:
            return launch_verify(found, client=auth_request.application, user=self.request.user)
        except LaunchError as error:
            raise auth_request.error(errors.InvalidRequestError, f"Invalid launch: {error}") from error

    # ---------------------------------------------------------------- launch context

    def selection(self, auth_request: AuthorizationRequest, step: dict[str, Any]) -> Selection | HttpResponse:
        """The EHR launch's context; or the patient (and encounter) the user picks or is; or none."""
        if auth_request.launch is not None:
            return Selection(context=launch_context_fields(auth_request.launch))
        wants_encounter = "launch/encounter" in auth_request.offered
        if not (needs_patient(auth_request.offered) or wants_encounter):
            return Selection()
        patient = self.chosen_patient(auth_request, step)
        if isinstance(patient, HttpResponse):
            return patient
        encounter = self.chosen_encounter(auth_request, step, patient) if wants_encounter else None
        if isinstance(encounter, HttpResponse):
            return encounter
        context = {"patient": patient.id, **({"encounter": encounter.id} if encounter else {})}
        return Selection(patient, encounter, True, encounter is not None, context)

    def chosen_patient(
        self, auth_request: AuthorizationRequest, step: dict[str, Any]
    ) -> PatientChoice | HttpResponse:
        """A patient user is their own patient; anyone else picks one they may see."""
        user = self.request.user
        if auth_request.patient_user_id:
            own = auth_request.patient_user_id
            return patient_choice_get(user=user, patient_id=own) or PatientChoice(id=own, name="")
        error = ""
        if step.get("patient"):
            choice = patient_choice_get(user=user, patient_id=step["patient"])
            if choice is not None:
                return choice
            error = "That patient is not available. Choose another."
        return self.patient_page(auth_request, step, error)

    def chosen_encounter(
        self, auth_request: AuthorizationRequest, step: dict[str, Any], patient: PatientChoice
    ) -> EncounterChoice | HttpResponse | None:
        """The encounter picked among the patient's; None when the patient has none."""
        user = self.request.user
        if step.get("encounter"):
            choice = encounter_choice_get(user=user, patient_id=patient.id, encounter_id=step["encounter"])
            if choice is not None:
                return choice
        encounters = encounter_search(user=user, patient_id=patient.id)
        if not encounters:
            return None
        return self.encounter_page(auth_request, patient, encounters)

    def patient_page(
        self, auth_request: AuthorizationRequest, step: dict[str, Any], error: str
    ) -> HttpResponse:
        self.refuse_if_silent(auth_request, "interaction_required")
        query = step.get("q") or ""
        user = self.request.user
        patients = patient_search(user=user, query=query) if query else patients_recent(user=user)
        initial = AuthorizationStepForm.initial_for(auth_request.params, Step.PATIENT, q=query)
        context = {
            "application": auth_request.application,
            "form": AuthorizationStepForm(initial=initial),
            "patients": patients,
            "query": query,
            "error": error,
        }
        return render(self.request, self.patient_template_name, context)

    def encounter_page(
        self, auth_request: AuthorizationRequest, patient: PatientChoice, encounters: list[EncounterChoice]
    ) -> HttpResponse:
        self.refuse_if_silent(auth_request, "interaction_required")
        initial = AuthorizationStepForm.initial_for(auth_request.params, Step.ENCOUNTER, patient=patient.id)
        context = {
            "application": auth_request.application,
            "form": AuthorizationStepForm(initial=initial),
            "patient": patient,
            "encounters": encounters,
        }
        return render(self.request, self.encounter_template_name, context)

    # ---------------------------------------------------------------- consent and the code

    def consent_page(
        self, auth_request: AuthorizationRequest, selection: Selection, scopes: list[str]
    ) -> HttpResponse:
        self.refuse_if_silent(auth_request, "consent_required")
        picked = {"patient": selection.patient.id} if selection.patient_picked and selection.patient else {}
        if selection.encounter_picked and selection.encounter:
            picked["encounter"] = selection.encounter.id
        initial = AuthorizationStepForm.initial_for(auth_request.params, Step.CONSENT, **picked)
        context = {
            "application": auth_request.application,
            "form": AuthorizationStepForm(initial=initial),
            "items": consent_items(scopes),
            "patient": selection.patient,
            "encounter": selection.encounter,
            "patient_user": bool(auth_request.patient_user_id),
        }
        return self.render_to_response(context)

    def consent_posted(
        self,
        auth_request: AuthorizationRequest,
        selection: Selection,
        scopes: list[str],
        step: dict[str, Any],
    ) -> HttpResponse:
        chosen = scopes_chosen(offered=scopes, choice=step["choice"]) if step["allow"] else []
        self.record(
            auth_request.launch,
            LaunchEvent.Kind.CONSENT,
            {"allowed": bool(chosen), "offered": scopes, "granted": chosen},
        )
        if not chosen:
            raise auth_request.error(errors.AccessDeniedError, "The user denied access.")
        consent_remember(user=self.request.user, client=auth_request.application, scopes=chosen)
        return self.issue(auth_request, selection, chosen)

    def issue(
        self, auth_request: AuthorizationRequest, selection: Selection, scopes: list[str]
    ) -> HttpResponse:
        """Bind the context to a new code, using up the EHR launch, and redirect to the app.

        The validator writes the code, the launch's use and this request's timeline events in one batch
        (SmartOAuth2Validator._create_authorization_code)."""
        launch = auth_request.launch
        request = auth_request.oauth_request
        request.scopes = scopes
        request.user = self.request.user
        request.smart_context = (
            launch_context_fields(launch) if launch is not None else dict(selection.context)
        )
        request.smart_launch = launch
        request.smart_fhir_user = auth_request.fhir_user
        request.smart_events = self.events
        try:
            uri = code_redirect(self.get_oauthlib_core().server, request)
        except errors.OAuth2Error as error:
            raise OAuthToolkitError(
                error=error, redirect_uri=auth_request.credentials["redirect_uri"]
            ) from error
        return self.redirect(uri, auth_request.application)

    def refuse_if_silent(self, auth_request: AuthorizationRequest, error: str) -> None:
        """prompt=none: the user cannot be asked, so the request fails (OpenID Connect Core §3.1.2.6)."""
        if auth_request.silent:
            description = "The request needs the user's interaction."
            raise OAuthToolkitError(
                error=errors.CustomOAuth2Error(
                    error=error, description=description, state=auth_request.params.get("state")
                ),
                redirect_uri=auth_request.credentials["redirect_uri"],
            )

    # ---------------------------------------------------------------- errors

    def error_response(
        self, error: OAuthToolkitError, application: Application | None, **kwargs: Any
    ) -> HttpResponse:
        """Fatal errors (unknown client, bad redirect URI) render a page, never a redirect (#29, #30)."""
        if isinstance(error, FatalClientError):
            oauthlib_error = error.oauthlib_error
            return self.error_page(oauthlib_error.error, oauthlib_error.description)
        return super().error_response(error, application, **kwargs)

    def repeated_error(self, names: list[str]) -> HttpResponse:
        """A page, not a redirect: with a parameter repeated, not even the redirect URI can be trusted."""
        return self.error_page(
            "invalid_request", f"Each parameter may be given only once: {', '.join(names)}."
        )

    def error_page(self, error: str, description: str, status: int = 400) -> HttpResponse:
        context = {"error": error, "description": description}
        return render(self.request, self.error_template_name, context, status=status)


def code_redirect(server: Any, request: Any) -> str:
    """The redirect back to the app with a new code: oauthlib's AuthorizationCodeGrant.create_authorization_
    response after its validation, which authorization_request() has done on this very request (DOT's
    create_authorization_response would parse and validate it all again)."""
    grant_type = server.response_types["code"]
    grant_type = getattr(grant_type, "_handler_for_request", lambda r: grant_type)(request)  # OIDC or OAuth
    # oauthlib's create_authorization_code, with the code drawn as tokens are (smart.tokens.token_generate)
    grant = {"code": token_generate(request)}
    if request.state:
        grant["state"] = request.state
    grant_type.request_validator.save_authorization_code(request.client_id, grant, request)
    headers, _body, _status = grant_type.prepare_authorization_response(request, grant, {}, None, 302)
    return headers["Location"]


def _csrf_protected(request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
    """Stands in for a view that is not CSRF-exempt when the step forms are checked."""
    return HttpResponse()
