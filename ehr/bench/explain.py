"""Provides the query plan of the vital-signs search as the store runs it, for diagnostics."""

from django.db import connection

from fhirapi.access import UNRESTRICTED
from fhirapi.query import search_queryset
from fhirapi.search import parse_search


def vitals_params(patient_id: str) -> list[tuple[str, str]]:
    return [("patient", patient_id), ("category", "vital-signs"), ("_sort", "-date"), ("_count", "10")]


def vitals_explain(patient_id: str) -> str:
    """EXPLAIN ANALYZE (PostgreSQL) or EXPLAIN QUERY PLAN (SQLite) of the search's page query and its SQL."""
    query = parse_search("Observation", vitals_params(patient_id))
    page = search_queryset(query, UNRESTRICTED)[query.offset : query.offset + query.count]
    sql, params = page.query.sql_with_params()
    on_postgresql = connection.vendor == "postgresql"
    plan = page.explain(analyze=True, buffers=True) if on_postgresql else page.explain()
    return f"{sql}\n-- params: {list(params)}\n{plan}"
