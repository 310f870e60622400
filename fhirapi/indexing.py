"""Provides the search-index extractor: resource JSON -> typed index values for every registered parameter.

Pure module (stdlib only). Values follow R4 search (https://hl7.org/fhir/R4/search.html): the data type
-> index value mapping of "Search Parameter Types" (token, string, date, reference, quantity, number, uri),
dates as inclusive [low, high] ranges in UTC ("Date Searching"), and Patient compartments from
https://hl7.org/fhir/R4/compartmentdefinition-patient.html via `fhirapi.searchparams.COMPARTMENT_PARAMS`.

Paths use a small FHIRPath subset (see `evaluate_path`). Values that cannot be indexed (an unparseable date,
an unresolvable reference) are skipped, never raised: validation is not this module's job.
"""

import calendar
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, NamedTuple

from fhirapi.searchparams import (
    COMPARTMENT_PARAMS,
    ParamType,
    SearchParam,
    get_search_param,
    search_params_for,
)

# Column sizes in fhirapi.models.
CODE_MAX = 255
STRING_MAX = 255
ID_MAX = 64
TIMELINE_REFERENCE_PARAMS = ("patient", "subject")  # the references fhirapi.models.TimelineIndex files under
URL_MAX = 512
QUANTITY_CODE_MAX = 64
# DecimalField(max_digits=30, decimal_places=10) holds magnitudes below 10**20.
_DECIMAL_LIMIT = Decimal(10) ** 20


@dataclass(frozen=True)
class TokenValue:
    param: str
    system: str
    code: str


@dataclass(frozen=True)
class StringValue:
    param: str
    normalized: str
    exact: str


@dataclass(frozen=True)
class DateValue:
    """An inclusive range in aware UTC; None means unbounded on that side (an open Period)."""

    param: str
    low: datetime | None
    high: datetime | None


@dataclass(frozen=True)
class ReferenceValue:
    """A relative reference (type, id, empty url), an absolute one (all three) or a canonical (url only)."""

    param: str
    target_type: str
    target_id: str
    url: str


@dataclass(frozen=True)
class QuantityValue:
    param: str
    value: Decimal
    system: str
    code: str
    unit: str


@dataclass(frozen=True)
class NumberValue:
    param: str
    value: Decimal


@dataclass(frozen=True)
class UriValue:
    param: str
    uri: str


@dataclass(frozen=True)
class TimelineValue:
    """A date of a resource filed under a patient it references (see fhirapi.models.TimelineIndex)."""

    reference_param: str
    patient_id: str
    param: str
    low: datetime


@dataclass
class IndexEntries:
    """Everything one resource contributes to the search indexes; compartments are Patient ids."""

    tokens: list[TokenValue] = field(default_factory=list)
    strings: list[StringValue] = field(default_factory=list)
    dates: list[DateValue] = field(default_factory=list)
    references: list[ReferenceValue] = field(default_factory=list)
    quantities: list[QuantityValue] = field(default_factory=list)
    numbers: list[NumberValue] = field(default_factory=list)
    uris: list[UriValue] = field(default_factory=list)
    compartments: set[str] = field(default_factory=set)
    timeline: list[TimelineValue] = field(default_factory=list)


def extract_index(resource: dict[str, Any]) -> IndexEntries:
    """Index values of every registered, non-column parameter of the resource's type, without duplicates.

    Call it once the resource has its final `id`: a Patient is in its own compartment.
    """
    resource_type = resource.get("resourceType", "")
    entries = IndexEntries()
    for param in search_params_for(resource_type).values():
        if param.is_column:
            continue
        attribute, extract = _EXTRACTORS[param.type]
        getattr(entries, attribute).extend(extract(param, _evaluate_all(resource, param.paths)))
    for attribute, _ in _EXTRACTORS.values():
        setattr(entries, attribute, list(dict.fromkeys(getattr(entries, attribute))))
    entries.compartments = patient_compartments(resource)
    entries.timeline = timeline_values(entries.references, entries.dates)
    return entries


