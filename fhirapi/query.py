"""Provides the search compiler: a parsed `SearchQuery` plus an access decision -> SQL over the store.

Every predicate is a semi-join (`pk IN (SELECT resource_id FROM <index table> WHERE ...)`) or an anti-join
(`NOT EXISTS`) on the index tables written by fhirapi.store, so that the database starts from whichever index
is most selective (the patient's ReferenceIndex rows for `Observation?patient=X&...`) and never scans
resources in Python. `search_queryset` is the whole result as a Resource queryset; `search_page` and
`search_total` answer one page and the count from the index tables, reading only the page's Resource rows.
Matching rules follow R4 search.html; see fhirapi.search for the parsed forms.
"""

import logging
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from functools import reduce

from django.db.models import Exists, F, Model, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import OrderBy
from django.utils import timezone

from fhirapi.access import AccessDecision
from fhirapi.indexing import TIMELINE_REFERENCE_PARAMS, normalize_string
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
from fhirapi.search import (
    Chain,
    Clause,
    DateQuery,
    Include,
    MissingQuery,
    NumberQuery,
    QuantityQuery,
    ReferenceQuery,
    SearchError,
    SearchQuery,
    SearchValue,
    SortKey,
    StringQuery,
    TokenQuery,
    UriQuery,
    parse_constraints,
)
from fhirapi.searchparams import ParamType, SearchParam

logger = logging.getLogger(__name__)

INDEX_MODELS: dict[ParamType, type[Model]] = {
    ParamType.TOKEN: TokenIndex,
    ParamType.STRING: StringIndex,
    ParamType.DATE: DateIndex,
    ParamType.REFERENCE: ReferenceIndex,
    ParamType.QUANTITY: QuantityIndex,
    ParamType.NUMBER: NumberIndex,
    ParamType.URI: UriIndex,
}
SORT_COLUMNS: dict[ParamType, str] = {
    ParamType.DATE: "low",
    ParamType.STRING: "normalized",
    ParamType.TOKEN: "code",
    ParamType.NUMBER: "value",
    ParamType.QUANTITY: "value",
}
RESOURCE_COLUMNS = {"_id": "fhir_id", "_lastUpdated": "last_updated"}  # common parameters kept on Resource
INDEXED_TEXT_MAX = 255  # StringIndex and TokenIndex keep the first 255 characters
_NOTHING = Q(pk__in=[])


def search_queryset(query: SearchQuery, access: AccessDecision) -> QuerySet[Resource]:
    """Current, non-deleted resources matching every clause and the access decision, in the query's order.

    The order is the sort keys (NULLs last), then the primary key, so that `_offset` paging is stable.
    """
    queryset = Resource.objects.filter(deleted=False)
    if query.resource_type is not None:
        queryset = queryset.filter(resource_type=query.resource_type)
    for clause in query.clauses:
        queryset = queryset.filter(clause_q(query.resource_type, clause))
    queryset = apply_access(queryset, query.resource_type, access)
    annotations, ordering = _ordering(query.sort, "pk")
    return queryset.annotate(**annotations).order_by(*ordering, "pk")


def search_page(query: SearchQuery, access: AccessDecision) -> list[Resource]:
    """The rows `query.offset` to `query.offset + query.count` of `search_queryset(query, access)`.

    When a clause can drive the search, the page's ids are found on the index tables alone and only the page's
    Resource rows are read: slicing search_queryset reads the Resource row of every candidate before sorting,
    about half the work of `Observation?patient=X&category=...&_sort=-date` on PostgreSQL.
    """
    page = _timeline_page(query, access)
    if page is not None:
        return page
    candidates = _indexed_candidates(query, access, ordered=True)
    if candidates is None:
        return list(search_queryset(query, access)[query.offset : query.offset + query.count])
    ids = [row["resource_id"] for row in candidates[query.offset : query.offset + query.count]]
    rows = Resource.objects.filter(deleted=False).in_bulk(ids)
    return [rows[pk] for pk in ids if pk in rows]


