"""Provides the FHIR search parser: query parameters in, a typed and validated `SearchQuery` out.

Pure module (no Django); fhirapi.query compiles the result to SQL. It follows FHIR R4 search
(https://hl7.org/fhir/R4/search.html, cited below by anchor as `search.html#anchor`):

- the parameter types and their matching rules: #number, #date, #string, #uri, #token, #quantity, #reference;
- the prefixes `eq ne gt lt ge le sa eb ap` (#prefix) over the implicit range of a value's precision;
- the modifiers (#modifiers) `:missing` on every type, `:exact` and `:contains` on strings, `:not` on tokens
  and `:[type]` on references (`:text`, `:above`, `:below`, `:in`, `:not-in`, `:of-type`, `:identifier` are
  not supported);
- AND and OR (#combining): a repeated parameter is AND, a comma inside one value is OR;
  `\\,` `\\|` `\\$` `\\\\` escape those characters (#escaping);
- one level of chaining (#chaining), `_id` and `_lastUpdated` (#all);
- the result parameters `_sort` (#_sort), `_count` (#count), `_total` (#total), `_summary` (#summary),
  `_elements` (#elements), `_include` and `_revinclude` (#include, #revinclude). `_offset` is this server's
  paging cursor; `_format` and `_pretty` belong to the view and are skipped here.

An unknown parameter, or a known one with a modifier we do not support, is ignored and listed in
`SearchQuery.ignored` (lenient, the default) or rejected under `Prefer: handling=strict` (#errors). An invalid
value (a bad date, prefix or number) is always rejected with `SearchError`.
"""

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fhirapi.indexing import date_range, parse_reference
from fhirapi.searchparams import COMMON_PARAMS, ParamType, SearchParam, get_search_param

PREFIXES = frozenset({"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"})  # search.html#prefix
TOTAL_MODES = frozenset({"none", "estimate", "accurate"})  # search.html#total
SUMMARY_MODES = frozenset({"true", "false", "text", "data", "count"})  # search.html#summary
SORTABLE_TYPES = frozenset(
    {ParamType.DATE, ParamType.STRING, ParamType.TOKEN, ParamType.NUMBER, ParamType.QUANTITY}
)
MODIFIERS: dict[ParamType, frozenset[str]] = {  # besides `missing` (every type) and `:[type]` (references)
    ParamType.TOKEN: frozenset({"not"}),
    ParamType.STRING: frozenset({"exact", "contains"}),
}
VIEW_PARAMS = frozenset(
    {"_format", "_pretty"}
)  # search.html#format: content negotiation, handled by the view

# `ap` on a date: 10% of the gap between now and the value (search.html#prefix), but never under a day, so
# that `ap` on a date near today still tolerates clock and timezone slop.
APPROXIMATE_DATE_MIN_MARGIN = timedelta(days=1)
APPROXIMATE_FRACTION = Decimal("0.1")  # `ap` on a number or quantity: within 10% of the value
MAX_NUMBER = Decimal(10) ** 20  # the index tables store decimals of 30 digits with 10 after the point

