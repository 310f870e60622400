"""Serves the sample SMART app (ehr/sampleapp/static/) at /sample-app/.

The sample app is a plain browser app built on the official `fhirclient` JavaScript library; it would normally
live on its own web server. It is served from this project only so the demo works out of the box, and it
behaves as if it were elsewhere: it talks to the EHR only through SMART discovery, /authorize, /token and the
FHIR API (cross-origin when opened as http://localhost:8000 while the EHR is http://127.0.0.1:8000).
"""

from pathlib import Path

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_safe
from django.views.static import serve

SAMPLE_APP_DIR = Path(__file__).resolve().parent.parent / "sampleapp" / "static"

# The app's own policy: its scripts and styles from itself, API calls to any FHIR server (it learns the
# server from `iss`), and framing by any EHR that launches it embedded (X-Frame-Options is exempted below).
SAMPLE_APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src *; "
    "object-src 'none'; base-uri 'self'; form-action 'self'"
)


@require_safe
@xframe_options_exempt
def sample_app_view(request: HttpRequest, path: str = "index.html") -> HttpResponse:
    if ".." in path.split("/"):
        raise Http404("Not a sample app file.")
    response = serve(request, path or "index.html", document_root=SAMPLE_APP_DIR)
    response["Content-Security-Policy"] = SAMPLE_APP_CSP
    if path.endswith(".html"):
        response["Cache-Control"] = "no-store"
    return response
