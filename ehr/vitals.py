"""Provides the vital-signs service: measurements entered in the chart, written as US Core Observations.

Shapes follow US Core 6 vital-signs profiles (http://hl7.org/fhir/us/core/StructureDefinition/us-core-vital-signs):
category `vital-signs`, one LOINC code per measurement (blood pressure as the 85354-9 panel with systolic and
diastolic components), UCUM units. Everything goes through fhirapi.store, so an app reading the FHIR API
sees a new value the moment the chart does.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from fhirapi.store import StoredResource, resource_create, resource_search

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"


@dataclass(frozen=True)
class VitalSpec:
    """One measurement the form offers: its LOINC coding, UCUM unit, and the range a human value lies in."""

    field: str
    loinc: str
    display: str
    unit: str  # UCUM code, also shown
    unit_label: str
    low: Decimal
    high: Decimal
    decimals: int


# Plausible ranges: wide enough for real extremes (neonates, critical care), narrow enough to catch unit
# mix-ups (pounds for kilograms, Fahrenheit for Celsius) and typos.
VITAL_SPECS: dict[str, VitalSpec] = {
    spec.field: spec
    for spec in (
        VitalSpec(
            "systolic", "8480-6", "Systolic blood pressure", "mm[Hg]", "mmHg", Decimal(50), Decimal(260), 0
        ),
        VitalSpec(
            "diastolic", "8462-4", "Diastolic blood pressure", "mm[Hg]", "mmHg", Decimal(20), Decimal(160), 0
        ),
        VitalSpec("heart_rate", "8867-4", "Heart rate", "/min", "beats/min", Decimal(20), Decimal(250), 0),
        VitalSpec("weight", "29463-7", "Body weight", "kg", "kg", Decimal("0.3"), Decimal(400), 1),
        VitalSpec("height", "8302-2", "Body height", "cm", "cm", Decimal(20), Decimal(250), 1),
        VitalSpec("temperature", "8310-5", "Body temperature", "Cel", "°C", Decimal(30), Decimal(45), 1),
        VitalSpec(
            "spo2",
            "59408-5",
            "Oxygen saturation in Arterial blood by Pulse oximetry",
            "%",
            "%",
            Decimal(50),
            Decimal(100),
            0,
        ),
    )
}

BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
BMI = ("39156-5", "Body mass index (BMI) [Ratio]")
SPO2_EXTRA_CODING = {"system": LOINC, "code": "2708-6", "display": "Oxygen saturation in Arterial blood"}


@dataclass(frozen=True)
class VitalsEntry:
    """One set of measurements taken together; None means "not measured"."""

    effective: datetime
    systolic: Decimal | None = None
    diastolic: Decimal | None = None
    heart_rate: Decimal | None = None
    weight: Decimal | None = None
    height: Decimal | None = None
    temperature: Decimal | None = None
    spo2: Decimal | None = None


def _concept(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}


def _quantity(value: Decimal, spec: VitalSpec) -> dict[str, Any]:
    number = round(float(value), spec.decimals) if spec.decimals else int(value)
    return {"value": number, "unit": spec.unit_label, "system": UCUM, "code": spec.unit}


def _base(
    patient_id: str, effective: datetime, encounter_id: str | None, performer: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [{"system": CATEGORY_SYSTEM, "code": "vital-signs", "display": "Vital Signs"}],
                "text": "Vital Signs",
            }
        ],
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": effective.isoformat(timespec="seconds"),
    }
    if encounter_id:
        body["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    if performer:
        body["performer"] = [{"reference": performer}]
    return body


def bmi_value(weight_kg: Decimal, height_cm: Decimal) -> Decimal:
    """Body mass index, kg/m², to one decimal."""
    metres = height_cm / Decimal(100)
    return (weight_kg / (metres * metres)).quantize(Decimal("0.1"))


def vital_observations(
    *,
    patient_id: str,
    entry: VitalsEntry,
    encounter_id: str | None = None,
    performer: str | None = None,
    known_height: Decimal | None = None,
) -> list[dict[str, Any]]:
    """The Observations for one entry (pure): BP as one panel, BMI derived from weight and (known) height."""
    base = _base(patient_id, entry.effective, encounter_id, performer)
    observations: list[dict[str, Any]] = []
    if entry.systolic is not None and entry.diastolic is not None:
        components = [
            {"code": _concept(spec.loinc, spec.display), "valueQuantity": _quantity(value, spec)}
            for spec, value in (
                (VITAL_SPECS["systolic"], entry.systolic),
                (VITAL_SPECS["diastolic"], entry.diastolic),
            )
        ]
        observations.append({**base, "code": _concept(*BP_PANEL), "component": components})
    for name in ("heart_rate", "weight", "height", "temperature", "spo2"):
        value = getattr(entry, name)
        if value is None:
            continue
        spec = VITAL_SPECS[name]
        code = _concept(spec.loinc, spec.display)
        if name == "spo2":  # US Core pulse oximetry carries both codes
            code["coding"].append(SPO2_EXTRA_CODING)
        observations.append({**base, "code": code, "valueQuantity": _quantity(value, spec)})
    height = entry.height if entry.height is not None else known_height
    if entry.weight is not None and height:
        bmi = bmi_value(entry.weight, height)
        quantity = {"value": float(bmi), "unit": "kg/m2", "system": UCUM, "code": "kg/m2"}
        observations.append({**base, "code": _concept(*BMI), "valueQuantity": quantity})
    return observations


def latest_height(patient_id: str) -> Decimal | None:
    """The patient's most recent recorded body height in cm, for BMI when only the weight is entered."""
    result = resource_search(
        resource_type="Observation",
        params=[("patient", patient_id), ("code", f"{LOINC}|8302-2"), ("_sort", "-date"), ("_count", "1")],
    )
    for stored in result.resources:
        quantity = stored.as_dict().get("valueQuantity") or {}
        value = quantity.get("value")
        if (
            isinstance(value, int | float | Decimal)
            and not isinstance(value, bool)
            and quantity.get("code") == "cm"
        ):
            return Decimal(str(value))
    return None


def vitals_record(
    *, patient_id: str, entry: VitalsEntry, encounter_id: str | None = None, performer: str | None = None
) -> list[StoredResource]:
    """Write one entry's Observations (all or none) and return them as stored."""
    known_height = None if entry.height is not None or entry.weight is None else latest_height(patient_id)
    observations = vital_observations(
        patient_id=patient_id,
        entry=entry,
        encounter_id=encounter_id,
        performer=performer,
        known_height=known_height,
    )
    with transaction.atomic():
        return [resource_create(resource=body)[0] for body in observations]
