"""Provides the patient list: search by name, MRN or birth date, paged, with the user's recent patients."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from ehr import selectors
from ehr.forms import PatientSearchForm
from ehr.views import state
from ehr.views.guards import clinician_required


def home_view(request: HttpRequest) -> HttpResponse:
    return redirect("ehr:patient-list")


@clinician_required
def patient_list_view(request: HttpRequest) -> HttpResponse:
    form = PatientSearchForm(request.GET or None)
    query, page = "", 1
    if form.is_valid():
        query, page = form.cleaned_data["q"] or "", form.cleaned_data["page"] or 1
    today = timezone.localdate()
    results = selectors.patient_page(user=request.user, query=query, page=page, today=today)
    recent = selectors.patient_rows(
        user=request.user, patient_ids=state.recent_patient_ids(request.session), today=today
    )
    return render(
        request, "ehr/patient_list.html", {"form": form, "query": query, "results": results, "recent": recent}
    )
