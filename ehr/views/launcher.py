"""Provides the app launcher of the chart and of the patient portal.

A launch button POSTs here (with CSRF). We record the launch through smart's service (who, which patient, the
current encounter) and open the app's launch URL with `iss` and `launch` (SMART App Launch 2.x,
app-launch.html#launch-app-ehr-launch): in the chart's panel when the app is registered as embedded (then the
EHR's own banner is visible and `need_patient_banner` is false), else in a new window (the launch form targets
`_blank`, and this view answers it with a redirect to the launch URL).
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from oauth2_provider.models import get_application_model

from ehr import selectors
from ehr.views import state
from ehr.views.guards import clinician_required
from smart.launch import fhir_base_url, launch_create, launch_url, user_patient_id

Application = get_application_model()


def is_embedded(client: Application) -> bool:
    return client.launch_mode == Application.LaunchMode.EMBEDDED


def app_launch(
    *, request: HttpRequest, client: Application, patient_id: str, encounter_id: str | None, owner: str
) -> str | None:
    """Create the launch; return its URL to open in a new window, or None when `owner`'s panel shows it."""
    embedded = is_embedded(client)
    launch = launch_create(
        client=client,
        user=request.user,
        patient_id=patient_id,
        encounter_id=encounter_id,
        need_patient_banner=not embedded,
    )
    url = launch_url(launch)
    if not embedded:
        return url
    state.open_app_set(
        request.session,
        state.OpenApp(
            owner=owner, url=url, name=client.name, client_id=client.client_id, logo_uri=client.logo_uri
        ),
    )
    return None


@require_POST
@clinician_required
def chart_launch_view(request: HttpRequest, patient_id: str, client_id: str) -> HttpResponse:
    client = selectors.launchable_app_get(audience="clinician", client_id=client_id)
    if (
        client is None
        or selectors.patient_get(user=request.user, patient_id=patient_id, today=timezone.localdate()) is None
    ):
        raise Http404("No such app or patient.")
    window_url = app_launch(
        request=request,
        client=client,
        patient_id=patient_id,
        encounter_id=state.current_encounter(request.session, patient_id),
        owner=patient_id,
    )
    return HttpResponseRedirect(window_url) if window_url else redirect("ehr:chart", patient_id=patient_id)


@login_required
def portal_view(request: HttpRequest) -> HttpResponse:
    patient_id = user_patient_id(request.user)
    patient = (
        selectors.patient_get(user=request.user, patient_id=patient_id, today=timezone.localdate())
        if patient_id
        else None
    )
    apps = list(selectors.launchable_apps(audience="patient")) if patient_id else []
    context = {
        "patient": patient,
        "apps": apps,
        "iss": fhir_base_url(),
        "open_app": state.open_app_pop(request.session, "portal"),
    }
    return render(request, "ehr/portal.html", context)


@require_POST
@login_required
def portal_launch_view(request: HttpRequest, client_id: str) -> HttpResponse:
    """A patient launches an app for themselves: the launch carries their own patient id."""
    patient_id = user_patient_id(request.user)
    client = selectors.launchable_app_get(audience="patient", client_id=client_id)
    if patient_id is None or client is None:
        raise Http404("No such app.")
    window_url = app_launch(
        request=request, client=client, patient_id=patient_id, encounter_id=None, owner="portal"
    )
    return HttpResponseRedirect(window_url) if window_url else redirect("ehr:portal")
