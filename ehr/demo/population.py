"""Deterministic demo population: FHIR R4 resources in US Core shapes, as plain JSON dicts.

Everything about patient ``index`` comes from ``random.Random(f"patient-{index}")`` and the ``today`` passed
in, so a population is reproducible and can be generated in parallel or resumed at any index. Ids are stable
strings (``pat-7``, ``enc-7-3``) and every reference is relative and points at a resource emitted earlier
in :func:`iter_population`. Stdlib only: no Django, no pydantic.

Profiles and categories follow US Core (http://hl7.org/fhir/us/core/); vital signs follow the FHIR R4
vital-signs profile (http://hl7.org/fhir/R4/observation-vitalsigns.html).
"""

from __future__ import annotations

import base64
import bisect
import calendar
import html
import math
import random
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any, TypeVar

from ehr.demo import codes as c

__all__ = [
    "cohort_groups",
    "estimated_resources_per_patient",
    "iter_population",
    "patient_resources",
    "practitioners_and_organization",
]

Resource = dict[str, Any]
_T = TypeVar("_T")

ORGANIZATION_ID = "org-1"
RESOURCE_ORDER = (
    "Patient",
    "Encounter",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "Observation",
    "DiagnosticReport",
    "Immunization",
    "Device",
    "Procedure",
    "DocumentReference",
    "Goal",
    "CareTeam",
    "CarePlan",
    "Provenance",
)
_ID_PREFIX = {
    "Encounter": "enc",
    "Condition": "cond",
    "AllergyIntolerance": "allergy",
    "MedicationRequest": "medrx",
    "Observation": "obs",
    "DiagnosticReport": "dr",
    "Immunization": "imm",
    "Device": "device",
    "Procedure": "proc",
    "DocumentReference": "doc",
    "Goal": "goal",
    "CareTeam": "careteam",
    "CarePlan": "careplan",
    "Provenance": "prov",
}
_AGE_BANDS = ((1, 4, 5), (5, 17, 14), (18, 34, 22), (35, 49, 19), (50, 64, 20), (65, 79, 15), (80, 95, 5))
_SPECIALISTS = {"diabetes": "pract-5", "atrial_fibrillation": "pract-4", "cad": "pract-4"}
_NURSE_PRACTITIONER = "pract-6"
_PEDIATRICIAN = "pract-3"
_VISIT_MINUTES = {"well_child": (30, 45), "wellness": (30, 50), "follow_up": (20, 35), "acute": (15, 30)}
_KIND_RANK = {"well_child": 0, "wellness": 0, "follow_up": 1, "acute": 2}
_MERGE_DAYS = 7

# --- Time ---------------------------------------------------------------------------------------------------


@cache
def _utc_offset(day: date) -> str:
    """US Eastern offset: daylight time from the second Sunday in March to the first Sunday in November."""
    march = date(day.year, 3, 8 + (6 - date(day.year, 3, 8).weekday()) % 7)
    november = date(day.year, 11, 1 + (6 - date(day.year, 11, 1).weekday()) % 7)
    return "-04:00" if march <= day < november else "-05:00"


def _ts(moment: datetime) -> str:
    return moment.isoformat() + _utc_offset(moment.date())


def _shift_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _add_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _random_day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, max(0, (end - start).days)))


# --- Small FHIR builders ------------------------------------------------------------------------------------


def _ref(resource_type: str, resource_id: str, display: str | None = None) -> dict[str, str]:
    reference = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        reference["display"] = display
    return reference


def _meta(profile: str) -> dict[str, list[str]]:
    return {"profile": [c.US_CORE + profile]}


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _quantity(value: float, ucum: str, unit: str | None = None) -> dict[str, Any]:
    return {"value": value, "unit": unit or ucum, "system": c.UCUM, "code": ucum}


def _round(value: float, decimals: int) -> float:
    return int(round(value)) if decimals == 0 else round(value, decimals)


