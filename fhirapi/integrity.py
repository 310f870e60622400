"""Provides referential integrity checks for writes through the API (as HAPI FHIR enforces by default).

A create or update whose searchable references point at a local resource that does not exist is refused with
422 (FHIR http.html: "the proposed resource violated ... server business rules"); deleting a resource that live
resources still reference is refused with 409. Only references to types this server stores, written as
relative `Type/id`, are checked: absolute URLs may name other servers. Bulk loads do not go through here.
"""

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from fhirapi.indexing import extract_index
from fhirapi.models import ReferenceIndex, Resource
from fhirapi.searchparams import is_supported_type
from fhirapi.store import ResourceConflict, UnprocessableResource


def references_check(resources: Iterable[dict[str, Any]]) -> None:
    """Raise UnprocessableResource naming the first reference that does not resolve."""
    wanted: dict[str, dict[str, str]] = defaultdict(dict)  # type -> id -> the param that names it
    for resource in resources:
        for ref in extract_index(resource).references:
            if ref.target_type and ref.target_id and not ref.url and is_supported_type(ref.target_type):
                wanted[ref.target_type].setdefault(ref.target_id, f"{resource['resourceType']}.{ref.param}")
    for target_type, ids in wanted.items():
        found = set(
            Resource.objects.filter(
                resource_type=target_type, fhir_id__in=list(ids), deleted=False
            ).values_list("fhir_id", flat=True)
        )
        for target_id, where in ids.items():
            if target_id not in found:
                raise UnprocessableResource(
                    f"{where} refers to {target_type}/{target_id}, which does not exist.", expression=[where]
                )


def referrers_check(resource_type: str, resource_id: str) -> None:
    """Raise ResourceConflict when live resources other than itself still reference this one."""
    referrers = (
        ReferenceIndex.objects.filter(
            target_type=resource_type, target_id=resource_id, resource__deleted=False
        )
        .exclude(resource__resource_type=resource_type, resource__fhir_id=resource_id)
        .values_list("resource__resource_type", "resource__fhir_id")
        .distinct()[:3]
    )
    named = [f"{t}/{i}" for t, i in referrers]
    if named:
        raise ResourceConflict(
            f"{resource_type}/{resource_id} is still referenced (by {', '.join(named)}); delete those first."
        )
