"""Provides the developer launcher (staff only): launch any registered app as any user for any patient,
see the exact launch URL, and follow the launch step by step (authorize, consent, token, FHIR calls)."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_safe

from ehr import selectors
from ehr.forms import DeveloperLaunchForm
from ehr.views.guards import staff_required
from smart.launch import launch_create, launch_url

DEV_MODE_KEY = "ehr.dev_launch_modes"  # launch pk -> mode chosen in the form (embedded or window)


@staff_required
def developer_launcher_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = DeveloperLaunchForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            launch = launch_create(
                client=data["client"],
                user=data["user"],
                patient_id=data["patient_id"],
                encounter_id=data["encounter_id"],
                need_patient_banner=data["mode"] != "embedded",
            )
            request.session[DEV_MODE_KEY] = {
                **request.session.get(DEV_MODE_KEY, {}),
                str(launch.pk): data["mode"],
            }
            return redirect("ehr:dev-launch", launch_pk=launch.pk)
    else:
        form = DeveloperLaunchForm(
            initial={"user": request.user.get_username(), "patient_id": "pat-0", "mode": "window"}
        )
    patients = selectors.patient_page(
        user=request.user, query="", page=1, today=timezone.localdate(), per_page=100
    )
    context = {"form": form, "launches": selectors.launches_recent(), "patients": patients.rows}
    return render(request, "ehr/dev_launcher.html", context)


def _launch_or_404(launch_pk: int):  # type: ignore[no-untyped-def]
    launch = selectors.launch_get(launch_pk=launch_pk)
    if launch is None:
        raise Http404("No such launch.")
    return launch


@require_safe
@staff_required
def developer_launch_view(request: HttpRequest, launch_pk: int) -> HttpResponse:
    launch = _launch_or_404(launch_pk)
    mode = request.session.get(DEV_MODE_KEY, {}).get(str(launch_pk)) or launch.application.launch_mode
    context = {
        "launch": launch,
        "launch_url": launch_url(launch),
        "mode": mode,
        "events": selectors.launch_timeline(launch=launch),
    }
    return render(request, "ehr/dev_launch.html", context)


@require_safe
@staff_required
def developer_timeline_view(request: HttpRequest, launch_pk: int) -> HttpResponse:
    """The timeline alone, for the launch page to refresh itself while the app runs."""
    events = selectors.launch_timeline(launch=_launch_or_404(launch_pk))
    return render(request, "ehr/_timeline.html", {"events": events})