def _npi(stem: str) -> str:
    """Append the Luhn check digit computed over the ``80840`` prefix, as NPPES does."""
    total = 0
    for position, char in enumerate(reversed("80840" + stem)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return stem + str((10 - total % 10) % 10)


def _gtin(body: str) -> str:
    """Append the GS1 mod-10 check digit to a 13-digit GTIN body."""
    total = sum(int(char) * (3 if position % 2 == 0 else 1) for position, char in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(char for char in folded.lower() if char.isalnum())


def _weighted(rng: random.Random, items: Sequence[_T], weights: Sequence[float]) -> _T:
    return rng.choices(items, weights)[0]


def _poisson(rng: random.Random, mean: float) -> int:
    limit, product, count = math.exp(-mean), rng.random(), 0
    while product > limit:
        product *= rng.random()
        count += 1
    return count


def _interpolate(x: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    position = bisect.bisect_right(xs, x)
    if position <= 0:
        return ys[0]
    if position >= len(xs):
        return ys[-1]
    x0, x1, y0, y1 = xs[position - 1], xs[position], ys[position - 1], ys[position]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


# --- The hospital -------------------------------------------------------------------------------------------

_ORG_NAME = "Riverside General Hospital"
_ORG_ADDRESS = {"line": ["1200 Riverside Drive"], "city": "Springfield", "state": "MA", "postalCode": "01103"}
_LOCATIONS = (
    ("loc-1", "Riverside General Hospital - Main Campus Clinic", "OF", "Outpatient facility", "0101"),
    ("loc-2", "Riverside Family Practice - Oak Street", "PC", "primary care clinic", "0102"),
)
_PRACTITIONERS = {p.id: p for p in c.PRACTITIONERS}


def _practitioner_name(definition: c.PractitionerDef) -> str:
    return f"{' '.join(definition.given)} {definition.family}, {definition.suffix}"


_PRACTITIONER_DISPLAY = {p.id: _practitioner_name(p) for p in c.PRACTITIONERS}


def _practitioner_ref(practitioner_id: str) -> dict[str, str]:
    return {"reference": f"Practitioner/{practitioner_id}", "display": _PRACTITIONER_DISPLAY[practitioner_id]}


def _organization_ref() -> dict[str, str]:
    return _ref("Organization", ORGANIZATION_ID, _ORG_NAME)


def _address(use: str, line: list[str], city: str, postal_code: str) -> dict[str, Any]:
    return {"use": use, "line": line, "city": city, "state": "MA", "postalCode": postal_code, "country": "US"}


def _organization() -> Resource:
    return {
        "resourceType": "Organization",
        "id": ORGANIZATION_ID,
        "meta": _meta("us-core-organization"),
        "identifier": [{"system": c.NPI, "value": _npi("245319870")}],
        "active": True,
        "type": [_concept(c.TERMINOLOGY + "organization-type", "prov", "Healthcare Provider")],
        "name": _ORG_NAME,
        "telecom": [
            {"system": "phone", "value": "413-555-0100", "use": "work"},
            {"system": "url", "value": "https://hospital.example.org"},
        ],
        "address": [_address("work", ["1200 Riverside Drive"], "Springfield", "01103")],
    }


def _location(location_id: str, name: str, code: str, display: str, phone: str) -> Resource:
    line = ["1200 Riverside Drive"] if location_id == "loc-1" else ["48 Oak Street", "Suite 200"]
    return {
        "resourceType": "Location",
        "id": location_id,
        "meta": _meta("us-core-location"),
        "status": "active",
        "name": name,
        "mode": "instance",
        "type": [_concept(c.TERMINOLOGY + "v3-RoleCode", code, display)],
        "telecom": [{"system": "phone", "value": f"413-555-{phone}", "use": "work"}],
        "address": _address("work", line, "Springfield", "01103" if location_id == "loc-1" else "01108"),
        "managingOrganization": _organization_ref(),
    }


def _practitioner(definition: c.PractitionerDef, number: int) -> Resource:
    degree = ("MD", "Doctor of Medicine") if definition.suffix == "MD" else ("NP", "Nurse Practitioner")
    name: dict[str, Any] = {
        "use": "official",
        "text": _practitioner_name(definition),
        "family": definition.family,
        "given": list(definition.given),
        "suffix": [definition.suffix],
    }
    if definition.suffix == "MD":
        name["prefix"] = ["Dr."]
    email = f"{_ascii(definition.given[0])}.{_ascii(definition.family)}@hospital.example.org"
    return {
        "resourceType": "Practitioner",
        "id": definition.id,
        "meta": _meta("us-core-practitioner"),
        "identifier": [{"system": c.NPI, "value": _npi(definition.npi_stem)}],
        "active": True,
        "name": [name],
        "telecom": [
            {"system": "phone", "value": f"413-555-{110 + number:04d}", "use": "work"},
            {"system": "email", "value": email, "use": "work"},
        ],
        "address": [_address("work", ["1200 Riverside Drive"], "Springfield", "01103")],
        "gender": definition.gender,
        "qualification": [{"code": _concept(c.TERMINOLOGY + "v2-0360", *degree)}],
    }


def _practitioner_role(definition: c.PractitionerDef, number: int) -> Resource:
    role = "doctor" if definition.suffix == "MD" else "nurse"
    return {
        "resourceType": "PractitionerRole",
        "id": f"role-{number}",
        "meta": _meta("us-core-practitionerrole"),
        "active": True,
        "practitioner": _practitioner_ref(definition.id),
        "organization": _organization_ref(),
        "code": [_concept(c.TERMINOLOGY + "practitioner-role", role, role.capitalize())],
        "specialty": [definition.taxonomy.concept()],
        "location": [_ref("Location", definition.location)],
        "telecom": [{"system": "phone", "value": f"413-555-{110 + number:04d}", "use": "work"}],
    }


def practitioners_and_organization() -> list[Resource]:
    """The hospital: its Organization, two Locations, six Practitioners and their PractitionerRoles."""
    resources = [_organization()] + [_location(*location) for location in _LOCATIONS]
    resources += [_practitioner(p, n) for n, p in enumerate(c.PRACTITIONERS, start=1)]
    resources += [_practitioner_role(p, n) for n, p in enumerate(c.PRACTITIONERS, start=1)]
    return resources


# --- Who a patient is (independent of ``today``) ------------------------------------------------------------


@dataclass(frozen=True)
class _Profile:
    """The first draws of a patient's generator: enough to place them in a cohort without a date."""

    sex: str
    age: int
    birth_offset: int
    heritage: c.Heritage
    given: tuple[str, ...]
    family: str
    conditions: tuple[str, ...]
    allergies: tuple[int, ...]
    smoking: c.Code
    gp: str


def _draw_age(rng: random.Random) -> int:
    low, high, _ = _weighted(rng, _AGE_BANDS, [band[2] for band in _AGE_BANDS])
    return rng.randint(low, high)


def _draw_conditions(rng: random.Random, age: int) -> tuple[str, ...]:
    chosen: list[str] = []
    for definition in c.CHRONIC_CONDITIONS:
        hit = rng.random() < definition.probability(age)
        excluded = any(
            key in definition.excludes or definition.key in c.CONDITIONS_BY_KEY[key].excludes
            for key in chosen
        )
        if hit and not excluded:
            chosen.append(definition.key)
    return tuple(chosen)


def _draw_gp(rng: random.Random, age: int) -> str:
    if age < 18:
        return _NURSE_PRACTITIONER if rng.random() < 0.15 else _PEDIATRICIAN
    return _weighted(rng, ("pract-1", "pract-2", _NURSE_PRACTITIONER), (45, 40, 15))


def _draw_profile(rng: random.Random) -> _Profile:
    sex = "female" if rng.random() < 0.51 else "male"
    age = _draw_age(rng)
    birth_offset = rng.randint(0, 364)
    heritage = _weighted(rng, c.HERITAGES, [h.weight for h in c.HERITAGES])
    names = heritage.female if sex == "female" else heritage.male
    given = [rng.choice(names)]
    middle = rng.choice(names)
    if rng.random() < 0.4 and middle != given[0]:
        given.append(middle)
    family = rng.choice(heritage.family)
    conditions = _draw_conditions(rng, age)
    allergy_count = _weighted(rng, (0, 1, 2), (72, 22, 6))
    allergies = tuple(sorted(rng.sample(range(len(c.ALLERGIES)), allergy_count)))
    smoking = _weighted(rng, [s for s, _ in c.SMOKING_VALUES], [w for _, w in c.SMOKING_VALUES])
    if age < 18 and rng.random() < 0.95:
        smoking = c.SMOKING_VALUES[0][0]
    return _Profile(
        sex,
        age,
        birth_offset,
        heritage,
        tuple(given),
        family,
        conditions,
        allergies,
        smoking,
        _draw_gp(rng, age),
    )


def _patient_rng(index: int) -> random.Random:
    return random.Random(f"patient-{index}")


def _mrn(index: int) -> str:
    """A six-digit MRN; 7919 is coprime to 10**6, so MRNs are unique for the first million patients."""
    return f"MRN{(index * 7919 + 104729) % 1_000_000:06d}"


# --- A patient's history ------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Problem:
    """A chronic condition of one patient, with when it began and where it was diagnosed."""

    definition: c.ConditionDef
    onset: date
    in_window: bool
    condition_id: str = ""
    visit: _Visit | None = None


@dataclass(eq=False)
class _Visit:
    """One ambulatory encounter, planned before any resource is written."""

    kind: str
    day: date
    problems: list[_Problem] = field(default_factory=list)
    diagnoses: list[_Problem] = field(default_factory=list)
    acute: c.AcuteDef | None = None
    in_progress: bool = False
    id: str = ""
    start: datetime = datetime.min
    end: datetime = datetime.min
    age: float = 0.0
    practitioner: str = ""
    acute_condition_id: str = ""
    vaccines: list[_Dose] = field(default_factory=list)


@dataclass(eq=False)
class _Dose:
    vaccine: str
    day: date
    visit: _Visit | None = None


@dataclass
class _Body:
    """Personal set points that vitals and labs vary around."""

    height_factor: float
    bmi_factor: float
    weight_slope: float
    systolic: float
    diastolic: float
    heart_rate_offset: float
    labs: dict[str, float]


# Growth and vital-sign medians by age in years: CDC growth charts (to 18), NHANES adult BMI, PALS ranges.
_HEIGHT_AGES = (0, 0.25, 0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18)
_HEIGHT_MALE = (50, 61, 68, 76, 82, 87.5, 96, 103, 110, 116, 128, 138, 149, 163, 173, 176)
_HEIGHT_FEMALE = (49, 60, 66, 74, 80.5, 86, 95, 102, 109, 115, 127, 138, 151, 160, 162.5, 163)
_BMI_AGES = (0, 0.25, 0.5, 1, 2, 5, 12, 16, 18, 25, 40, 60, 80, 100)
_BMI_MEDIAN = (13.4, 16.5, 17.3, 17.2, 16.3, 15.3, 17.8, 20.5, 21.7, 24.0, 26.5, 27.5, 26.0, 24.5)
_HR_AGES, _HR_MEDIAN = (0, 1, 3, 6, 10, 15, 18), (130, 115, 100, 90, 82, 75, 72)
_RR_AGES, _RR_MEDIAN = (0, 1, 3, 6, 12, 18), (36, 28, 24, 21, 18, 15)
_LAB_NOISE = 0.04


def _draw_labs(rng: random.Random, sex: str) -> dict[str, float]:
    male = sex == "male"
    means = {
        "glucose": (88, 6),
        "bun": (14, 3),
        "creatinine": (0.95, 0.12) if male else (0.78, 0.1),
        "sodium": (140, 1.5),
        "potassium": (4.2, 0.25),
        "chloride": (102, 1.5),
        "co2": (25.5, 1.5),
        "calcium": (9.5, 0.25),
        "protein": (7.1, 0.3),
        "albumin": (4.3, 0.2),
        "bilirubin": (0.6, 0.2),
        "alp": (75, 15),
        "alt": (24, 7),
        "ast": (22, 5),
        "hdl": (48, 9) if male else (60, 10),
        "ldl": (112, 22),
        "triglycerides": (120, 35),
        "hemoglobin": (15.0, 0.8) if male else (13.5, 0.8),
        "wbc": (6.8, 1.4),
        "platelets": (250, 45),
        "hba1c": (5.3, 0.2),
    }
    return {key: max(mean * 0.3, rng.gauss(mean, sd)) for key, (mean, sd) in means.items()}


class _Chart:
    """Builds every resource of one patient; call :meth:`build` once."""

    def __init__(self, index: int, today: date) -> None:
        self.index = index
        self.today = today
        self.rng = _patient_rng(index)
        self.profile = _draw_profile(self.rng)
        self.birth = _shift_years(today, -self.profile.age) - timedelta(days=self.profile.birth_offset)
        self.patient_id = f"pat-{index}"
        self.patient_reference = f"Patient/{self.patient_id}"
        self.name = " ".join(self.profile.given + (self.profile.family,))
        self.buckets: dict[str, list[Resource]] = {resource_type: [] for resource_type in RESOURCE_ORDER}
        self.counters: dict[str, int] = {}
        self.problems: list[_Problem] = []
        self.problem_by_key: dict[str, _Problem] = {}
        self.visits: list[_Visit] = []
        self.doses: list[_Dose] = []
        self.body = self._draw_body()

    # plumbing

    def _new(self, resource_type: str, profile: str | None = None) -> Resource:
        prefix = _ID_PREFIX[resource_type]
        number = self.counters[prefix] = self.counters.get(prefix, 0) + 1
        resource: Resource = {"resourceType": resource_type, "id": f"{prefix}-{self.index}-{number}"}
        if profile:
            resource["meta"] = _meta(profile)
        self.buckets[resource_type].append(resource)
        return resource

    def _patient_ref(self) -> dict[str, str]:
        return {"reference": self.patient_reference, "display": self.name}

    def _age_at(self, day: date) -> float:
        return (day - self.birth).days / 365.25

    def _has(self, key: str) -> _Problem | None:
        return self.problem_by_key.get(key)

    def _stage(self, key: str, day: date) -> str:
        """'' without the condition, else 'pre' before diagnosis, 'new' at it, 'treated' after."""
        problem = self._has(key)
        if problem is None:
            return ""
        if day < problem.onset:
            return "pre"
        return "new" if day == problem.onset else "treated"

    def _draw_body(self) -> _Body:
        rng, profile = self.rng, self.profile
        obese = "obesity" in profile.conditions
        bmi_factor = rng.gauss(1.0, 0.1) + (0.38 if obese else 0.0)
        return _Body(
            height_factor=rng.gauss(1.0, 0.038),
            bmi_factor=max(0.8, bmi_factor),
            weight_slope=rng.gauss(0.2, 0.9),
            systolic=rng.gauss(114, 7),
            diastolic=rng.gauss(73, 5),
            heart_rate_offset=rng.gauss(0, 6),
            labs=_draw_labs(rng, profile.sex),
        )

    def build(self) -> list[Resource]:
        self._write_patient()
        first_day = self._plan_problems()
        self._plan_visits(first_day)
        self._plan_immunizations(first_day)
        self._write_encounters()
        self._write_conditions()
        self._write_allergies()
        self._write_medications()
        for visit in self.visits:
            self._write_visit(visit)
        self._write_immunizations()
        self._write_devices(first_day)
        goals = self._write_goals()
        care_team = self._write_care_team()
        self._write_care_plan(goals, care_team)
        self._write_provenance()
        return [resource for resource_type in RESOURCE_ORDER for resource in self.buckets[resource_type]]

    # the patient

    def _write_patient(self) -> None:
        rng, profile = self.rng, self.profile
        city, postal_codes = rng.choice(c.CITIES)
        street = f"{rng.randint(3, 1999)} {rng.choice(c.STREETS)}"
        telecom = [{"system": "phone", "value": f"413-555-{rng.randint(100, 199):04d}", "use": "home"}]
        if profile.age >= 13:
            email = f"{_ascii(profile.given[0])}.{_ascii(profile.family)}{rng.randint(1, 99)}@example.com"
            telecom.append({"system": "email", "value": email, "use": "home"})
        language = (
            profile.heritage.language if profile.heritage.language and rng.random() < 0.45 else c.ENGLISH
        )
        patient: Resource = {
            "resourceType": "Patient",
            "id": self.patient_id,
            "meta": _meta("us-core-patient"),
            "extension": self._demographic_extensions(),
            "identifier": [self._mrn_identifier()],
            "active": True,
            "name": [
                {"use": "official", "text": self.name, "family": profile.family, "given": list(profile.given)}
            ],
            "telecom": telecom,
            "gender": profile.sex,
            "birthDate": self.birth.isoformat(),
            "address": [_address("home", [street], city, rng.choice(postal_codes))],
            "communication": [{"language": language.concept(), "preferred": True}],
            "generalPractitioner": [_practitioner_ref(profile.gp)],
            "managingOrganization": _organization_ref(),
        }
        if profile.age >= 18:
            status = _weighted(rng, _MARITAL, [w for *_, w in _MARITAL])
            patient["maritalStatus"] = _concept(c.TERMINOLOGY + "v3-MaritalStatus", status[0], status[1])
        else:
            patient["contact"] = [self._guardian(telecom[0]["value"])]
        self.buckets["Patient"].append(patient)

    def _demographic_extensions(self) -> list[dict[str, Any]]:
        heritage = self.profile.heritage
        ethnicity = c.ETHNICITY_HISPANIC if heritage.hispanic else c.ETHNICITY_NOT_HISPANIC
        return [
            _omb_extension("us-core-race", heritage.race),
            _omb_extension("us-core-ethnicity", ethnicity),
            {
                "url": c.US_CORE + "us-core-birthsex",
                "valueCode": "F" if self.profile.sex == "female" else "M",
            },
        ]

    def _mrn_identifier(self) -> dict[str, Any]:
        return {
            "use": "usual",
            "type": _concept(c.TERMINOLOGY + "v2-0203", "MR", "Medical record number"),
            "system": c.MRN_SYSTEM,
            "value": _mrn(self.index),
            "assigner": _organization_ref(),
        }

    def _guardian(self, phone: str) -> dict[str, Any]:
        parent = self.rng.choice(self.profile.heritage.female)
        return {
            "relationship": [_concept(c.TERMINOLOGY + "v2-0131", "N", "Next-of-Kin")],
            "name": {"use": "official", "family": self.profile.family, "given": [parent]},
            "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
        }

    # planning

    def _plan_problems(self) -> date:
        """Place each chronic condition's onset; return the first day of the record window."""
        rng, today = self.rng, self.today
        span = rng.randint(2 * 365 + 130, 5 * 365)
        first_day = max(today - timedelta(days=span), self.birth + timedelta(days=3))
        for key in self.profile.conditions:
            definition = c.CONDITIONS_BY_KEY[key]
            earliest = _shift_years(self.birth, definition.prevalence[0][0])
            in_window = rng.random() < 0.3 or earliest > first_day - timedelta(days=60)
            if in_window:
                window_start = max(earliest, first_day + timedelta(days=30))
                onset = _random_day(rng, window_start, today - timedelta(days=30))
            else:
                onset = _random_day(rng, earliest, first_day - timedelta(days=60))
            self.problems.append(_Problem(definition, min(onset, today - timedelta(days=1)), in_window))
        self.problems.sort(key=lambda problem: problem.onset)
        self.problem_by_key = {problem.definition.key: problem for problem in self.problems}
        return first_day

    def _plan_visits(self, first_day: date) -> None:
        candidates = self._checkup_candidates(first_day)
        candidates += self._diagnosis_candidates() + self._follow_up_candidates(first_day)
        candidates += self._acute_candidates(first_day)
        candidates += self._recent_candidate(candidates)
        candidates.sort(key=lambda visit: (visit.day, _KIND_RANK[visit.kind]))
        self.visits = _merge_visits(candidates)
        self._maybe_in_progress()
        for number, visit in enumerate(self.visits, start=1):
            self._schedule(visit, number)

    def _checkup_kind(self, day: date) -> str:
        return "well_child" if self._age_at(day) < 18 else "wellness"

    def _checkup_candidates(self, first_day: date) -> list[_Visit]:
        rng, days = self.rng, [first_day]
        for months in c.WELL_CHILD_MONTHS:
            day = _add_months(self.birth, months) + timedelta(days=rng.randint(0, 6))
            if first_day < day < self.today:
                days.append(day)
        offset = rng.randint(-30, 60)
        for year in range(first_day.year, self.today.year + 1):
            day = _shift_years(self.birth, year - self.birth.year) + timedelta(
                days=offset + rng.randint(-10, 10)
            )
            if first_day < day < self.today and self._age_at(day) >= 3.1:
                days.append(day)
        return [_Visit(self._checkup_kind(day), day) for day in days]

    def _diagnosis_candidates(self) -> list[_Visit]:
        return [_Visit("acute", p.onset, [p], [p]) for p in self.problems if p.in_window]

    def _follow_up_candidates(self, first_day: date) -> list[_Visit]:
        """One chronic-care stream, paced by the most demanding condition active at the time."""
        tracked = [problem for problem in self.problems if problem.definition.follow_up_days]
        if not tracked:
            return []
        visits: list[_Visit] = []
        day = max(first_day, tracked[0].onset)
        while True:
            active = [problem for problem in tracked if problem.onset <= day]
            day += timedelta(
                days=self.rng.randint(*min(p.definition.follow_up_days or (0, 0) for p in active))
            )
            if day >= self.today - timedelta(days=1):
                return visits
            visits.append(_Visit("follow_up", day, [problem for problem in tracked if problem.onset < day]))

    def _pick_acute(self, day: date) -> c.AcuteDef | None:
        age = self._age_at(day)
        options = [acute for acute in c.ACUTE_CONDITIONS if age >= acute.min_age]
        return self.rng.choice(options) if options else None

    def _acute_candidates(self, first_day: date) -> list[_Visit]:
        rng = self.rng
        years = (self.today - first_day).days / 365.25
        visits = []
        for _ in range(_poisson(rng, (0.8 if self.profile.age < 12 else 0.45) * years)):
            day = _random_day(rng, first_day + timedelta(days=1), self.today - timedelta(days=2))
            acute = self._pick_acute(day)
            if acute:
                visits.append(_Visit("acute", day, acute=acute))
        return visits

    def _recent_candidate(self, candidates: list[_Visit]) -> list[_Visit]:
        """A visit in the last four months, so every record runs up to (nearly) today."""
        if max(visit.day for visit in candidates) >= self.today - timedelta(days=120):
            return []
        day = self.today - timedelta(days=self.rng.randint(5, 90))
        active = [problem for problem in self.problems if problem.onset < day]
        if active:
            return [_Visit("follow_up", day, [self.rng.choice(active)])]
        acute = self._pick_acute(day)
        return [_Visit("acute", day, acute=acute)] if acute else [_Visit(self._checkup_kind(day), day)]

    def _maybe_in_progress(self) -> None:
        """One patient in ten is being seen right now: an encounter since yesterday, still in progress."""
        yesterday = self.today - timedelta(days=1)
        if self.rng.random() >= 0.1 or self.visits[-1].day >= self.today - timedelta(days=_MERGE_DAYS):
            return
        active = [problem for problem in self.problems if problem.onset < yesterday][:1]
        acute = None if active else self._pick_acute(yesterday)
        kind = "follow_up" if active else "acute" if acute else self._checkup_kind(yesterday)
        self.visits.append(_Visit(kind, yesterday, active, acute=acute, in_progress=True))

    def _schedule(self, visit: _Visit, number: int) -> None:
        rng = self.rng
        visit.id = f"enc-{self.index}-{number}"
        first_minute, slots = (13 * 60, 42) if visit.in_progress else (8 * 60, 102)
        visit.start = datetime.combine(visit.day, time()) + timedelta(
            minutes=first_minute + 5 * rng.randrange(slots)
        )
        visit.end = visit.start + timedelta(minutes=rng.randint(*_VISIT_MINUTES[visit.kind]))
        visit.age = self._age_at(visit.day)
        visit.practitioner = self._clinician_for(visit)

    def _clinician_for(self, visit: _Visit) -> str:
        roll = self.rng.random()
        if visit.kind == "follow_up" and visit.problems:
            specialist = _SPECIALISTS.get(visit.problems[0].definition.key)
            if specialist and roll < 0.6:
                return specialist
        if visit.kind == "acute" and roll < 0.5:
            return _NURSE_PRACTITIONER
        if visit.age < 18 and self.profile.gp not in (_PEDIATRICIAN, _NURSE_PRACTITIONER):
            return _PEDIATRICIAN
        return self.profile.gp

    def _finished(self) -> list[_Visit]:
        return [visit for visit in self.visits if not visit.in_progress]

    def _visit_near(self, day: date, days: int, kinds: tuple[str, ...]) -> _Visit | None:
        for visit in self._finished():
            if visit.kind in kinds and abs((visit.day - day).days) <= days:
                return visit
        return None

    def _plan_immunizations(self, first_day: date) -> None:
        if self.profile.age <= 18 and self.rng.random() < 0.94:
            for vaccine, months in c.CHILDHOOD_SCHEDULE:
                day = _add_months(self.birth, months) + timedelta(days=self.rng.randint(0, 5))
                if day < self.today:
                    self._dose(
                        vaccine, day, self._visit_near(day, 14 if months < 36 else 90, ("well_child",))
                    )
        self._plan_influenza(first_day)
        self._plan_adult_vaccines()
        self.doses.sort(key=lambda dose: dose.day)

    def _dose(self, vaccine: str, day: date, visit: _Visit | None = None) -> None:
        dose = _Dose(vaccine, visit.day if visit else day, visit)
        self.doses.append(dose)
        if visit:
            visit.vaccines.append(dose)

    def _historical_dose(self, vaccine: str, day: date) -> None:
        if self.birth < day < self.today:
            self._dose(vaccine, day)

    def _plan_influenza(self, first_day: date) -> None:
        uptake = 0.7 if self.profile.age >= 65 else 0.5
        for year in range(first_day.year - 1, self.today.year + 1):
            if self.rng.random() >= uptake:
                continue
            season = [v for v in self._finished() if date(year, 9, 1) <= v.day <= date(year, 12, 31)]
            visit = season[0] if season else None
            day = visit.day if visit else date(year, 9, 10) + timedelta(days=self.rng.randint(0, 80))
            if first_day <= day < self.today and self._age_at(day) >= 0.5:
                self._dose("flu_trivalent" if year >= 2024 else "flu_quadrivalent", day, visit)

    def _plan_adult_vaccines(self) -> None:
        rng, age = self.rng, self.profile.age
        if self._age_at(date(2021, 5, 15)) >= 12 and rng.random() < 0.7:
            pfizer = rng.random() < 0.6
            first_dose = date(2021, 3, 1) + timedelta(days=rng.randint(0, 150))
            for day in (first_dose, first_dose + timedelta(days=21 if pfizer else 28)):
                self._historical_dose("covid_pfizer" if pfizer else "covid_moderna", day)
            if rng.random() < 0.5:
                self._historical_dose(
                    "covid_unspecified", date(2022, 10, 1) + timedelta(days=rng.randint(0, 80))
                )
        if age >= 19 and rng.random() < 0.6:
            day = self.today - timedelta(days=rng.randint(30, 3650))
            if day > _shift_years(self.birth, 19):
                self._dose("tdap", day, self._visit_near(day, 60, ("wellness",)))
        if age >= 50 and rng.random() < 0.35:
            day = max(date(2018, 1, 1), _shift_years(self.birth, 50)) + timedelta(days=rng.randint(0, 900))
            self._historical_dose("zoster", day)
            self._historical_dose("zoster", day + timedelta(days=rng.randint(60, 180)))
        if age >= 65 and rng.random() < 0.65:
            self._historical_dose(
                "ppsv23", _shift_years(self.birth, 65) + timedelta(days=rng.randint(0, 1500))
            )

    # encounters, conditions, allergies, medications

    def _write_encounters(self) -> None:
        for visit in self.visits:
            period = {"start": _ts(visit.start)}
            if not visit.in_progress:
                period["end"] = _ts(visit.end)
            encounter: Resource = {
                "resourceType": "Encounter",
                "id": visit.id,
                "meta": _meta("us-core-encounter"),
                "status": "in-progress" if visit.in_progress else "finished",
                "class": {"system": c.TERMINOLOGY + "v3-ActCode", "code": "AMB", "display": "ambulatory"},
                "type": [c.ENCOUNTER_TYPES[visit.kind].concept()],
                "subject": self._patient_ref(),
                "participant": [
                    {
                        "type": [
                            _concept(c.TERMINOLOGY + "v3-ParticipationType", "PPRF", "primary performer")
                        ],
                        "individual": _practitioner_ref(visit.practitioner),
                    }
                ],
                "period": period,
                "location": [{"location": _ref("Location", _PRACTITIONERS[visit.practitioner].location)}],
                "serviceProvider": _organization_ref(),
            }
            reasons = [_condition_concept(p.definition.snomed, p.definition.icd10) for p in visit.problems]
            if visit.acute:
                reasons.append(_condition_concept(visit.acute.snomed, visit.acute.icd10))
            if reasons:
                encounter["reasonCode"] = reasons
            self.buckets["Encounter"].append(encounter)

    def _write_conditions(self) -> None:
        for problem in self.problems:
            problem.condition_id = self._write_chronic_condition(problem)
        for visit in self.visits:
            if visit.acute:
                visit.acute_condition_id = self._write_acute_condition(visit, visit.acute)

    def _write_chronic_condition(self, problem: _Problem) -> str:
        definition, visit = problem.definition, problem.visit
        recorded = (
            visit.day if visit else min(problem.onset + timedelta(days=self.rng.randint(0, 60)), self.today)
        )
        condition = self._new("Condition", "us-core-condition-problems-health-concerns")
        condition.update(
            {
                "clinicalStatus": _concept(c.TERMINOLOGY + "condition-clinical", "active", "Active"),
                "verificationStatus": _concept(
                    c.TERMINOLOGY + "condition-ver-status", "confirmed", "Confirmed"
                ),
                "category": [
                    _concept(c.TERMINOLOGY + "condition-category", "problem-list-item", "Problem List Item")
                ],
                "code": _condition_concept(definition.snomed, definition.icd10),
                "subject": self._patient_ref(),
                "onsetDateTime": problem.onset.isoformat(),
                "recordedDate": recorded.isoformat(),
                "recorder": _practitioner_ref(visit.practitioner if visit else self.profile.gp),
            }
        )
        if visit:
            condition["encounter"] = _ref("Encounter", visit.id)
        return str(condition["id"])

    def _write_acute_condition(self, visit: _Visit, acute: c.AcuteDef) -> str:
        onset = visit.day - timedelta(days=self.rng.randint(1, 5))
        abatement = visit.day + timedelta(days=self.rng.randint(7, 14))
        resolved = abatement < self.today
        clinical = ("resolved", "Resolved") if resolved else ("active", "Active")
        condition = self._new("Condition", "us-core-condition-encounter-diagnosis")
        condition.update(
            {
                "clinicalStatus": _concept(c.TERMINOLOGY + "condition-clinical", *clinical),
                "verificationStatus": _concept(
                    c.TERMINOLOGY + "condition-ver-status", "confirmed", "Confirmed"
                ),
                "category": [
                    _concept(
                        c.TERMINOLOGY + "condition-category", "encounter-diagnosis", "Encounter Diagnosis"
                    )
                ],
                "code": _condition_concept(acute.snomed, acute.icd10),
                "subject": self._patient_ref(),
                "encounter": _ref("Encounter", visit.id),
                "onsetDateTime": onset.isoformat(),
                "recordedDate": visit.day.isoformat(),
                "recorder": _practitioner_ref(visit.practitioner),
            }
        )
        if resolved:
            condition["abatementDateTime"] = abatement.isoformat()
        return str(condition["id"])

    def _write_allergies(self) -> None:
        first = self.visits[0]
        for number in self.profile.allergies or (None,):
            allergy = self._new("AllergyIntolerance", "us-core-allergyintolerance")
            allergy.update(
                {
                    "clinicalStatus": _concept(
                        c.TERMINOLOGY + "allergyintolerance-clinical", "active", "Active"
                    ),
                    "verificationStatus": _allergy_verification(self.rng.random() < 0.1),
                    "patient": self._patient_ref(),
                    "encounter": _ref("Encounter", first.id),
                    "recordedDate": _ts(first.start + timedelta(minutes=10)),
                    "recorder": _practitioner_ref(first.practitioner),
                }
            )
            if number is None:
                allergy["code"] = c.NO_KNOWN_ALLERGY.concept()
                continue
            definition = c.ALLERGIES[number]
            allergy["type"] = "allergy"
            allergy["category"] = [definition.category]
            allergy["criticality"] = definition.criticality
            allergy["code"] = {
                "coding": [code.coding() for code in definition.codes],
                "text": definition.codes[0].display,
            }
            allergy["reaction"] = [
                {"manifestation": [definition.reaction.concept()], "severity": definition.severity}
            ]

    def _write_medications(self) -> None:
        active: set[str] = set()
        for problem in self.problems:
            self._prescribe_for_problem(problem, active)
        penicillin_allergy = 0 in self.profile.allergies
        for visit in self._finished():
            key = visit.acute.medication if visit.acute else None
            if key is None or (key == "amoxicillin" and penicillin_allergy):
                continue
            medication = c.MEDICATIONS[key]
            finished = visit.day + timedelta(days=medication.days) < self.today
            self._prescribe(
                medication, visit, visit.acute_condition_id, "completed" if finished else "active"
            )

    def _prescribe_for_problem(self, problem: _Problem, active: set[str]) -> None:
        definition = problem.definition
        visit = problem.visit or self.visits[0]
        if definition.switched_from and definition.medications and self.rng.random() < 0.3:
            self._prescribe(c.MEDICATIONS[definition.switched_from], visit, problem.condition_id, "stopped")
            later = [v for v in self._finished() if v.day > visit.day]
            visit = later[0] if later else visit
        for key in definition.medications:
            if key not in active:
                active.add(key)
                self._prescribe(c.MEDICATIONS[key], visit, problem.condition_id, "active")

    def _prescribe(self, medication: c.MedicationDef, visit: _Visit, condition_id: str, status: str) -> None:
        request = self._new("MedicationRequest", "us-core-medicationrequest")
        request.update(
            {
                "status": status,
                "intent": "order",
                "category": [
                    _concept(c.TERMINOLOGY + "medicationrequest-category", "outpatient", "Outpatient")
                ],
                "medicationCodeableConcept": medication.concept(),
                "subject": self._patient_ref(),
                "encounter": _ref("Encounter", visit.id),
                "authoredOn": _ts(visit.start + timedelta(minutes=12)),
                "requester": _practitioner_ref(visit.practitioner),
                "reasonReference": [_ref("Condition", condition_id)],
                "dosageInstruction": [_dosage(medication)],
                "dispenseRequest": _dispense(medication),
            }
        )
        if status == "stopped" and medication.stop_reason:
            request["statusReason"] = {"text": medication.stop_reason}

    # what happens at a visit

    def _write_visit(self, visit: _Visit) -> None:
        vitals = self._write_vitals(visit) if self._takes_vitals(visit) else {}
        if visit.in_progress:
            return
        if visit.kind in ("wellness", "well_child") and visit.age >= 13:
            smoking = self._observation(
                visit,
                _ts(visit.start + timedelta(minutes=8)),
                "social-history",
                (c.SMOKING_STATUS,),
                "us-core-smokingstatus",
            )
            smoking["valueCodeableConcept"] = self.profile.smoking.concept()
        panels = self._lab_panels(visit)
        for panel in panels:
            self._write_lab_report(visit, panel)
        self._write_visit_procedures(visit)
        self._write_note(visit, vitals, panels)

    def _takes_vitals(self, visit: _Visit) -> bool:
        skip = visit.kind == "acute" and self.rng.random() < 0.1
        return not skip or visit is self.visits[0] or visit in self.visits[-2:]

    def _observation(
        self, visit: _Visit, when: str, category: str, codes: tuple[c.Code, ...], profile: str
    ) -> Resource:
        observation = self._new("Observation", profile)
        observation.update(
            {
                "status": "final",
                "category": [_concept(_OBSERVATION_CATEGORY, category, _CATEGORIES[category])],
                "code": {"coding": [code.coding() for code in codes], "text": codes[0].display},
                "subject": {"reference": self.patient_reference, "display": self.name},
                "encounter": {"reference": f"Encounter/{visit.id}"},
                "effectiveDateTime": when,
                "performer": [_practitioner_ref(visit.practitioner)],
            }
        )
        return observation

    def _write_vitals(self, visit: _Visit) -> dict[str, Any]:
        values = self._vital_values(visit)
        when = _ts(visit.start + timedelta(minutes=5))
        for key, value in values.items():
            vital = c.VITALS[key]
            observation = self._observation(visit, when, "vital-signs", vital.codes, vital.profile)
            if key == "bp":
                observation["component"] = [
                    {
                        "code": c.SYSTOLIC.concept(),
                        "valueQuantity": _quantity(value[0], vital.ucum, vital.unit),
                    },
                    {
                        "code": c.DIASTOLIC.concept(),
                        "valueQuantity": _quantity(value[1], vital.ucum, vital.unit),
                    },
                ]
            else:
                observation["valueQuantity"] = _quantity(value, vital.ucum, vital.unit)
        return values

    def _vital_values(self, visit: _Visit) -> dict[str, Any]:
        rng, body, age = self.rng, self.body, visit.age
        copd = self._stage("copd", visit.day) in ("new", "treated")
        fever = visit.acute is not None and visit.acute.fever and rng.random() < 0.6
        heart_rate = (
            _interpolate(age, _HR_AGES, _HR_MEDIAN) + body.heart_rate_offset + rng.gauss(0, 4) + 12 * fever
        )
        if self._has("atrial_fibrillation"):
            heart_rate += rng.gauss(4, 9)
        height = round(self._height(age) + rng.gauss(0, 0.3), 1)
        weight = round(self._weight(visit, height), 1)
        values: dict[str, Any] = {"bp": self._blood_pressure(visit)} if age >= 3 else {}
        values["heart_rate"] = int(round(heart_rate))
        values["respiratory_rate"] = int(
            round(_interpolate(age, _RR_AGES, _RR_MEDIAN) + rng.gauss(0, 1.5) + 3 * copd)
        )
        values["temperature"] = round(rng.uniform(38.0, 39.2) if fever else rng.gauss(36.75, 0.2), 1)
        values["spo2"] = int(round(min(100.0, rng.gauss(93.5 if copd else 98.0, 1.1))))
        values["height"] = height
        values["weight"] = weight
        values["bmi"] = round(weight / (height / 100) ** 2, 1)
        return values

    def _height(self, age: float) -> float:
        medians = _HEIGHT_MALE if self.profile.sex == "male" else _HEIGHT_FEMALE
        shrink = 0.15 * (age - 65) if age > 65 else 0.0
        return _interpolate(age, _HEIGHT_AGES, medians) * self.body.height_factor - shrink

    def _weight(self, visit: _Visit, height: float) -> float:
        bmi = _interpolate(visit.age, _BMI_AGES, _BMI_MEDIAN) * self.body.bmi_factor
        weight = bmi * (height / 100) ** 2
        if visit.age >= 20:
            weight += self.body.weight_slope * (visit.day - self.visits[0].day).days / 365.25
        return max(2.5, weight * (1 + self.rng.gauss(0, 0.008)))

    def _blood_pressure(self, visit: _Visit) -> tuple[int, int]:
        rng, age = self.rng, visit.age
        if age < 18:
            systolic, diastolic = 92 + 1.3 * age, 55 + 0.9 * age
        else:
            systolic = self.body.systolic + 0.45 * max(0.0, age - 35)
            diastolic = self.body.diastolic + 0.12 * max(0.0, age - 35)
        bump = _HYPERTENSION_BUMP.get(self._stage("hypertension", visit.day), (0, 0))
        systolic += bump[0] + rng.gauss(0, 5)
        diastolic = min(diastolic + bump[1] + rng.gauss(0, 4), systolic - 25)
        return int(round(systolic)), int(round(diastolic))

    # laboratory

    def _lab_panels(self, visit: _Visit) -> list[c.PanelDef]:
        if visit.age < 18:
            return []
        rng, wanted = self.rng, set()
        if visit.kind == "wellness":
            metabolic = any(self._has(key) for key in ("diabetes", "prediabetes", "hyperlipidemia", "cad"))
            for key, chance in (("cmp", 0.7), ("cbc", 0.6), ("lipid", 1.0 if metabolic else 0.6)):
                if rng.random() < chance and (key != "lipid" or visit.age >= 20):
                    wanted.add(key)
            if self._has("diabetes") or self._has("prediabetes") or (visit.age >= 35 and rng.random() < 0.5):
                wanted.add("hba1c")
        for problem in visit.problems:
            for key, chance in _FOLLOW_UP_LABS.get(problem.definition.key, ()):
                if problem.visit is visit or rng.random() < chance:
                    wanted.add(key)
        return [panel for key, panel in c.PANELS.items() if key in wanted]

    def _write_lab_report(self, visit: _Visit, panel: c.PanelDef) -> None:
        drawn = visit.start + timedelta(minutes=15)
        effective, issued = _ts(drawn), _ts(drawn + timedelta(minutes=self.rng.randint(120, 360)))
        values = self._lab_values(visit, panel)
        results = [
            self._write_lab(visit, effective, issued, c.LABS[key], value) for key, value in values.items()
        ]
        report = self._new("DiagnosticReport", "us-core-diagnosticreport-lab")
        report.update(
            {
                "status": "final",
                "category": [_concept(c.TERMINOLOGY + "v2-0074", "LAB", "Laboratory")],
                "code": panel.code.concept(),
                "subject": self._patient_ref(),
                "encounter": _ref("Encounter", visit.id),
                "effectiveDateTime": effective,
                "issued": issued,
                "performer": [_organization_ref()],
                "result": [_ref("Observation", observation_id) for observation_id in results],
            }
        )

    def _write_lab(self, visit: _Visit, effective: str, issued: str, lab: c.LabDef, value: float) -> str:
        observation = self._observation(
            visit, effective, "laboratory", (lab.code,), "us-core-observation-lab"
        )
        low, high = lab.range_for(self.profile.sex)
        value = _round(value, lab.decimals)
        observation["issued"] = issued
        observation["performer"] = [_organization_ref()]
        observation["valueQuantity"] = _quantity(value, lab.ucum)
        observation["interpretation"] = [_interpretation(value, low, high)]
        observation["referenceRange"] = [_reference_range(low, high, lab.ucum)]
        return str(observation["id"])

    def _lab_values(self, visit: _Visit, panel: c.PanelDef) -> dict[str, float]:
        values: dict[str, float] = {}
        for key in panel.labs:
            if key not in _DERIVED_LABS:
                values[key] = self._lab_value(key, visit)
        if "hematocrit" in panel.labs:
            values["hematocrit"] = values["hemoglobin"] * self.rng.gauss(2.95, 0.06)
        if "cholesterol" in panel.labs:
            values["cholesterol"] = values["hdl"] + values["ldl"] + values["triglycerides"] / 5
        return {key: max(values[key], 0.05) for key in panel.labs}

    def _lab_value(self, key: str, visit: _Visit) -> float:
        rng, day = self.rng, visit.day
        noise = 1 + rng.gauss(0, _LAB_NOISE)
        if key == "hba1c":
            return self._hba1c(day)
        if key == "glucose" and self._has("diabetes"):
            return (28.7 * self._hba1c(day) - 58.7) * noise
        if key == "glucose" and self._has("prediabetes"):
            return rng.uniform(100, 124)
        if key == "ldl":
            return self._ldl(day) * noise
        value = self.body.labs[key] * noise
        ckd = self._has("ckd")
        if ckd and key == "creatinine":
            value = (1.45 + 0.06 * max(0.0, (day - ckd.onset).days / 365.25)) * noise
        elif ckd and key in _CKD_SHIFT:
            value += _CKD_SHIFT[key]
        if "obesity" in self.profile.conditions and key in _OBESITY_SHIFT:
            value += _OBESITY_SHIFT[key]
        return value

    def _hba1c(self, day: date) -> float:
        stage = self._stage("diabetes", day)
        if stage:
            return _DIABETES_HBA1C[stage] + self.rng.gauss(0, 0.4)
        base = 5.95 if self._has("prediabetes") else self.body.labs["hba1c"]
        return base + self.rng.gauss(0, 0.12)

    def _ldl(self, day: date) -> float:
        ldl = self.body.labs["ldl"] + (55 if self._has("hyperlipidemia") else 0)
        on_statin = "treated" in (self._stage("hyperlipidemia", day), self._stage("cad", day))
        return ldl * 0.62 if on_statin else ldl

    # procedures, notes, immunizations, devices

    def _write_visit_procedures(self, visit: _Visit) -> None:
        if visit.kind in ("wellness", "well_child") and visit.age >= 12:
            self._write_procedure(c.DEPRESSION_SCREENING, visit)
        if visit.acute and visit.acute.procedure:
            self._write_procedure(visit.acute.procedure, visit, visit.acute_condition_id)
        for problem in visit.diagnoses:
            if problem.definition.key in ("asthma", "copd"):
                self._write_procedure(c.SPIROMETRY, visit, problem.condition_id)
        if visit is self._finished()[-1]:
            self._write_procedure(c.MEDICATION_RECONCILIATION, visit)

    def _write_procedure(self, code: c.Code, visit: _Visit, reason_id: str = "") -> None:
        procedure = self._new("Procedure", "us-core-procedure")
        procedure.update(
            {
                "status": "completed",
                "code": code.concept(),
                "subject": self._patient_ref(),
                "encounter": _ref("Encounter", visit.id),
                "performedDateTime": _ts(visit.start + timedelta(minutes=10)),
                "performer": [{"actor": _practitioner_ref(visit.practitioner)}],
                "location": _ref("Location", _PRACTITIONERS[visit.practitioner].location),
            }
        )
        if reason_id:
            procedure["reasonReference"] = [_ref("Condition", reason_id)]

    def _write_note(self, visit: _Visit, vitals: dict[str, Any], panels: list[c.PanelDef]) -> None:
        text = self._note_text(visit, vitals, panels)
        signed = _ts(visit.end)
        document = self._new("DocumentReference", "us-core-documentreference")
        document.update(
            {
                "status": "current",
                "docStatus": "final",
                "type": c.PROGRESS_NOTE.concept(),
                "category": [_concept(_DOCUMENT_CATEGORY, "clinical-note", "Clinical Note")],
                "subject": self._patient_ref(),
                "date": signed,
                "author": [_practitioner_ref(visit.practitioner)],
                "custodian": _organization_ref(),
                "description": f"{c.ENCOUNTER_TYPES[visit.kind].display} on {visit.day.isoformat()}",
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain",
                            "language": "en-US",
                            "data": base64.b64encode(text.encode()).decode("ascii"),
                            "title": "Progress note",
                            "creation": signed,
                        },
                        "format": _concept(
                            _FORMAT_CODES, "urn:ihe:iti:xds:2017:mimeTypeSufficient", "mimeType Sufficient"
                        )["coding"][0],
                    }
                ],
                "context": {
                    "encounter": [_ref("Encounter", visit.id)],
                    "period": {"start": _ts(visit.start), "end": signed},
                },
            }
        )

    def _note_text(self, visit: _Visit, vitals: dict[str, Any], panels: list[c.PanelDef]) -> str:
        clinician = _practitioner_name(_PRACTITIONERS[visit.practitioner])
        lines = [
            f"PROGRESS NOTE - {c.ENCOUNTER_TYPES[visit.kind].display}",
            f"Patient: {self.name}   DOB: {self.birth.isoformat()}   MRN: {_mrn(self.index)}",
            f"Date: {visit.day.isoformat()}   Clinician: {clinician}",
            "",
        ]
        if visit.acute:
            lines.append(f"Chief complaint: {visit.acute.snomed.display.lower()}.")
        elif visit.problems:
            lines.append(
                "Reason for visit: "
                + ", ".join(p.definition.snomed.display.lower() for p in visit.problems)
                + "."
            )
        else:
            lines.append("Reason for visit: routine preventive examination.")
        if vitals:
            lines.append("Vitals: " + _vitals_summary(vitals) + ".")
        lines += ["", "Assessment and plan:"]
        lines += [_problem_line(p, visit) for p in self.problems if p.onset <= visit.day]
        if visit.acute:
            drug = c.MEDICATIONS[visit.acute.medication].display if visit.acute.medication else None
            plan = f"{drug} as directed" if drug else "supportive care, fluids and rest"
            lines.append(f"- {visit.acute.snomed.display} ({visit.acute.icd10.code}): {plan}.")
        if panels:
            lines.append("- Labs ordered: " + "; ".join(panel.code.display for panel in panels) + ".")
        if visit.vaccines:
            lines.append(
                "- Immunizations given: "
                + "; ".join(c.VACCINES[d.vaccine].display for d in visit.vaccines)
                + "."
            )
        if visit.kind in ("wellness", "well_child"):
            lines.append("- Preventive care and age-appropriate screening reviewed.")
        return "\n".join(lines) + "\n"

    def _write_immunizations(self) -> None:
        for dose in self.doses:
            immunization = self._new("Immunization", "us-core-immunization")
            immunization.update(
                {
                    "status": "completed",
                    "vaccineCode": c.VACCINES[dose.vaccine].concept(),
                    "patient": self._patient_ref(),
                }
            )
            visit = dose.visit
            if visit:
                immunization["encounter"] = _ref("Encounter", visit.id)
                immunization["occurrenceDateTime"] = _ts(visit.end - timedelta(minutes=5))
                immunization["primarySource"] = True
            else:
                immunization["occurrenceDateTime"] = dose.day.isoformat()
                immunization["primarySource"] = False
                immunization["reportOrigin"] = _concept(
                    c.TERMINOLOGY + "immunization-origin", "record", "Written Record"
                )
            immunization["lotNumber"] = self._lot_number()
            route = _VACCINE_ROUTES.get(dose.vaccine, ("IM", "Injection, intramuscular"))
            immunization["route"] = _concept(c.TERMINOLOGY + "v3-RouteOfAdministration", *route)
            if route[0] != "PO":
                immunization["site"] = _concept(c.TERMINOLOGY + "v3-ActSite", *self._injection_site(dose.day))
            immunization["doseQuantity"] = _quantity(_VACCINE_VOLUMES.get(dose.vaccine, 0.5), "mL")
            if visit:
                immunization["performer"] = [
                    {"function": _ADMINISTERING, "actor": _practitioner_ref(visit.practitioner)}
                ]

    def _lot_number(self) -> str:
        letters = "".join(self.rng.choices(_LOT_LETTERS, k=2))
        return f"{letters}{self.rng.randint(1000, 99999)}"

    def _injection_site(self, day: date) -> tuple[str, str]:
        side = self.rng.choice(("L", "R"))
        limb = ("T", "thigh") if self._age_at(day) < 3 else ("A", "arm")
        return side + limb[0], f"{'left' if side == 'L' else 'right'} {limb[1]}"

    def _write_devices(self, first_day: date) -> None:
        for definition in c.DEVICES:
            problem = self._has(definition.condition)
            if (
                problem is None
                or self.profile.age < definition.min_age
                or self.rng.random() >= definition.probability
            ):
                continue
            start = max(problem.onset + timedelta(days=180), _shift_years(self.birth, definition.min_age))
            end = first_day - timedelta(days=30)
            if start < end:
                implanted = _random_day(self.rng, start, end)
                self._write_implant(definition, implanted, problem)

    def _write_implant(self, definition: c.DeviceDef, implanted: date, problem: _Problem) -> None:
        rng = self.rng
        manufactured = implanted - timedelta(days=rng.randint(60, 400))
        expires = manufactured + timedelta(days=730)
        lot, serial = (
            f"{rng.randint(100000, 999999)}",
            f"{definition.key[:2].upper()}{rng.randint(10**6, 10**7 - 1)}",
        )
        gtin = _gtin(f"0084{rng.randint(10**8, 10**9 - 1)}")
        device = self._new("Device", "us-core-implantable-device")
        device.update(
            {
                "udiCarrier": [
                    {
                        "deviceIdentifier": gtin,
                        "carrierHRF": f"(01){gtin}(11){manufactured:%y%m%d}(17){expires:%y%m%d}"
                        f"(10){lot}(21){serial}",
                    }
                ],
                "status": "active",
                "manufacturer": definition.manufacturer,
                "manufactureDate": manufactured.isoformat(),
                "expirationDate": expires.isoformat(),
                "lotNumber": lot,
                "serialNumber": serial,
                "deviceName": [{"name": definition.model, "type": "model-name"}],
                "type": definition.device.concept(),
                "patient": self._patient_ref(),
            }
        )
        procedure = self._new("Procedure", "us-core-procedure")
        procedure.update(
            {
                "status": "completed",
                "code": definition.procedure.concept(),
                "subject": self._patient_ref(),
                "performedDateTime": implanted.isoformat(),
                "reasonReference": [_ref("Condition", problem.condition_id)],
                "focalDevice": [{"manipulated": _ref("Device", device["id"])}],
            }
        )

    # care coordination

    def _write_goals(self) -> list[str]:
        goals = []
        for problem in self.problems:
            definition = c.GOALS.get(problem.definition.key)
            if definition:
                goals.append(
                    self._write_goal(definition.text, problem.visit or self.visits[0], definition, problem)
                )
        if not goals and self.profile.age >= 18:
            goals.append(self._write_goal(c.HEALTHY_WEIGHT_GOAL.text, self.visits[0], c.HEALTHY_WEIGHT_GOAL))
        if not goals:
            goals.append(self._write_goal("Age-appropriate growth and development", self.visits[0]))
        return goals

    def _write_goal(
        self, text: str, visit: _Visit, definition: c.GoalDef | None = None, problem: _Problem | None = None
    ) -> str:
        goal = self._new("Goal", "us-core-goal")
        goal.update(
            {
                "lifecycleStatus": "active",
                "achievementStatus": _concept(
                    c.TERMINOLOGY + "goal-achievement", "in-progress", "In Progress"
                ),
                "description": {"text": text},
                "subject": self._patient_ref(),
                "startDate": visit.day.isoformat(),
                "expressedBy": _practitioner_ref(visit.practitioner),
            }
        )
        if definition:
            goal["target"] = [
                {
                    "measure": definition.measure.concept(),
                    "detailRange": _reference_range(definition.low, definition.high, definition.ucum),
                }
            ]
        if problem:
            goal["addresses"] = [_ref("Condition", problem.condition_id)]
        return str(goal["id"])

    def _write_care_team(self) -> str:
        members = [self.profile.gp]
        members += [
            v.practitioner for v in self.visits if v.practitioner not in members and v.kind == "follow_up"
        ]
        participants = [
            {"role": [_PRACTITIONERS[member].care_role.concept()], "member": _practitioner_ref(member)}
            for member in dict.fromkeys(members)
        ]
        participants.append({"role": [c.ROLE_PATIENT.concept()], "member": self._patient_ref()})
        team = self._new("CareTeam", "us-core-careteam")
        team.update(
            {
                "status": "active",
                "name": f"Care team for {self.name}",
                "subject": self._patient_ref(),
                "period": {"start": self.visits[0].day.isoformat()},
                "participant": participants,
                "managingOrganization": [_organization_ref()],
            }
        )
        return str(team["id"])

    def _write_care_plan(self, goals: list[str], care_team: str) -> None:
        activities = [
            c.CARE_PLAN_ACTIVITIES[p.definition.key]
            for p in self.problems
            if p.definition.key in c.CARE_PLAN_ACTIVITIES
        ]
        activities = activities or [c.PREVENTIVE_ACTIVITY]
        items = "".join(f"<li>{html.escape(activity)}</li>" for activity in activities)
        last = self._finished()[-1]
        plan = self._new("CarePlan", "us-core-careplan")
        plan.update(
            {
                "text": {
                    "status": "generated",
                    "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><ul>{items}</ul></div>',
                },
                "status": "active",
                "intent": "plan",
                "category": [_concept(_CAREPLAN_CATEGORY, "assess-plan", "Assessment and Plan of Treatment")],
                "title": f"Plan of care for {self.name}",
                "subject": self._patient_ref(),
                "period": {"start": self.visits[0].day.isoformat()},
                "created": _ts(last.end),
                "author": _practitioner_ref(self.profile.gp),
                "careTeam": [_ref("CareTeam", care_team)],
                "goal": [_ref("Goal", goal) for goal in goals],
                "activity": [{"detail": {"status": "in-progress", "description": a}} for a in activities],
            }
        )
        if self.problems:
            plan["addresses"] = [_ref("Condition", problem.condition_id) for problem in self.problems]

    def _write_provenance(self) -> None:
        last = self._finished()[-1]
        provenance = self._new("Provenance", "us-core-provenance")
        provenance.update(
            {
                "target": [_ref("Patient", self.patient_id)]
                + [_ref("Condition", p.condition_id) for p in self.problems],
                "recorded": _ts(last.end),
                "agent": [
                    {
                        "type": _concept(c.TERMINOLOGY + "provenance-participant-type", "author", "Author"),
                        "who": _practitioner_ref(last.practitioner),
                        "onBehalfOf": _organization_ref(),
                    }
                ],
            }
        )


