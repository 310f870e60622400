"""Provides the resource store: the only code that reads and writes fhirapi's tables.

Every write validates the resource as FHIR (fhir.resources R4B models, the closest to R4 4.0.1), assigns the
server-kept `meta.versionId`/`meta.lastUpdated`, appends an immutable version, and re-extracts the search
indexes, all in one transaction. Reads return the stored JSON text untouched. Every function takes the caller's
`AccessDecision` and applies it inside SQL, so a resource outside the grant is exactly as absent as a missing
one.
"""

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from fhirapi import jsontext
from fhirapi.access import UNRESTRICTED, AccessDecision
from fhirapi.indexing import extract_index
from fhirapi.models import CompartmentMembership, Resource, ResourceVersion
from fhirapi.query import apply_access, include_targets, revinclude_sources, search_page, search_total
from fhirapi.search import SearchError, SearchQuery, parse_search
from fhirapi.searchparams import is_supported_type
from fhirapi.validation import validate_resource
from fhirapi.writeindex import delete_index_rows, write_index_rows

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


class StoreError(Exception):
    """Base of the store's errors: the HTTP status it maps to; `expression` names the offending element."""

    status = 400

    def __init__(self, message: str, *, expression: list[str] | None = None) -> None:
        super().__init__(message)
        self.expression = expression


class ResourceNotFound(StoreError):
    status = 404


class ResourceGone(StoreError):
    status = 410

    def __init__(self, message: str, *, version_id: int) -> None:
        super().__init__(message)
        self.version_id = version_id


class VersionConflict(StoreError):
    status = 412


class PreconditionFailed(StoreError):
    status = 412


class InvalidResource(StoreError):
    status = 400


class UnprocessableResource(StoreError):
    status = 422


class ResourceConflict(StoreError):
    status = 409


class OutsideGrant(StoreError):
    status = 403


@dataclass(frozen=True)
class StoredResource:
    """One stored resource version: its identity and the JSON text served for it."""

    resource_type: str
    fhir_id: str
    version_id: int
    last_updated: datetime
    content: str
    deleted: bool = False
    pk: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return jsontext.loads(self.content)

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.fhir_id}"

    @classmethod
    def from_row(cls, row: Resource) -> "StoredResource":
        return cls(
            row.resource_type, row.fhir_id, row.version_id, row.last_updated, row.content, row.deleted, row.pk
        )


@dataclass(frozen=True)
class SearchResult:
    query: SearchQuery
    resources: list[StoredResource]
    included: list[StoredResource]
    total: int | None


@dataclass(frozen=True)
class HistoryEntry:
    resource_type: str
    fhir_id: str
    version_id: int
    last_updated: datetime
    method: str
    content: str  # empty for a delete


# ---------------------------------------------------------------- reads


def resource_read(
    *, resource_type: str, resource_id: str, access: AccessDecision = UNRESTRICTED
) -> StoredResource:
    """The current version; ResourceNotFound when absent or outside the grant, ResourceGone when deleted."""
    patients = _compartments_only(access)
    if access.unrestricted or patients:
        row = _row_by_id(resource_type, resource_id, patients)
    else:
        row = next(iter(_visible(resource_type, resource_id, access)[:1]), None)  # unique: no ORDER BY needed
    if row is None:
        raise ResourceNotFound(f"{resource_type}/{resource_id} is not known.")
    if row.deleted:
        raise ResourceGone(f"{resource_type}/{resource_id} was deleted.", version_id=row.version_id)
    return StoredResource.from_row(row)


def resource_vread(
    *, resource_type: str, resource_id: str, version_id: int, access: AccessDecision = UNRESTRICTED
) -> StoredResource:
    row = _visible(resource_type, resource_id, access).first()
    version = (
        ResourceVersion.objects.filter(resource=row, version_id=version_id).first()
        if row is not None
        else None
    )
    if version is None:
        raise ResourceNotFound(f"{resource_type}/{resource_id} has no version {version_id}.")
    if version.method == ResourceVersion.Method.DELETE:
        raise ResourceGone(
            f"Version {version_id} of {resource_type}/{resource_id} is a deletion.", version_id=version_id
        )
    return StoredResource(
        resource_type, resource_id, version.version_id, version.last_updated, version.content
    )