def timeline_values(references: list[ReferenceValue], dates: list[DateValue]) -> list[TimelineValue]:
    """Every (reference to a Patient through `patient`/`subject`, dated value) pair, without duplicates.

    The references are taken as the ReferenceIndex holds them, so a timeline row exists exactly when a
    `patient=X` (or `subject=Patient/X`) search matches the resource and the resource has a date to sort by.
    """
    patients = [r for r in references if r.param in TIMELINE_REFERENCE_PARAMS and r.target_type == "Patient"]
    pairs = (
        TimelineValue(ref.param, ref.target_id, date.param, date.low)
        for ref in patients
        if ref.target_id
        for date in dates
        if date.low is not None
    )
    return list(dict.fromkeys(pairs))


def patient_compartments(resource: dict[str, Any]) -> set[str]:
    """Ids of the Patients whose compartment holds this resource (relative `Patient/<id>` references only).

    Absolute references are left out: without the server's base URL, `http://elsewhere/Patient/1` cannot be
    told apart from a local patient, and compartment membership grants access.
    """
    resource_type = resource.get("resourceType", "")
    patient_ids: set[str] = set()
    if resource_type == "Patient" and _is_id(resource.get("id")):
        patient_ids.add(resource["id"])
    for name in COMPARTMENT_PARAMS.get(resource_type, ()):
        param = get_search_param(resource_type, name)
        if param is None:
            continue
        for ref in _reference_values(param, _evaluate_all(resource, param.paths)):
            if ref.target_type == "Patient" and ref.target_id and not ref.url:
                patient_ids.add(ref.target_id)
    return patient_ids


# --- FHIRPath subset ---------------------------------------------------------------------------------------


class _Node(NamedTuple):
    """A value reached by a path, with its FHIR type when known (from a choice suffix or the element name)."""

    value: Any
    type: str | None


# The R4 data types a choice element ([x]) may take.
# fmt: off
_PRIMITIVE_TYPES = (
    "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id", "instant", "integer",
    "markdown", "oid", "positiveInt", "string", "time", "unsignedInt", "uri", "url", "uuid",
)
_COMPLEX_TYPES = (
    "Address", "Age", "Annotation", "Attachment", "CodeableConcept", "Coding", "ContactPoint", "Count",
    "Distance", "Duration", "HumanName", "Identifier", "Money", "Period", "Quantity", "Range", "Ratio",
    "Reference", "SampledData", "Signature", "Timing", "ContactDetail", "Contributor", "DataRequirement",
    "Expression", "ParameterDefinition", "RelatedArtifact", "TriggerDefinition", "UsageContext", "Dosage",
    "Meta",
)
# fmt: on
# Suffix of a choice element's JSON key -> FHIR type name, e.g. "DateTime" -> "dateTime" (effectiveDateTime).
_CHOICE_SUFFIXES = {name[0].upper() + name[1:]: name for name in (*_PRIMITIVE_TYPES, *_COMPLEX_TYPES)}
# Element names whose type is fixed throughout R4 and matters for extraction (Identifier vs ContactPoint).
_ELEMENT_TYPES = {
    "identifier": "Identifier",
    "masterIdentifier": "Identifier",
    "telecom": "ContactPoint",
}

_CHILD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WHERE = re.compile(r"where\(\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*'([^']*)'\s*\)")
_OF_TYPE = re.compile(r"(?:ofType|as)\(\s*([A-Za-z][A-Za-z0-9]*)\s*\)")


@dataclass(frozen=True)
class _Step:
    kind: str  # "child", "where" or "type"
    name: str  # element name, filtered field or type name
    literal: str = ""  # the value a `where` filter compares with


def evaluate_path(resource: dict[str, Any], path: str) -> list[Any]:
    """The values a path reaches, arrays flattened at every step (empty when it names another type).

    The subset: `Type.element.element...` where the first name is the resource type or `Resource`; a choice
    element named without [x] (`Observation.value`) matches every `value<Type>` key present; `.ofType(T)` or
    `.as(T)` keeps the choice values of type T; `.where(field='literal')` keeps objects whose field equals it.
    Raises ValueError for a path outside the subset.
    """
    return [node.value for node in _evaluate(resource, path)]


def _evaluate_all(resource: dict[str, Any], paths: Iterable[str]) -> list[_Node]:
    return [node for path in paths for node in _evaluate(resource, path)]