# --- Helpers of the chart that need no state ---------------------------------------------------------------

_OBSERVATION_CATEGORY = c.TERMINOLOGY + "observation-category"
_CATEGORIES = {"vital-signs": "Vital Signs", "laboratory": "Laboratory", "social-history": "Social History"}
_DOCUMENT_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
_CAREPLAN_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category"
_FORMAT_CODES = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
_MARITAL = (("M", "Married", 50), ("S", "Never Married", 30), ("D", "Divorced", 13), ("W", "Widowed", 7))
_HYPERTENSION_BUMP = {"pre": (18, 9), "new": (26, 13), "treated": (7, 4)}
_DIABETES_HBA1C = {"pre": 6.6, "new": 8.4, "treated": 7.1}
_DERIVED_LABS = ("hematocrit", "cholesterol")
_CKD_SHIFT = {"bun": 12.0, "potassium": 0.3, "hemoglobin": -1.3}
_OBESITY_SHIFT = {"triglycerides": 40.0, "hdl": -6.0}
_FOLLOW_UP_LABS: dict[str, tuple[tuple[str, float], ...]] = {
    "diabetes": (("hba1c", 1.0), ("cmp", 0.3)),
    "prediabetes": (("hba1c", 1.0),),
    "ckd": (("cmp", 1.0), ("cbc", 0.6)),
    "hyperlipidemia": (("lipid", 0.8),),
    "cad": (("lipid", 0.8),),
    "hypertension": (("cmp", 0.2),),
}
_VACCINE_ROUTES = {
    "rotavirus": ("PO", "Swallow, oral"),
    "mmr": ("SQ", "Injection, subcutaneous"),
    "varicella": ("SQ", "Injection, subcutaneous"),
}
_VACCINE_VOLUMES = {"rotavirus": 2.0, "covid_pfizer": 0.3}
_ADMINISTERING = _concept(c.TERMINOLOGY + "v2-0443", "AP", "Administering Provider")
_LOT_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
_DOSE_UNITS = {"{tbl}": "tablet", "{cap}": "capsule", "{puff}": "puff"}


