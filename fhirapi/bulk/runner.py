"""Provides `export_job_run`, the worker side of `$export`: stream the job's resources into ndjson files.

Rows are streamed from the database in primary-key order and the stored JSON text is written out as it comes,
so memory stays flat whatever the export's size: on PostgreSQL as the raw bytes of `COPY ... TO STDOUT` in one
read-only snapshot on a second connection, elsewhere through Django's iterator (fhirapi.bulk.sources says
which, and why). Restart safety:

- each run of a job is an *attempt* with its own directory; claiming a job bumps the attempt, deletes what
  earlier attempts wrote, and starts over (files are not resumed: a half-written export is never trusted);
- a file is recorded only under its final name, and only while the job is still this attempt's;
- the job turns `completed` in one statement after its last file, so a crash never leaves it half-reported;
- every chunk the worker writes its progress (its heartbeat); a job cancelled or restarted meanwhile makes
  that update match nothing, and the worker stops.
"""

import logging
import operator
import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from functools import reduce
from urllib.parse import parse_qsl

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from fhirapi import jsontext
from fhirapi.access import UNRESTRICTED
from fhirapi.bulk.models import ExportFile, ExportJob
from fhirapi.bulk.ndjson import FinishedFile, NdjsonSplitter
from fhirapi.bulk.services import access_load, attempt_dir, job_dir
from fhirapi.bulk.sources import row_source
from fhirapi.models import CompartmentMembership, ReferenceIndex, Resource
from fhirapi.outcomes import operation_outcome
from fhirapi.query import apply_access, search_queryset
from fhirapi.search import parse_search
from fhirapi.settings import fhirapi_settings

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]  # (resources written, resources to write)


class JobSuperseded(Exception):
    """The job was cancelled, or another worker restarted it: this attempt must stop and leave no trace."""


def export_job_run(
    *, job_id: str, restart_attempt: int | None = None, on_progress: ProgressCallback | None = None
) -> bool:
    """Run a queued job, or restart attempt `restart_attempt` of a job whose worker died; True if done."""
    job = _claim(job_id, restart_attempt)
    if job is None:
        return False
    try:
        _export(job, on_progress)
    except JobSuperseded:
        logger.info("Bulk export %s attempt %s stopped: cancelled or restarted.", job.pk, job.attempt)
        shutil.rmtree(attempt_dir(job.pk, job.attempt), ignore_errors=True)
        return False
    except Exception:
        logger.exception("Bulk export %s attempt %s failed.", job.pk, job.attempt)
        _fail(job, "The export failed on the server.")
        raise
    finally:
        _last_beat.pop(job.pk, None)
    return True


def export_queryset(job: ExportJob, resource_type: str) -> QuerySet[Resource]:
    """The current resources of one type this job exports: its level, _since, grant and _typeFilter."""
    rows = Resource.objects.filter(
        resource_type=resource_type, deleted=False, last_updated__lte=job.transaction_time
    )
    if job.since is not None:
        rows = rows.filter(last_updated__gte=job.since)
    if job.level == ExportJob.Level.PATIENT:
        rows = rows.filter(pk__in=CompartmentMembership.objects.values("resource_id"))
    elif job.level == ExportJob.Level.GROUP:
        members = CompartmentMembership.objects.filter(patient_id__in=_group_members(job.group_id))
        rows = rows.filter(pk__in=members.values("resource_id"))
    rows = apply_access(rows, resource_type, access_load(job.access[resource_type]))
    queries = job.type_filters.get(resource_type)
    if queries:
        matches = [_type_filter_q(resource_type, query) for query in queries]
        rows = rows.filter(reduce(operator.or_, matches))
    return rows


def _group_members(group_id: str) -> QuerySet[ReferenceIndex]:
    """Ids of the Patients listed in Group.member, read from the search index (a subquery, not a list)."""
    return ReferenceIndex.objects.filter(
        resource__resource_type="Group", resource__fhir_id=group_id, resource__deleted=False,
        param="member", target_type="Patient",
    ).values("target_id")  # fmt: skip


def _type_filter_q(resource_type: str, query: str) -> Q:
    # The grant is applied to the outer query already; the search engine only adds the filter's clauses.
    search = parse_search(resource_type, parse_qsl(query, keep_blank_values=True), strict=True)
    return Q(pk__in=search_queryset(search, UNRESTRICTED).values("pk"))


# ---------------------------------------------------------------- the attempt's life cycle


