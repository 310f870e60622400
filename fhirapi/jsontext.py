"""Provides JSON parsing and writing that keeps FHIR decimals exactly as written.

FHIR decimals carry their precision ("1.50" is not "1.5"), so bodies are parsed with `Decimal` for every
non-integer number and written back with the same digits. Reads never come here: they serve stored text.
"""

import json
import re
import secrets
from decimal import Decimal
from typing import Any

_MARK = f"\x00dec{secrets.token_hex(4)}:"
_MARK_TEXT = json.dumps(_MARK)[:-1]  # how the marker appears inside written JSON (opening quote included)
_MARKED = re.compile(re.escape(_MARK_TEXT) + r'([-0-9.eE+]+)"')


class JSONTextError(ValueError):
    """The body is not a JSON document."""


def loads(text: str | bytes) -> Any:
    """Parse JSON, decimals as `Decimal`."""
    try:
        return json.loads(text, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JSONTextError(f"The body is not valid JSON: {exc}") from exc


def dumps(value: Any) -> str:
    """Compact JSON with `Decimal`s written with their own digits."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_mark_decimal)
    if _MARK_TEXT[1:] not in text:
        return text
    return _MARKED.sub(r"\1", text)


def _mark_decimal(value: Any) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("JSON has no representation for NaN or infinity.")
        return _MARK + str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