def _evaluate(resource: dict[str, Any], path: str) -> list[_Node]:
    root, *steps = _parse_path(path)
    resource_type = resource.get("resourceType")
    if root.kind != "child" or root.name not in (resource_type, "Resource", "DomainResource"):
        return []
    nodes = [_Node(resource, resource_type)]
    for step in steps:
        nodes = _apply(step, nodes)
    return nodes


def _apply(step: _Step, nodes: list[_Node]) -> list[_Node]:
    if step.kind == "child":
        return [
            child
            for node in nodes
            if isinstance(node.value, dict)
            for child in _children(node.value, step.name)
        ]
    if step.kind == "where":
        return [
            node
            for node in nodes
            if isinstance(node.value, dict) and str(node.value.get(step.name, "")) == step.literal
        ]
    return [node for node in nodes if node.type == step.name]


def _children(element: dict[str, Any], name: str) -> list[_Node]:
    if name in element:
        return _flatten(element[name], _ELEMENT_TYPES.get(name))
    children: list[_Node] = []
    for key, value in element.items():
        if key.startswith(name) and (choice_type := _CHOICE_SUFFIXES.get(key[len(name) :])):
            children.extend(_flatten(value, choice_type))
    return children


def _flatten(value: Any, type_: str | None) -> list[_Node]:
    items = value if isinstance(value, list) else [value]
    return [_Node(item, type_) for item in items if item is not None]


@lru_cache(maxsize=2048)
def _parse_path(path: str) -> tuple[_Step, ...]:
    return tuple(_parse_step(text, path) for text in _split_path(path))


def _parse_step(text: str, path: str) -> _Step:
    if _CHILD.fullmatch(text):
        return _Step("child", text)
    if match := _WHERE.fullmatch(text):
        return _Step("where", match[1], match[2])
    if match := _OF_TYPE.fullmatch(text):
        return _Step("type", match[1])
    raise ValueError(f"unsupported step {text!r} in search path {path!r}")


def _split_path(path: str) -> list[str]:
    """Split on the dots outside parentheses and quotes (`where(url='http://x.org')` stays one step)."""
    steps: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in path:
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        if char == "." and depth == 0 and not quoted:
            steps.append("".join(current))
            current = []
        else:
            current.append(char)
    steps.append("".join(current))
    return steps


# --- Value extraction by parameter type --------------------------------------------------------------------


def _token_values(param: SearchParam, nodes: list[_Node]) -> list[TokenValue]:
    return [
        TokenValue(param.name, system[:CODE_MAX], code[:CODE_MAX])
        for node in nodes
        for system, code in _token_pairs(node)
        if code
    ]


def _token_pairs(node: _Node) -> list[tuple[str, str]]:
    """(system, code) pairs: Coding, CodeableConcept, Identifier, ContactPoint, code/string, boolean."""
    value, type_ = node
    if isinstance(value, bool):
        return [("", "true" if value else "false")]
    if isinstance(value, str):
        return [("", value)]
    if not isinstance(value, dict):
        return []
    if type_ == "ContactPoint":
        return [("", _text(value.get("value")))]
    if type_ == "CodeableConcept" or "coding" in value:
        return [_system_and(coding, "code") for coding in _dicts(value.get("coding"))]
    if type_ == "Identifier" or ("value" in value and "code" not in value):
        return [_system_and(value, "value")]
    if type_ in (None, "Coding"):
        return [_system_and(value, "code")]
    return []


def _system_and(element: dict[str, Any], key: str) -> tuple[str, str]:
    return _text(element.get("system")), _text(element.get(key))


_STRING_TYPES = (None, "string", "markdown")
# HumanName and Address parts, matched by the `name` and `address` parameters ("any of the string fields").
_STRING_PARTS = (
    *("family", "given", "prefix", "suffix", "text"),
    *("line", "city", "district", "state", "postalCode", "country"),
)


def _string_values(param: SearchParam, nodes: list[_Node]) -> list[StringValue]:
    values = []
    for text in (text for node in nodes for text in _strings(node)):
        normalized = normalize_string(text)
        if normalized:
            values.append(StringValue(param.name, normalized[:STRING_MAX], text[:STRING_MAX]))
    return values


