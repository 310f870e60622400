"""Provides the CapabilityStatement (FHIR R4 capabilitystatement.html), generated from what the server supports.

Resource types, interactions and search parameters come from the same registry the store indexes, so /metadata
states what truly works. The `rest.security` block comes from FHIRAPI["CAPABILITY_SECURITY_PROVIDER"] (smart/
plugs in its OAuth URIs there).
"""

from typing import Any

from fhirapi.searchparams import SUPPORTED_TYPES, search_params_for

TYPE_INTERACTIONS = [
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]


def capability_statement(
    *, base_url: str, software_name: str, security: dict[str, Any] | None
) -> dict[str, Any]:
    rest: dict[str, Any] = {
        "mode": "server",
        "resource": [_resource_entry(t) for t in SUPPORTED_TYPES],
        "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
    }
    if security:
        rest["security"] = security
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "kind": "instance",
        "software": {"name": software_name},
        "implementation": {"description": software_name, "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [rest],
    }


def _resource_entry(resource_type: str) -> dict[str, Any]:
    params = search_params_for(resource_type)
    references = sorted(p.name for p in params.values() if p.type == "reference")
    return {
        "type": resource_type,
        "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchInclude": [f"{resource_type}:{name}" for name in references],
        "searchRevInclude": [],
        "searchParam": [
            {
                "name": p.name,
                "type": str(p.type),
                **({"documentation": p.description} if p.description else {}),
            }
            for p in params.values()
        ],
    }
