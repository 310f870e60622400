"""Provides parsing of the history interactions' parameters (`_since`, `_count`, `_offset`)."""

from collections.abc import Sequence
from datetime import datetime

from fhirapi.exceptions import InvalidRequest
from fhirapi.indexing import date_range
from fhirapi.settings import fhirapi_settings


def history_params(params: Sequence[tuple[str, str]]) -> tuple[datetime | None, int, int]:
    values = dict(params)
    since = None
    if values.get("_since"):
        try:
            since = date_range(values["_since"])[0]
        except ValueError as exc:
            raise InvalidRequest(f"_since: {exc}", expression=["_since"]) from exc
    count = _int(values, "_count", fhirapi_settings.DEFAULT_PAGE_SIZE)
    return since, min(count, fhirapi_settings.MAX_PAGE_SIZE), _int(values, "_offset", 0)


def _int(values: dict[str, str], name: str, default: int) -> int:
    raw = values.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise InvalidRequest(f"{name} must be a non-negative integer.", expression=[name])
    return int(raw)
