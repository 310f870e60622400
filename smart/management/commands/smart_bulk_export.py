"""Provides `manage.py smart_bulk_export`: a Bulk Data export run in-process as a registered backend client.

The client's registered `allowed_scopes` (their `system/` rules) are the grant, as a client_credentials token
of that client would carry them. The export runs here rather than on the task queue, and its ndjson files
(plus a manifest.json) end up in --out. `--benchmark` also times PostgreSQL's own `COPY (SELECT content ...)
TO STDOUT` of the same rows, the physical limit the export is measured against, and reports peak memory.
"""

import json
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from oauth2_provider.models import get_application_model
from tqdm import tqdm

from fhirapi.access import Context, Grant
from fhirapi.bulk.models import ExportJob
from fhirapi.bulk.params import ExportParamError, export_params_parse
from fhirapi.bulk.runner import export_job_run, export_queryset
from fhirapi.bulk.services import BulkExportError, attempt_dir, export_kick_off, export_manifest, job_dir
from smart.scopes import parse_scopes

Application = get_application_model()


class Command(BaseCommand):
    help = "Export FHIR data as ndjson files on behalf of a registered backend client (Bulk Data $export)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--client", required=True, help="client_id of a registered backend service.")
        parser.add_argument("--type", help="Comma-separated resource types (_type).")
        parser.add_argument("--since", help="Only resources changed at or after this FHIR instant (_since).")
        parser.add_argument(
            "--type-filter",
            action="append",
            default=[],
            help="A search query 'Type?param=value' (_typeFilter).",
        )
        level = parser.add_mutually_exclusive_group()
        level.add_argument("--group", help="Export the compartments of this Group's members.")
        level.add_argument("--patients", action="store_true", help="Export every Patient compartment.")
        parser.add_argument("--out", help="Folder for the files (default: ./bulk-export-<job id>).")
        parser.add_argument(
            "--benchmark",
            action="store_true",
            help="Also time PostgreSQL COPY of the same rows, and peak RSS.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["benchmark"] and connection.vendor != "postgresql":
            raise CommandError("--benchmark compares with PostgreSQL COPY: run it on PostgreSQL.")
        grant = _client_grant(options["client"])
        job = self._kick_off(grant, options)
        out = Path(options["out"] or f"bulk-export-{job.pk}")
        rss_before = _peak_rss_mib()
        started = time.perf_counter()
        self._run(job)
        elapsed = time.perf_counter() - started
        job.refresh_from_db()
        if job.status != ExportJob.Status.COMPLETED:
            raise CommandError(f"The export did not complete: {job.error or job.status}.")
        copy_figures = _copy_benchmark(job) if options["benchmark"] else None
        manifest = _deliver(job, out)
        self._report(job, manifest, elapsed, out)
        if copy_figures is not None:
            self._report_benchmark(job.progress_done, elapsed, rss_before, *copy_figures)

    def _kick_off(self, grant: Grant, options: dict[str, Any]) -> ExportJob:
        pairs = [("_type", options["type"])] if options["type"] else []
        pairs += [("_since", options["since"])] if options["since"] else []
        pairs += [("_typeFilter", query) for query in options["type_filter"]]
        level = ExportJob.Level.SYSTEM
        if options["group"]:
            level = ExportJob.Level.GROUP
        elif options["patients"]:
            level = ExportJob.Level.PATIENT
        try:
            params = export_params_parse(pairs)
            return export_kick_off(
                grant=grant, level=level, params=params, group_id=options["group"] or "", enqueue=False,
                request_url="manage.py smart_bulk_export " + " ".join(f"{k}={v}" for k, v in pairs),
            )  # fmt: skip
        except (ExportParamError, BulkExportError) as error:
            raise CommandError(str(error)) from error

    def _run(self, job: ExportJob) -> None:
        with tqdm(unit="res", unit_scale=True, file=self.stderr) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            export_job_run(job_id=str(job.pk), on_progress=progress)

    def _report(self, job: ExportJob, manifest: dict[str, Any], elapsed: float, out: Path) -> None:
        rate = job.progress_done / elapsed if elapsed else 0
        self.stdout.write(
            self.style.SUCCESS(
                f"{job.progress_done} resources in {len(manifest['output'])} files written to {out} "
                f"in {elapsed:.1f}s ({rate:,.0f} resources/s)."
            )
        )

    def _report_benchmark(
        self,
        rows: int,
        elapsed: float,
        rss_before: float,
        copy_rows: int,
        copy_elapsed: float,
        rss_after: float,
    ) -> None:
        export_rate, copy_rate = rows / elapsed, copy_rows / copy_elapsed
        self.stdout.write(
            f"export: {rows} resources in {elapsed:.2f}s = {export_rate:,.0f}/s\n"
            f"COPY:   {copy_rows} rows in {copy_elapsed:.2f}s = {copy_rate:,.0f}/s\n"
            f"export/COPY = {export_rate / copy_rate:.2f}; peak RSS {rss_before:.0f} MiB before the export, "
            f"{rss_after:.0f} MiB after it and COPY"
        )


def _client_grant(client_id: str) -> Grant:
    """The grant a client_credentials token of this client would carry: its registered system/ scopes."""
    client = Application.objects.filter(client_id=client_id).first()
    if client is None or not client.enabled:
        raise CommandError(f"No enabled client {client_id!r}.")
    if client.smart_client_type != Application.SmartClientType.BACKEND:
        raise CommandError(f"{client_id!r} is not a backend service (client_credentials) client.")
    scopes = parse_scopes(client.allowed_scopes)
    rules = tuple(rule for rule in scopes.rules() if rule.context is Context.SYSTEM)
    if not rules:
        raise CommandError(f"{client_id!r} has no system/ scopes in its allowed_scopes.")
    return Grant(rules=rules, client_id=client.client_id, scope=client.allowed_scopes)


def _deliver(job: ExportJob, out: Path) -> dict[str, Any]:
    """Move the job's files into `out` with a manifest naming them, then forget the job."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = export_manifest(job, base_url="")
    for file in job.files.all():
        shutil.move(attempt_dir(job.pk, file.attempt) / file.name, out / file.name)
    for entry in manifest["output"] + manifest["error"]:
        entry["url"] = entry["url"].rsplit("/", 1)[1]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    directory = job_dir(job.pk)
    job.delete()
    shutil.rmtree(directory, ignore_errors=True)
    return manifest


def _copy_benchmark(job: ExportJob) -> tuple[int, float, float]:
    """PostgreSQL COPY of exactly the exported rows into a scratch file: (rows, seconds, peak RSS MiB)."""
    rows = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch, open(Path(scratch) / "copy.txt", "wb") as sink:
        for resource_type in job.types:
            query = export_queryset(job, resource_type).order_by("pk").values_list("content").query
            try:
                sql, params = query.sql_with_params()
            except EmptyResultSet:  # a type the grant reaches nothing of (it has no SQL): no rows to copy
                continue
            statement = connection.ops.compose_sql(f"COPY ({sql}) TO STDOUT", params)
            with connection.cursor() as cursor:
                with cursor.cursor.copy(statement) as copy:
                    for block in copy:
                        sink.write(block)
                rows += cursor.cursor.rowcount
    return rows, time.perf_counter() - started, _peak_rss_mib()


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
