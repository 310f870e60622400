"""Provides the system-level FHIR interactions: capabilities, batch/transaction, and system history."""

from functools import lru_cache

from rest_framework.response import Response

from fhirapi import jsontext
from fhirapi.access import Interaction
from fhirapi.capability import capability_statement
from fhirapi.exceptions import FHIRError, InvalidRequest
from fhirapi.search import SearchError
from fhirapi.searchparams import SUPPORTED_TYPES
from fhirapi.settings import fhirapi_settings
from fhirapi.store import resource_history
from fhirapi.transactions import BundleRejected, EntryError, process_bundle
from fhirapi.views.base import FHIRView
from fhirapi.views.history import history_params
from fhirapi.views.resources import search_bundle


class CapabilityStatementView(FHIRView):
    """GET [base]/metadata: open to everyone (no token), as the SMART and FHIR specs expect."""

    permission_classes: list = []
    authentication_classes: list = []

    def get_authenticators(self):  # type: ignore[no-untyped-def]
        return []

    def get(self, request) -> Response:
        return Response(
            _capability_text(fhirapi_settings.BASE_URL, id(fhirapi_settings.CAPABILITY_SECURITY_PROVIDER))
        )


@lru_cache(maxsize=4)
def _capability_text(base_url: str, provider_key: int) -> str:
    provider = fhirapi_settings.CAPABILITY_SECURITY_PROVIDER
    statement = capability_statement(
        base_url=base_url,
        software_name=fhirapi_settings.SOFTWARE_NAME,
        security=provider() if provider else None,
    )
    return jsontext.dumps(statement)


class SystemView(FHIRView):
    """POST [base] with a batch or transaction Bundle."""

    def post(self, request) -> Response:
        try:
            response = process_bundle(
                request.data, decide=self._decide, base_url=self.base_url, search=self._search
            )
        except BundleRejected as exc:
            raise InvalidRequest(str(exc), expression=["Bundle"]) from exc
        except EntryError as exc:
            raise _entry_error(exc) from exc
        return Response(response)

    def _decide(self, resource_type: str, interaction: Interaction):  # type: ignore[no-untyped-def]
        return self.access_for(interaction)(resource_type)

    def _search(self, resource_type: str, params, access) -> bytes:  # type: ignore[no-untyped-def]
        try:
            return search_bundle(self, resource_type, params, access)
        except SearchError as exc:
            raise EntryError(400, str(exc)) from exc


class SystemHistoryView(FHIRView):
    """GET [base]/_history: every version the grant may see (unrestricted grants only: system-wide)."""

    def get(self, request) -> Response:
        from fhirapi.bundles import history_bundle

        decide = self.access_for(Interaction.HISTORY_SYSTEM)
        if not all(decide(resource_type).unrestricted for resource_type in SUPPORTED_TYPES):
            raise _forbidden()
        params = self.query_pairs()
        since, count, offset = history_params(params)
        entries, total = resource_history(since=since, count=count, offset=offset)
        return Response(
            history_bundle(
                base_url=self.base_url,
                path="_history",
                params=params,
                entries=entries,
                total=total,
                count=count,
                offset=offset,
            )
        )


def _forbidden() -> FHIRError:
    from fhirapi.exceptions import InsufficientScope

    return InsufficientScope("System history needs a scope over every resource type (e.g. system/*.rs).")


def _entry_error(exc: EntryError) -> FHIRError:
    error = FHIRError(str(exc))
    error.status_code = exc.status
    error.issue_code = None  # the status's default issue type
    return error