def _strings(node: _Node) -> list[str]:
    value, type_ = node
    if isinstance(value, str):
        return [value] if type_ in _STRING_TYPES else []
    if not isinstance(value, dict) or type_ not in (None, "HumanName", "Address"):
        return []
    parts = (value.get(key) for key in _STRING_PARTS)
    return [
        text
        for part in parts
        for text in (part if isinstance(part, list) else [part])
        if isinstance(text, str)
    ]


_DATE_TYPES = (None, "date", "dateTime", "instant")


def _date_values(param: SearchParam, nodes: list[_Node]) -> list[DateValue]:
    return [DateValue(param.name, low, high) for node in nodes for low, high in _date_bounds(node)]


def _date_bounds(node: _Node) -> list[tuple[datetime | None, datetime | None]]:
    """Ranges of a date/dateTime/instant, a Period (open ends are None) or a Timing's events; others: none."""
    value, type_ = node
    try:
        if isinstance(value, str):
            return [date_range(value)] if type_ in _DATE_TYPES else []
        if not isinstance(value, dict):
            return []
        if type_ == "Period" or (type_ is None and ("start" in value or "end" in value)):
            return _period_bounds(value)
        if type_ == "Timing" or (type_ is None and "event" in value):
            return [date_range(event) for event in _strings_in(value.get("event"))]
    except ValueError:
        return []
    return []


def _period_bounds(period: dict[str, Any]) -> list[tuple[datetime | None, datetime | None]]:
    start, end = period.get("start"), period.get("end")
    low = date_range(start)[0] if isinstance(start, str) else None
    high = date_range(end)[1] if isinstance(end, str) else None
    return [] if low is None and high is None else [(low, high)]


def _reference_values(param: SearchParam, nodes: list[_Node]) -> list[ReferenceValue]:
    values = []
    for parsed in (_reference_parts(value) for value, _ in nodes):
        if parsed is None:
            continue
        target_type, target_id, url = parsed
        if param.targets and target_type and target_type not in param.targets:
            continue
        values.append(ReferenceValue(param.name, target_type[:ID_MAX], target_id[:ID_MAX], url[:URL_MAX]))
    return values


def _reference_parts(value: Any) -> tuple[str, str, str] | None:
    """A Reference's (type, id, url); a canonical or uri string is matched by its URL only."""
    if isinstance(value, str):
        return ("", "", value) if value else None
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        return parse_reference(value["reference"])
    return None


_QUANTITY_TYPES = (
    None,
    "Quantity",
    "SimpleQuantity",
    "Age",
    "Duration",
    "Distance",
    "Count",
    "MoneyQuantity",
)


def _quantity_values(param: SearchParam, nodes: list[_Node]) -> list[QuantityValue]:
    quantities = (_quantity(param, value) for value, type_ in nodes if type_ in _QUANTITY_TYPES)
    return [quantity for quantity in quantities if quantity is not None]


def _quantity(param: SearchParam, value: Any) -> QuantityValue | None:
    number = _decimal(value.get("value")) if isinstance(value, dict) else None
    if number is None:
        return None
    system = _text(value.get("system"))[:CODE_MAX]
    code = _text(value.get("code"))[:QUANTITY_CODE_MAX]
    return QuantityValue(param.name, number, system, code, _text(value.get("unit"))[:QUANTITY_CODE_MAX])


def _number_values(param: SearchParam, nodes: list[_Node]) -> list[NumberValue]:
    numbers = (_decimal(value) for value, _ in nodes)
    return [NumberValue(param.name, number) for number in numbers if number is not None]


def _uri_values(param: SearchParam, nodes: list[_Node]) -> list[UriValue]:
    return [UriValue(param.name, value[:URL_MAX]) for value, _ in nodes if isinstance(value, str) and value]