def resource_search(
    *,
    resource_type: str | None,
    params: Sequence[tuple[str, str]],
    access: AccessDecision = UNRESTRICTED,
    access_for=None,
    strict: bool = False,
    default_count: int = 50,
    max_count: int = 1000,
) -> SearchResult:
    """Run a FHIR search; `access_for(type)` limits `_include`/`_revinclude` targets (default: `access`)."""
    query = parse_search(
        resource_type, params, strict=strict, default_count=default_count, max_count=max_count
    )
    rows = [] if query.count == 0 else search_page(query, access)
    total = None if query.total == "none" else _total(query, access, len(rows))
    included = _included(rows, query, access_for or (lambda _type: access))
    return SearchResult(
        query=query,
        resources=[StoredResource.from_row(r) for r in rows],
        included=[StoredResource.from_row(r) for r in included],
        total=total,
    )


def _total(query: SearchQuery, access: AccessDecision, returned: int) -> int:
    """The search's total; a page that is not full already tells it, without a COUNT."""
    if query.count > 0 and (0 < returned < query.count or (returned == 0 and query.offset == 0)):
        return query.offset + returned
    return search_total(query, access)


def resource_history(
    *,
    resource_type: str | None = None,
    resource_id: str | None = None,
    access: AccessDecision = UNRESTRICTED,
    since: datetime | None = None,
    count: int = 50,
    offset: int = 0,
) -> tuple[list[HistoryEntry], int]:
    """Versions newest first, for one resource, one type, or the whole system; and their total."""
    versions = ResourceVersion.objects.all()
    if resource_id is not None:
        row = _visible(resource_type, resource_id, access).first()
        if row is None:
            raise ResourceNotFound(f"{resource_type}/{resource_id} is not known.")
        versions = versions.filter(resource=row)
    elif resource_type is not None:
        versions = versions.filter(resource_type=resource_type)
        if not access.unrestricted:
            visible = apply_access(
                Resource.objects.filter(resource_type=resource_type), resource_type, access
            )
            versions = versions.filter(resource__in=visible.values("pk"))
    if since is not None:
        versions = versions.filter(last_updated__gte=since)
    total = versions.count()
    page = versions.select_related("resource").order_by("-last_updated", "-pk")[offset : offset + count]
    return [_history_entry(v) for v in page], total


# ---------------------------------------------------------------- writes


def resource_create(
    *,
    resource: dict[str, Any],
    if_none_exist: str | None = None,
    access: AccessDecision = UNRESTRICTED,
    resource_id: str | None = None,
    check_references: bool = False,
) -> tuple[StoredResource, bool]:
    """Create a resource with a server-assigned id; (stored, created). With If-None-Exist, an existing match wins."""
    resource_type = _check_type(resource)
    if if_none_exist:
        existing = _conditional_match(resource_type, if_none_exist, access)
        if existing is not None:
            return existing, False
    validate_resource(resource)
    if check_references:
        _references_check(resource)
    with transaction.atomic():
        stored = _insert(resource_type, resource_id or str(uuid.uuid4()), resource)
        _ensure_visible(stored, access)
    return stored, True