def search_total(query: SearchQuery, access: AccessDecision) -> int:
    """The number of resources `search_queryset(query, access)` holds, counted on the index tables if it can."""
    candidates = _indexed_candidates(query, access, ordered=False)
    return (candidates if candidates is not None else search_queryset(query, access)).count()


def _indexed_candidates(query: SearchQuery, access: AccessDecision, *, ordered: bool) -> QuerySet | None:
    """Distinct `resource_id`s (with sort values when `ordered`) from the rows of a driving clause, or None.

    The driver is the first clause that matches index rows; the others narrow its rows (`_narrowing`).
    """
    driver = next((clause for clause in query.clauses if _can_drive(clause)), None)
    if driver is None or query.resource_type is None or not access.allowed:
        return None
    if ordered and any(key.param.name in RESOURCE_COLUMNS for key in query.sort):
        return None
    rows = _clause_rows(query.resource_type, driver).filter(*_narrowing(query, access, driver))
    if not ordered:
        return rows.values("resource_id").distinct()
    annotations, ordering = _ordering(query.sort, "resource_id")
    return rows.values("resource_id").annotate(**annotations).order_by(*ordering, "resource_id").distinct()


def _narrowing(query: SearchQuery, access: AccessDecision, driver: Clause, *, live: bool = True) -> list[Q]:
    """Conditions on a driving clause's index rows: their resource meets every other clause, the grant, is live.

    Each condition is a correlated EXISTS on `resource_id`. Deleted resources keep their index rows, so they
    are left out by an anti-join that an index on Resource(id) WHERE deleted keeps to a probe of a small index
    (`live=False` leaves that to a caller that joins Resource anyway).
    Pass them to one filter() call: each call clones the whole query, a large part of a search's CPU time.
    """
    conditions = [
        clause_q(query.resource_type, c, key="resource_id") for c in query.clauses if c is not driver
    ]
    if not access.unrestricted:
        conditions.append(_access_q(query.resource_type, access, "resource_id"))
    if live:
        conditions.append(~Exists(Resource.objects.filter(pk=OuterRef("resource_id"), deleted=True)))
    return conditions


def _timeline_page(query: SearchQuery, access: AccessDecision) -> list[Resource] | None:
    """The page read in date order from TimelineIndex, or None when the general plan must answer.

    The shape is "a patient's resources, by one date parameter" (`Observation?patient=X&..&_sort=-date`). The
    index is walked from the newest (or oldest) date, every other condition is probed per row and the page's
    Resource rows are joined in the same statement, so the work follows the page, not the patient's record. A
    resource with several dates appears once per date; its first appearance is its greatest (descending) or
    least (ascending) date, the value the general plan sorts by. Resources without a date sort last there and
    are not in this index, so when the dated rows run out before the page is full, the general plan answers.
    """
    if query.resource_type is None or not access.allowed or len(query.sort) != 1 or query.count == 0:
        return None
    key = query.sort[0]
    driver, patient_id = next(((c, p) for c in query.clauses if (p := _timeline_patient(c))), (None, None))
    if key.param.type is not ParamType.DATE or key.param.is_column or driver is None:
        return None
    assert driver.param is not None
    rows = TimelineIndex.objects.filter(
        *_narrowing(query, access, driver, live=False), resource__deleted=False,
        patient_id=patient_id, resource_type=query.resource_type,
        reference_param=driver.param.name, param=key.param.name,
    )  # fmt: skip
    rows = rows.order_by("-low" if key.descending else "low", "resource_id").values_list(
        "resource_id", *(f"resource__{name}" for name in _PAGE_COLUMNS)
    )
    wanted = query.offset + query.count
    limit = wanted
    while True:
        fetched = list(rows[:limit])
        page = list({row[0]: row for row in fetched}.values())  # in order of each resource's first row
        if len(page) >= wanted:
            return [Resource.from_db(rows.db, _PAGE_FIELDS, row) for row in page[query.offset : wanted]]
        if len(fetched) < limit:
            return None
        limit *= 2  # resources with several dates took up rows: read further


