"""Provides pure display helpers: FHIR R4 JSON (dicts) in, the strings and small records the EHR shows out.

Pure module (stdlib only): no Django, no database. Data types follow FHIR R4 datatypes.html (HumanName,
CodeableConcept, Quantity, Period, dateTime); vital-sign codes follow the US Core vital-signs profiles.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

Json = dict[str, Any]

MRN_SYSTEM = "http://hospital.example.org/mrn"
LOINC = "http://loinc.org"


# ---------------------------------------------------------------- datatypes


def human_name(names: list[Json] | None) -> str:
    """ "Given Family" from the official (else first) HumanName; "(no name)" when there is none."""
    names = names or []
    chosen = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    if chosen.get("text"):
        return str(chosen["text"])
    parts = [*chosen.get("given", []), chosen.get("family", "")]
    return " ".join(p for p in parts if p).strip() or "(no name)"


def family_first(names: list[Json] | None) -> str:
    """ "FAMILY, Given" as patient lists sort and show names."""
    names = names or []
    chosen = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    family, given = chosen.get("family", ""), " ".join(chosen.get("given", []))
    if family and given:
        return f"{family.upper()}, {given}"
    return family.upper() or given or human_name(names)


def concept_text(concept: Json | None) -> str:
    """A CodeableConcept's text, else its first coding's display, else its first code."""
    if not concept:
        return ""
    if concept.get("text"):
        return str(concept["text"])
    codings = concept.get("coding") or []
    for coding in codings:
        if coding.get("display"):
            return str(coding["display"])
    return str(codings[0].get("code", "")) if codings else ""


def concepts_text(concepts: list[Json] | None) -> str:
    return ", ".join(t for t in (concept_text(c) for c in concepts or []) if t)


def has_code(concept: Json | None, *codes: str, system: str | None = None) -> bool:
    """Whether any coding of the concept has one of `codes` (in `system`, when given)."""
    for coding in (concept or {}).get("coding") or []:
        if coding.get("code") in codes and (system is None or coding.get("system") == system):
            return True
    return False


def quantity_text(quantity: Json | None) -> str:
    """ "72 /min" from a Quantity (its unit, else its UCUM code)."""
    if not quantity or quantity.get("value") is None:
        return ""
    unit = quantity.get("unit") or quantity.get("code") or ""
    return f"{number_text(quantity['value'])} {unit}".strip()


def is_number(value: Any) -> bool:
    """Whether a JSON value is a number (fhirapi parses decimals as Decimal, to keep their precision)."""
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def number_text(value: float | int | Decimal) -> str:
    """A number without a needless ".0"; at most two decimals."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        value = round(value, 2)
        if value.is_integer():
            return str(int(value))
    return str(value)


def parse_datetime(value: str | None) -> datetime | None:
    """A FHIR date or dateTime as an aware datetime (partial dates: midnight UTC on their first day)."""
    if not value:
        return None
    text = value.replace("Z", "+00:00")
    for candidate in (text, f"{text}-01", f"{text}-01-01"):
        try:
            parsed = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def date_text(value: str | None) -> str:
    """ "2024-05-01" from a FHIR date or dateTime (partial dates are kept as given)."""
    if not value:
        return ""
    return value[:10]


def datetime_text(value: str | None) -> str:
    """ "2024-05-01 10:00" from a dateTime; a bare date stays a date."""
    if not value:
        return ""
    if len(value) <= 10:
        return value
    parsed = parse_datetime(value)
    return parsed.strftime("%Y-%m-%d %H:%M") if parsed else value


def period_text(period: Json | None) -> str:
    if not period:
        return ""
    start, end = date_text(period.get("start")), date_text(period.get("end"))
    if start and end and start != end:
        return f"{start} – {end}"
    return start or end


def age_years(birth_date: str | None, today: date) -> int | None:
    """Whole years between a birth date (YYYY[-MM[-DD]]) and `today`, or None."""
    born = parse_datetime(birth_date)
    if born is None:
        return None
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return max(years, 0)


def mrn(identifiers: list[Json] | None) -> str:
    """The medical record number: the identifier in our MRN system, else one typed MR, else ""."""
    identifiers = identifiers or []
    for identifier in identifiers:
        if identifier.get("system") == MRN_SYSTEM:
            return str(identifier.get("value", ""))
    for identifier in identifiers:
        if has_code(identifier.get("type"), "MR"):
            return str(identifier.get("value", ""))
    return ""