def resource_update(
    *,
    resource_type: str,
    resource_id: str,
    resource: dict[str, Any],
    if_match: int | None = None,
    access: AccessDecision = UNRESTRICTED,
    check_references: bool = False,
) -> tuple[StoredResource, bool]:
    """Replace a resource (or create it with this id); (stored, created). If-Match must name the current version."""
    if resource.get("resourceType") != resource_type:
        raise InvalidResource(
            f"The body's resourceType must be {resource_type}.", expression=["resourceType"]
        )
    if resource.get("id") != resource_id:
        raise InvalidResource(
            "The body's id must equal the id in the URL.", expression=[f"{resource_type}.id"]
        )
    if not ID_PATTERN.match(resource_id):
        raise InvalidResource(f"{resource_id!r} is not a valid FHIR id.", expression=[f"{resource_type}.id"])
    validate_resource(resource)
    if check_references:
        _references_check(resource)
    with transaction.atomic():
        row = (
            Resource.objects.select_for_update()
            .filter(resource_type=resource_type, fhir_id=resource_id)
            .first()
        )
        if row is None:
            if if_match is not None:
                raise VersionConflict(f"{resource_type}/{resource_id} does not exist; If-Match cannot match.")
            stored = _insert(resource_type, resource_id, resource, ResourceVersion.Method.UPDATE)
            _ensure_visible(stored, access)
            return stored, True
        _ensure_row_visible(row, access)
        if if_match is not None and if_match != row.version_id:
            raise VersionConflict(
                f"If-Match names version {if_match} but the current version is {row.version_id}."
            )
        stored = _replace(row, resource)
        _ensure_visible(stored, access)
    return stored, False


def resource_delete(
    *, resource_type: str, resource_id: str, access: AccessDecision = UNRESTRICTED
) -> StoredResource | None:
    """Delete (keeping history); None when there was nothing to delete."""
    with transaction.atomic():
        row = (
            Resource.objects.select_for_update()
            .filter(resource_type=resource_type, fhir_id=resource_id)
            .first()
        )
        if row is None or row.deleted:
            return None
        _ensure_row_visible(row, access)
        row.version_id += 1
        row.last_updated = timezone.now()
        row.deleted = True
        row.save(update_fields=["version_id", "last_updated", "deleted"])
        ResourceVersion.objects.create(
            resource=row,
            resource_type=resource_type,
            version_id=row.version_id,
            last_updated=row.last_updated,
            method=ResourceVersion.Method.DELETE,
            content="",
        )
    return StoredResource.from_row(row)


def resources_load(
    resources: Iterable[dict[str, Any]], *, batch_size: int = 500, validate: bool = True
) -> int:
    """Bulk-load resources that carry their own ids (demo data, imports): insert new ones, replace existing ones.

    Each batch is one transaction with bulk inserts; returns the number of resources written.
    """
    written = 0
    batch: list[dict[str, Any]] = []
    for resource in resources:
        batch.append(resource)
        if len(batch) >= batch_size:
            written += _load_batch(batch, validate=validate)
            batch = []
    if batch:
        written += _load_batch(batch, validate=validate)
    return written


def resource_ids_existing(resource_type: str, resource_ids: Sequence[str]) -> set[str]:
    """Which of these ids exist (deleted or not)."""
    found: set[str] = set()
    for start in range(0, len(resource_ids), 500):
        chunk = resource_ids[start : start + 500]
        found.update(
            Resource.objects.filter(resource_type=resource_type, fhir_id__in=chunk).values_list(
                "fhir_id", flat=True
            )
        )
    return found


