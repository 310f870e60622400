"""URLs of FHIR Bulk Data `$export` (included by fhirapi.urls ahead of the generic `<type>` routes)."""

from django.urls import path, re_path

from fhirapi.bulk.views import (
    ExportFileView,
    ExportKickOffView,
    ExportStatusView,
    GroupExportView,
    PatientExportView,
)

JOB = r"(?P<job_id>[0-9a-f-]{36})"

bulk_urlpatterns = [
    path("$export", ExportKickOffView.as_view(), name="export"),
    path("Patient/$export", PatientExportView.as_view(), name="patient-export"),
    re_path(
        r"^Group/(?P<group_id>[A-Za-z0-9\-.]{1,64})/\$export$", GroupExportView.as_view(), name="group-export"
    ),
    re_path(rf"^bulk-status/{JOB}$", ExportStatusView.as_view(), name="export-status"),
    re_path(
        rf"^bulk-files/{JOB}/(?P<name>[A-Za-z]+(-errors)?-[0-9]+\.ndjson)$",
        ExportFileView.as_view(),
        name="export-file",
    ),  # fmt: skip
]
urlpatterns = bulk_urlpatterns
