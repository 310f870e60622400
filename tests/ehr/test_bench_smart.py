"""Tests of `manage.py bench_smart`'s pure parts, one short launch round trip through the test client, and
short runs over HTTP under each server the bench can start."""

import base64
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from urllib.parse import parse_qs

import pytest
from django.conf import settings
from django.test import Client

from ehr.bench import smart_cases as sc
from ehr.bench.instructions import callgrind_total
from ehr.bench.report import CaseResult
from ehr.bench.server import SERVERS
from ehr.bench.smart_setup import actors_ensure, launch_creator


def test_pkce_pair_is_s256():
    verifier, challenge = sc.pkce_pair()
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    assert challenge == digest and len(verifier) >= 43


def test_code_from_location():
    assert sc.code_from_location(sc.REDIRECT_URI + "?code=abc&state=s") == "abc"
    with pytest.raises(ValueError):
        sc.code_from_location(sc.REDIRECT_URI + "?error=access_denied")
    with pytest.raises(ValueError):
        sc.code_from_location("https://elsewhere.example/?code=abc")


def test_bodies():
    exchange = parse_qs(sc.exchange_body("c", "v", "app"))
    assert exchange == {"grant_type": ["authorization_code"], "code": ["c"], "redirect_uri": [sc.REDIRECT_URI],
                        "code_verifier": ["v"], "client_id": ["app"]}  # fmt: skip
    assert "client_id" not in parse_qs(sc.refresh_body("r", None))
    assert parse_qs(sc.client_credentials_body("jwt"))["client_assertion"] == ["jwt"]
    assert sc.basic_auth("id", "secret") == "Basic " + base64.b64encode(b"id:secret").decode()


def test_percentile():
    assert sc.percentile([], 50) == 0.0
    assert sc.percentile([3, 1, 2], 50) == 2
    assert sc.percentile(list(range(1, 101)), 99) == 99
    assert sc.percentile([5], 99) == 5


def test_bodies_lua_and_used():
    script = sc.bodies_lua("/tmp/bodies.txt", {"Authorization": "Basic abc="})
    assert "wrk.headers[ [[\nAuthorization]] ] = [[\nBasic abc=]]" in script
    assert "wrk.thread:stop()" in script and "SMART_USED" in script
    assert sc.used_from_output("x\nSMART_USED 42\n") == 42
    assert sc.used_from_output("nothing") is None


def test_bodies_needed():
    assert sc.bodies_needed(100, 5) == 1050
    assert sc.bodies_needed(1, 1) == 200


def test_targets():
    assert sc.launch_target(250, 3.0).passed is True
    line = sc.launch_target(20, 50.0).line()
    assert line.startswith("FAIL") and "ratio 0.10" in line
    ok = CaseResult("confidential", "d", rps=300, p50_ms=1, p90_ms=1, p99_ms=1, requests=900)
    assert sc.confidential_target(ok).passed is True
    failing = CaseResult("confidential", "d", rps=300, p50_ms=1, p90_ms=1, p99_ms=1, requests=900, errors=3)
    assert sc.confidential_target(failing).passed is False
    assert sc.confidential_target(None).passed is None


def test_round_trips_merge():
    first, second = sc.RoundTrips(), sc.RoundTrips()
    for trips, seconds in ((first, 0.010), (second, 0.020)):
        trips.total = [seconds] * 4
        trips.steps = {step: [seconds / 4] * 4 for step in sc.STEPS}
        trips.wall_s = seconds * 4
    merged = sc.round_trips_merge([first, second])
    assert merged["launches"] == 8 and merged["rounds"] == 2
    assert merged["p50_ms"] == pytest.approx(15.0)
    assert merged["launches_per_s"] == pytest.approx(75.0)


@pytest.mark.django_db
def test_launch_round_trip_smoke(settings):
    """Three launches through the test client: every step answers as expected (no timing asserted)."""
    from smart.launch import fhir_base_url

    actors = actors_ensure(fhir_base=fhir_base_url(), token_url="http://testserver/o/token/",
                           secret_key=settings.SECRET_KEY)  # fmt: skip
    browser = Client()
    transport = sc.ClientTransport(browser)
    sc.login(transport, actors.username, actors.password)  # through the EHR's login form, as the bench does
    cookie = ""  # the test client's cookie jar carries the session
    trips = sc.launch_round_trips(transport, actors, cookie, launches=3, create_launch=launch_creator(actors))
    assert len(trips.total) == 3 and all(len(v) == 3 for v in trips.steps.values())
    # each token case's input generation works, and the first body is accepted by the token endpoint
    for case in sc.TOKEN_CASES:
        inputs = sc.token_inputs(case, 1, actors=actors, cookie=cookie, make=lambda: transport,
                                 create_launch=launch_creator(actors), threads=1)  # fmt: skip
        reply = transport.send("POST", "/o/token/", body=inputs.bodies[0],
                               headers={"Content-Type": sc.FORM, **inputs.headers})  # fmt: skip
        assert reply.status == 200, (case, reply.body[:300])


