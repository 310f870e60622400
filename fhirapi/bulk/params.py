"""Provides the `$export` kick-off parameters, parsed and validated (FHIR Bulk Data Access IG v2.0.0).

Pure module (no Django). The parameters of export.html#query-parameters arrive as query parameters (GET) or as
a Parameters resource (POST, turned into the same name/value pairs by `parameters_pairs`):

- `_outputFormat`: application/fhir+ndjson (default), application/ndjson or ndjson;
- `_since`: a FHIR instant; resources last updated at or after it;
- `_type`: resource types, comma-separated and/or repeated;
- `_typeFilter`: FHIR search queries `Type?param=value`, comma-separated and/or repeated, parsed with the
  API's own search parser (fhirapi.search); several queries of one type are OR-ed.

`patient`, `includeAssociatedData`, `_elements` and `organizeOutputBy` are not implemented: refused with 400.
Unknown parameters, and search parameters of a `_typeFilter` this server cannot evaluate, are refused too,
unless the client sent `Prefer: handling=lenient`; then they are dropped and reported in the `error` output.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fhirapi.search import SearchError, parse_search
from fhirapi.searchparams import is_supported_type

OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
DEFAULT_OUTPUT_FORMAT = "application/fhir+ndjson"
UNSUPPORTED_PARAMS = frozenset({"patient", "includeAssociatedData", "_elements", "organizeOutputBy"})
# allowPartialManifests: "the server MAY ignore it" (export.html); _format/_pretty: content negotiation.
NOOP_PARAMS = frozenset({"allowPartialManifests", "_format", "_pretty"})
# Result parameters shape a page of a search; an export has no pages, so a _typeFilter may not use them.
RESULT_PARAMS = frozenset(
    {"_count", "_offset", "_sort", "_total", "_summary", "_elements", "_include", "_revinclude", "_contained"}
)

_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
# A comma starts a new query only when a `Type?` follows it; other commas are OR-lists inside a query.
_QUERY_START = re.compile(r",(?=[A-Z][A-Za-z]*\?)")


class ExportParamError(ValueError):
    """A kick-off the server cannot honour: rendered as a 400 OperationOutcome naming `param`."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class TypeFilter:
    """One `_typeFilter` query, keeping only the parameters this server evaluates."""

    resource_type: str
    query: str  # url-encoded parameters, without the leading `Type?`

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)


@dataclass(frozen=True)
class ExportParams:
    output_format: str = DEFAULT_OUTPUT_FORMAT
    since: datetime | None = None
    types: tuple[str, ...] | None = None  # None: every type the export level covers
    type_filters: tuple[TypeFilter, ...] = ()
    dropped: tuple[str, ...] = ()  # what lenient handling left out, for the `error` output


def export_params_parse(pairs: Sequence[tuple[str, str]], *, lenient: bool = False) -> ExportParams:
    """Validate the kick-off parameters; ExportParamError names the first one that cannot be honoured."""
    values: dict[str, list[str]] = {}
    dropped: list[str] = []
    for name, value in pairs:
        if name in UNSUPPORTED_PARAMS:
            raise ExportParamError(f"The {name} parameter is not supported by this server.", name)
        if name in NOOP_PARAMS:
            continue
        if name not in ("_outputFormat", "_since", "_type", "_typeFilter"):
            if not lenient:
                raise ExportParamError(f"Unknown $export parameter {name!r}.", name)
            dropped.append(f"Unknown $export parameter {name!r} was ignored.")
            continue
        values.setdefault(name, []).append(value)
    types = _types(values.get("_type", []))
    filters: list[TypeFilter] = []
    for raw in values.get("_typeFilter", []):
        for text in _QUERY_START.split(raw):
            type_filter, notes = _type_filter(text.strip(), types, lenient=lenient)
            filters.append(type_filter)
            dropped.extend(notes)
    return ExportParams(
        output_format=_output_format(values.get("_outputFormat", [])),
        since=_since(values.get("_since", [])),
        types=types,
        type_filters=tuple(filters),
        dropped=tuple(dropped),
    )


def parameters_pairs(body: Any) -> list[tuple[str, str]]:
    """A Parameters resource (POST kick-off) as name/value pairs; a value[x] of any primitive type."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise ExportParamError("A POST kick-off takes a Parameters resource.", "resourceType")
    pairs: list[tuple[str, str]] = []
    for parameter in body.get("parameter") or []:
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if not isinstance(name, str):
            raise ExportParamError("Each Parameters.parameter needs a name.", "Parameters.parameter.name")
        value = next((v for k, v in parameter.items() if k.startswith("value")), None)
        if isinstance(value, dict):  # valueReference (the `patient` parameter)
            value = value.get("reference", "")
        if value is None or isinstance(value, list | dict):
            raise ExportParamError(f"Parameter {name} needs a primitive value.", name)
        pairs.append((name, str(value)))
    return pairs


def parse_instant(text: str) -> datetime:
    """A FHIR instant (R4 datatypes.html#instant): date, time to the second and a zone are all required."""
    # An unencoded `+` in a query string arrives as a space: put it back rather than refuse the request.
    text = text.strip().replace(" ", "+")
    if not _INSTANT.match(text):
        raise ValueError(f"{text!r} is not a FHIR instant (e.g. 2024-01-01T00:00:00Z).")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _output_format(values: list[str]) -> str:
    if not values:
        return DEFAULT_OUTPUT_FORMAT
    if len(values) > 1 or values[0] not in OUTPUT_FORMATS:
        raise ExportParamError(
            f"_outputFormat must be one of {', '.join(sorted(OUTPUT_FORMATS))}.", "_outputFormat"
        )
    return values[0]


def _since(values: list[str]) -> datetime | None:
    if not values:
        return None
    if len(values) > 1:
        raise ExportParamError("_since may be given once.", "_since")
    try:
        return parse_instant(values[0])
    except ValueError as error:
        raise ExportParamError(f"_since: {error}", "_since") from error


def _types(values: list[str]) -> tuple[str, ...] | None:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    if not names:
        return None
    for name in names:
        if not is_supported_type(name):
            raise ExportParamError(f"_type: this server does not export {name} resources.", "_type")
    return tuple(dict.fromkeys(names))


def _type_filter(text: str, types: tuple[str, ...] | None, *, lenient: bool) -> tuple[TypeFilter, list[str]]:
    resource_type, mark, query = text.partition("?")
    if not mark or not is_supported_type(resource_type):
        message = f"_typeFilter {text!r} must be a query 'Type?param=value' on a supported type."
        raise ExportParamError(message, "_typeFilter")
    if types is not None and resource_type not in types:
        raise ExportParamError(f"_typeFilter names {resource_type}, which is not in _type.", "_typeFilter")
    pairs = parse_qsl(query, keep_blank_values=True)
    unusable = [key for key, _ in pairs if key.partition(":")[0] in RESULT_PARAMS]
    try:
        parsed = parse_search(resource_type, [p for p in pairs if p[0] not in unusable], strict=not lenient)
    except SearchError as error:
        raise ExportParamError(f"_typeFilter {text!r}: {error}", "_typeFilter") from error
    unusable += list(parsed.ignored)
    if unusable and not lenient:
        raise ExportParamError(
            f"_typeFilter {text!r}: {', '.join(unusable)} cannot be used here.", "_typeFilter"
        )
    kept = [(key, value) for key, value in pairs if key not in unusable]
    notes = [f"_typeFilter {text!r}: {key} is not supported and was ignored." for key in unusable]
    return TypeFilter(resource_type, urlencode(kept)), notes
