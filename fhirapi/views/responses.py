"""Provides response builders shared by the FHIR views: a stored resource with its headers, Prefer handling."""

from django.utils.http import http_date
from rest_framework.response import Response

from fhirapi.outcomes import issue, operation_outcome


def resource_response(
    stored, *, status: int = 200, base_url: str = "", location: bool = False, prefer_return: str | None = None
) -> Response:
    """The stored JSON text with ETag and Last-Modified (and Location after a create/update)."""
    if prefer_return == "minimal":
        body = None
    elif prefer_return == "operationoutcome":
        body = operation_outcome(
            issue(
                f"{stored.resource_type}/{stored.fhir_id} saved as version {stored.version_id}.",
                code="informational",
                severity="information",
            )
        )
    else:
        body = stored.content
    response = Response(body, status=status)
    response["ETag"] = stored.etag
    response["Last-Modified"] = http_date(stored.last_updated.timestamp())
    if location:
        response["Location"] = (
            f"{base_url}/{stored.resource_type}/{stored.fhir_id}/_history/{stored.version_id}"
        )
    return response
