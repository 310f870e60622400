"""Provides fixed SQL over model tables for the authorization server's hot paths, built once per process.

Building a statement through the ORM costs more CPU here than the database spends running it (0.3-0.5 ms a
statement, docs/benchmarks-smart.md), and every launch runs the same dozen statements. `Columns` and `Insert`
build their SQL once from the models' own metadata (table and column names, each field's preparation for the
database and its converters back to Python) and reuse it. On PostgreSQL they are sent with their values
apart (server-side binding), so that with prepared statements on each is planned once per connection, and
`Batch` pipelines a request's writes: one round trip, run by PostgreSQL as one transaction. Elsewhere
(SQLite, in-process and without round trips) a batch runs statement by statement inside a transaction.

Only what the hot paths need: model instances come back as the ORM would build them (`Model.from_db`, with
joined rows cached on their relations as `select_related` does), so the rest of the code cannot tell.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connections, models, transaction
from django.db.models import Field, Model
from django.utils import timezone

Converter = Callable[[Any, Any, Any], Any]


@dataclass(frozen=True)
class SQL:
    """A value given as SQL with its own parameters, e.g. a subquery for a foreign key."""

    text: str
    params: tuple[Any, ...] = ()


def quote(name: str) -> str:
    """A table or column name quoted for both PostgreSQL and SQLite."""
    return '"' + name.replace('"', '""') + '"'


def table(model: type[Model]) -> str:
    return quote(model._meta.db_table)


class Columns:
    """The columns of some models under aliases, as one select list; rows read back into instances.

    `Columns([("t", AccessToken), ("u", User)])` selects every concrete column of both; `read(row)` gives
    `(token, user)`, with None for a model whose primary key came back NULL (an outer join found nothing).
    """

    def __init__(self, tables: Sequence[tuple[str, type[Model]]]) -> None:
        self.tables = tuple(tables)
        self.sql = ", ".join(
            f"{alias}.{quote(field.column)}" for alias, model in self.tables for field in _fields(model)
        )
        # per model: its columns' attribute names and where its primary key is among them
        self._layout = [
            (model, [f.attname for f in _fields(model)], _fields(model).index(model._meta.pk))
            for _alias, model in self.tables
        ]

    def fetch(self, sql: str, params: Sequence[Any], using: str) -> tuple[Model | None, ...] | None:
        """The first row `sql` (which selects `self.sql`) finds, read into instances; None if it finds none."""
        row = fetch_one(sql, params, using)
        return self.read(row, using) if row is not None else None

    def read(self, row: Sequence[Any], using: str) -> tuple[Model | None, ...]:
        values = list(row)
        connection = connections[using]
        for index, converters, expression in _converters(self.tables, using):
            for converter in converters:
                values[index] = converter(values[index], expression, connection)
        instances: list[Model | None] = []
        start = 0
        for model, attnames, pk_index in self._layout:
            chunk = values[start : start + len(attnames)]
            start += len(attnames)
            instances.append(None if chunk[pk_index] is None else model.from_db(using, attnames, chunk))
        return tuple(instances)


def relate(instance: Model, name: str, related: Model | None) -> None:
    """Cache `related` on `instance.<name>` (a forward or reverse one-to-one or a foreign key), as
    select_related does: reading it then runs no query, and a cached None raises DoesNotExist."""
    descriptor = getattr(type(instance), name)
    cached_on = getattr(descriptor, "field", None) or descriptor.related
    cached_on.set_cached_value(instance, related)


class Insert:
    """An INSERT of one row into a model's table with every concrete column but an auto primary key.

    Columns the caller does not give get their field's default (auto_now fields: now), so a new nullable or
    defaulted column needs no change here. Values are prepared by their fields as the ORM does; an `SQL`
    value is inlined with its parameters.
    """

    def __init__(self, model: type[Model], *, returning: str | None = None) -> None:
        self.model = model
        self.fields = [f for f in _fields(model) if not (f.primary_key and _is_auto(f))]
        self._prepared_as = [(f, _preparation(f)) for f in self.fields]
        self.names = {f.attname for f in self.fields} | {f.name for f in self.fields}
        columns = ", ".join(quote(f.column) for f in self.fields)
        self.head = f"INSERT INTO {table(model)} ({columns}) "
        self.tail = f" RETURNING {quote(model._meta.get_field(returning).column)}" if returning else ""

    def statement(
        self, values: dict[str, Any], using: str, *, where: SQL | None = None
    ) -> tuple[str, list[Any]]:
        """The INSERT and its parameters; with `where`, the row is inserted only if that condition holds."""
        unknown = values.keys() - self.names
        if unknown:
            raise TypeError(f"{self.model.__name__} has no column for {sorted(unknown)}")
        connection = connections[using]
        now = now_prepared = None
        holders, params = [], []
        for field, preparation in self._prepared_as:
            if field.attname in values:
                value = values[field.attname]
            elif field.name in values:
                value = values[field.name]
                value = value.pk if isinstance(value, Model) else value
            elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                if now is None:
                    now = timezone.now()
                    now_prepared = connection.ops.adapt_datetimefield_value(now)
                holders.append("%s")
                params.append(now_prepared)
                continue
            else:
                value = field.get_default()
            if isinstance(value, SQL):
                holders.append(value.text)
                params.extend(value.params)
                continue
            holders.append("%s")
            params.append(_db_value(field, preparation, value, connection))
        if where is None:
            return f"{self.head}VALUES ({', '.join(holders)}){self.tail}", params
        sql = f"{self.head}SELECT {', '.join(holders)} WHERE {where.text}{self.tail}"
        return sql, [*params, *where.params]


@dataclass(frozen=True)
class Claim:
    """A row a batch uses up: an authorization code, a refresh token, an EHR launch.

    `condition` selects the row while it is still unclaimed (e.g. `id = %s AND consumed IS NULL`);
    `statement` claims it and returns a row when it did (DELETE or UPDATE ... RETURNING).
    """

    model: type[Model]
    condition: SQL
    statement: SQL

    @property
    def gate(self) -> SQL:
        """The condition a write that depends on the claim is made under."""
        condition = self.condition
        return SQL(f"EXISTS (SELECT 1 FROM {table(self.model)} WHERE {condition.text})", condition.params)


class ClaimLost(Exception):
    """Another request claimed the row first: the batch wrote nothing that depended on it."""


class Batch:
    """Statements sent together: one round trip and one transaction on PostgreSQL, one by one in a
    transaction elsewhere. `run()` returns the rows of each statement (empty for those returning none).

    A batch cannot branch, so writes that must happen only if a row is still unclaimed (a code not yet
    exchanged, a refresh token not yet rotated, a launch not yet used) are made conditional on it: with a
    `claim`, the batch starts by locking that row, the dependent writes take `where=batch.gate`, and it ends
    with the claiming statement. A concurrent batch waits at the lock, then finds the row claimed, writes
    nothing that depended on it, and its `run()` raises ClaimLost. (SQLite needs no lock: its write
    transactions run one at a time.)
    """

    def __init__(self, using: str, *, claim: Claim | None = None) -> None:
        self.using = using
        self.statements: list[tuple[str, list[Any]]] = []
        self.claim = claim
        self.gate = claim.gate if claim is not None else None
        if claim is not None and connections[using].features.has_select_for_update:
            self.add(f"SELECT 1 FROM {table(claim.model)} WHERE {claim.condition.text} FOR UPDATE",
                     claim.condition.params)  # fmt: skip

    def add(self, sql: str, params: Iterable[Any] = ()) -> None:
        self.statements.append((sql, list(params)))

    def insert(self, insert: Insert, values: dict[str, Any], *, where: SQL | None = None) -> None:
        self.add(*insert.statement(values, self.using, where=where))

    def run(self) -> list[list[tuple[Any, ...]]]:
        if self.claim is not None:
            self.add(self.claim.statement.text, self.claim.statement.params)
        results = self._execute()
        if self.claim is not None and not results[-1]:
            raise ClaimLost(self.claim.model.__name__)
        return results

    def _execute(self) -> list[list[tuple[Any, ...]]]:
        if not self.statements:
            return []
        connection = connections[self.using]
        if len(self.statements) == 1:  # a transaction of its own already
            with connection.cursor() as cursor:
                cursor.execute(*self.statements[0])
                return [cursor.fetchall() if cursor.description else []]
        if _pipelines(connection):
            return _run_pipelined(connection, self.statements)
        with transaction.atomic(using=self.using), connection.cursor() as cursor:
            results = []
            for sql, params in self.statements:
                cursor.execute(sql, params)
                results.append(cursor.fetchall() if cursor.description else [])
            return results


def fetch_one(sql: str, params: Sequence[Any], using: str) -> tuple[Any, ...] | None:
    connection = connections[using]
    if _pipelines(connection):
        (cursor,) = _bound_cursors(connection, 1)
        cursor.execute(sql, params)
        return cursor.fetchone()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def prepared(model: type[Model], name: str, value: Any, using: str) -> Any:
    """A value as the model's field sends it to the database, for a parameter of fixed SQL (SQLite keeps
    datetimes and UUIDs as text)."""
    field = model._meta.get_field(name)
    return _db_value(field, _preparation(field), value, connections[using])


# ---------------------------------------------------------------- internals


# Field classes whose preparation for the database (Field.get_db_prep_save) gives back a value of this type
# unchanged: the field's own conversion (str(), int(), bool()) does nothing to it on any backend. Exact classes
# only, as a subclass may prepare values its own way. A datetime field adapts an aware datetime as the backend
# does, skipping its checks for naive values and strings.
_UNCHANGED: dict[type[Field], type] = {
    models.CharField: str,
    models.TextField: str,
    models.URLField: str,
    models.BooleanField: bool,
    models.IntegerField: int,
    models.BigIntegerField: int,
    models.PositiveIntegerField: int,
    models.AutoField: int,
    models.BigAutoField: int,
    models.DateTimeField: datetime,
}


@cache
def _preparation(field: Field) -> type | None:
    """The type of value `field` passes to the database as it is (a foreign key: its target's), or None."""
    if field.many_to_one or field.one_to_one:
        field = field.target_field
    return _UNCHANGED.get(type(field))


def _db_value(field: Field, preparation: type | None, value: Any, connection: Any) -> Any:
    """`field.get_db_prep_save(value, connection)`, without the field's machinery where it changes nothing."""
    if preparation is datetime and type(value) is datetime and value.tzinfo is not None:
        return connection.ops.adapt_datetimefield_value(value)  # get_prep_value gives it back unchanged
    if value is None or type(value) is preparation:
        return value
    return field.get_db_prep_save(value, connection)


@cache
def _fields(model: type[Model]) -> list[Field]:
    return list(model._meta.concrete_fields)


def _is_auto(field: Field) -> bool:
    return field.get_internal_type() in ("AutoField", "BigAutoField", "SmallAutoField")


@cache
def _converters(
    tables: tuple[tuple[str, type[Model]], ...], using: str
) -> list[tuple[int, list[Converter], Any]]:
    """The columns that need converting, with the backend's and the field's converters and the expression
    they expect, as the SQL compiler applies them (e.g. SQLite's datetimes come back as text)."""
    connection = connections[using]
    found = []
    index = 0
    for alias, model in tables:
        for field in _fields(model):
            column = field.get_col(alias)
            converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if converters:
                found.append((index, converters, column))
            index += 1
    return found


def _pipelines(connection: Any) -> bool:
    """PostgreSQL (with a libpq that has pipeline mode): fixed statements go with their values apart from the
    text, so that with prepared statements on (OPTIONS["prepare_threshold"], which Django leaves off for the
    sake of transaction-pooling proxies) each is parsed and planned once per connection instead of on every
    use; and a batch is pipelined, all its statements in one round trip."""
    if connection.vendor != "postgresql":
        return False
    from psycopg import Pipeline

    return Pipeline.is_supported()


def _bound_cursors(connection: Any, count: int) -> list[Any]:
    """Cursors with server-side binding (Django's own psycopg cursor class for it), wrapped as Django wraps
    every cursor (query logging, error translation)."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return [connection._prepare_cursor(ServerBindingCursor(connection.connection)) for _ in range(count)]


def _run_pipelined(connection: Any, statements: list[tuple[str, list[Any]]]) -> list[list[tuple[Any, ...]]]:
    """All statements in one pipeline: one round trip, and (autocommit or not) one transaction, since
    PostgreSQL runs what comes before a pipeline's Sync as one implicit transaction."""
    cursors = _bound_cursors(connection, len(statements))
    with connection.wrap_database_errors, connection.connection.pipeline():
        for cursor, (sql, params) in zip(cursors, statements, strict=True):
            cursor.execute(sql, params)
    return [cursor.fetchall() if cursor.description else [] for cursor in cursors]
