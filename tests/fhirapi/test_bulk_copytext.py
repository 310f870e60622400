"""`fhirapi.bulk.copytext`: undoing PostgreSQL COPY's text-format escaping of one-column rows."""

import pytest

from fhirapi.bulk.copytext import CopyTextError, copy_text_lines


@pytest.mark.parametrize(
    ("_case", "rows", "expected"),
    [
        ("no escapes", [b'{"a":1}\n', memoryview(b'{"b":"\xc3\xa9"}\n')], b'{"a":1}\n{"b":"\xc3\xa9"}\n'),
        ("doubled backslashes", [b'{"a":"x\\\\"y\\\\\\\\z"}\n'], b'{"a":"x\\"y\\\\z"}\n'),
        ("every escape COPY TO writes", [b"\\\\\\b\\f\\n\\r\\t\\v.\n"], b"\\\b\f\n\r\t\v.\n"),
        ("a pair before an escaped newline", [b"\\\\\\n\n", b"ok\n"], b"\\\n\nok\n"),
        ("no rows", [], b""),
    ],
)
def test_rows_come_out_as_stored(_case, rows, expected):
    assert copy_text_lines(rows) == expected


@pytest.mark.parametrize(
    ("_case", "rows"),
    [
        ("a row without its newline", [b"{}\n", b"{}"]),
        ("an empty row", [memoryview(b"")]),
        ("an escape COPY TO never writes", [b"\\q\n"]),
        ("NULL", [b"\\N\n"]),
        ("a lone backslash before the row's end", [b"x\\\n"]),
    ],
)
def test_what_copy_does_not_write_is_refused(_case, rows):
    with pytest.raises(CopyTextError):
        copy_text_lines(rows)