def reference_id(reference: Json | None, resource_type: str) -> str | None:
    """ "pat-1" from {"reference": "Patient/pat-1"} when it names `resource_type`."""
    text = (reference or {}).get("reference") or ""
    prefix = f"{resource_type}/"
    return text[len(prefix) :] if text.startswith(prefix) else None


# ---------------------------------------------------------------- patients


@dataclass(frozen=True)
class PatientRow:
    """A patient as the list and the banner show them."""

    id: str
    name: str
    sorted_name: str
    gender: str
    birth_date: str
    age: int | None
    mrn: str
    deceased: bool = False

    @property
    def sex_label(self) -> str:
        return {"male": "Male", "female": "Female", "other": "Other", "unknown": "Unknown"}.get(
            self.gender, "—"
        )


def patient_row(body: Json, today: date) -> PatientRow:
    deceased = bool(body.get("deceasedBoolean") or body.get("deceasedDateTime"))
    return PatientRow(
        id=str(body.get("id", "")),
        name=human_name(body.get("name")),
        sorted_name=family_first(body.get("name")),
        gender=str(body.get("gender", "")),
        birth_date=str(body.get("birthDate", "")),
        age=age_years(body.get("birthDate"), today),
        mrn=mrn(body.get("identifier")),
        deceased=deceased,
    )


# ---------------------------------------------------------------- chart sections


@dataclass(frozen=True)
class ChartItem:
    """One row of a chart section: what it is, its status, when, and extra detail."""

    id: str
    title: str
    status: str = ""
    when: str = ""
    detail: str = ""
    flag: str = ""  # "high" / "low" / "critical" for results, severity for allergies


def _status(body: Json, key: str) -> str:
    value = body.get(key)
    if isinstance(value, dict):
        return concept_text(value)
    return str(value or "")


def condition_item(body: Json) -> ChartItem:
    return ChartItem(
        id=str(body.get("id", "")),
        title=concept_text(body.get("code")) or "Unnamed condition",
        status=_status(body, "clinicalStatus"),
        when=date_text(body.get("onsetDateTime") or (body.get("onsetPeriod") or {}).get("start")),
        detail=concepts_text(body.get("category")),
    )


def allergy_item(body: Json) -> ChartItem:
    reactions = body.get("reaction") or []
    manifestations = [concepts_text(r.get("manifestation")) for r in reactions]
    severity = next((r.get("severity") for r in reactions if r.get("severity")), "") or body.get(
        "criticality", ""
    )
    return ChartItem(
        id=str(body.get("id", "")),
        title=concept_text(body.get("code")) or "Unnamed allergy",
        status=_status(body, "clinicalStatus"),
        when=date_text(body.get("recordedDate") or body.get("onsetDateTime")),
        detail="; ".join(m for m in manifestations if m),
        flag=str(severity),
    )


def medication_item(body: Json) -> ChartItem:
    medication = concept_text(body.get("medicationCodeableConcept"))
    medication = medication or (body.get("medicationReference") or {}).get("display", "")
    dosage = "; ".join(d.get("text", "") for d in body.get("dosageInstruction") or [] if d.get("text"))
    return ChartItem(
        id=str(body.get("id", "")),
        title=medication or "Unnamed medication",
        status=str(body.get("status", "")),
        when=date_text(body.get("authoredOn")),
        detail=dosage,
    )


def immunization_item(body: Json) -> ChartItem:
    return ChartItem(
        id=str(body.get("id", "")),
        title=concept_text(body.get("vaccineCode")) or "Unnamed vaccine",
        status=str(body.get("status", "")),
        when=date_text(body.get("occurrenceDateTime") or body.get("occurrenceString")),
    )


def encounter_item(body: Json) -> ChartItem:
    kinds = body.get("type") or []
    title = concept_text(kinds[0]) if kinds else ""
    klass = body.get("class") or {}
    title = title or klass.get("display") or klass.get("code") or "Encounter"
    reasons = concepts_text(body.get("reasonCode"))
    return ChartItem(
        id=str(body.get("id", "")),
        title=title,
        status=str(body.get("status", "")),
        when=period_text(body.get("period")),
        detail=reasons,
    )


