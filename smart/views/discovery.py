"""Provides the public discovery documents: .well-known/smart-configuration and the SMART style JSON."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import condition, require_safe

from smart.discovery import smart_configuration, style_body, style_version


@login_not_required
@require_safe
def smart_configuration_view(request: HttpRequest) -> JsonResponse:
    """GET {FHIR base}/.well-known/smart-configuration: application/json, whatever the Accept header."""
    response = JsonResponse(smart_configuration())
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "public, max-age=300"
    return response


@login_not_required
@require_safe
@condition(etag_func=lambda request: style_version())
def style_view(request: HttpRequest) -> HttpResponse:
    """GET /smart/style.json: the style apps use to blend into the EHR (its URL carries the version)."""
    response = HttpResponse(style_body(), content_type="application/json")
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "public, max-age=86400"
    return response
