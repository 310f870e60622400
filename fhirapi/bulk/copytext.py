r"""Provides `copy_text_lines`: rows of a one-column PostgreSQL `COPY ... TO STDOUT` (text format), unescaped.

COPY's text format (PostgreSQL 15 docs, COPY, "Text Format") ends each row with a newline and escapes, inside
a value, the backslash as `\\`, and backspace, form feed, newline, carriage return, tab and vertical tab as
`\b \f \n \r \t \v` (tab is also the delimiter; a NULL would be `\N`, but `content` is NOT NULL). Every other
byte, UTF-8 included, is sent as stored.

The store writes `content` with `fhirapi.jsontext.dumps`: compact JSON (no whitespace between tokens) whose
strings escape every control character, so a stored text holds no byte below 0x20 and the only escape COPY
adds is the doubled backslash (JSON's `\"`, `\n`, `\u00e9` arrive as `\\"`, `\\n`, `\\u00e9`). That case is
one `bytes.replace` per batch, checked by counting. Text stored by other means with raw control characters is
decoded in full by a slower path, so the output is byte for byte what the portable path writes; an escape that
COPY TO never produces raises `CopyTextError`. No Django here: this is a pure function of bytes.
"""

import re
from collections.abc import Sequence

_ESCAPES = {b"\\": b"\\", b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}
_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)


class CopyTextError(ValueError):
    """The bytes are not one-column COPY text rows."""


def copy_text_lines(rows: Sequence[bytes | memoryview]) -> bytes:
    """The values of `rows` (one COPY text row each, newline included) as lines, unescaped, joined."""
    # A value never holds a raw newline (COPY escapes it), so a row ending in one is one line. Checking each
    # row's last byte costs a fraction of counting the newlines of the joined block.
    if not all(row and row[-1] == 0x0A for row in rows):
        raise CopyTextError("Each COPY row must end in a newline.")
    block = b"".join(rows)
    if b"\\" not in block:  # a memchr: most batches stop here
        return block
    backslashes = block.count(b"\\")
    text = block.replace(b"\\\\", b"\\")
    # replace() pairs backslashes left to right, as COPY's own reader does: if every backslash was in a
    # pair, there was no other escape and `text` is the stored bytes.
    if backslashes == 2 * (len(block) - len(text)):
        return text
    return _ESCAPE.sub(_unescape, block)


def _unescape(match: re.Match[bytes]) -> bytes:
    escaped = match.group(1)
    if escaped not in _ESCAPES:
        raise CopyTextError(f"COPY TO text output has no escape \\{escaped.decode('latin-1')}.")
    return _ESCAPES[escaped]
