"""Provides the bulk export services: kick-off, status, cancel, file lookup and the expiry/recovery sweep.

FHIR Bulk Data Access IG v2.0.0 (export.html). A job belongs to the client whose token started it
(`Grant.client_id`): any other client, like an unknown or expired job, gets `ExportNotFound`. The grant's
per-type access decisions are frozen onto the job at kick-off and applied while streaming
(fhirapi.bulk.runner), and the token presented at status and download must still cover them, so an export
never reaches further than a search with the same token could.
"""

import logging
import shutil
import uuid
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fhirapi import store
from fhirapi.access import AccessDecision, AccessFilter, Grant, Interaction
from fhirapi.bulk.models import ExportFile, ExportJob
from fhirapi.bulk.params import ExportParams
from fhirapi.outcomes import issue
from fhirapi.searchparams import COMPARTMENT_PARAMS, SUPPORTED_TYPES
from fhirapi.settings import fhirapi_settings

logger = logging.getLogger(__name__)

# Patient- and Group-level exports cover the Patient compartment (export.html#endpoint---all-patients).
COMPARTMENT_TYPES: tuple[str, ...] = tuple(t for t in SUPPORTED_TYPES if t in COMPARTMENT_PARAMS)


class BulkExportError(Exception):
    """A bulk request the server refuses; `status` is the HTTP status it maps to."""

    status = 400

    def __init__(self, message: str, *, expression: list[str] | None = None) -> None:
        super().__init__(message)
        self.expression = expression


class ExportNotFound(BulkExportError):
    status = 404


class ExportForbidden(BulkExportError):
    status = 403


# ---------------------------------------------------------------- kick-off


def export_kick_off(
    *,
    grant: Grant,
    level: ExportJob.Level,
    params: ExportParams,
    request_url: str,
    group_id: str = "",
    enqueue: bool = True,
) -> ExportJob:
    """Create an export job for what the grant may search, and queue it (unless `enqueue` is False)."""
    if not grant.client_id:
        raise ExportForbidden("Bulk export needs an access token issued to a registered client.")
    export_jobs_cleanup()
    if level == ExportJob.Level.GROUP:
        _group_check(grant, group_id)
    requested = params.types or (SUPPORTED_TYPES if level == ExportJob.Level.SYSTEM else COMPARTMENT_TYPES)
    if level != ExportJob.Level.SYSTEM:
        _compartment_check(requested, explicit=params.types is not None)
    access, warnings = _type_access(grant, requested, explicit=params.types is not None)
    job = ExportJob.objects.create(
        client_id=grant.client_id, level=level, group_id=group_id, request_url=request_url,
        types=list(access), access={t: access_dump(d) for t, d in access.items()}, since=params.since,
        type_filters=_filters_by_type(params), warnings=warnings + [_warning(t) for t in params.dropped],
    )  # fmt: skip
    if enqueue:
        _enqueue(job)
    return job


def _group_check(grant: Grant, group_id: str) -> None:
    decision = _policy().decide(grant, "Group", Interaction.READ)
    if not decision.allowed:
        raise ExportForbidden("The access token's scopes do not allow reading Group resources.")
    try:
        store.resource_read(resource_type="Group", resource_id=group_id, access=decision)
    except (store.ResourceNotFound, store.ResourceGone) as error:
        raise ExportNotFound(f"Group/{group_id} is not known.") from error


def _compartment_check(types: Iterable[str], *, explicit: bool) -> None:
    outside = [t for t in types if t not in COMPARTMENT_PARAMS]
    if explicit and outside:
        raise BulkExportError(
            f"_type: {', '.join(outside)} are not in the Patient compartment, and this server does not "
            "export associated data (includeAssociatedData).",
            expression=["_type"],
        )


def _type_access(
    grant: Grant, types: Iterable[str], *, explicit: bool
) -> tuple[dict[str, AccessDecision], list[dict[str, Any]]]:
    """The search-type decision of each type the grant covers; types it cannot search are left out."""
    policy = _policy()
    access: dict[str, AccessDecision] = {}
    left_out: list[str] = []
    for resource_type in types:
        decision = policy.decide(grant, resource_type, Interaction.SEARCH_TYPE)
        if decision.allowed:
            access[resource_type] = decision
        else:
            left_out.append(resource_type)
    if not access:
        raise ExportForbidden("The access token's scopes do not allow searching any of the requested types.")
    warnings = []
    if explicit and left_out:
        warnings.append(_warning(f"Not exported, outside the access token's scopes: {', '.join(left_out)}."))
    return access, warnings


def _filters_by_type(params: ExportParams) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for type_filter in params.type_filters:
        filters.setdefault(type_filter.resource_type, []).append(type_filter.query)
    return filters


def _warning(text: str) -> dict[str, Any]:
    return issue(text, code="informational", severity="warning")


def _enqueue(job: ExportJob, *, restart_attempt: int | None = None) -> None:
    from fhirapi.bulk.tasks import bulk_export_run  # tasks import this module

    job_id = str(job.pk)
    # After commit: a queue outside the database must not hand the job to a worker before its row exists.
    transaction.on_commit(lambda: bulk_export_run.enqueue(job_id, restart_attempt=restart_attempt))


# ---------------------------------------------------------------- access decisions on the job


def access_dump(decision: AccessDecision) -> list[list[Any]]:
    return [[f.patient_id, [list(c) for c in f.constraints]] for f in decision.filters]


def access_load(filters: list[list[Any]]) -> AccessDecision:
    return AccessDecision(
        allowed=True,
        filters=tuple(
            AccessFilter(patient_id=p, constraints=tuple(tuple(c) for c in cs)) for p, cs in filters
        ),
    )