_DECIMAL = re.compile(r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?")
_ELEMENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*")
_UNESCAPE = re.compile(r"\\([\\,$|])")


class SearchError(ValueError):
    """An invalid search request: rendered as a 400 OperationOutcome naming `param`."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class _Unsupported(Exception):
    """A parameter or modifier we do not support: ignored when lenient, a SearchError when strict."""


# -- values (one per search parameter type) ------------------------------------------------------------------


@dataclass(frozen=True)
class TokenQuery:
    """`code`, `system|code`, `|code` or `system|` (search.html#token)."""

    system: str | None  # None: any system; "": no system
    code: str | None  # None: any code in `system`


@dataclass(frozen=True)
class StringQuery:
    """A string as given; the compiler normalizes it for the default and `:contains` matches."""

    text: str


@dataclass(frozen=True)
class DateQuery:
    """A prefixed date; `low`..`high` (inclusive, aware UTC) is the range its precision implies."""

    prefix: str
    low: datetime
    high: datetime

    def approximate(self, now: datetime) -> tuple[datetime, datetime]:
        """The range `ap` matches: widened by 10% of the gap to `now`, at least one day each side."""
        if now < self.low:
            gap = self.low - now
        elif now > self.high:
            gap = now - self.high
        else:
            gap = timedelta(0)
        margin = max(gap / 10, APPROXIMATE_DATE_MIN_MARGIN)
        return _shift(self.low, -margin), _shift(self.high, margin)


@dataclass(frozen=True)
class NumberQuery:
    """A prefixed number; [`low`, `high`) is the range its precision implies (`100` -> [99.5, 100.5))."""

    prefix: str
    value: Decimal
    low: Decimal
    high: Decimal

    def approximate(self) -> tuple[Decimal, Decimal]:
        """The inclusive range `ap` matches: 10% either side, and at least the precision range."""
        return _approximate(self.value, self.low, self.high)


@dataclass(frozen=True)
class QuantityQuery:
    """`[prefix]number[|system|code]` (search.html#quantity); `5.4||mg` matches the code or the unit `mg`."""

    prefix: str
    value: Decimal
    system: str | None
    code: str | None
    low: Decimal
    high: Decimal

    def approximate(self) -> tuple[Decimal, Decimal]:
        return _approximate(self.value, self.low, self.high)


@dataclass(frozen=True)
class ReferenceQuery:
    """`id`, `Type/id` or an absolute URL (search.html#reference); an id alone matches any target type."""

    target_type: str | None
    target_id: str | None  # None only for a URL that does not end in `Type/id`
    url: str | None  # the absolute URL as given, matched against stored absolute or canonical references


@dataclass(frozen=True)
class UriQuery:
    uri: str


@dataclass(frozen=True)
class MissingQuery:
    """`:missing=true` (no value for the parameter) or `:missing=false` (some value)."""

    missing: bool


SearchValue = (
    TokenQuery
    | StringQuery
    | DateQuery
    | NumberQuery
    | QuantityQuery
    | ReferenceQuery
    | UriQuery
    | MissingQuery
)


# -- the query -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    """`subject:Patient.name=peter`: resources whose `param` points at a `target_type` matching `inner`."""

    param: SearchParam
    target_type: str
    inner: "Clause"


@dataclass(frozen=True)
class Clause:
    """One parameter occurrence: its values are OR-ed. A chained clause has `chain` set and no `param`."""

    param: SearchParam | None
    modifier: str | None
    values: tuple[SearchValue, ...]
    chain: Chain | None = None


@dataclass(frozen=True)
class SortKey:
    param: SearchParam
    descending: bool


@dataclass(frozen=True)
class Include:
    """`Observation:patient`, `MedicationRequest:medication:Medication` or `*` (search.html#include)."""

    source_type: str  # a type or "*"
    param: str  # a reference parameter of source_type or "*"
    target_type: str | None
    iterate: bool


@dataclass(frozen=True)
class SearchQuery:
    resource_type: str | None  # None for a system search
    clauses: tuple[Clause, ...] = ()  # AND-ed
    sort: tuple[SortKey, ...] = ()  # empty: the compiler's stable default order
    count: int = 50
    offset: int = 0
    total: str = "accurate"  # `_total=none` spares the second (count) query
    summary: str | None = None
    elements: tuple[str, ...] = ()
    includes: tuple[Include, ...] = ()
    revincludes: tuple[Include, ...] = ()
    ignored: tuple[str, ...] = ()  # unsupported parameters, or `name=value` items of result parameters


@dataclass
class _Builder:
    """Mutable state while parsing one request."""

    resource_type: str | None
    strict: bool
    count: int
    max_count: int
    clauses: list[Clause] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    offset: int = 0
    total: str = "accurate"
    summary: str | None = None
    elements: list[str] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def skip(self, item: str, error: _Unsupported, param: str) -> None:
        if self.strict:
            raise SearchError(str(error), param) from error
        if item not in self.ignored:
            self.ignored.append(item)

    def build(self) -> SearchQuery:
        return SearchQuery(
            resource_type=self.resource_type,
            clauses=tuple(self.clauses),
            sort=tuple(self.sort),
            count=self.count,
            offset=self.offset,
            total=self.total,
            summary=self.summary,
            elements=tuple(self.elements),
            includes=tuple(self.includes),
            revincludes=tuple(self.revincludes),
            ignored=tuple(self.ignored),
        )


def parse_search(
    resource_type: str | None,
    params: Sequence[tuple[str, str]],
    *,
    strict: bool = False,
    default_count: int = 50,
    max_count: int = 1000,
) -> SearchQuery:
    """Parse a type (or system, when `resource_type` is None) search's query parameters, in request order."""
    builder = _Builder(resource_type, strict, min(default_count, max_count), max_count)
    for key, value in params:
        name = key.partition(".")[0].partition(":")[0]
        if name in VIEW_PARAMS:
            continue
        handler = _RESULT_PARAMS.get(name)
        if handler is not None:
            handler(builder, key, value)
            continue
        try:
            clause = _parse_clause(resource_type, key, value)
        except _Unsupported as error:
            builder.skip(key, error, key)
            continue
        if clause is not None:
            builder.clauses.append(clause)
    return builder.build()


def parse_constraints(resource_type: str, constraints: Sequence[tuple[str, str]]) -> tuple[Clause, ...]:
    """Parse the query of a granular SMART scope (`?category=...`): filter parameters only, strictly."""
    clauses: list[Clause] = []
    for key, value in constraints:
        name = key.partition(".")[0].partition(":")[0]
        if name in _RESULT_PARAMS or name in VIEW_PARAMS:
            raise SearchError(f"{name} is not a filter parameter", key)
        try:
            clause = _parse_clause(resource_type, key, value)
        except _Unsupported as error:
            raise SearchError(str(error), key) from error
        if clause is not None:
            clauses.append(clause)
    return tuple(clauses)


# -- filter parameters ---------------------------------------------------------------------------------------


def _lookup(resource_type: str | None, name: str) -> SearchParam:
    param = COMMON_PARAMS.get(name) if resource_type is None else get_search_param(resource_type, name)
    if param is None:
        raise _Unsupported(f"Unknown search parameter {name!r} for {resource_type or 'a system search'}")
    return param


def _parse_clause(resource_type: str | None, key: str, value: str) -> Clause | None:
    """One `name[:modifier][.chained]=value` pair; None when the value is empty (search.html#combining)."""
    head, dot, chained = key.partition(".")
    name, _, modifier = head.partition(":")
    param = _lookup(resource_type, name)
    if dot:
        return _parse_chain(param, modifier or None, chained, value, key)
    reference_type = _check_modifier(param, modifier or None)
    raw_values = [part for part in _split(value, ",") if part]
    if not raw_values:
        return None
    values = tuple(_parse_value(param, modifier or None, reference_type, raw, key) for raw in raw_values)
    return Clause(param, modifier or None, values)


def _check_modifier(param: SearchParam, modifier: str | None) -> str | None:
    """Reject an unsupported modifier; return the target type a reference's `:[type]` modifier names."""
    if modifier is None or modifier == "missing" or modifier in MODIFIERS.get(param.type, ()):
        return None
    if param.type is ParamType.REFERENCE and _is_target(param, modifier):
        return modifier
    raise _Unsupported(f"Modifier :{modifier} is not supported on {param.name} ({param.type})")


def _is_target(param: SearchParam, type_name: str) -> bool:
    if param.targets:
        return type_name in param.targets
    return type_name[:1].isupper() and type_name.isalpha()


def _parse_chain(
    param: SearchParam, modifier: str | None, chained: str, value: str, key: str
) -> Clause | None:
    """`subject:Patient.name=x` or `patient.identifier=x` (search.html#chaining), one level deep."""
    if param.type is not ParamType.REFERENCE:
        raise _Unsupported(f"{param.name} is not a reference parameter and cannot be chained")
    if "." in chained:
        raise _Unsupported("Only one level of chaining is supported")
    if modifier is not None and not _is_target(param, modifier):
        raise _Unsupported(f"{modifier} is not a target type of {param.name}")
    target_type = modifier or _chain_target(param, chained.partition(":")[0], key)
    inner = _parse_clause(target_type, chained, value)
    if inner is None:
        return None
    return Clause(None, modifier, (), Chain(param, target_type, inner))


def _chain_target(param: SearchParam, inner_name: str, key: str) -> str:
    """The one target type of `param` that has `inner_name`; a type modifier is needed when several do."""
    candidates = [t for t in param.targets if get_search_param(t, inner_name) is not None]
    if not candidates:
        raise _Unsupported(f"No target type of {param.name} has a search parameter {inner_name!r}")
    if len(candidates) > 1:
        raise SearchError(
            f"{param.name} may point to {', '.join(candidates)}: name one ({param.name}:{candidates[0]})",
            key,
        )
    return candidates[0]


def _parse_value(
    param: SearchParam, modifier: str | None, reference_type: str | None, raw: str, key: str
) -> SearchValue:
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise SearchError(f"{key} takes true or false, not {raw!r}", key)
        return MissingQuery(raw == "true")
    if param.type is ParamType.TOKEN:
        return _parse_token(param, raw, key)
    if param.type is ParamType.DATE:
        return _parse_date(raw, key)
    if param.type is ParamType.NUMBER:
        prefix, rest = _split_prefix(raw, key)
        return NumberQuery(prefix, *_parse_decimal(rest, key))
    if param.type is ParamType.QUANTITY:
        return _parse_quantity(raw, key)
    if param.type is ParamType.REFERENCE:
        return _parse_reference(reference_type, raw, key)
    if param.type is ParamType.URI:
        return UriQuery(_unescape(raw))
    return StringQuery(_unescape(raw))


def _parse_token(param: SearchParam, raw: str, key: str) -> TokenQuery:
    if param.is_column:  # `_id`: a logical id, never `system|code`
        return TokenQuery(None, _unescape(raw))
    parts = [_unescape(part) for part in _split(raw, "|")]
    if len(parts) == 1:
        return TokenQuery(None, parts[0])
    if len(parts) > 2 or parts == ["", ""]:
        raise SearchError(f"{key}: a token is code, system|code, |code or system|, not {raw!r}", key)
    return TokenQuery(parts[0], parts[1] or None)


def _parse_date(raw: str, key: str) -> DateQuery:
    prefix, rest = _split_prefix(raw, key)
    try:
        # An unencoded `+` of a timezone offset arrives as a space; nothing else in a date can be one.
        low, high = date_range(rest.replace(" ", "+"))
    except ValueError as error:
        raise SearchError(f"{key}: {raw!r} is not a FHIR date, dateTime or instant", key) from error
    return DateQuery(prefix, low, high)


def _parse_quantity(raw: str, key: str) -> QuantityQuery:
    prefix, rest = _split_prefix(raw, key)
    parts = _split(rest, "|")
    if len(parts) not in (1, 3):
        raise SearchError(f"{key}: a quantity is number or number|system|code, not {raw!r}", key)
    value, low, high = _parse_decimal(parts[0], key)
    system, code = (
        (_unescape(parts[1]) or None, _unescape(parts[2]) or None) if len(parts) == 3 else (None, None)
    )
    return QuantityQuery(prefix, value, system, code, low, high)


def _parse_reference(modifier_type: str | None, raw: str, key: str) -> ReferenceQuery:
    text = _unescape(raw)
    if "/" not in text and ":" not in text:  # a bare id
        return ReferenceQuery(modifier_type, text, None)
    parsed = parse_reference(text)  # the indexer's own reading of Reference.reference
    if parsed is None:
        if not text.startswith("urn:"):
            raise SearchError(f"{key}: {raw!r} is not an id, Type/id or absolute URL", key)
        return ReferenceQuery(modifier_type, None, text)
    target_type, target_id, url = parsed
    if modifier_type is not None and target_type not in ("", modifier_type):
        raise SearchError(f"{key}: {raw!r} is not a {modifier_type} reference", key)
    return ReferenceQuery(target_type or modifier_type, target_id or None, url or None)


def _split_prefix(raw: str, key: str) -> tuple[str, str]:
    if raw[:2].isalpha():
        if raw[:2] not in PREFIXES:
            raise SearchError(f"{key}: unknown prefix {raw[:2]!r} (use {', '.join(sorted(PREFIXES))})", key)
        return raw[:2], raw[2:]
    return "eq", raw


def _parse_decimal(text: str, key: str) -> tuple[Decimal, Decimal, Decimal]:
    """The value and its precision range [low, high): half a unit of the last written digit either side."""
    if not _DECIMAL.fullmatch(text):
        raise SearchError(f"{key}: {text!r} is not a number", key)
    value = Decimal(text)
    if abs(value) >= MAX_NUMBER:
        raise SearchError(f"{key}: {text!r} is out of range", key)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # a finite Decimal
    half = Decimal(5).scaleb(exponent - 1)
    return value, value - half, value + half


def _approximate(value: Decimal, low: Decimal, high: Decimal) -> tuple[Decimal, Decimal]:
    margin = abs(value) * APPROXIMATE_FRACTION
    return min(low, value - margin), max(high, value + margin)


def _shift(moment: datetime, delta: timedelta) -> datetime:
    try:
        return moment + delta
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC) if delta < timedelta(0) else datetime.max.replace(tzinfo=UTC)


def _split(text: str, separator: str) -> list[str]:
    """Split on unescaped `separator`, keeping escapes for `_unescape` (search.html#escaping)."""
    parts: list[str] = []
    current: list[str] = []
    chars: Iterator[str] = iter(text)
    for char in chars:
        if char == "\\":
            current.append(char + next(chars, ""))
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return _UNESCAPE.sub(r"\1", text)


# -- result parameters ---------------------------------------------------------------------------------------


def _parse_int(key: str, value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise SearchError(f"{key} takes a non-negative integer, not {value!r}", key)
    return int(value)


def _handle_count(builder: _Builder, key: str, value: str) -> None:
    """`_count` (search.html#count): 0 asks for the total only; values above the maximum are capped."""
    _no_modifier(key)
    builder.count = min(_parse_int(key, value), builder.max_count)


def _handle_offset(builder: _Builder, key: str, value: str) -> None:
    _no_modifier(key)
    builder.offset = _parse_int(key, value)


def _handle_total(builder: _Builder, key: str, value: str) -> None:
    if value not in TOTAL_MODES:
        raise SearchError(f"_total is one of {', '.join(sorted(TOTAL_MODES))}, not {value!r}", key)
    builder.total = value


def _handle_summary(builder: _Builder, key: str, value: str) -> None:
    if value not in SUMMARY_MODES:
        raise SearchError(f"_summary is one of {', '.join(sorted(SUMMARY_MODES))}, not {value!r}", key)
    builder.summary = value


def _handle_elements(builder: _Builder, key: str, value: str) -> None:
    for name in filter(None, (part.strip() for part in value.split(","))):
        if not _ELEMENT.fullmatch(name):
            raise SearchError(f"_elements: {name!r} is not an element name", key)
        if name not in builder.elements:
            builder.elements.append(name)


def _handle_sort(builder: _Builder, key: str, value: str) -> None:
    """`_sort=a,-b` (search.html#_sort): keys in priority order, `-` for descending.

    A key we cannot sort by is an error even when lenient: results in another order would mislead.
    """
    if key != "_sort":
        raise SearchError(f"{key} is not supported: use _sort=-name for descending", key)
    for item in filter(None, value.split(",")):
        name = item.removeprefix("-")
        try:
            param = _lookup(builder.resource_type, name)
        except _Unsupported as error:
            raise SearchError(f"Cannot sort by {name!r}: {error}", key) from error
        if param.type not in SORTABLE_TYPES:
            raise SearchError(f"Cannot sort by {name!r}, a {param.type} parameter", key)
        builder.sort.append(SortKey(param, item.startswith("-")))


def _handle_include(builder: _Builder, key: str, value: str) -> None:
    """`_include[:iterate]=Source:param[:Target]` or `*` (search.html#include, #revinclude)."""
    name, _, modifier = key.partition(":")
    if modifier not in ("", "iterate", "recurse"):  # `recurse` is the STU3 spelling of `iterate`
        builder.skip(key, _Unsupported(f"{key} is not supported"), key)
        return
    try:
        include = _parse_include(
            builder.resource_type if name == "_include" else None, value, modifier != "", key
        )
    except _Unsupported as error:
        builder.skip(f"{key}={value}", error, key)
        return
    target = builder.includes if name == "_include" else builder.revincludes
    if include not in target:
        target.append(include)


def _parse_include(searched_type: str | None, value: str, iterate: bool, key: str) -> Include:
    if value == "*":
        return Include(searched_type or "*", "*", None, iterate)
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise SearchError(f"{key} is Type:param or Type:param:TargetType, not {value!r}", key)
    source_type, name, target_type = parts[0], parts[1], (parts[2] if len(parts) == 3 else None)
    if searched_type is not None and source_type != searched_type and not iterate:
        raise _Unsupported(f"{key}={value} does not start from the searched type {searched_type}")
    if name != "*":
        param = get_search_param(source_type, name)
        if param is None or param.type is not ParamType.REFERENCE:
            raise _Unsupported(f"{source_type} has no reference search parameter {name!r}")
        if target_type is not None and not _is_target(param, target_type):
            raise _Unsupported(f"{source_type}.{name} does not point to {target_type}")
    return Include(source_type, name, target_type, iterate)


def _no_modifier(key: str) -> None:
    if ":" in key:
        raise SearchError(f"{key.partition(':')[0]} takes no modifier", key)


_RESULT_PARAMS = {
    "_count": _handle_count,
    "_offset": _handle_offset,
    "_total": _handle_total,
    "_summary": _handle_summary,
    "_elements": _handle_elements,
    "_sort": _handle_sort,
    "_include": _handle_include,
    "_revinclude": _handle_include,
}
