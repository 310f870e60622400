"""Provides the benchmark's data: the generated population loaded up to N Observations, a token, real ids.

The data is the demo generator's (`ehr.demo.population`), loaded through `fhirapi.store.resources_load`, so
the rows, index entries and versions are exactly what seeding writes. The generator writes vital signs at
clinic visits (~150 Observations a patient); the benchmark wants the density of a monitored patient
(~1,000), so each patient's own vital signs are repeated as home readings on the days before each visit
until the patient has `per_patient` Observations. The first patient loaded in a run is validated as FHIR and
timed on its own; the rest is loaded as trusted bulk data (the generator's output is validated by the demo's
tests), and both rates are reported.
"""

import copy
import json
import multiprocessing
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connections
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model, set_token_value

from ehr.demo.population import patient_resources, practitioners_and_organization
from fhirapi import store
from fhirapi.models import Resource

Application = get_application_model()
AccessToken = get_access_token_model()

BENCH_CLIENT_NAME = "manage.py bench"
BENCH_SCOPE = "system/*.rs system/Observation.c"
OBSERVATIONS_PER_PATIENT = 1000


@dataclass
class LoadStats:
    """What ensuring the data did: Observations before and after, and the resources written and timed."""

    observations_before: int = 0
    observations_after: int = 0
    patients_loaded: int = 0
    resources_loaded: int = 0
    seconds: float = 0.0
    validated_resources: int = 0  # the part loaded with FHIR validation (the first patient of the run)
    validated_seconds: float = 0.0

    @property
    def rate(self) -> float | None:
        return self.resources_loaded / self.seconds if self.seconds else None

    @property
    def validated_rate(self) -> float | None:
        return self.validated_resources / self.validated_seconds if self.validated_seconds else None


@dataclass(frozen=True)
class BenchTargets:
    """The real ids the cases address."""

    patient_id: str
    observation_id: str
    name_prefix: str
    writer_patient_id: str  # whose compartment the create case writes into (not the searched patient's)


def observation_count() -> int:
    return Resource.objects.filter(resource_type="Observation", deleted=False).count()


def patient_id(index: int) -> str:
    return f"pat-{index}"