def observation_value(body: Json) -> str:
    """An Observation's value (or its components' values, "120/80 mm[Hg]" for blood pressure)."""
    if "valueQuantity" in body:
        return quantity_text(body["valueQuantity"])
    for key in ("valueString", "valueInteger", "valueBoolean"):
        if key in body:
            return str(body[key])
    if "valueCodeableConcept" in body:
        return concept_text(body["valueCodeableConcept"])
    components = body.get("component") or []
    if components:
        values = [
            number_text(c["valueQuantity"]["value"]) for c in components if (c.get("valueQuantity") or {})
        ]
        unit = ((components[0].get("valueQuantity") or {}).get("unit")) or ""
        return f"{'/'.join(values)} {unit}".strip()
    return ""


def lab_item(body: Json) -> ChartItem:
    interpretation = concepts_text(body.get("interpretation"))
    codes = {c.get("code") for i in body.get("interpretation") or [] for c in i.get("coding") or []}
    flag = "high" if codes & {"H", "HH", "HU"} else "low" if codes & {"L", "LL", "LU"} else ""
    ranges = body.get("referenceRange") or []
    reference = ranges[0].get("text", "") if ranges else ""
    if ranges and not reference:
        low, high = quantity_text(ranges[0].get("low")), quantity_text(ranges[0].get("high"))
        reference = f"{low} – {high}" if low and high else low or high
    return ChartItem(
        id=str(body.get("id", "")),
        title=concept_text(body.get("code")) or "Result",
        status=observation_value(body),
        when=datetime_text(body.get("effectiveDateTime") or body.get("issued")),
        detail=" · ".join(t for t in (interpretation, f"ref {reference}" if reference else "") if t),
        flag=flag,
    )


# SNOMED CT "no known allergy" findings: recorded as AllergyIntolerance, but nothing to warn about.
NO_KNOWN_ALLERGY_CODES = ("716186003", "409137002", "428607008", "429625007", "428197003")


def is_active_allergy(body: Json) -> bool:
    """Whether the record is a real allergy that is active (not resolved, refuted, or "no known allergy")."""
    if has_code(body.get("code"), *NO_KNOWN_ALLERGY_CODES):
        return False
    if body.get("verificationStatus") and has_code(body["verificationStatus"], "refuted", "entered-in-error"):
        return False
    status = body.get("clinicalStatus")
    return status is None or has_code(status, "active")


# ---------------------------------------------------------------- vital signs


@dataclass(frozen=True)
class VitalKind:
    """One vital sign as the chart plots it: LOINC code(s), label, unit, and the series it yields."""

    key: str
    label: str
    codes: tuple[str, ...]
    unit: str
    series: tuple[tuple[str, str], ...]  # (series key, LOINC code of the value: "" = valueQuantity)


VITAL_KINDS: tuple[VitalKind, ...] = (
    VitalKind(
        "bp", "Blood pressure", ("85354-9",), "mmHg", (("Systolic", "8480-6"), ("Diastolic", "8462-4"))
    ),
    VitalKind("hr", "Heart rate", ("8867-4",), "/min", (("Heart rate", ""),)),
    VitalKind("weight", "Body weight", ("29463-7",), "kg", (("Weight", ""),)),
    VitalKind("bmi", "BMI", ("39156-5",), "kg/m²", (("BMI", ""),)),
    VitalKind("temp", "Body temperature", ("8310-5",), "°C", (("Temperature", ""),)),
    VitalKind("spo2", "Oxygen saturation", ("59408-5", "2708-6"), "%", (("SpO₂", ""),)),
    VitalKind("height", "Body height", ("8302-2",), "cm", (("Height", ""),)),
)

_EPOCH = datetime(1900, 1, 1, tzinfo=UTC)

# The trend plots the chart draws (height changes too slowly to plot; it shows in the latest values).
PLOTTED_VITALS = ("bp", "hr", "weight", "bmi", "temp", "spo2")


@dataclass
class VitalTrend:
    """A vital sign's points, oldest first, and its latest value for the summary tiles."""

    key: str
    label: str
    unit: str
    labels: list[str] = field(default_factory=list)  # x axis: effective date-times
    series: dict[str, list[float | None]] = field(default_factory=dict)
    latest: str = ""
    latest_when: str = ""

    def as_chart_data(self) -> Json:
        return {
            "key": self.key,
            "label": self.label,
            "unit": self.unit,
            "labels": self.labels,
            "series": [{"name": name, "data": data} for name, data in self.series.items()],
        }


