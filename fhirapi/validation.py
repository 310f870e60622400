"""Provides FHIR validation of incoming resources with fhir.resources.

fhir.resources has no R4 (4.0.1) package; its R4B (4.3.0) models are the closest and are what validates here
(docs/fhir-version.md). Validation checks structure, cardinality, primitive formats, choice types and unknown
elements; it does not check terminology bindings or invariants.
"""

from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError


class ResourceValidationError(ValueError):
    """The resource is not valid FHIR; `expression` names the bad elements (FHIRPath)."""

    def __init__(self, message: str, expression: list[str]) -> None:
        super().__init__(message)
        self.expression = expression


@cache
def _model(resource_type: str):  # type: ignore[no-untyped-def]
    return get_fhir_model_class(resource_type)


def validate_resource(resource: dict[str, Any]) -> None:
    """Raise store.InvalidResource naming the first bad elements when `resource` is not valid FHIR."""
    from fhirapi.store import InvalidResource

    resource_type = resource["resourceType"]
    try:
        _model(resource_type).model_validate(resource)
    except ValidationError as exc:
        errors = exc.errors()[:10]
        paths = [_path(resource_type, e["loc"]) for e in errors]
        details = "; ".join(f"{p}: {_message(e)}" for p, e in zip(paths, errors, strict=True))
        raise InvalidResource(f"Invalid {resource_type}: {details}", expression=paths) from None
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidResource(f"Invalid {resource_type}: {exc}", expression=[resource_type]) from None


def _path(resource_type: str, loc: tuple[Any, ...]) -> str:
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown element"
    return str(error["msg"]).removeprefix("Value error, ")