_PAGE_COLUMNS = ("resource_type", "fhir_id", "version_id", "last_updated", "deleted", "content")
_PAGE_FIELDS = ("id", *_PAGE_COLUMNS)


def _timeline_patient(clause: Clause) -> str | None:
    """The Patient id a `patient=X` / `subject=Patient/X` clause names, when TimelineIndex can answer it.

    One value, by id (not by URL), resolving to a Patient: exactly the ReferenceIndex rows TimelineIndex copies.
    """
    param = clause.param
    if (
        param is None
        or clause.modifier not in (None, "Patient")
        or param.name not in TIMELINE_REFERENCE_PARAMS
    ):
        return None
    if len(clause.values) != 1 or not isinstance(value := clause.values[0], ReferenceQuery):
        return None
    target_type = value.target_type or (param.targets[0] if len(param.targets) == 1 else None)
    if value.url is not None or not value.target_id or target_type != "Patient":
        return None
    return value.target_id


def _can_drive(clause: Clause) -> bool:
    if clause.chain is not None:
        return True
    assert clause.param is not None
    return not clause.param.is_column and clause.modifier not in ("missing", "not")


def apply_access(
    queryset: QuerySet[Resource], resource_type: str | None, access: AccessDecision
) -> QuerySet[Resource]:
    """Keep what some access filter reaches: its patient's compartment AND its granular constraints."""
    if not access.allowed:
        return queryset.none()
    if access.unrestricted:
        return queryset
    return queryset.filter(_access_q(resource_type, access, "pk"))


def _access_q(resource_type: str | None, access: AccessDecision, key: str) -> Q:
    """The filters OR-ed, each a compartment and constraints AND-ed; `key` names the resource's primary key."""
    reachable = []
    for access_filter in access.filters:
        condition = _constraints_q(resource_type, access_filter.constraints, key)
        if access_filter.patient_id is not None:
            members = CompartmentMembership.objects.filter(patient_id=access_filter.patient_id)
            condition &= _matches(members, key)
        reachable.append(condition)
    return _any(reachable)


def _constraints_q(resource_type: str | None, constraints: Sequence[tuple[str, str]], key: str) -> Q:
    """A granular scope's constraints, AND-ed; one we cannot evaluate fails closed (reaches nothing)."""
    if not constraints:
        return Q()
    try:
        if resource_type is None:
            raise SearchError("granular scope constraints need a resource type", constraints[0][0])
        clauses = parse_constraints(resource_type, constraints)
    except SearchError as error:
        logger.warning("Granular scope constraint %r on %s cannot be evaluated", error.param, resource_type)
        return _NOTHING
    return reduce(operator.and_, (clause_q(resource_type, clause, key=key) for clause in clauses), Q())


def clause_q(resource_type: str | None, clause: Clause, *, key: str = "pk") -> Q:
    """One clause (its values OR-ed) as a condition on Resource, or on index rows with `key="resource_id"`.

    On Resource a match is `pk IN (index rows)`, from which the database may start. On index rows, which a
    driving clause has already narrowed, it is a correlated EXISTS probed per row: PostgreSQL plans both as
    the same semi-join, but SQLite would build each IN list whole (every `vital-signs` token of the table).
    """
    if clause.param is not None and clause.modifier == "missing":
        return _missing_q(resource_type, clause.param, clause.values, key)
    if clause.param is not None and clause.param.is_column:
        return _column_q(clause.param, clause, "" if key == "pk" else "resource__")
    return _matches(_clause_rows(resource_type, clause), key, negated=clause.modifier == "not")


def _matches(rows: QuerySet, key: str, *, negated: bool = False) -> Q:
    """Resources (`key="pk"`) or index rows (`key="resource_id"`) with (`negated`: without) one of `rows`."""
    if negated:  # search.html#modifiers: for `:not`, resources without the parameter match too
        return ~Exists(rows.filter(resource_id=OuterRef(key)))
    if key == "pk":
        return Q(pk__in=rows.values("resource_id"))
    return Q(Exists(rows.filter(resource_id=OuterRef(key))))