def _merge_visits(candidates: list[_Visit]) -> list[_Visit]:
    """Fold candidate visits less than a week apart into one; diagnoses move to the visit they land in."""
    merged: list[_Visit] = []
    for visit in candidates:
        last = merged[-1] if merged else None
        if last is None or (visit.day - last.day).days >= _MERGE_DAYS:
            merged.append(visit)
            continue
        if _KIND_RANK[visit.kind] < _KIND_RANK[last.kind]:
            last.kind = visit.kind
        last.problems += [problem for problem in visit.problems if problem not in last.problems]
        last.diagnoses += visit.diagnoses
        last.acute = last.acute or visit.acute
    for visit in merged:
        for problem in visit.diagnoses:
            problem.onset, problem.visit = visit.day, visit
    return merged


def _omb_extension(name: str, category: c.Code) -> dict[str, Any]:
    return {
        "url": c.US_CORE + name,
        "extension": [
            {"url": "ombCategory", "valueCoding": category.coding()},
            {"url": "text", "valueString": category.display},
        ],
    }


def _condition_concept(snomed: c.Code, icd10: c.Code) -> dict[str, Any]:
    return {"coding": [snomed.coding(), icd10.coding()], "text": snomed.display}


def _allergy_verification(unconfirmed: bool) -> dict[str, Any]:
    code = ("unconfirmed", "Unconfirmed") if unconfirmed else ("confirmed", "Confirmed")
    return _concept(c.TERMINOLOGY + "allergyintolerance-verification", *code)