def _claim(job_id: str, restart_attempt: int | None) -> ExportJob | None:
    """Make the job this worker's new attempt, or None when it is not (or no longer) ours to run."""
    with transaction.atomic():
        job = ExportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            return None  # cancelled before it started
        restarting = job.status == ExportJob.Status.IN_PROGRESS and job.attempt == restart_attempt
        if job.status != ExportJob.Status.ACCEPTED and not restarting:
            return None  # running elsewhere, already restarted, or finished
        if job.attempt >= fhirapi_settings.BULK_MAX_ATTEMPTS:
            _fail(job, f"The export was interrupted {job.attempt} times and was given up.")
            return None
        now = timezone.now()
        job.attempt += 1
        job.status = ExportJob.Status.IN_PROGRESS
        job.heartbeat = job.transaction_time = now
        job.progress_done, job.progress_total = 0, None
        job.save(update_fields=["attempt", "status", "heartbeat", "transaction_time", "progress_done",
                                "progress_total"])  # fmt: skip
        job.files.all().delete()
    shutil.rmtree(job_dir(job.pk), ignore_errors=True)  # what earlier attempts wrote
    attempt_dir(job.pk, job.attempt).mkdir(parents=True)
    return job


def _export(job: ExportJob, on_progress: ProgressCallback | None) -> None:
    querysets = {t: export_queryset(job, t) for t in job.types}
    chunk = fhirapi_settings.BULK_CHUNK_SIZE
    with row_source() as source:
        total = sum(source.count(rows) for rows in querysets.values())
        _beat(job, 0, total=total)
        done = 0
        for resource_type, rows in querysets.items():
            splitter = _splitter(job, resource_type, ExportFile.Kind.OUTPUT)

            def tick(written: int, base: int = done) -> None:
                # Called after every batch while the rows stream in: the beat is what notices a cancellation.
                _beat(job, base + written, total=total, force=False)
                if on_progress is not None:
                    on_progress(base + written, total)

            done += source.write(rows, splitter, batch=chunk, tick=tick)
    if job.warnings:
        errors = _splitter(job, "OperationOutcome", ExportFile.Kind.ERROR)
        errors.write_all(jsontext.dumps(operation_outcome(warning)) for warning in job.warnings)
    _complete(job, done)
    if on_progress is not None:
        on_progress(done, total)


def _splitter(job: ExportJob, resource_type: str, kind: ExportFile.Kind) -> NdjsonSplitter:
    def record(file: FinishedFile) -> None:
        with transaction.atomic():
            if not ExportJob.objects.select_for_update().filter(pk=job.pk, attempt=job.attempt).exists():
                raise JobSuperseded
            ExportFile.objects.create(job=job, attempt=job.attempt, kind=kind, resource_type=resource_type,
                                      name=file.name, count=file.count, size=file.size)  # fmt: skip

    prefix = resource_type if kind == ExportFile.Kind.OUTPUT else f"{resource_type}-errors"
    return NdjsonSplitter(
        attempt_dir(job.pk, job.attempt), prefix, on_finished=record,
        max_lines=fhirapi_settings.BULK_MAX_FILE_RESOURCES, max_bytes=fhirapi_settings.BULK_MAX_FILE_BYTES,
    )  # fmt: skip


def _this_attempt(job: ExportJob) -> QuerySet[ExportJob]:
    return ExportJob.objects.filter(pk=job.pk, attempt=job.attempt, status=ExportJob.Status.IN_PROGRESS)


def _beat(job: ExportJob, done: int, *, total: int, force: bool = True) -> None:
    """Record progress (the worker's sign of life); JobSuperseded when the job is no longer this attempt's."""
    now = time.monotonic()
    # Each beat is a committed write (an fsync): at most one a second keeps it off the export's critical path.
    if not force and now - _last_beat.get(job.pk, 0.0) < 1.0:
        return
    _last_beat[job.pk] = now
    if not _this_attempt(job).update(progress_done=done, progress_total=total, heartbeat=timezone.now()):
        raise JobSuperseded


_last_beat: dict[object, float] = {}


def _complete(job: ExportJob, done: int) -> None:
    now = timezone.now()
    updated = _this_attempt(job).update(
        status=ExportJob.Status.COMPLETED, progress_done=done, heartbeat=now, finished=now,
        expires=now + timedelta(seconds=fhirapi_settings.BULK_FILE_TTL_SECONDS),
    )  # fmt: skip
    if not updated:
        raise JobSuperseded


def _fail(job: ExportJob, message: str) -> None:
    """Mark this attempt failed (kept until expiry so the client can read why) and drop its partial files."""
    now = timezone.now()
    with transaction.atomic():
        failed = ExportJob.objects.filter(pk=job.pk, attempt=job.attempt).exclude(
            status=ExportJob.Status.COMPLETED
        ).update(
            status=ExportJob.Status.FAILED, error=message, finished=now,
            expires=now + timedelta(seconds=fhirapi_settings.BULK_FILE_TTL_SECONDS),
        )  # fmt: skip
        if failed:
            ExportFile.objects.filter(job_id=job.pk).delete()
    if failed:
        shutil.rmtree(job_dir(job.pk), ignore_errors=True)
