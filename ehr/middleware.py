"""Provides the EHR's Content-Security-Policy: who may frame our pages, and which app origins they may frame.

- `frame-ancestors`: pages that opted into same-origin framing (Django's `xframe_options_sameorigin`, as the
  authorization and login views do, because an embedded app's /authorize runs inside the chart's iframe) get
  `'self'`; pages exempt from X-Frame-Options get no `frame-ancestors` here; every other page gets `'none'`
  (matching X_FRAME_OPTIONS = "DENY" for browsers that only read X-Frame-Options).
- `frame-src`: `'self'` plus the origins of every enabled app's launch URL and redirect URIs, so a registered
  app can run in the chart's launch panel while nothing else can be framed into the EHR.
- The clinician pages (namespace `ehr`) also get a strict same-origin policy for scripts, styles and fetches:
  they use no inline script or style.

A response that already has a Content-Security-Policy (the sample app's pages set their own) is left alone.
Works wherever it sits in MIDDLEWARE: it reads the X-Frame-Options decision the view made, not the header that
XFrameOptionsMiddleware adds later.
"""

from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from oauth2_provider.models import get_application_model

HEADER = "Content-Security-Policy"

# Only what our own pages need; the app panel's origins are added per request.
STRICT_DIRECTIVES = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "font-src": ["'self'"],
}


def origin_of(uri: str) -> str | None:
    """ "https://app.example.org" from any absolute http(s) URL, else None."""
    try:
        parts = urlsplit(uri.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _origins(uris: Iterable[str]) -> list[str]:
    return sorted({o for o in (origin_of(u) for u in uris) if o})


def registered_app_origins() -> tuple[list[str], list[str]]:
    """(origins enabled apps run on: launch and redirect URIs; origins of their logos)."""
    rows = (
        get_application_model()
        .objects.filter(enabled=True)
        .values_list("launch_uri", "redirect_uris", "logo_uri")
    )
    app_uris, logo_uris = [], []
    for launch_uri, redirect_uris, logo_uri in rows:
        app_uris += [launch_uri, *(redirect_uris or "").split()]
        logo_uris.append(logo_uri)
    return _origins(app_uris), _origins(logo_uris)


def frame_ancestors(response: HttpResponse) -> str | None:
    """The `frame-ancestors` source for this response; None when the view exempted it from framing rules."""
    if getattr(response, "xframe_options_exempt", False):
        return None
    decided = response.get("X-Frame-Options") or getattr(settings, "X_FRAME_OPTIONS", "DENY")
    return "'self'" if decided.upper() == "SAMEORIGIN" else "'none'"


def build_policy(
    *, ancestors: str | None, app_origins: list[str], logo_origins: list[str], strict: bool
) -> str:
    directives: dict[str, list[str]] = {}
    if strict:
        directives.update({name: list(sources) for name, sources in STRICT_DIRECTIVES.items()})
        directives["img-src"] += logo_origins
    directives["frame-src"] = ["'self'", *app_origins]
    directives["object-src"] = ["'none'"]
    directives["base-uri"] = ["'self'"]
    if ancestors:
        directives["frame-ancestors"] = [ancestors]
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


class ContentSecurityPolicyMiddleware:
    """Adds the EHR's Content-Security-Policy to HTML responses."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER in response or not response.get("Content-Type", "").startswith("text/html"):
            return response
        if response.streaming or not response.content:
            return response  # nothing to render (e.g. a bare 405): no page, no policy needed
        app_origins, logo_origins = registered_app_origins()
        match = getattr(request, "resolver_match", None)
        response[HEADER] = build_policy(
            ancestors=frame_ancestors(response),
            app_origins=app_origins,
            logo_origins=logo_origins,
            strict=bool(match and match.app_name == "ehr"),
        )
        return response
