"""Provides the `$export` endpoints (FHIR Bulk Data Access IG v2.0.0 export.html): kick-off, status, files."""

from django.http import FileResponse
from rest_framework.response import Response

from fhirapi.bulk.models import ExportJob
from fhirapi.bulk.params import ExportParamError, export_params_parse, parameters_pairs
from fhirapi.bulk.services import (
    BulkExportError,
    export_file_path,
    export_job_cancel,
    export_job_get,
    export_kick_off,
    export_manifest,
    export_progress,
)
from fhirapi.exceptions import FHIRError, InvalidRequest
from fhirapi.outcomes import error_outcome
from fhirapi.settings import fhirapi_settings
from fhirapi.views.base import FHIRView

NDJSON = "application/fhir+ndjson"


class BulkError(FHIRError):
    """A refused bulk request, with the status the service chose."""

    issue_code = None  # the status's default issue type (fhirapi.outcomes)

    def __init__(self, error: BulkExportError) -> None:
        super().__init__(str(error), expression=error.expression)
        self.status_code = error.status


class BulkView(FHIRView):
    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, BulkExportError):
            exc = BulkError(exc)
        elif isinstance(exc, ExportParamError):
            exc = InvalidRequest(str(exc), expression=[exc.param])
        return super().handle_exception(exc)


class ExportKickOffView(BulkView):
    """GET or POST `[base]/$export`, `[base]/Patient/$export` or `[base]/Group/[id]/$export`: 202."""

    level = ExportJob.Level.SYSTEM

    def get(self, request, group_id: str = "") -> Response:
        return self.kick_off(self.query_pairs(), group_id)

    def post(self, request, group_id: str = "") -> Response:
        body = parameters_pairs(request.data) if request.body else []
        return self.kick_off(self.query_pairs() + body, group_id)

    def kick_off(self, pairs: list[tuple[str, str]], group_id: str) -> Response:
        self.check_headers()
        params = export_params_parse(pairs, lenient=self.prefer("handling") == "lenient")
        job = export_kick_off(grant=self.grant, level=self.level, params=params, group_id=group_id,
                              request_url=self.request_url(group_id))  # fmt: skip
        return Response(status=202, headers={"Content-Location": f"{self.base_url}/bulk-status/{job.pk}"})

    def check_headers(self) -> None:
        # export.html#headers: both are required of the client; without them the request is ambiguous.
        if "application/fhir+json" not in self.request.META.get("HTTP_ACCEPT", ""):
            raise InvalidRequest(
                "$export needs the header Accept: application/fhir+json.", expression=["Accept"]
            )
        if self.prefer("respond-async") is None:
            raise InvalidRequest("$export needs the header Prefer: respond-async.", expression=["Prefer"])

    def request_url(self, group_id: str) -> str:
        path = {"system": "$export", "patient": "Patient/$export"}.get(
            self.level, f"Group/{group_id}/$export"
        )
        query = self.request.META.get("QUERY_STRING", "")
        return f"{self.base_url}/{path}" + (f"?{query}" if query else "")


class PatientExportView(ExportKickOffView):
    level = ExportJob.Level.PATIENT


class GroupExportView(ExportKickOffView):
    level = ExportJob.Level.GROUP


class ExportStatusView(BulkView):
    """GET (202 in progress, 200 manifest, 500 failed) and DELETE (cancel) on the status URL."""

    def get(self, request, job_id: str) -> Response:
        job = export_job_get(job_id=job_id, grant=self.grant)
        if job.status == ExportJob.Status.COMPLETED:
            # export.html#response---complete-status: the manifest is plain JSON, not a FHIR resource.
            return Response(export_manifest(job, base_url=self.base_url), content_type="application/json")
        if job.status == ExportJob.Status.FAILED:
            return Response(error_outcome(500, job.error, code="exception"), status=500)
        retry_after = str(fhirapi_settings.BULK_RETRY_AFTER_SECONDS)
        return Response(status=202, headers={"X-Progress": export_progress(job), "Retry-After": retry_after})

    def delete(self, request, job_id: str) -> Response:
        export_job_cancel(job_id=job_id, grant=self.grant)
        return Response(status=202)


class ExportFileView(BulkView):
    """GET a finished ndjson file with the token of the client that started the export."""

    def get(self, request, job_id: str, name: str) -> FileResponse:
        _file, path = export_file_path(job_id=job_id, name=name, grant=self.grant)
        return FileResponse(path.open("rb"), content_type=NDJSON)
