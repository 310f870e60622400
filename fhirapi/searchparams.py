"""Provides the search parameters the server supports, per resource type (FHIR R4 search parameter registry).

Pure module (no Django). Each `SearchParam` names its type and the element paths its values come from, in a
small FHIRPath subset (see fhirapi.indexing). Common parameters (`_id`, `_lastUpdated`) are answered from the
resource table's own columns and are not indexed.
"""

from dataclasses import dataclass
from enum import StrEnum


class ParamType(StrEnum):
    TOKEN = "token"
    STRING = "string"
    DATE = "date"
    REFERENCE = "reference"
    QUANTITY = "quantity"
    URI = "uri"
    NUMBER = "number"


@dataclass(frozen=True)
class SearchParam:
    """One search parameter of one resource type, e.g. Observation `date` over `Observation.effective`."""

    name: str
    type: ParamType
    paths: tuple[str, ...] = ()  # e.g. ("Observation.effective",) -- choice types are named without [x]
    targets: tuple[str, ...] = ()  # reference params: the resource types a reference may point to
    description: str = ""

    @property
    def is_column(self) -> bool:
        """True for parameters answered from the resource table itself (`_id`, `_lastUpdated`)."""
        return self.name in ("_id", "_lastUpdated")


COMMON_PARAMS: dict[str, SearchParam] = {
    "_id": SearchParam("_id", ParamType.TOKEN, ("Resource.id",), description="Logical id of the resource"),
    "_lastUpdated": SearchParam(
        "_lastUpdated", ParamType.DATE, ("Resource.meta.lastUpdated",), description="When the resource last changed"
    ),
}

# Filled below: resource type -> parameter name -> SearchParam.
REGISTRY: dict[str, dict[str, SearchParam]] = {}

SUPPORTED_TYPES: tuple[str, ...] = ()


def search_params_for(resource_type: str) -> dict[str, SearchParam]:
    """Every parameter of a type, common ones included (empty for an unsupported type)."""
    own = REGISTRY.get(resource_type)
    if own is None:
        return {}
    return {**COMMON_PARAMS, **own}


def get_search_param(resource_type: str, name: str) -> SearchParam | None:
    return search_params_for(resource_type).get(name)


def is_supported_type(resource_type: str) -> bool:
    return resource_type in REGISTRY