def statistics_refresh() -> None:
    """Refresh the query planner's statistics after a bulk load (ANALYZE on PostgreSQL, SQLite alike)."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# ---------------------------------------------------------------- internals


def _references_check(resource: dict[str, Any]) -> None:
    from fhirapi.integrity import references_check  # integrity raises this module's errors

    references_check([resource])


def _compartments_only(access: AccessDecision) -> tuple[str, ...]:
    """The patients whose compartments limit a grant that has no other constraint (the common patient/
    scope), else () (no limit, or constraints only the general query evaluates)."""
    if not access.allowed or access.unrestricted:
        return ()
    if any(f.constraints or f.patient_id is None for f in access.filters):
        return ()
    return tuple(dict.fromkeys(f.patient_id for f in access.filters if f.patient_id is not None))


def _row_by_id(resource_type: str, resource_id: str, patients: Sequence[str] = ()) -> Resource | None:
    """One resource row by its identity, with fixed SQL (in `patients`' compartments, when given): reads are
    the hot path, and building this query through the ORM cost more than running it."""
    sql, params = _READ_SQL, [resource_type, resource_id]
    if patients:
        sql += _IN_COMPARTMENTS_SQL.format(", ".join(["%s"] * len(patients)))
        params += patients
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    if found is None:
        return None
    pk, version_id, last_updated, deleted, content = found
    if isinstance(last_updated, str) or last_updated.tzinfo is None:  # SQLite hands back naive text
        last_updated = Resource._meta.get_field("last_updated").to_python(last_updated)
        last_updated = last_updated if last_updated.tzinfo else timezone.make_aware(last_updated, UTC)
    return Resource(
        pk=pk, resource_type=resource_type, fhir_id=resource_id, version_id=version_id,
        last_updated=last_updated, deleted=bool(deleted), content=content,
    )  # fmt: skip


_READ_SQL = (
    f"SELECT id, version_id, last_updated, deleted, content FROM {Resource._meta.db_table} r "
    "WHERE resource_type = %s AND fhir_id = %s"
)
_IN_COMPARTMENTS_SQL = (
    f" AND EXISTS (SELECT 1 FROM {CompartmentMembership._meta.db_table} m "
    "WHERE m.resource_id = r.id AND m.patient_id IN ({}))"
)


def _visible(resource_type: str | None, resource_id: str, access: AccessDecision) -> QuerySet[Resource]:
    rows = Resource.objects.filter(resource_type=resource_type, fhir_id=resource_id)
    return apply_access(rows, resource_type, access) if resource_type else rows.none()


def _check_type(resource: dict[str, Any]) -> str:
    resource_type = resource.get("resourceType") if isinstance(resource, dict) else None
    if not isinstance(resource_type, str) or not resource_type:
        raise InvalidResource(
            "The body is not a FHIR resource (no resourceType).", expression=["resourceType"]
        )
    if not is_supported_type(resource_type):
        raise InvalidResource(
            f"This server does not store {resource_type} resources.", expression=["resourceType"]
        )
    return resource_type


def _conditional_match(
    resource_type: str, query_string: str, access: AccessDecision
) -> StoredResource | None:
    from urllib.parse import parse_qsl

    params = parse_qsl(query_string.split("?", 1)[-1], keep_blank_values=True)
    try:
        result = resource_search(resource_type=resource_type, params=params, access=access, strict=True)
    except SearchError as exc:
        raise InvalidResource(f"If-None-Exist: {exc}") from exc
    if result.total and result.total > 1:
        raise PreconditionFailed(
            f"If-None-Exist matched {result.total} resources; it must match at most one."
        )
    return result.resources[0] if result.resources else None


def _stamped(
    resource_type: str, resource_id: str, version_id: int, when: datetime, body: dict[str, Any]
) -> str:
    """The stored text: resourceType, id and meta first, with the server-kept meta fields set."""
    meta = dict(body.get("meta") or {})
    meta["versionId"] = str(version_id)
    meta["lastUpdated"] = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    rest = {k: v for k, v in body.items() if k not in ("resourceType", "id", "meta")}
    return jsontext.dumps({"resourceType": resource_type, "id": resource_id, "meta": meta, **rest})


def _insert(
    resource_type: str, resource_id: str, body: dict[str, Any], method: str = ResourceVersion.Method.CREATE
) -> StoredResource:
    now = timezone.now()
    content = _stamped(resource_type, resource_id, 1, now, body)
    row = Resource.objects.create(
        resource_type=resource_type, fhir_id=resource_id, version_id=1, last_updated=now, content=content
    )
    ResourceVersion.objects.create(
        resource=row,
        resource_type=resource_type,
        version_id=1,
        last_updated=now,
        method=method,
        content=content,
    )
    write_index_rows([(row, extract_index(jsontext.loads(content)))])
    return StoredResource.from_row(row)


def _replace(row: Resource, body: dict[str, Any]) -> StoredResource:
    now = timezone.now()
    row.version_id += 1
    row.last_updated = now
    row.deleted = False
    row.content = _stamped(row.resource_type, row.fhir_id, row.version_id, now, body)
    row.save(update_fields=["version_id", "last_updated", "deleted", "content"])
    ResourceVersion.objects.create(
        resource=row,
        resource_type=row.resource_type,
        version_id=row.version_id,
        last_updated=now,
        method=ResourceVersion.Method.UPDATE,
        content=row.content,
    )
    delete_index_rows([row.pk])
    write_index_rows([(row, extract_index(jsontext.loads(row.content)))])
    return StoredResource.from_row(row)


def _ensure_visible(stored: StoredResource, access: AccessDecision) -> None:
    """A write must land inside the grant (e.g. patient/Observation.c only in that patient's compartment)."""
    if access.unrestricted:
        return
    if not apply_access(Resource.objects.filter(pk=stored.pk), stored.resource_type, access).exists():
        raise OutsideGrant(f"The access token does not allow writing this {stored.resource_type}.")


def _ensure_row_visible(row: Resource, access: AccessDecision) -> None:
    if access.unrestricted:
        return
    if not apply_access(Resource.objects.filter(pk=row.pk), row.resource_type, access).exists():
        raise ResourceNotFound(f"{row.resource_type}/{row.fhir_id} is not known.")


def _included(rows: list[Resource], query: SearchQuery, access_for) -> list[Resource]:
    if not rows or not (query.includes or query.revincludes):
        return []
    found = include_targets(rows, query.includes, access_for) + revinclude_sources(
        rows, query.revincludes, access_for
    )
    seen = {r.pk for r in rows}
    return [r for r in found if not (r.pk in seen or seen.add(r.pk))]


def _history_entry(version: ResourceVersion) -> HistoryEntry:
    return HistoryEntry(
        version.resource_type,
        version.resource.fhir_id,
        version.version_id,
        version.last_updated,
        version.method,
        version.content,
    )


def _load_batch(batch: list[dict[str, Any]], *, validate: bool) -> int:
    for resource in batch:
        _check_type(resource)
        if not ID_PATTERN.match(str(resource.get("id", ""))):
            raise InvalidResource("Loaded resources must carry a valid id.", expression=["id"])
        if validate:
            validate_resource(resource)
    now = timezone.now()
    with transaction.atomic():
        existing = _existing_rows(batch)
        rows, versions, methods = [], [], []
        for resource in batch:
            key = (resource["resourceType"], resource["id"])
            row = existing.get(key) or Resource(resource_type=key[0], fhir_id=key[1], version_id=0)
            row.version_id += 1
            row.last_updated, row.deleted = now, False
            row.content = _stamped(key[0], key[1], row.version_id, now, resource)
            rows.append(row)
            methods.append(ResourceVersion.Method.UPDATE if row.pk else ResourceVersion.Method.CREATE)
        new_rows = [r for r in rows if r.pk is None]
        old_rows = [r for r in rows if r.pk is not None]
        Resource.objects.bulk_create(new_rows)
        if old_rows:
            Resource.objects.bulk_update(old_rows, ["version_id", "last_updated", "deleted", "content"])
            delete_index_rows([r.pk for r in old_rows])
        for row, method in zip(rows, methods, strict=True):
            versions.append(
                ResourceVersion(
                    resource=row,
                    resource_type=row.resource_type,
                    version_id=row.version_id,
                    last_updated=now,
                    method=method,
                    content=row.content,
                )
            )
        ResourceVersion.objects.bulk_create(versions)
        write_index_rows([(row, extract_index(resource)) for row, resource in zip(rows, batch, strict=True)])
    return len(batch)


def _existing_rows(batch: list[dict[str, Any]]) -> dict[tuple[str, str], Resource]:
    by_type: dict[str, list[str]] = {}
    for resource in batch:
        by_type.setdefault(resource["resourceType"], []).append(resource["id"])
    found: dict[tuple[str, str], Resource] = {}
    for resource_type, ids in by_type.items():
        for row in Resource.objects.filter(resource_type=resource_type, fhir_id__in=ids):
            found[(row.resource_type, row.fhir_id)] = row
    return found
