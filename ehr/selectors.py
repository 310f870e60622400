"""Provides the EHR's reads: patient search and paging, the chart's sections, and the apps a user may launch.

All clinical data is read through fhirapi.store under the access the signed-in user's own grant would have
(smart.launch.user_access), so the chart shows exactly what an app launched by this user can see.
"""

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from oauth2_provider.models import get_application_model

from ehr import presenters
from ehr.presenters import ChartItem, PatientRow, TimelineEvent, VitalTrend
from fhirapi.store import ResourceGone, ResourceNotFound, StoreError, resource_read, resource_search
from smart import launch as smart_launch
from smart.events import launch_events
from smart.launch import user_access, user_patient_id

Application = get_application_model()

_BIRTH_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
PATIENTS_PER_PAGE = 20


# ---------------------------------------------------------------- users


def user_is_patient(user: AbstractBaseUser) -> bool:
    """Whether the user is a portal user (their FHIR identity is a Patient)."""
    return user_patient_id(user) is not None


# ---------------------------------------------------------------- patient list


@dataclass(frozen=True)
class PatientPage:
    """One page of a patient search: rows, paging, and how the query was understood."""

    rows: list[PatientRow]
    total: int
    page: int
    pages: int
    matched_by: str  # "", "name", "MRN" or "birth date"

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def _patient_search(user: AbstractBaseUser, params: list[tuple[str, str]], page: int, per_page: int):  # type: ignore[no-untyped-def]
    paging = [("_sort", "family,given"), ("_count", str(per_page)), ("_offset", str((page - 1) * per_page))]
    return resource_search(
        resource_type="Patient", params=params + paging, access=user_access(user, "Patient")
    )


