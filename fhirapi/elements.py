"""Provides `_summary` and `_elements` projections of a resource (FHIR R4 search.html#summary, #elements).

Summary elements come from the fhir.resources (R4B) model's field metadata (`summary_element_property`).
A projected resource is marked with the SUBSETTED tag, as the spec requires.
"""

from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
ALWAYS = ("resourceType", "id", "meta")


def project(
    resource: dict[str, Any], *, summary: str | None, elements: tuple[str, ...] | list[str]
) -> dict[str, Any]:
    """The resource reduced to the requested elements (mandatory ones kept), tagged SUBSETTED."""
    if summary == "data":
        kept = {k: v for k, v in resource.items() if k != "text"}
    elif summary == "text":
        kept = {k: v for k, v in resource.items() if k in (*ALWAYS, "text") or k in _mandatory(resource)}
    elif summary == "true":
        names = _summary_names(resource["resourceType"])
        kept = {k: v for k, v in resource.items() if k in ALWAYS or _base(k) in names}
    else:
        wanted = set(elements) | set(_mandatory(resource))
        kept = {k: v for k, v in resource.items() if k in ALWAYS or _base(k) in wanted or k in wanted}
    meta = dict(kept.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    kept["meta"] = meta
    return kept


def _base(key: str) -> str:
    """JSON key -> element name ("effectiveDateTime" stays; "_birthDate" -> "birthDate")."""
    return key[1:] if key.startswith("_") else key


@lru_cache(maxsize=256)
def _fields(resource_type: str) -> tuple[tuple[str, bool, bool], ...]:
    """(json name, in summary, required) for each element of the type."""
    model = get_fhir_model_class(resource_type)
    out = []
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        out.append(
            (
                field.alias or name,
                bool(extra.get("summary_element_property")),
                bool(extra.get("element_required")),
            )
        )
    return tuple(out)


def _summary_names(resource_type: str) -> set[str]:
    names = {name for name, in_summary, _ in _fields(resource_type) if in_summary}
    # choice elements: the model lists each variant (valueQuantity...), so they match the JSON keys directly
    return names


def _mandatory(resource: dict[str, Any]) -> set[str]:
    return {name for name, _, required in _fields(resource["resourceType"]) if required}
