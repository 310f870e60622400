"""Provides `fhirapi_settings`, the FHIR API's one settings object (namespace `FHIRAPI`).

Modelled on rest_framework/settings.py: a project overrides any key in `settings.FHIRAPI`, dotted paths in
IMPORT_STRINGS are imported lazily, unknown names fail loudly, and the cache resets on `setting_changed`.

    FHIRAPI = {
        "BASE_URL": "https://ehr.example.org/fhir",
        "AUTHENTICATION_CLASSES": ["smart.authentication.SmartTokenAuthentication"],
    }
"""

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

DEFAULTS: dict[str, Any] = {
    # The public FHIR base URL: `iss` of EHR launches and the only accepted `aud`.
    "BASE_URL": "http://127.0.0.1:8000/fhir",
    # DRF authentication classes; each returns (user, fhirapi.access.Grant) or None.
    "AUTHENTICATION_CLASSES": [],
    # Decides what a grant may do; see fhirapi.access.BaseAccessPolicy.
    "ACCESS_POLICY_CLASS": "fhirapi.access.SmartScopePolicy",
    # Search paging.
    "DEFAULT_PAGE_SIZE": 50,
    "MAX_PAGE_SIZE": 1000,
    # Extra `rest.security` content for /metadata (smart/ plugs its OAuth URIs in here).
    "CAPABILITY_SECURITY_PROVIDER": None,
    # Callables (request, response, grant) told of every FHIR response made with a grant (audit, dev timelines),
    # once the response has been sent (fhirapi.after_response); an exception is logged.
    "RESPONSE_OBSERVERS": [],
    # Software name shown in the CapabilityStatement.
    "SOFTWARE_NAME": "Django SMART EHR",
    # Bulk Data $export (fhirapi.bulk). Folder of the ndjson files; None: settings.VAR_DIR / "bulk".
    "BULK_DIR": None,
    # A file is closed and the next one started after this many resources or bytes, whichever comes first.
    "BULK_MAX_FILE_RESOURCES": 100_000,
    "BULK_MAX_FILE_BYTES": 512 * 1024 * 1024,
    # Rows fetched per database round trip while streaming (a server-side cursor on PostgreSQL).
    "BULK_CHUNK_SIZE": 2000,
    # Finished jobs and their files are deleted this long after the job ended (seconds).
    "BULK_FILE_TTL_SECONDS": 24 * 3600,
    # A running job whose worker showed no sign of life for this long is restarted from scratch (seconds).
    "BULK_STALE_SECONDS": 600,
    # A job restarted this many times without finishing is failed.
    "BULK_MAX_ATTEMPTS": 3,
    # Retry-After sent with the status of a job still running (seconds).
    "BULK_RETRY_AFTER_SECONDS": 5,
}

IMPORT_STRINGS = {
    "AUTHENTICATION_CLASSES",
    "ACCESS_POLICY_CLASS",
    "CAPABILITY_SECURITY_PROVIDER",
    "RESPONSE_OBSERVERS",
}


class FHIRAPISettings:
    """Lazy, cached view of `settings.FHIRAPI` over DEFAULTS."""

    namespace = "FHIRAPI"

    def __init__(self, defaults: dict[str, Any], import_strings: set[str]) -> None:
        self.defaults = defaults
        self.import_strings = import_strings
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        return getattr(settings, self.namespace, {})

    def __getattr__(self, name: str) -> Any:
        if name not in self.defaults:
            raise AttributeError(f"Invalid {self.namespace} setting: {name!r}")
        value = self.user_settings.get(name, self.defaults[name])
        if name in self.import_strings:
            value = _import(value)
        self._cached.add(name)
        setattr(self, name, value)
        return value

    def reload(self) -> None:
        for name in self._cached:
            delattr(self, name)
        self._cached.clear()


def _import(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return import_string(value)
    if isinstance(value, list | tuple):
        return [import_string(v) if isinstance(v, str) else v for v in value]
    return value


fhirapi_settings = FHIRAPISettings(DEFAULTS, IMPORT_STRINGS)


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == FHIRAPISettings.namespace:
        fhirapi_settings.reload()


setting_changed.connect(_reload)
