"""Provides the write side of the search indexes: extracted values -> index rows, in the caller's transaction.

Rows go in with one `executemany` per table rather than ORM `bulk_create`: a resource yields dozens of index
rows, and building model instances and SQL per row cost more than the rest of a write together.
"""

from collections.abc import Sequence

from django.db import connection

from fhirapi.indexing import IndexEntries
from fhirapi.models import (
    CompartmentMembership,
    DateIndex,
    NumberIndex,
    QuantityIndex,
    ReferenceIndex,
    Resource,
    StringIndex,
    TimelineIndex,
    TokenIndex,
    UriIndex,
)

INDEX_MODELS = (
    TokenIndex, StringIndex, DateIndex, ReferenceIndex, QuantityIndex, NumberIndex, UriIndex, TimelineIndex,
)  # fmt: skip

# table -> (columns after resource_id and resource_type, function entries -> value tuples)
_COLUMNS: dict[type, tuple[tuple[str, ...], str]] = {
    TokenIndex: (("param", "system", "code"), "tokens"),
    StringIndex: (("param", "normalized", "exact"), "strings"),
    DateIndex: (("param", "low", "high"), "dates"),
    ReferenceIndex: (("param", "target_type", "target_id", "url"), "references"),
    QuantityIndex: (("param", "value", "system", "code", "unit"), "quantities"),
    NumberIndex: (("param", "value"), "numbers"),
    UriIndex: (("param", "uri"), "uris"),
    TimelineIndex: (("reference_param", "patient_id", "param", "low"), "timeline"),
}


def write_index_rows(items: Sequence[tuple[Resource, IndexEntries]]) -> None:
    """Insert the index rows of each (resource row, extracted entries) pair, one executemany per table."""
    with connection.cursor() as cursor:
        for model, (columns, attribute) in _COLUMNS.items():
            rows = [
                (resource.pk, resource.resource_type, *_values(model, value, columns))
                for resource, entries in items
                for value in getattr(entries, attribute)
            ]
            _insert(cursor, model, ("resource_id", "resource_type", *columns), rows)
        memberships = [(resource.pk, p) for resource, entries in items for p in sorted(entries.compartments)]
        _insert(cursor, CompartmentMembership, ("resource_id", "patient_id"), memberships)


def delete_index_rows(resource_pks: Sequence[int]) -> None:
    """Remove every index row of these resources (before re-indexing a new version)."""
    for model in (*INDEX_MODELS, CompartmentMembership):
        model.objects.filter(resource_id__in=resource_pks).delete()


_CONVERTED = ("low", "high", "value")  # datetimes and decimals go through the field's database conversion


def _values(model: type, value: object, columns: tuple[str, ...]) -> tuple:
    out = []
    for column in columns:
        raw = getattr(value, column)
        field = model._meta.get_field(column)
        out.append(field.get_db_prep_save(raw, connection) if column in _CONVERTED else raw)
    return tuple(out)


def _insert(cursor, model: type, columns: tuple[str, ...], rows: list[tuple]) -> None:  # type: ignore[no-untyped-def]
    if not rows:
        return
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(model._meta.db_table), ", ".join(quote(c) for c in columns), ", ".join(["%s"] * len(columns))
    )
    cursor.executemany(sql, rows)
