"""Provides the query plans of the vital-signs search as the store runs it, for diagnostics."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from fhirapi.store import resource_search


def vitals_params(patient_id: str) -> list[tuple[str, str]]:
    return [("patient", patient_id), ("category", "vital-signs"), ("_sort", "-date"), ("_count", "10")]


def vitals_explain(patient_id: str) -> str:
    """Each SQL statement the search runs (page ids, page rows, total), with its plan.

    EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL, EXPLAIN QUERY PLAN on SQLite. The statements are captured from
    a real `fhirapi.store.resource_search`, so the plans are those of the path the API takes.
    """
    with CaptureQueriesContext(connection) as captured:
        resource_search(resource_type="Observation", params=vitals_params(patient_id))
    on_postgresql = connection.vendor == "postgresql"
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if on_postgresql else "EXPLAIN QUERY PLAN "
    parts = []
    with connection.cursor() as cursor:
        for statement in captured.captured_queries:
            cursor.execute(prefix + statement["sql"])
            plan = "\n".join(" | ".join(str(c) for c in row) for row in cursor.fetchall())
            parts.append(f"{statement['sql']}\n{plan}")
    return "\n\n".join(parts)
