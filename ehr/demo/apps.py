"""Provides the demo app registrations: the bundled sample SMART app, three ways (embedded, window, patients).

The registrations have fixed client ids, so running `seed_demo` again updates them in place. Redirect URIs
cover the EHR's own origin and its loopback twin (127.0.0.1 <-> localhost): the sample app is served by this
project but may be opened from the other origin, which makes every call it makes cross-origin (CORS).

The embedded registration always launches from the EHR's own origin: inside a cross-site iframe the browser
does not send the EHR's SameSite=Lax session cookie to /authorize, so the user would have to sign in again in
the frame. An EHR that embeds apps from other sites serves its session cookie with SameSite=None; Secure
(https only). The window registrations have no such limit and launch from `app_base_url`.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from django.db import transaction
from oauth2_provider.models import get_application_model

from smart.clients import ClientType, client_type_apply, client_validate, secret_set

Application = get_application_model()

SAMPLE_APP_PATH = "/sample-app/"
SAMPLE_APP_SCOPES = (
    "launch launch/patient openid fhirUser online_access patient/*.rs patient/Observation.c user/*.rs"
)
LOOPBACK_TWINS = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}


@dataclass(frozen=True)
class DemoApp:
    client_id: str
    name: str
    description: str
    launch_mode: str
    audience: str

    @property
    def embedded(self) -> bool:
        return self.launch_mode == "embedded"


SAMPLE_APPS = (
    DemoApp(
        "sample-smart-app",
        "Sample app",
        "Reads the patient's vital signs, plots them, and records new ones.",
        "embedded",
        "clinician",
    ),
    DemoApp(
        "sample-smart-app-window",
        "Sample app (window)",
        "The sample app, opened in its own window.",
        "window",
        "clinician",
    ),
    DemoApp(
        "sample-smart-app-patient",
        "My vitals (sample app)",
        "See your vital signs and add a reading.",
        "window",
        "patient",
    ),
)


def loopback_twin(origin: str) -> str | None:
    """ "http://localhost:8000" for "http://127.0.0.1:8000" and back; None for other hosts."""
    parts = urlsplit(origin)
    twin = LOOPBACK_TWINS.get(parts.hostname or "")
    if twin is None:
        return None
    netloc = f"{twin}:{parts.port}" if parts.port else twin
    return urlunsplit(parts._replace(netloc=netloc))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def sample_app_redirect_uris(*origins: str) -> list[str]:
    """The sample app's index page on each origin and on its loopback twin."""
    all_origins = [o for origin in origins for o in (origin, loopback_twin(origin)) if o]
    return list(dict.fromkeys(f"{_origin(o)}{SAMPLE_APP_PATH}index.html" for o in all_origins))


@transaction.atomic
def demo_apps_register(base_url: str, app_base_url: str | None = None) -> list[Application]:
    """Register (or update) the sample app's three registrations; return them.

    `base_url` is the EHR's root URL; `app_base_url` is where the window registrations open the app from
    (default: the EHR's own root URL). Public clients with PKCE, so the app carries no secret.
    """
    ehr_root, app_root = _origin(base_url), _origin(app_base_url or base_url)
    redirect_uris = sample_app_redirect_uris(base_url, app_root)
    registered = []
    for demo in SAMPLE_APPS:
        root = ehr_root if demo.embedded else app_root
        launch_uri = f"{root}{SAMPLE_APP_PATH}launch.html?client_id={demo.client_id}"
        client_validate(
            client_type=ClientType.PUBLIC,
            redirect_uris=redirect_uris,
            scopes=SAMPLE_APP_SCOPES,
            launch_uri=launch_uri,
        )
        client = Application.objects.filter(client_id=demo.client_id).first() or Application(
            client_id=demo.client_id
        )
        client.name, client.description = demo.name, demo.description
        client.redirect_uris, client.launch_uri = " ".join(redirect_uris), launch_uri
        client.logo_uri = f"{root}{SAMPLE_APP_PATH}logo.svg"
        client.allowed_scopes, client.launch_mode, client.audience = (
            SAMPLE_APP_SCOPES,
            demo.launch_mode,
            demo.audience,
        )
        client.enabled, client.skip_authorization = True, False
        client_type_apply(client, ClientType.PUBLIC)
        if client.pk is None:
            secret_set(client, known=False)
        client.full_clean()
        client.save()
        registered.append(client)
    return registered