def _dosage(medication: c.MedicationDef) -> dict[str, Any]:
    unit = _DOSE_UNITS[medication.dose_unit]
    return {
        "sequence": 1,
        "text": medication.sig,
        "timing": {"repeat": {"frequency": medication.per_day, "period": 1, "periodUnit": "d"}},
        "asNeededBoolean": medication.as_needed,
        "route": medication.route.concept(),
        "doseAndRate": [{"doseQuantity": _quantity(medication.dose, medication.dose_unit, unit)}],
    }


def _dispense(medication: c.MedicationDef) -> dict[str, Any]:
    dispense: dict[str, Any] = {
        "numberOfRepeatsAllowed": 3 if medication.days >= 90 else 0,
        "expectedSupplyDuration": _quantity(medication.days, "d", "days"),
    }
    if medication.dose_unit != "{puff}":
        count = medication.dose * medication.per_day * medication.days
        dispense["quantity"] = _quantity(count, medication.dose_unit, _DOSE_UNITS[medication.dose_unit])
    return dispense


def _interpretation(value: float, low: float | None, high: float | None) -> dict[str, Any]:
    if high is not None and value > high:
        code = ("H", "High")
    elif low is not None and value < low:
        code = ("L", "Low")
    else:
        code = ("N", "Normal")
    return _concept(c.TERMINOLOGY + "v3-ObservationInterpretation", *code)