def data_ensure(
    *,
    observations: int,
    today: date,
    per_patient: int = OBSERVATIONS_PER_PATIENT,
    validate_all: bool = False,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> LoadStats:
    """Load generated patients (pat-0, pat-1, ...) until at least `observations` Observations are stored.

    Patients already stored are kept as they are, so a larger run reuses a smaller run's data. With
    `jobs` > 1 (PostgreSQL), that many processes load disjoint patients at once. `progress(n)` is called
    first with the Observations already stored, then with the number each loaded patient added.
    """
    stats = LoadStats(observations_before=observation_count())
    if not store.resource_ids_existing("Organization", [_organization_id()]):
        store.resources_load(practitioners_and_organization())
    todo = patients_missing(already=stats.observations_before, wanted=observations, per_patient=per_patient)
    if progress:
        progress(stats.observations_before)
    started = time.perf_counter()
    for loaded in _load_patients(
        todo, today=today, per_patient=per_patient, validate_all=validate_all, jobs=jobs
    ):
        stats.resources_loaded += loaded.written
        stats.patients_loaded += 1
        if loaded.validated:
            stats.validated_resources += loaded.written
            stats.validated_seconds += loaded.seconds
        if progress:
            progress(loaded.observations)
    stats.seconds = time.perf_counter() - started
    stats.observations_after = observation_count()
    return stats


def patients_missing(*, already: int, wanted: int, per_patient: int) -> list[int]:
    """Indexes of the not-yet-stored patients that bring `already` Observations up to `wanted`."""
    todo: list[int] = []
    index = 0
    while already + len(todo) * per_patient < wanted:
        indexes = range(index, index + 500)
        existing = store.resource_ids_existing("Patient", [patient_id(i) for i in indexes])
        missing = [i for i in indexes if patient_id(i) not in existing]
        room = -(-(wanted - already) // per_patient) - len(todo)  # ceil division: patients still needed
        todo += missing[: max(0, room)]
        index += 500
    return todo


@dataclass(frozen=True)
class _Loaded:
    written: int
    observations: int
    seconds: float
    validated: bool


def _load_one(index: int, today: date, per_patient: int, validate: bool) -> _Loaded:
    resources = patient_with_readings(index, today=today, per_patient=per_patient)
    started = time.perf_counter()
    written = store.resources_load(resources, batch_size=1000, validate=validate)
    observations = sum(1 for r in resources if r["resourceType"] == "Observation")
    return _Loaded(written, observations, time.perf_counter() - started, validate)


def _load_one_star(args: tuple[int, date, int, bool]) -> _Loaded:
    return _load_one(*args)


def _load_patients(
    todo: list[int], *, today: date, per_patient: int, validate_all: bool, jobs: int
) -> Iterator[_Loaded]:
    """Load the first patient validated (and timed on its own), the rest in this or in `jobs` processes."""
    if not todo:
        return
    yield _load_one(todo[0], today, per_patient, True)
    rest = [(i, today, per_patient, validate_all) for i in todo[1:]]
    if jobs <= 1:
        yield from (_load_one(*args) for args in rest)
        return
    connections.close_all()  # the forked workers open their own connections
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        yield from pool.imap_unordered(_load_one_star, rest, chunksize=1)


def patient_with_readings(index: int, *, today: date, per_patient: int) -> list[dict[str, Any]]:
    """The generator's resources of one patient, plus home readings up to `per_patient` Observations."""
    resources = list(patient_resources(index, today=today))
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    vitals = [r for r in observations if is_vital_sign(r) and "effectiveDateTime" in r]
    missing = per_patient - len(observations)
    if missing <= 0 or not vitals:
        return resources
    return resources + [
        home_reading(vitals[k % len(vitals)], days_before=1 + k // len(vitals)) for k in range(missing)
    ]


def is_vital_sign(resource: dict[str, Any]) -> bool:
    return any(
        coding.get("code") == "vital-signs"
        for category in resource.get("category", [])
        for coding in category.get("coding", [])
    )


def home_reading(visit_vital: dict[str, Any], *, days_before: int) -> dict[str, Any]:
    """A copy of a clinic vital sign taken at home `days_before` days earlier (no encounter, own id)."""
    reading = copy.deepcopy(visit_vital)
    reading["id"] = f"{visit_vital['id']}-h{days_before}"
    reading.pop("encounter", None)
    when = datetime.fromisoformat(visit_vital["effectiveDateTime"]) - timedelta(days=days_before)
    reading["effectiveDateTime"] = when.isoformat()
    return reading


def _organization_id() -> str:
    return next(r["id"] for r in practitioners_and_organization() if r["resourceType"] == "Organization")


def token_mint(*, scope: str = BENCH_SCOPE, ttl: timedelta = timedelta(hours=2)) -> str:
    """A fresh bearer token for the bench client, minted through DOT's model API (as the tests do)."""
    client, _ = Application.objects.get_or_create(
        name=BENCH_CLIENT_NAME,
        defaults={
            "client_type": Application.CLIENT_CONFIDENTIAL,
            "authorization_grant_type": Application.GRANT_CLIENT_CREDENTIALS,
            "allowed_scopes": scope,
        },
    )
    token = AccessToken(application=client, scope=scope, expires=timezone.now() + ttl, launch_context={})
    raw = secrets.token_urlsafe(32)
    set_token_value(token, raw)
    token.save()
    return raw


def targets_pick() -> BenchTargets:
    """The first generated patient, one of its Observations, its family name's prefix, a writer patient."""
    patient = store.resource_read(resource_type="Patient", resource_id=patient_id(0)).as_dict()
    found = store.resource_search(
        resource_type="Observation", params=[("patient", patient_id(0)), ("_count", "1"), ("_total", "none")]
    )
    if not found.resources:
        raise LookupError(f"Patient/{patient_id(0)} has no Observations to read.")
    family = next((n.get("family") for n in patient.get("name", []) if n.get("family")), "")
    writer = patient_id(1) if store.resource_ids_existing("Patient", [patient_id(1)]) else patient_id(0)
    return BenchTargets(
        patient_id=patient_id(0),
        observation_id=found.resources[0].fhir_id,
        name_prefix=family[:3] or "a",
        writer_patient_id=writer,
    )


def observation_body(patient: str) -> str:
    """The JSON the create case POSTs: a heart-rate vital sign (US Core shape) for `patient`."""
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs",
            "display": "Vital Signs",
        }]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}],
                 "text": "Heart rate"},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2025-01-15T09:30:00-05:00",
        "valueQuantity": {"value": 72, "unit": "beats/minute", "system": "http://unitsofmeasure.org",
                          "code": "/min"},
    }  # fmt: skip
    return json.dumps(body)