def _covers(current: AccessDecision, frozen: AccessDecision) -> bool:
    """Whether a token's decision reaches at least what the job was started with."""
    return current.unrestricted or (current.allowed and set(frozen.filters) <= set(current.filters))


def _grant_check(job: ExportJob, grant: Grant, types: Iterable[str]) -> None:
    policy = _policy()
    for resource_type in types:
        current = policy.decide(grant, resource_type, Interaction.SEARCH_TYPE)
        if not _covers(current, access_load(job.access[resource_type])):
            raise ExportForbidden(
                f"The access token no longer covers the exported {resource_type} resources."
            )


# ---------------------------------------------------------------- status, files, cancel


def export_job_get(*, job_id: str, grant: Grant) -> ExportJob:
    """The caller's live job (ExportNotFound otherwise), checked against the caller's current grant."""
    job = _owned_job(job_id, grant)
    _grant_check(job, grant, job.types)
    if job.status == ExportJob.Status.IN_PROGRESS and _is_stale(job):
        export_job_requeue(job)  # its worker died: polling is what notices, and what restarts it
    return job


def export_file_path(*, job_id: str, name: str, grant: Grant) -> tuple[ExportFile, Path]:
    """A finished file of the caller's completed job, and where it is on disk."""
    job = _owned_job(job_id, grant)
    file = job.files.filter(name=name).first() if job.status == ExportJob.Status.COMPLETED else None
    if file is None:
        raise ExportNotFound(f"This export has no file {name!r}.")
    if file.kind == ExportFile.Kind.OUTPUT:
        _grant_check(job, grant, [file.resource_type])
    path = attempt_dir(job.pk, file.attempt) / file.name
    if not path.is_file():
        raise ExportNotFound(f"The file {name!r} is gone.")
    return file, path


def export_job_cancel(*, job_id: str, grant: Grant) -> None:
    """Delete the job and its files; a worker still running it notices and stops."""
    job = _owned_job(job_id, grant)
    directory = job_dir(job.pk)  # delete() clears the pk
    job.delete()
    _remove_dir(directory)


def _owned_job(job_id: str, grant: Grant) -> ExportJob:
    try:
        key = uuid.UUID(job_id)
    except ValueError as error:
        raise ExportNotFound("No such export.") from error
    job = ExportJob.objects.filter(pk=key, client_id=grant.client_id or "").first()
    # Another client's job is as absent as an unknown one: 404, never 403, so ids reveal nothing.
    if job is None or not grant.client_id or (job.expires is not None and job.expires <= timezone.now()):
        raise ExportNotFound("No such export (unknown, expired or cancelled).")
    return job


def export_progress(job: ExportJob) -> str:
    """The X-Progress text of a running job, e.g. "45% (9000/20000 resources)"."""
    if job.status == ExportJob.Status.ACCEPTED or job.progress_total is None:
        return "queued"
    total = job.progress_total
    percent = 100 * job.progress_done // total if total else 100
    return f"{percent}% ({job.progress_done}/{total} resources)"


def export_manifest(job: ExportJob, *, base_url: str) -> dict[str, Any]:
    """The complete-status body (export.html#response---complete-status)."""
    files = list(job.files.order_by("kind", "pk"))
    return {
        "transactionTime": _instant(job.transaction_time),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [_file_entry(f, base_url) for f in files if f.kind == ExportFile.Kind.OUTPUT],
        "error": [_file_entry(f, base_url) for f in files if f.kind == ExportFile.Kind.ERROR],
    }


def _file_entry(file: ExportFile, base_url: str) -> dict[str, Any]:
    return {"type": file.resource_type, "url": f"{base_url}/bulk-files/{file.job_id}/{file.name}",
            "count": file.count}  # fmt: skip


def _instant(moment: Any) -> str | None:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None


# ---------------------------------------------------------------- expiry and recovery


def export_jobs_cleanup() -> int:
    """Delete expired jobs with their files, and restart jobs whose worker died; returns jobs deleted."""
    now = timezone.now()
    expired = list(ExportJob.objects.filter(expires__lte=now).values_list("pk", flat=True))
    ExportJob.objects.filter(pk__in=expired).delete()
    for job_id in expired:
        _remove_dir(job_dir(job_id))
    stale = ExportJob.objects.filter(status=ExportJob.Status.IN_PROGRESS, heartbeat__lt=now - _stale_after())
    for job in stale:
        export_job_requeue(job)
    return len(expired)


def export_job_requeue(job: ExportJob) -> None:
    """Queue a job again; its worker will start it over, or fail it once its attempts are used up."""
    logger.warning("Bulk export %s: worker silent since %s, queued again.", job.pk, job.heartbeat)
    ExportJob.objects.filter(pk=job.pk).update(heartbeat=timezone.now())  # one requeue per stale period
    _enqueue(job, restart_attempt=job.attempt)


def _is_stale(job: ExportJob) -> bool:
    return job.heartbeat < timezone.now() - _stale_after()


def _stale_after() -> timedelta:
    return timedelta(seconds=fhirapi_settings.BULK_STALE_SECONDS)


# ---------------------------------------------------------------- files on disk


def bulk_root() -> Path:
    configured = fhirapi_settings.BULK_DIR
    if configured:
        return Path(configured)
    return Path(getattr(settings, "VAR_DIR", Path(settings.BASE_DIR) / "var")) / "bulk"


def job_dir(job_id: Any) -> Path:
    return bulk_root() / str(job_id)


def attempt_dir(job_id: Any, attempt: int) -> Path:
    return job_dir(job_id) / str(attempt)


def _remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _policy():  # type: ignore[no-untyped-def]
    return fhirapi_settings.ACCESS_POLICY_CLASS()
