"""Provides the patient chart, the choice of current encounter, and the vital-signs form."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from ehr import selectors
from ehr.forms import VitalsForm
from ehr.views import state
from ehr.views.guards import clinician_required
from ehr.vitals import vitals_record
from smart.identity import fhir_user_for


def _chart_or_404(request: HttpRequest, patient_id: str) -> selectors.Chart:
    chart = selectors.chart_get(user=request.user, patient_id=patient_id, today=timezone.localdate())
    if chart is None:
        raise Http404("No such patient.")
    return chart


@clinician_required
def chart_view(request: HttpRequest, patient_id: str) -> HttpResponse:
    chart = _chart_or_404(request, patient_id)
    state.recent_patient_add(request.session, patient_id)
    context = {
        "chart": chart,
        "patient": chart.patient,
        "current_encounter": state.current_encounter(request.session, patient_id),
        "apps": selectors.launchable_apps(audience="clinician"),
        "open_app": state.open_app_pop(request.session, patient_id),
        "vital_charts": [trend.as_chart_data() for trend in chart.plotted_vitals],
    }
    return render(request, "ehr/chart.html", context)


@require_POST
@clinician_required
def encounter_select_view(request: HttpRequest, patient_id: str) -> HttpResponse:
    """Make an encounter (or none) the current one for this patient; apps launched next get it as context."""
    encounter_id = request.POST.get("encounter_id", "").strip() or None
    if encounter_id and not selectors.encounter_belongs(
        user=request.user, patient_id=patient_id, encounter_id=encounter_id
    ):
        raise Http404("No such encounter for this patient.")
    state.current_encounter_set(request.session, patient_id, encounter_id)
    return redirect("ehr:chart", patient_id=patient_id)


@clinician_required
def vitals_view(request: HttpRequest, patient_id: str) -> HttpResponse:
    patient = selectors.patient_get(user=request.user, patient_id=patient_id, today=timezone.localdate())
    if patient is None:
        raise Http404("No such patient.")
    encounter_id = state.current_encounter(request.session, patient_id)
    if request.method == "POST":
        form = VitalsForm(request.POST)
        if form.is_valid():
            stored = vitals_record(
                patient_id=patient_id,
                entry=form.entry(),
                encounter_id=encounter_id,
                performer=fhir_user_for(request.user),
            )
            messages.success(request, f"Vital signs recorded ({len(stored)} observations).")
            return redirect("ehr:chart", patient_id=patient_id)
    else:
        now = timezone.localtime().replace(second=0, microsecond=0)
        form = VitalsForm(initial={"effective": now})
    return render(
        request, "ehr/vitals_form.html", {"form": form, "patient": patient, "current_encounter": encounter_id}
    )