def vital_kind_of(body: Json) -> VitalKind | None:
    code = body.get("code")
    return next((k for k in VITAL_KINDS if has_code(code, *k.codes)), None)


def _point_value(body: Json, component_code: str) -> float | None:
    if not component_code:
        value = (body.get("valueQuantity") or {}).get("value")
    else:
        component = next(
            (c for c in body.get("component") or [] if has_code(c.get("code"), component_code)), {}
        )
        value = (component.get("valueQuantity") or {}).get("value")
    return float(value) if is_number(value) else None


def vital_trends(observations: list[Json]) -> dict[str, VitalTrend]:
    """Group vital-sign Observations by kind into plot series, oldest first (entered-in-error dropped)."""
    trends = {
        k.key: VitalTrend(k.key, k.label, k.unit, series={s: [] for s, _ in k.series}) for k in VITAL_KINDS
    }
    dated = [
        (o.get("effectiveDateTime") or "", o) for o in observations if o.get("status") != "entered-in-error"
    ]
    for when, body in sorted(dated, key=lambda pair: parse_datetime(pair[0]) or _EPOCH):
        kind = vital_kind_of(body)
        if kind is None:
            continue
        trend = trends[kind.key]
        points = {name: _point_value(body, code) for name, code in kind.series}
        if all(v is None for v in points.values()):
            continue
        trend.labels.append(datetime_text(when))
        for name, value in points.items():
            trend.series[name].append(value)
        numbers = "/".join(number_text(v) for v in points.values() if v is not None)
        trend.latest, trend.latest_when = f"{numbers} {kind.unit}", datetime_text(when)
    return trends


# ---------------------------------------------------------------- launch timeline (developer launcher)

EVENT_LABELS = {
    "launch-created": "Launch created",
    "authorize-request": "Authorize request",
    "authorize-error": "Authorize error",
    "consent": "Consent",
    "token-issued": "Token issued",
    "token-error": "Token error",
    "fhir-call": "FHIR call",
}
# Never shown, whatever an event carries: credentials and codes are not for screens.
SECRET_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "code",
        "code_verifier",
        "client_secret",
        "client_assertion",
        "token",
        "authorization",
    }
)


@dataclass(frozen=True)
class TimelineEvent:
    """One step of a launch as the developer launcher lists it."""

    when: datetime
    kind: str
    label: str
    summary: str
    fields: list[tuple[str, str]]
    is_error: bool


def _field_text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_field_text(v)}" for k, v in value.items() if k.lower() not in SECRET_KEYS)
    if isinstance(value, list | tuple):
        return " ".join(_field_text(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def _event_summary(kind: str, detail: Json) -> str:
    if kind == "fhir-call":
        target = detail.get("path") or detail.get("url") or detail.get("resource") or ""
        reason = f" ({detail['reason']})" if detail.get("reason") else ""
        return f"{detail.get('method', 'GET')} {target} → {detail.get('status', '?')}{reason}".strip()
    if kind in ("authorize-error", "token-error") or detail.get("error"):
        return (
            " — ".join(str(v) for v in (detail.get("error"), detail.get("error_description")) if v) or "error"
        )
    if kind == "consent":
        allowed = detail.get("allowed", detail.get("approved"))
        verdict = "allowed" if allowed else "denied" if allowed is not None else ""
        return " ".join(t for t in (verdict, _field_text(detail.get("scope") or detail.get("granted"))) if t)
    if kind == "token-issued":
        return _field_text(detail.get("scope"))
    if kind == "authorize-request":
        return _field_text(detail.get("scope") or (detail.get("params") or {}).get("scope"))
    return ""


def _is_error_event(kind: str, detail: Json) -> bool:
    if kind.endswith("-error") or detail.get("error"):
        return True
    status = detail.get("status")
    return kind == "fhir-call" and isinstance(status, int) and status >= 400


def timeline_event(*, kind: str, when: datetime, detail: Json | None) -> TimelineEvent:
    """A recorded launch event as shown; credential-like keys are dropped, nested values flattened."""
    detail = detail or {}
    fields = [(key, _field_text(value)) for key, value in detail.items() if key.lower() not in SECRET_KEYS]
    return TimelineEvent(
        when=when,
        kind=kind,
        label=EVENT_LABELS.get(kind, kind.replace("-", " ").capitalize()),
        summary=_event_summary(kind, detail),
        fields=[(k, v) for k, v in fields if v != ""],
        is_error=_is_error_event(kind, detail),
    )