def _reference_range(low: float | None, high: float | None, ucum: str) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if low is not None:
        bounds["low"] = _quantity(low, ucum)
    if high is not None:
        bounds["high"] = _quantity(high, ucum)
    return bounds


def _vitals_summary(vitals: dict[str, Any]) -> str:
    parts = [f"BP {vitals['bp'][0]}/{vitals['bp'][1]} mmHg"] if "bp" in vitals else []
    parts += [
        f"HR {vitals['heart_rate']}/min",
        f"RR {vitals['respiratory_rate']}/min",
        f"T {vitals['temperature']} C",
        f"SpO2 {vitals['spo2']}%",
        f"Ht {vitals['height']} cm",
        f"Wt {vitals['weight']} kg",
        f"BMI {vitals['bmi']}",
    ]
    return ", ".join(parts)


def _problem_line(problem: _Problem, visit: _Visit) -> str:
    definition = problem.definition
    drugs = "; ".join(c.MEDICATIONS[key].display for key in definition.medications)
    if problem.visit is visit:
        plan = f"new diagnosis, start {drugs}" if drugs else "new diagnosis, lifestyle counseling given"
    else:
        plan = f"stable, continue {drugs}" if drugs else "stable, continue monitoring"
    return f"- {definition.snomed.display} ({definition.icd10.code}): {plan}."


