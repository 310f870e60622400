"""Provides the write side of the search indexes: extracted values -> index rows, in the caller's transaction."""

from collections.abc import Sequence

from fhirapi.indexing import IndexEntries
from fhirapi.models import (
    CompartmentMembership,
    DateIndex,
    NumberIndex,
    QuantityIndex,
    ReferenceIndex,
    Resource,
    StringIndex,
    TokenIndex,
    UriIndex,
)

INDEX_MODELS = (TokenIndex, StringIndex, DateIndex, ReferenceIndex, QuantityIndex, NumberIndex, UriIndex)


def write_index_rows(items: Sequence[tuple[Resource, IndexEntries]]) -> None:
    """Insert the index rows of each (resource row, extracted entries) pair with one bulk insert per table."""
    rows: dict[type, list] = {model: [] for model in (*INDEX_MODELS, CompartmentMembership)}
    for resource, entries in items:
        common = {"resource_id": resource.pk, "resource_type": resource.resource_type}
        rows[TokenIndex] += [
            TokenIndex(**common, param=v.param, system=v.system, code=v.code) for v in entries.tokens
        ]
        rows[StringIndex] += [
            StringIndex(**common, param=v.param, normalized=v.normalized, exact=v.exact)
            for v in entries.strings
        ]
        rows[DateIndex] += [DateIndex(**common, param=v.param, low=v.low, high=v.high) for v in entries.dates]
        rows[ReferenceIndex] += [
            ReferenceIndex(
                **common, param=v.param, target_type=v.target_type, target_id=v.target_id, url=v.url
            )
            for v in entries.references
        ]
        rows[QuantityIndex] += [
            QuantityIndex(**common, param=v.param, value=v.value, system=v.system, code=v.code, unit=v.unit)
            for v in entries.quantities
        ]
        rows[NumberIndex] += [NumberIndex(**common, param=v.param, value=v.value) for v in entries.numbers]
        rows[UriIndex] += [UriIndex(**common, param=v.param, uri=v.uri) for v in entries.uris]
        rows[CompartmentMembership] += [
            CompartmentMembership(resource_id=resource.pk, patient_id=p) for p in sorted(entries.compartments)
        ]
    for model, model_rows in rows.items():
        if model_rows:
            model.objects.bulk_create(model_rows, batch_size=2000)


def delete_index_rows(resource_pks: Sequence[int]) -> None:
    """Remove every index row of these resources (before re-indexing a new version)."""
    for model in (*INDEX_MODELS, CompartmentMembership):
        model.objects.filter(resource_id__in=resource_pks).delete()
