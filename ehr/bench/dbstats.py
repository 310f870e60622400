"""Provides database facts for the benchmark: PostgreSQL backends and sessions; creating the database."""

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from django.db import connection


@dataclass(frozen=True)
class BackendSnapshot:
    """The client backends connected to this database (other than ours) and the sessions opened so far."""

    pids: frozenset[int]
    sessions: int


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def backend_name() -> str:
    """The database the benchmarks run on, as their reports and log files name it."""
    return "postgresql" if is_postgresql() else "sqlite"


def backend_snapshot() -> BackendSnapshot | None:
    """Who is connected to this database right now (PostgreSQL only; None elsewhere)."""
    if not is_postgresql():
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        pids = frozenset(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        sessions = cursor.fetchone()[0]
    return BackendSnapshot(pids, sessions)


def postgres_database_ensure(database_url: str) -> bool:
    """Create the PostgreSQL database named in the URL when it does not exist; True when it was created."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def explain_analyze(sql_text: str, params: list[object]) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of one query on this connection (PostgreSQL) as text."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql_text, params)
        return "\n".join(row[0] for row in cursor.fetchall())