def _clause_rows(resource_type: str | None, clause: Clause) -> QuerySet:
    """The index rows matching one of the clause's values (for `:not`, the rows that must not exist)."""
    if clause.chain is not None:
        return _chain_rows(resource_type, clause.chain)
    param = clause.param
    assert param is not None  # only chained clauses have none
    return _rows(resource_type, param, _any(_value_q(param, clause.modifier, v) for v in clause.values))


def _rows(resource_type: str | None, param: SearchParam, *conditions: Q) -> QuerySet:
    model = INDEX_MODELS[param.type]
    return model._default_manager.filter(*conditions, resource_type=resource_type or "", param=param.name)


def _any(conditions: Iterable[Q]) -> Q:
    """OR; no condition matches nothing, and an empty Q (no restriction) matches everything."""
    combined = _NOTHING
    for condition in conditions:
        if not condition:  # Django drops an empty Q from an OR instead of letting it match everything
            return Q()
        combined = condition if combined is _NOTHING else combined | condition
    return combined


def _chain_rows(resource_type: str | None, chain: Chain) -> QuerySet:
    """search.html#chaining: reference rows whose target is a current `target_type` resource matching `inner`.

    The targets are not filtered by access: a chain narrows the searched resources, which are.
    """
    targets = Resource.objects.filter(resource_type=chain.target_type, deleted=False)
    targets = targets.filter(clause_q(chain.target_type, chain.inner))
    return _rows(resource_type, chain.param).filter(
        target_type=chain.target_type, target_id__in=targets.values("fhir_id")
    )


def _missing_q(resource_type: str | None, param: SearchParam, values: Sequence[SearchValue], key: str) -> Q:
    """search.html#missing: `true` = no index row for the parameter, `false` = at least one."""
    wanted = {value.missing for value in values if isinstance(value, MissingQuery)}
    if param.is_column or wanted == {True, False}:  # `_id` and `_lastUpdated` are never missing
        return Q() if False in wanted else _NOTHING
    present = Exists(_rows(resource_type, param, Q(resource_id=OuterRef(key))))
    return ~present if True in wanted else Q(present)


def _column_q(param: SearchParam, clause: Clause, prefix: str) -> Q:
    """`_id` against Resource.fhir_id, `_lastUpdated` against Resource.last_updated (a point in time)."""
    if param.name == "_id":
        ids = [value.code for value in clause.values if isinstance(value, TokenQuery) and value.code]
        matches = Q(**{f"{prefix}fhir_id__in": ids})
        return ~matches if clause.modifier == "not" else matches
    column = f"{prefix}last_updated"
    dates = (value for value in clause.values if isinstance(value, DateQuery))
    return _any(_date_q(query, column, column, nullable=False) for query in dates)


def _value_q(param: SearchParam, modifier: str | None, value: SearchValue) -> Q:
    """One value as a condition on the parameter's index rows."""
    if isinstance(value, TokenQuery):
        return _token_q(value)
    if isinstance(value, StringQuery):
        return _string_q(modifier, value)
    if isinstance(value, DateQuery):
        return _date_q(value, "low", "high", nullable=True)
    if isinstance(value, NumberQuery):
        return _number_q(value.prefix, value.value, value.low, value.high, value.approximate())
    if isinstance(value, QuantityQuery):
        return _quantity_q(value)
    if isinstance(value, ReferenceQuery):
        return _reference_q(value, param.targets[0] if len(param.targets) == 1 else None)
    if isinstance(value, UriQuery):
        return Q(uri=value.uri)
    raise TypeError(f"no match for {value!r} on {param.name}")


def _token_q(value: TokenQuery) -> Q:
    """search.html#token: `code` any system, `|code` no system, `system|code`, `system|` any code."""
    condition = Q()
    if value.code is not None:
        condition &= Q(code=value.code[:INDEXED_TEXT_MAX])
    if value.system is not None:
        condition &= Q(system=value.system[:INDEXED_TEXT_MAX])
    return condition