@pytest.mark.django_db
def test_measure_reports_sql_and_cpu_per_case():
    """`bench_smart --measure`: each case's requests run in-process; one line per launch step and per case."""
    from ehr.bench.smart_profile import measure

    report = measure(["launch", "code", "backend"], requests=2)

    for name in ("authorize", "token", "fhir_read", "round trip", "code", "backend"):
        assert any(line.strip().startswith(name) and " SQL " in line for line in report.splitlines()), name


@pytest.fixture(scope="module")
def bench_database(tmp_path_factory):
    """A file SQLite database the bench server processes share (migrated by the first run)."""
    return tmp_path_factory.mktemp("bench") / "bench-smart.sqlite3"


@pytest.mark.parametrize("server", SERVERS)
def test_launch_round_trips_over_http_under_each_server(server, bench_database):
    """`bench_smart` serves ehr.wsgi under the server chosen, and each launch's steps are done: the server
    hands every response back to Django when sent, so the FHIR call is recorded after the response
    (fhirapi.after_response listens to request_finished, which a WSGI server must trigger)."""
    done = subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), "bench_smart", "--server", server,
         "--cases", "launch", "--launches", "4", "--database-url", f"sqlite:///{bench_database}", "--json"],
        capture_output=True, text=True, timeout=300, cwd=settings.BASE_DIR,
        # the project's own settings, as from a shell (not the test settings pytest-django exported); no wrk on
        # the PATH: the launch round trip needs none (only the token cases do)
        env={**{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")},
             "PATH": str(bench_database.parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["server"]["config"].startswith(server)
    assert report["launch"]["launches"] == 4 and report["launch"]["launches_per_s"] > 0

    with sqlite3.connect(bench_database) as db:
        kinds = dict(db.execute("SELECT kind, COUNT(*) FROM smart_launchevent GROUP BY kind").fetchall())
        launches = db.execute("SELECT COUNT(*) FROM smart_launchcontext").fetchone()[0]
        unused = db.execute("SELECT COUNT(*) FROM smart_accesstoken WHERE last_used IS NULL").fetchone()[0]
    # every launch made (20 warm-up + 4 per run) has its whole timeline, the FHIR call included
    assert kinds["fhir-call"] == launches == kinds["token-issued"] > 0
    assert unused == 0  # each token's FHIR read was recorded on it


def test_callgrind_totals_are_read_from_the_totals_line():
    # instrumentation switched on after the start: callgrind writes a summary of 0 above the real totals
    assert callgrind_total("events: Ir\nsummary: 0\ntotals: 391436061\n") == 391436061
    assert callgrind_total("events: Ir\nsummary: 1234\n") == 1234


FAKE_VALGRIND = """#!/usr/bin/env python3
# Runs the program valgrind would run, then writes what callgrind would: a count of 4,200,000 instructions.
import subprocess, sys
args = sys.argv[1:]
first = next(i for i, a in enumerate(args) if not a.startswith("--"))
out = next(a.split("=", 1)[1] for a in args[:first] if a.startswith("--callgrind-out-file="))
code = subprocess.run(args[first:]).returncode
open(out, "w").write("events: Ir\\nsummary: 0\\ntotals: 4200000\\n")
sys.exit(code)
"""


def test_instructions_are_counted_between_the_gates(bench_database, tmp_path):
    """`--measure launch --instructions`: the case runs in a child started under callgrind (here a stand-in
    that runs it and reports 4.2 M instructions); the child waits at the gates for instrumentation to be
    switched on and off, and the count is reported per launch."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "valgrind").write_text(FAKE_VALGRIND)
    (tools / "callgrind_control").write_text("#!/bin/sh\nexit 0\n")
    for tool in tools.iterdir():
        tool.chmod(0o755)
    done = subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), "bench_smart", "--measure", "launch",
         "--instructions", "--requests", "3", "--database-url", f"sqlite:///{bench_database}", "--json"],
        capture_output=True, text=True, timeout=300, cwd=settings.BASE_DIR,
        env={**{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")},
             "PATH": f"{tools}:{os.environ['PATH']}"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (count,) = json.loads(done.stdout)["instructions"]
    assert count == {"case": "launch", "requests": 3, "instructions": 4_200_000, "per_request": 1_400_000}


def test_instructions_need_valgrind(bench_database, tmp_path):
    done = subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), "bench_smart", "--measure", "launch",
         "--instructions", "--database-url", f"sqlite:///{bench_database}"],
        capture_output=True, text=True, timeout=300, cwd=settings.BASE_DIR,
        env={**{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")},
             "PATH": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode != 0
    assert "needs valgrind's callgrind (Debian package valgrind)" in done.stderr
