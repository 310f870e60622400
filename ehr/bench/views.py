"""Provides the two baseline views the FHIR read is measured against (bench server only).

(a) `BareView` returns bytes it already holds: the cost of Django's request cycle alone.
(b) `OrmView` reads the same resource JSON by id through the ORM: the cost of a minimal database read.
Both send the same bytes, with the same content type, as `GET /fhir/<type>/<id>`.
"""

from django.http import HttpRequest, HttpResponse
from django.views import View

from fhirapi.models import Resource

FHIR_JSON = "application/fhir+json; charset=utf-8"  # as FHIRJSONRenderer sends it

# (type, id) -> stored JSON text; filled on the first request, which the benchmark's warm-up makes.
_bodies: dict[tuple[str, str], str] = {}


class BareView(View):
    """Return the resource's bytes from memory (read once from the database, then cached in the process)."""

    def get(self, request: HttpRequest, resource_type: str, resource_id: str) -> HttpResponse:
        key = (resource_type, resource_id)
        if key not in _bodies:
            _bodies[key] = _content(resource_type, resource_id)
        return HttpResponse(_bodies[key], content_type=FHIR_JSON)


class OrmView(View):
    """Read the resource's JSON text by id through the ORM on every request."""

    def get(self, request: HttpRequest, resource_type: str, resource_id: str) -> HttpResponse:
        return HttpResponse(_content(resource_type, resource_id), content_type=FHIR_JSON)


def _content(resource_type: str, resource_id: str) -> str:
    return Resource.objects.only("content").get(resource_type=resource_type, fhir_id=resource_id).content