def _string_q(modifier: str | None, value: StringQuery) -> Q:
    """search.html#string: prefix, ignoring case and accents; `:exact` as written; `:contains` anywhere."""
    normalized = normalize_string(value.text)[:INDEXED_TEXT_MAX]
    if modifier == "exact":
        return Q(normalized=normalized, exact=value.text[:INDEXED_TEXT_MAX])
    if modifier == "contains":
        return Q(normalized__contains=normalized)
    return Q(normalized__startswith=normalized)


def _date_q(query: DateQuery, low: str, high: str, *, nullable: bool) -> Q:
    """search.html#prefix on ranges: the stored [low, high] (NULL = open) against the query's [low, high]."""

    def reaches(field: str, lookup: str, bound: datetime) -> Q:  # an open (NULL) end reaches past any bound
        condition = Q(**{f"{field}__{lookup}": bound})
        return condition | Q(**{f"{field}__isnull": True}) if nullable else condition

    inside = Q(**{f"{low}__gte": query.low, f"{high}__lte": query.high})
    if query.prefix == "ap":  # overlaps the widened range
        near_low, near_high = query.approximate(timezone.now())
        return reaches(low, "lte", near_high) & reaches(high, "gte", near_low)
    return {
        "eq": lambda: inside,
        "ne": lambda: reaches(low, "lt", query.low) | reaches(high, "gt", query.high),
        "gt": lambda: reaches(high, "gt", query.high),
        "lt": lambda: reaches(low, "lt", query.low),
        "ge": lambda: reaches(high, "gt", query.high) | inside,
        "le": lambda: reaches(low, "lt", query.low) | inside,
        "sa": lambda: Q(**{f"{low}__gt": query.high}),
        "eb": lambda: Q(**{f"{high}__lt": query.low}),
    }[query.prefix]()


def _number_q(
    prefix: str, value: Decimal, low: Decimal, high: Decimal, approximate: tuple[Decimal, Decimal]
) -> Q:
    """search.html#number: `eq`/`ne` use the precision range [low, high); the others the exact value."""
    return {
        "eq": lambda: Q(value__gte=low, value__lt=high),
        "ne": lambda: Q(value__lt=low) | Q(value__gte=high),
        "gt": lambda: Q(value__gt=value),
        "lt": lambda: Q(value__lt=value),
        "ge": lambda: Q(value__gte=value),
        "le": lambda: Q(value__lte=value),
        "sa": lambda: Q(value__gte=high),
        "eb": lambda: Q(value__lt=low),
        "ap": lambda: Q(value__gte=approximate[0], value__lte=approximate[1]),
    }[prefix]()


def _quantity_q(value: QuantityQuery) -> Q:
    """search.html#quantity: the number, then `system|code`, or `||code` matching the code or the unit."""
    condition = _number_q(value.prefix, value.value, value.low, value.high, value.approximate())
    if value.system is not None:
        condition &= Q(system=value.system)
        if value.code is not None:
            condition &= Q(code=value.code)
    elif value.code is not None:
        condition &= Q(code=value.code) | Q(unit=value.code)
    return condition


def _reference_q(value: ReferenceQuery, only_target: str | None) -> Q:
    """search.html#reference: by id (any type unless typed), `Type/id`, or an absolute URL.

    A parameter with one target type (`patient`) only indexes references to that type, so naming it is
    equivalent and lets the lookup bind every column of the (param, target_id, target_type) index.
    """
    by_id = _NOTHING
    if value.target_id is not None:
        by_id = Q(target_id=value.target_id)
        target_type = value.target_type or only_target
        if target_type is not None:
            by_id &= Q(target_type=target_type)
    if value.url is not None:
        return Q(url=value.url) | by_id
    return by_id


def _ordering(sort: Sequence[SortKey], outer: str) -> tuple[dict[str, Subquery], list[OrderBy]]:
    """search.html#_sort: each key's least (ascending) or greatest (descending) value, NULLs last.

    Returns the annotations to add and the ordering; `outer` names the resource's primary key.
    """
    annotations: dict[str, Subquery] = {}
    ordering: list[OrderBy] = []
    for position, key in enumerate(sort):
        column = RESOURCE_COLUMNS.get(key.param.name)
        if column is not None:  # never NULL: a plain order lets the database walk the column's index
            ordering.append(F(column).desc() if key.descending else F(column).asc())
            continue
        alias = f"sort_{position}"
        annotations[alias] = _sort_value(key, outer)
        ordering.append(F(alias).desc(nulls_last=True) if key.descending else F(alias).asc(nulls_last=True))
    return annotations, ordering


