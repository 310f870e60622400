"""Provides the bulk export's background tasks (django-tasks): run a job, and sweep expired or stalled jobs.

`bulk_export_run` is queued by the kick-off; with the default database backend `manage.py db_worker` runs it.
`bulk_export_cleanup` also runs on every kick-off; schedule it (e.g. hourly) to delete files nobody asks for.
"""

from django_tasks import task

from fhirapi.bulk.runner import export_job_run
from fhirapi.bulk.services import export_jobs_cleanup


@task()
def bulk_export_run(job_id: str, restart_attempt: int | None = None) -> bool:
    """Stream one export job to its ndjson files; True when it completed."""
    return export_job_run(job_id=job_id, restart_attempt=restart_attempt)


@task()
def bulk_export_cleanup() -> int:
    """Delete expired jobs and their files, and requeue jobs whose worker died; returns jobs deleted."""
    return export_jobs_cleanup()