_EXTRACTORS: dict[ParamType, tuple[str, Callable[[SearchParam, list[_Node]], list[Any]]]] = {
    ParamType.TOKEN: ("tokens", _token_values),
    ParamType.STRING: ("strings", _string_values),
    ParamType.DATE: ("dates", _date_values),
    ParamType.REFERENCE: ("references", _reference_values),
    ParamType.QUANTITY: ("quantities", _quantity_values),
    ParamType.NUMBER: ("numbers", _number_values),
    ParamType.URI: ("uris", _uri_values),
}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dicts(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


def _strings_in(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, str)]


def _decimal(value: Any) -> Decimal | None:
    """A JSON number (int, float or Decimal, never bool) as a Decimal that fits the index columns."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and abs(number) < _DECIMAL_LIMIT else None


# --- Strings, dates, references ----------------------------------------------------------------------------


def normalize_string(value: str) -> str:
    """FHIR default string matching form: case- and accent-insensitive, whitespace collapsed.

    The search parser must normalize query values the same way; `name=ELOÏSE` then matches `Éloïse` by prefix.
    """
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(stripped.split())


_DATE_RE = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_END_OF_SECOND = 999_999


def date_range(value: str) -> tuple[datetime, datetime]:
    """The inclusive [low, high] range in aware UTC that a FHIR date, dateTime or instant covers.

    Precision sets the width: "2020" covers the whole year, "2020-03-04T10:15" one minute, "...:30.25" ten
    milliseconds. A date without a time, and (leniently) a time without an offset, are taken as UTC.
    Raises ValueError for anything else.
    """
    match = _DATE_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not a FHIR date, dateTime or instant: {value!r}")
    low, high = _naive_bounds(match)
    offset = _offset(match["tz"])
    try:
        return low.replace(tzinfo=offset).astimezone(UTC), high.replace(tzinfo=offset).astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"date out of range: {value!r}") from exc


def _naive_bounds(match: re.Match[str]) -> tuple[datetime, datetime]:
    year = int(match["year"])
    if match["month"] is None:
        return datetime(year, 1, 1), datetime(year, 12, 31, 23, 59, 59, _END_OF_SECOND)
    month = int(match["month"])
    if match["day"] is None:
        first = datetime(year, month, 1)
        last_day = calendar.monthrange(year, month)[1]
        return first, datetime(year, month, last_day, 23, 59, 59, _END_OF_SECOND)
    day = datetime(year, month, int(match["day"]))
    if match["hour"] is None:
        return day, day.replace(hour=23, minute=59, second=59, microsecond=_END_OF_SECOND)
    return _time_bounds(day, match)


def _time_bounds(day: datetime, match: re.Match[str]) -> tuple[datetime, datetime]:
    minute = day.replace(hour=int(match["hour"]), minute=int(match["minute"]))
    if match["second"] is None:
        return minute, minute.replace(second=59, microsecond=_END_OF_SECOND)
    second = minute.replace(second=int(match["second"]))
    fraction = match["fraction"]
    if fraction is None:
        return second, second.replace(microsecond=_END_OF_SECOND)
    digits = fraction[:6]
    low = second.replace(microsecond=int(digits.ljust(6, "0")))
    return low, low + timedelta(microseconds=10 ** (6 - len(digits)) - 1)


def _offset(text: str | None) -> timezone:
    if text is None or text == "Z":
        return UTC
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(f"not a UTC offset: {text!r}")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_RESOURCE_URL = re.compile(
    r"(?P<base>.*/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")


def parse_reference(reference: str) -> tuple[str, str, str] | None:
    """Split a Reference.reference into (type, id, url).

    `Patient/123` and `Patient/123/_history/2` give ("Patient", "123", ""); an absolute URL to a resource
    gives its type, id and the URL without `_history`; another absolute URL or a canonical with `|version`
    gives ("", "", url). Contained (`#x`), `urn:uuid:`/`urn:oid:` and malformed references give None.
    """
    if not isinstance(reference, str) or not reference or reference.startswith("#"):
        return None
    absolute = _ABSOLUTE.fullmatch(reference) is not None
    if absolute and "|" in reference:
        return "", "", reference
    match = _RESOURCE_URL.fullmatch(reference)
    if match is None:
        return ("", "", reference) if absolute else None
    if match["base"] and not absolute:
        return None
    url = f"{match['base']}{match['type']}/{match['id']}" if absolute else ""
    return match["type"], match["id"], url


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None