def _sort_value(key: SortKey, outer: str) -> Subquery:
    """The resource's least or greatest value of the parameter (NULL when it has none)."""
    column = SORT_COLUMNS[key.param.type]
    model = INDEX_MODELS[key.param.type]
    rows = model._default_manager.filter(resource_id=OuterRef(outer), param=key.param.name)
    rows = rows.filter(**{f"{column}__isnull": False})  # an open start (DateIndex.low) sorts as no value
    return Subquery(rows.order_by(f"-{column}" if key.descending else column).values(column)[:1])


def include_targets(
    resources: Sequence[Resource],
    includes: Sequence[Include],
    access_for: Callable[[str], AccessDecision],
    *,
    limit: int | None = None,
) -> list[Resource]:
    """search.html#include: the resources the page's resources reference through the included parameters.

    One level (`:iterate` is applied once, from the page); each target type is filtered by `access_for`; the
    page's own resources and duplicates are left out; ordered by type, then storage order; at most `limit`.
    """
    page = [resource.pk for resource in resources]
    if not page or not includes:
        return []
    rows = ReferenceIndex.objects.filter(resource_id__in=page).exclude(target_type="").exclude(target_id="")
    rows = rows.filter(_any(_include_q(include) for include in includes))
    found: list[Resource] = []
    for target_type in _distinct(rows, "target_type"):
        targets = Resource.objects.filter(
            resource_type=target_type,
            deleted=False,
            fhir_id__in=rows.filter(target_type=target_type).values("target_id"),
        ).exclude(pk__in=page)
        found.extend(_limited(apply_access(targets, target_type, access_for(target_type)), limit, len(found)))
    return found


def revinclude_sources(
    resources: Sequence[Resource],
    revincludes: Sequence[Include],
    access_for: Callable[[str], AccessDecision],
    *,
    limit: int | None = None,
) -> list[Resource]:
    """search.html#revinclude: the resources referencing the page's resources through the named parameters.

    Each source type is filtered by `access_for`; the page's own resources and duplicates are left out;
    ordered by type, then storage order; at most `limit`.
    """
    if not resources or not revincludes:
        return []
    page_ids: dict[str, list[str]] = defaultdict(list)
    for resource in resources:
        page_ids[resource.resource_type].append(resource.fhir_id)
    pointing_at_page = _any(Q(target_type=t, target_id__in=ids) for t, ids in page_ids.items())
    rows = ReferenceIndex.objects.filter(pointing_at_page).filter(
        _any(_include_q(include) for include in revincludes)
    )
    page = [resource.pk for resource in resources]
    found: list[Resource] = []
    for source_type in _distinct(rows, "resource_type"):
        sources = Resource.objects.filter(
            resource_type=source_type,
            deleted=False,
            pk__in=rows.filter(resource_type=source_type).values("resource_id"),
        ).exclude(pk__in=page)
        found.extend(_limited(apply_access(sources, source_type, access_for(source_type)), limit, len(found)))
    return found


def _distinct(rows: QuerySet, column: str) -> list[str]:
    return list(rows.order_by(column).values_list(column, flat=True).distinct())


def _limited(queryset: QuerySet[Resource], limit: int | None, taken: int) -> QuerySet[Resource]:
    queryset = queryset.order_by("pk")
    return queryset if limit is None else queryset[: max(limit - taken, 0)]


def _include_q(include: Include) -> Q:
    """ReferenceIndex rows an `_include` or `_revinclude` names (`*` for any source type or parameter)."""
    condition = Q()
    if include.source_type != "*":
        condition &= Q(resource_type=include.source_type)
    if include.param != "*":
        condition &= Q(param=include.param)
    if include.target_type is not None:
        condition &= Q(target_type=include.target_type)
    return condition
