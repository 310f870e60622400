"""Provides `bench --profile CASE`: one case's requests in-process under cProfile, with their SQL and CPU time.

The requests go through the full WSGI handler (middleware, URLconf of the bench server, views), so the
profile shows the same code path the server runs, minus the socket. Times are CPU time of this process: the
database server's own time is not in them (see `--explain` for that side).
"""

import cProfile
import io
import pstats
import sys
import time
from urllib.parse import urlsplit

from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, reset_queries
from django.test.utils import override_settings

from ehr.bench.runner import Case


def _environ(case: Case) -> dict[str, object]:
    url = urlsplit(case.path)
    body = (case.body or "").encode()
    environ: dict[str, object] = {
        "REQUEST_METHOD": case.method, "PATH_INFO": url.path, "QUERY_STRING": url.query,
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "CONTENT_LENGTH": str(len(body)),
    }  # fmt: skip
    for name, value in case.headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    return environ


def _request(handler: WSGIHandler, case: Case) -> None:
    statuses: list[str] = []
    b"".join(handler(_environ(case), lambda status, headers, *exc: statuses.append(status)))  # type: ignore[arg-type]
    if not statuses[0].startswith(str(case.expect_status)):
        raise RuntimeError(f"{case.label}: {statuses[0]}")


def profile_case(case: Case, *, requests: int = 200, top: int = 30) -> str:
    """CPU ms per request, the SQL of one request, and the top functions by cumulative and by own CPU time."""
    with override_settings(ROOT_URLCONF="ehr.bench.urls", DEBUG=False):
        handler = WSGIHandler()
        for _ in range(10):
            _request(handler, case)
        started = time.process_time()
        for _ in range(requests):
            _request(handler, case)
        cpu_ms = (time.process_time() - started) / requests * 1000
        connection.force_debug_cursor = True
        reset_queries()
        _request(handler, case)
        queries = list(connection.queries)
        connection.force_debug_cursor = False
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(requests):
            _request(handler, case)
        profiler.disable()
    out = io.StringIO()
    out.write(f"{case.label}: {cpu_ms:.2f} ms CPU per request (this process), {len(queries)} SQL queries:\n")
    for query in queries:
        out.write(f"  {query['time']}s  {query['sql'][:300]}\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    out.write("The same, by own time (where the CPU goes, not who called it):\n")
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()