# --- Public API ---------------------------------------------------------------------------------------------


def patient_resources(index: int, *, today: date) -> list[Resource]:
    """Every resource of patient ``index`` (0-based), Patient first, each reference pointing backwards.

    Deterministic for a given ``(index, today)``; all clinical dates fall before ``today``.
    """
    return _Chart(index, today).build()


_COHORTS = (
    ("group-diabetes", "Patients with type 2 diabetes", "diabetes"),
    ("group-hypertension", "Patients with hypertension", "hypertension"),
    ("group-all-adults", "All adult patients", None),
)


def cohort_groups(patient_count: int) -> list[Resource]:
    """Three actual person Groups over patients ``0..patient_count-1``: diabetes, hypertension, adults.

    Membership comes from each patient's first random draws, so it does not depend on ``today``.
    """
    members: dict[str, list[int]] = {group_id: [] for group_id, _, _ in _COHORTS}
    for index in range(patient_count):
        profile = _draw_profile(_patient_rng(index))
        for group_id, _, condition in _COHORTS:
            if (condition in profile.conditions) if condition else profile.age >= 18:
                members[group_id].append(index)
    return [_group(group_id, name, condition, members[group_id]) for group_id, name, condition in _COHORTS]


def _group(group_id: str, name: str, condition: str | None, members: list[int]) -> Resource:
    if condition:
        definition = c.CONDITIONS_BY_KEY[condition]
        characteristic = {
            "code": c.sct("439401001", "Diagnosis").concept(),
            "valueCodeableConcept": _condition_concept(definition.snomed, definition.icd10),
            "exclude": False,
        }
    else:
        characteristic = {
            "code": c.loinc("30525-0", "Age").concept(),
            "valueRange": {"low": _quantity(18, "a", "years")},
            "exclude": False,
        }
    return {
        "resourceType": "Group",
        "id": group_id,
        "identifier": [{"system": "http://hospital.example.org/cohort", "value": group_id}],
        "active": True,
        "type": "person",
        "actual": True,
        "name": name,
        "quantity": len(members),
        "managingEntity": _organization_ref(),
        "characteristic": [characteristic],
        "member": [{"entity": _ref("Patient", f"pat-{index}")} for index in members],
    }


def iter_population(patient_count: int, *, today: date) -> Iterator[Resource]:
    """The whole population in dependency order: hospital first, then each patient, then the cohort Groups."""
    yield from practitioners_and_organization()
    for index in range(patient_count):
        yield from patient_resources(index, today=today)
    yield from cohort_groups(patient_count)


def estimated_resources_per_patient() -> int:
    """Average resources per patient, for progress bars; pinned by a test against a real sample."""
    return 225