def patient_page(
    *, user: AbstractBaseUser, query: str, page: int, today: date, per_page: int = PATIENTS_PER_PAGE
) -> PatientPage:
    """Patients matching a name, an MRN (any identifier) or a birth date (YYYY[-MM[-DD]]); all when empty.

    A query that is a date searches birth dates. Otherwise an exact identifier match wins (an MRN typed in
    full); failing that, the query is a name (any part, prefix match).
    """
    query, page = query.strip(), max(page, 1)
    if not query:
        attempts = [("", [])]
    elif _BIRTH_DATE.fullmatch(query):
        attempts = [("birth date", [("birthdate", query)])]
    else:
        attempts = [("MRN", [("identifier", query)]), ("name", [("name", query)])]
    result, matched_by = None, ""
    for label, params in attempts:
        result, matched_by = _patient_search(user, params, page, per_page), label
        if result.total:
            break
    assert result is not None
    total = result.total or 0
    rows = [presenters.patient_row(r.as_dict(), today) for r in result.resources]
    return PatientPage(rows, total, page, max(1, -(-total // per_page)), matched_by if query else "")


def patient_rows(*, user: AbstractBaseUser, patient_ids: list[str], today: date) -> list[PatientRow]:
    """The patients with these ids that still exist and the user may see, in the given order."""
    rows = (patient_get(user=user, patient_id=pid, today=today) for pid in patient_ids)
    return [row for row in rows if row is not None]


def patient_get(*, user: AbstractBaseUser, patient_id: str, today: date) -> PatientRow | None:
    body = _read(user, "Patient", patient_id)
    return presenters.patient_row(body, today) if body is not None else None


def _read(user: AbstractBaseUser, resource_type: str, resource_id: str) -> dict[str, Any] | None:
    access = user_access(user, resource_type)
    if not access.allowed:
        return None
    try:
        return resource_read(resource_type=resource_type, resource_id=resource_id, access=access).as_dict()
    except (ResourceNotFound, ResourceGone):
        return None


def _search(
    user: AbstractBaseUser, resource_type: str, params: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    access = user_access(user, resource_type)
    if not access.allowed:
        return []
    try:
        result = resource_search(resource_type=resource_type, params=params, access=access, max_count=1000)
    except StoreError:
        return []
    return [r.as_dict() for r in result.resources]


# ---------------------------------------------------------------- chart


@dataclass
class Chart:
    """Everything the chart page shows for one patient."""

    patient: PatientRow
    allergies: list[ChartItem] = field(default_factory=list)
    allergy_alert: list[str] = field(default_factory=list)  # active allergies, for the banner
    problems: list[ChartItem] = field(default_factory=list)
    medications: list[ChartItem] = field(default_factory=list)
    immunizations: list[ChartItem] = field(default_factory=list)
    encounters: list[ChartItem] = field(default_factory=list)
    labs: list[ChartItem] = field(default_factory=list)
    vitals: dict[str, VitalTrend] = field(default_factory=dict)

    @property
    def plotted_vitals(self) -> list[VitalTrend]:
        return [self.vitals[key] for key in presenters.PLOTTED_VITALS if key in self.vitals]

    @property
    def latest_vitals(self) -> list[VitalTrend]:
        return [trend for trend in self.vitals.values() if trend.latest]


def _by_status(items: list[ChartItem], first: tuple[str, ...]) -> list[ChartItem]:
    """Items in `first` statuses ahead of the rest, newest first within each group."""
    items = sorted(items, key=lambda i: i.when, reverse=True)
    return sorted(items, key=lambda i: i.status.lower() not in first)


def chart_get(*, user: AbstractBaseUser, patient_id: str, today: date, lab_count: int = 20) -> Chart | None:
    """The chart of a patient the user may see, else None."""
    patient = patient_get(user=user, patient_id=patient_id, today=today)
    if patient is None:
        return None
    subject = [("patient", patient_id)]
    allergies = _search(user, "AllergyIntolerance", subject + [("_count", "100")])
    chart = Chart(patient=patient)
    chart.allergies = _by_status([presenters.allergy_item(a) for a in allergies], ("active",))
    chart.allergy_alert = [
        presenters.concept_text(a.get("code")) for a in allergies if presenters.is_active_allergy(a)
    ]
    problems = _search(user, "Condition", subject + [("_count", "200")])
    chart.problems = _by_status(
        [presenters.condition_item(c) for c in problems], ("active", "recurrence", "relapse")
    )
    medications = _search(user, "MedicationRequest", subject + [("_count", "200")])
    chart.medications = _by_status(
        [presenters.medication_item(m) for m in medications], ("active", "on-hold")
    )
    immunizations = _search(user, "Immunization", subject + [("_sort", "-date"), ("_count", "100")])
    chart.immunizations = [presenters.immunization_item(i) for i in immunizations]
    chart.encounters = encounter_items(user=user, patient_id=patient_id)
    labs = _search(
        user,
        "Observation",
        subject + [("category", "laboratory"), ("_sort", "-date"), ("_count", str(lab_count))],
    )
    chart.labs = [presenters.lab_item(o) for o in labs]
    vitals = _search(
        user, "Observation", subject + [("category", "vital-signs"), ("_sort", "-date"), ("_count", "500")]
    )
    chart.vitals = presenters.vital_trends(vitals)
    return chart


def encounter_items(*, user: AbstractBaseUser, patient_id: str) -> list[ChartItem]:
    """The patient's encounters, most recent first."""
    encounters = _search(user, "Encounter", [("patient", patient_id), ("_sort", "-date"), ("_count", "50")])
    return [presenters.encounter_item(e) for e in encounters]


def encounter_belongs(*, user: AbstractBaseUser, patient_id: str, encounter_id: str) -> bool:
    """Whether the encounter exists, the user may see it, and it is this patient's."""
    body = _read(user, "Encounter", encounter_id)
    return body is not None and presenters.reference_id(body.get("subject"), "Patient") == patient_id


# ---------------------------------------------------------------- apps


AUDIENCES = {
    "clinician": (Application.Audience.CLINICIAN, Application.Audience.BOTH),
    "patient": (Application.Audience.PATIENT, Application.Audience.BOTH),
}


def launchable_apps(*, audience: str) -> QuerySet:
    """Enabled apps with a launch URL for clinicians ("clinician") or for patients ("patient"), by name."""
    return (
        Application.objects.filter(enabled=True, audience__in=AUDIENCES[audience])
        .exclude(launch_uri="")
        .order_by("name", "pk")
    )


def launchable_app_get(*, audience: str, client_id: str) -> Any:
    return launchable_apps(audience=audience).filter(client_id=client_id).first()


# ---------------------------------------------------------------- developer launcher


def launches_recent(*, limit: int = 15) -> QuerySet:
    """The most recent EHR launches of every user (developer launcher)."""
    return smart_launch.launches_recent(limit=limit)


def launch_get(*, launch_pk: int) -> Any:
    return smart_launch.launch_get(launch_pk=launch_pk)


def launch_timeline(*, launch: Any) -> list[TimelineEvent]:
    """The launch's recorded events (smart's event log), oldest first, as the developer launcher shows them."""
    return [
        presenters.timeline_event(kind=e.kind, when=e.created, detail=e.detail) for e in launch_events(launch)
    ]
