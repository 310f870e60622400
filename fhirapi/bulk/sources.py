"""Provides `row_source`: where an export reads its rows, PostgreSQL COPY in one snapshot or a portable iterator.

On PostgreSQL (`CopyRowSource`) each type's rows are read with `COPY (<the export's compiled query selecting
content ORDER BY id>) TO STDOUT`, and the bytes go into the files without ever being decoded
(fhirapi.bulk.copytext undoes COPY's escaping). Why not Django's `.iterator()`:

- in autocommit Django declares its server-side cursor WITH HOLD, and PostgreSQL materialises a held cursor's
  whole result before the first row; COPY streams rows as the executor produces them;
- psycopg would decode every row to `str` and the writer encode it back; COPY hands over the stored bytes.

COPY keeps its connection busy until the last row, while the worker must write its heartbeat on the job row
about once a second (that is also how it notices a cancellation: runner._beat). So COPY runs on a second
connection of its own, in one REPEATABLE READ READ ONLY transaction; beats and file records stay on Django's
connection in autocommit and hold no lock between two beats. The export then also reads a single snapshot for
all its types, counts included (the portable path runs one statement per type, each with its own snapshot).
Holding it for the export's duration (seconds per million rows) also keeps vacuum from removing rows
changed meanwhile until the export ends. Beats happen after each batch written, so none happen while
PostgreSQL prepares a first row (a sort, a hash of a large _typeFilter): cancellation waits for it.

A second connection cannot see what its caller has not committed. So inside a transaction (`atomic`: the test
suite's transactions, or a caller exporting rows it just wrote), and on SQLite, `QuerysetRowSource` reads
`values_list("content").iterator()` on Django's own connection. Inside a transaction Django declares the
cursor without HOLD, so on PostgreSQL that streams as well, only slower (rows decoded, then encoded).
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from django.core.exceptions import EmptyResultSet
from django.db import connection, connections
from django.db.models import QuerySet
from psycopg import ClientCursor

from fhirapi.bulk.copytext import copy_text_lines
from fhirapi.bulk.ndjson import NdjsonSplitter
from fhirapi.models import Resource

Tick = Callable[[int], None]  # called with the number of lines written so far, after each batch


class RowSource(Protocol):
    """Counts and writes the rows of export querysets (fhirapi.bulk.runner.export_queryset)."""

    def count(self, rows: QuerySet[Resource]) -> int: ...

    def write(self, rows: QuerySet[Resource], splitter: NdjsonSplitter, *, batch: int, tick: Tick) -> int:
        """Write the rows' content in primary-key order, one line each; returns how many."""
        ...


class QuerysetRowSource:
    """Portable: Django's iterator on its own connection (a server-side cursor on PostgreSQL)."""

    def count(self, rows: QuerySet[Resource]) -> int:
        return rows.count()

    def write(self, rows: QuerySet[Resource], splitter: NdjsonSplitter, *, batch: int, tick: Tick) -> int:
        lines = rows.order_by("pk").values_list("content", flat=True).iterator(chunk_size=batch)
        return splitter.write_all(lines, batch=batch, tick=tick)


class CopyRowSource:
    """PostgreSQL: counts and `COPY ... TO STDOUT` on `cursor`, a connection inside a read-only snapshot."""

    def __init__(self, cursor: ClientCursor) -> None:
        self._cursor = cursor

    def count(self, rows: QuerySet[Resource]) -> int:
        query = _compiled(rows.order_by().values("pk"))
        if query is None:
            return 0
        self._cursor.execute(f"SELECT count(*) FROM ({query[0]}) AS export", query[1])
        found = self._cursor.fetchone()
        assert found is not None
        return int(found[0])

    def write(self, rows: QuerySet[Resource], splitter: NdjsonSplitter, *, batch: int, tick: Tick) -> int:
        query = _compiled(rows.order_by("pk").values_list("content"))
        if query is None:
            return splitter.write_all_bytes((), batch=batch, tick=tick)
        # Client-side binding: COPY takes no bind parameters, so they are merged into the statement.
        with self._cursor.copy(f"COPY ({query[0]}) TO STDOUT", query[1]) as copy:
            # One item per row (psycopg's Copy.read: "an unparsed row"); leaving early cancels the COPY.
            return splitter.write_all_bytes(copy, join=copy_text_lines, batch=batch, tick=tick)


def _compiled(rows: QuerySet) -> tuple[str, tuple[object, ...]] | None:
    """The queryset's SQL and parameters, or None when Django knows it matches nothing (no SQL exists then)."""
    try:
        sql, params = rows.query.sql_with_params()
    except EmptyResultSet:  # e.g. a granular scope that cannot be evaluated fails closed (fhirapi.query)
        return None
    return sql, tuple(params)


@contextmanager
def row_source() -> Iterator[RowSource]:
    """The source for one export run: COPY on a snapshot connection where it can see the data, else portable."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield QuerysetRowSource()
        return
    # A new connection of the same database, not the thread's shared one.
    snapshot = connections.create_connection(connection.alias)
    try:
        snapshot.ensure_connection()
        with ClientCursor(snapshot.connection) as cursor:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield CopyRowSource(cursor)
    finally:
        snapshot.close()  # ends the read-only transaction with the connection
