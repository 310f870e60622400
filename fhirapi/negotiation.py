"""Provides the FHIR API's DRF policies: JSON renderers and parsers, and `_format`-aware content negotiation.

Kept apart from the views: a module that defines policy classes must not import rest_framework.views
(circular import at startup, see STACK.md §3.4). Only JSON is served (FHIR R4 http.html#mime-type); XML and
Turtle are refused with 406 (response) or 415 (request body).
"""

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

from fhirapi import jsontext
from fhirapi.exceptions import InvalidRequest, NotAcceptableFormat

JSON_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
REFUSED_FORMATS = {
    "xml",
    "text/xml",
    "application/xml",
    "application/fhir+xml",
    "application/xml+fhir",
    "ttl",
    "application/fhir+turtle",
    "text/turtle",
    "html",
    "text/html",
}


class FHIRJSONRenderer(BaseRenderer):
    """application/fhir+json; passes pre-serialised text/bytes through untouched."""

    media_type = "application/fhir+json"
    format = "json"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        if isinstance(data, bytes):
            return data
        if isinstance(data, str):
            return data.encode()
        return jsontext.dumps(data).encode()


class PlainJSONRenderer(FHIRJSONRenderer):
    """application/json, for clients that ask for it."""

    media_type = "application/json"


class FHIRJSONParser(BaseParser):
    media_type = "application/fhir+json"

    def parse(self, stream, media_type=None, parser_context=None) -> Any:  # type: ignore[no-untyped-def]
        try:
            return jsontext.loads(stream.read())
        except jsontext.JSONTextError as exc:
            raise InvalidRequest(str(exc)) from exc


class PlainJSONParser(FHIRJSONParser):
    media_type = "application/json"


class LegacyFHIRJSONParser(FHIRJSONParser):
    media_type = "application/json+fhir"


class FHIRContentNegotiation(DefaultContentNegotiation):
    """`_format` wins over Accept; JSON variants are served, XML/Turtle/HTML refused with 406."""

    def select_renderer(self, request, renderers, format_suffix=None):  # type: ignore[no-untyped-def]
        requested = request.query_params.get("_format")
        if requested:
            return self._for_format(requested.strip().split(";")[0].lower(), renderers)
        accept = request.META.get("HTTP_ACCEPT", "")
        if accept and _only_refused(accept):
            raise NotAcceptableFormat(f"Cannot answer in {accept}; this server speaks application/fhir+json.")
        for renderer in renderers:
            if renderer.media_type in accept:
                return renderer, renderer.media_type
        return renderers[0], renderers[0].media_type

    def _for_format(self, requested: str, renderers):  # type: ignore[no-untyped-def]
        if requested in JSON_FORMATS:
            media = "application/json" if requested == "application/json" else "application/fhir+json"
            renderer = next((r for r in renderers if r.media_type == media), renderers[0])
            return renderer, renderer.media_type
        raise NotAcceptableFormat(f"_format={requested} is not supported; use json.")


def _only_refused(accept: str) -> bool:
    types = [part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()]
    acceptable = [t for t in types if t in JSON_FORMATS or t in ("*/*", "application/*")]
    return bool(types) and not acceptable and any(t in REFUSED_FORMATS for t in types)
