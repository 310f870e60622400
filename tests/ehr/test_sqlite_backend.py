"""The project's SQLite backend: Django's, with each statement's placeholders converted once."""

import pytest
from django.conf import settings
from django.db import connection

from ehr.db.sqlite3.base import format_to_qmark


def test_placeholders_convert_as_djangos_sqlite_backend_converts_them():
    assert format_to_qmark("SELECT %s, '100%%', %%s FROM t WHERE a = %s") == (
        "SELECT ?, '100%', %s FROM t WHERE a = ?"
    )


def test_settings_choose_it_for_sqlite():
    expected = "ehr.db.sqlite3" if connection.vendor == "sqlite" else "django.db.backends.postgresql"
    assert settings.DATABASES["default"]["ENGINE"] == expected


@pytest.mark.django_db
def test_a_statement_run_again_keeps_its_parameters_and_literal_percent_signs():
    with connection.cursor() as cursor:
        for value in (7, 8):  # the second run's conversion comes from the cache (SQLite)
            cursor.execute("SELECT %s, '100%%'", [value])
            assert tuple(cursor.fetchone()) == (value, "100%")
