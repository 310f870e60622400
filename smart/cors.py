"""Provides the CORS policy (a django-cors-headers `check_request_enabled` handler).

- The FHIR API and /o/userinfo/ answer any origin: bearer tokens, not cookies, authorize them.
- /o/token/, /o/revoke_token/ and /o/introspect/ answer only origins of enabled apps' redirect URIs (and DOT's
  `allowed_origins`), so a browser app can exchange its code (SMART App Launch 2.x, app-launch.html#cors).
- The .well-known documents and the style JSON set `Access-Control-Allow-Origin: *` themselves.

With CORS_ALLOW_ALL_ORIGINS = False, django-cors-headers sends headers only when this handler says yes, and
answers preflight OPTIONS on the paths CORS_URLS_REGEX enables.
"""

from functools import lru_cache
from urllib.parse import urlsplit

from django.core.signals import setting_changed
from django.db.models import Q
from django.dispatch import receiver
from django.http import HttpRequest
from django.urls import reverse
from oauth2_provider.models import get_application_model

from smart.discovery import public_root

Application = get_application_model()


@lru_cache(maxsize=1)
def _paths() -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(FHIR API prefix, paths open to any origin, paths open to registered origins)."""
    fhir = urlsplit(public_root()).path.rstrip("/") + "/fhir/"
    any_origin = (reverse("oauth2_provider:user-info"),)
    registered = (reverse("smart:token"), reverse("smart:revoke-token"), reverse("smart:introspect"))
    return fhir, any_origin, registered


@receiver(setting_changed)
def _forget_paths(**kwargs: object) -> None:
    _paths.cache_clear()


def origin_of(uri: str) -> str | None:
    """`scheme://host[:port]` of a URL, lower-cased as browsers send Origin; None if it has none."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_registered(origin: str) -> bool:
    """Whether an enabled app has a redirect URI (or DOT allowed origin) on this origin."""
    if origin_of(origin) != origin.lower():
        return False  # not a bare origin (e.g. "null" or a path): never matches
    candidates = Application.objects.filter(
        Q(redirect_uris__icontains=origin) | Q(allowed_origins__icontains=origin), enabled=True
    ).values_list("redirect_uris", "allowed_origins")
    uris = (uri for redirect_uris, allowed in candidates for uri in f"{redirect_uris} {allowed}".split())
    return any(origin_of(uri) == origin.lower() for uri in uris)


def cors_allowed(request: HttpRequest) -> bool:
    """The policy above for one request (remembered on it: django-cors-headers asks up to three times)."""
    cached = getattr(request, "_smart_cors_allowed", None)
    if cached is None:
        cached = request._smart_cors_allowed = _decide(request)
    return cached


def _decide(request: HttpRequest) -> bool:
    fhir, any_origin, registered = _paths()
    path = request.path
    if path in registered:
        origin = request.headers.get("Origin", "")
        return bool(origin) and origin_registered(origin)
    if "/.well-known/" in path:
        return (
            False  # those views set `*` themselves; letting the middleware in would echo the origin instead
        )
    return path.startswith(fhir) or path in any_origin


def check_request_enabled_handler(sender: object, request: HttpRequest, **kwargs: object) -> bool:
    return cors_allowed(request)
