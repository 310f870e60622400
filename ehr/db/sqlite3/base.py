"""Provides the project's SQLite backend: Django's, with each statement's placeholders converted once.

Django writes SQL with `%s` placeholders and its SQLite cursor rewrites them to `?` on every execute with a
regular expression (a lookbehind, tried at every character). The authorization server runs the same long
statements on every request (smart.rows: each lists every column of its table), and that rewriting was
about 5 % of the instructions of an EHR launch (docs/benchmarks-smart.md). The conversion depends on the
text alone, so it is kept per statement text, in a bounded cache: the ORM's statements vary (IN lists) and
simply fall out.
Everything else is Django's backend; `ENGINE = "ehr.db.sqlite3"` selects it (settings.py does so for SQLite).
"""

from functools import lru_cache
from typing import Any

from django.db.backends.sqlite3 import base


@lru_cache(maxsize=2048)
def format_to_qmark(query: str) -> str:
    """`%s` placeholders to `?` and `%%` to `%`, as Django's SQLiteCursorWrapper.convert_query does."""
    return base.FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%")


class SQLiteCursorWrapper(base.SQLiteCursorWrapper):
    def convert_query(self, query: str, *, param_names: Any = None) -> str:
        if param_names is None:
            return format_to_qmark(query)
        return super().convert_query(query, param_names=param_names)


class DatabaseWrapper(base.DatabaseWrapper):
    def create_cursor(self, name: Any = None) -> Any:
        return self.connection.cursor(factory=SQLiteCursorWrapper)
