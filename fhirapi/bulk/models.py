"""Provides the bulk export tables: one row per `$export` job and one per ndjson file it has finished.

A job's files live under `FHIRAPI["BULK_DIR"]/<job id>/<attempt>/`; a file row is written only once the file
has its final name, and the job turns `completed` only after its last file, in one transaction.
"""

import uuid

from django.db import models

__all__ = ["ExportFile", "ExportJob"]


class ExportJob(models.Model):
    """One `$export` request: what to export (fixed at kick-off, grant limits included) and how far it got."""

    class Level(models.TextChoices):
        SYSTEM = "system"
        PATIENT = "patient"
        GROUP = "group"

    class Status(models.TextChoices):
        ACCEPTED = "accepted"
        IN_PROGRESS = "in-progress"
        COMPLETED = "completed"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client_id = models.CharField(max_length=100)
    level = models.CharField(max_length=16, choices=Level.choices)
    group_id = models.CharField(max_length=64, blank=True)
    request_url = models.TextField()
    types = models.JSONField(default=list)  # the resource types to export, in output order
    access = models.JSONField(default=dict)  # type -> serialised AccessDecision filters taken at kick-off
    type_filters = models.JSONField(default=dict)  # type -> list of search query strings (OR-ed)
    since = models.DateTimeField(null=True, blank=True)
    warnings = models.JSONField(default=list)  # OperationOutcome issues written to the `error` output
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACCEPTED)
    attempt = models.PositiveIntegerField(default=0)  # bumped each time a worker (re)starts the job
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(null=True, blank=True)
    transaction_time = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    heartbeat = models.DateTimeField(auto_now_add=True)  # last sign of life of the worker running it
    finished = models.DateTimeField(null=True, blank=True)
    expires = models.DateTimeField(null=True, blank=True)  # set when finished: files are deleted after it

    class Meta:
        indexes = [
            models.Index(fields=["client_id", "created"], name="fhir_bulk_client"),
            models.Index(fields=["status", "heartbeat"], name="fhir_bulk_status"),
            models.Index(fields=["expires"], name="fhir_bulk_expires"),
        ]

    def __str__(self) -> str:
        return f"$export {self.id} ({self.level}, {self.status})"


class ExportFile(models.Model):
    """One finished ndjson file of a job: resources of one type, or OperationOutcomes (`error`)."""

    class Kind(models.TextChoices):
        OUTPUT = "output"
        ERROR = "error"

    job = models.ForeignKey(ExportJob, on_delete=models.CASCADE, related_name="files")
    attempt = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    resource_type = models.CharField(max_length=64)
    name = models.CharField(max_length=128)  # file name inside the attempt's directory
    count = models.BigIntegerField()
    size = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "name"], name="fhir_bulk_file_name")]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.name}"
