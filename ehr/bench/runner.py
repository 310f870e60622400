"""Provides the benchmark's cases and their measurement against a running bench server, plus machine facts."""

import os
import platform
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

import django
from django.db import connection

from ehr.bench.data import BenchTargets, observation_body
from ehr.bench.dbstats import BackendSnapshot, backend_snapshot
from ehr.bench.loadgen import wrk_run
from ehr.bench.report import BARE, ORM, CaseResult, rounds_merge
from ehr.bench.server import BenchServer, probe

FHIR_JSON = "application/fhir+json"
CASE_KEYS = (BARE, ORM, "read", "vitals", "name", "create")


@dataclass(frozen=True)
class Case:
    """One request the load generator repeats, and the status it must answer with."""

    key: str
    label: str
    path: str
    method: str = "GET"
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    expect_status: int = 200


def cases_build(targets: BenchTargets, token: str, keys: Sequence[str] = CASE_KEYS) -> list[Case]:
    """The cases, in measuring order (the create case last: it adds rows the others would then read)."""
    obs = targets.observation_id
    auth = {"Authorization": f"Bearer {token}", "Accept": FHIR_JSON}
    vitals = urlencode(
        {"patient": targets.patient_id, "category": "vital-signs", "_sort": "-date", "_count": "10"}
    )
    every = [
        Case(BARE, "(a) bare view, same bytes", f"/bench/bare/Observation/{obs}"),
        Case(ORM, "(b) ORM view, content by id", f"/bench/orm/Observation/{obs}"),
        Case("read", "FHIR read Observation/<id>", f"/fhir/Observation/{obs}", headers=auth),
        Case("vitals", "Observation?patient&category=vital-signs&_sort=-date&_count=10",
             f"/fhir/Observation?{vitals}", headers=auth),
        Case("name", f"Patient?name={targets.name_prefix}", f"/fhir/Patient?name={targets.name_prefix}",
             headers=auth),
        Case("create", "POST Observation (create)", "/fhir/Observation", method="POST",
             body=observation_body(targets.writer_patient_id),
             headers={**auth, "Content-Type": FHIR_JSON}, expect_status=201),
    ]  # fmt: skip
    return [c for c in every if c.key in keys]


class PreflightError(Exception):
    """A case did not answer as expected before measuring (wrong status or different bytes)."""


def cases_preflight(server: BenchServer, cases: Sequence[Case]) -> None:
    """Each case answers with its status once; (a), (b) and the FHIR read send identical bytes."""
    bodies: dict[str, bytes] = {}
    for case in cases:
        answer = probe(server.url(case.path), method=case.method, body=case.body, headers=case.headers)
        if answer.status != case.expect_status:
            raise PreflightError(
                f"{case.label}: HTTP {answer.status}, expected {case.expect_status}: {answer.body[:300]!r}"
            )
        bodies[case.key] = answer.body
    same = {bodies[k] for k in (BARE, ORM, "read") if k in bodies}
    if len(same) > 1:
        raise PreflightError("The baselines and the FHIR read do not send the same bytes.")


@dataclass
class ConnectionWatch:
    """PostgreSQL client backends of the bench server, before serving and around every measured run."""

    before_server: BackendSnapshot | None = None
    first: BackendSnapshot | None = None
    last: BackendSnapshot | None = None
    sessions_during_runs: int = 0

    def as_dict(self) -> dict[str, object]:
        if self.before_server is None or self.first is None or self.last is None:
            return {"postgresql": False}
        return {
            "postgresql": True,
            "backends_before_server": len(self.before_server.pids),
            "backends_while_serving": len(self.last.pids),
            "same_backends_first_to_last_case": self.first.pids == self.last.pids,
            "sessions_opened_during_measured_runs": self.sessions_during_runs,
        }


def cases_measure(
    server: BenchServer,
    cases: Sequence[Case],
    *,
    wrk: str,
    duration_s: float,
    warmup_s: float,
    connections: int,
    watch: ConnectionWatch,
    prime_path: str,
    rounds: int = 1,
    on_case: Callable[[Case], None] | None = None,
) -> list[CaseResult]:
    """Warm up and then measure each case in turn with one wrk thread; PostgreSQL backends are watched.

    Every worker thread first opens its database connection (a database read at `prime_path` with more
    connections than threads), so that a session opened later means a connection did not persist. With
    `rounds` > 1 the cases are measured round-robin that many times and each figure is the median of its
    rounds, so that a burst of other work on the machine does not land on one case only.
    """
    wrk_run(
        wrk=wrk, url=server.url(prime_path), duration_s=max(2.0, warmup_s), connections=max(connections, 16)
    )
    measured: dict[str, list[CaseResult]] = {case.key: [] for case in cases}
    for _ in range(max(1, rounds)):
        for case in cases:
            if on_case:
                on_case(case)
            measured[case.key].append(_measure(server, case, wrk, duration_s, warmup_s, connections, watch))
    return [rounds_merge(measured[case.key]) for case in cases]


def _measure(
    server: BenchServer, case: Case, wrk: str, duration_s: float, warmup_s: float, connections: int,
    watch: ConnectionWatch,
) -> CaseResult:  # fmt: skip
    run = {"wrk": wrk, "url": server.url(case.path), "connections": connections, "method": case.method,
           "body": case.body, "headers": case.headers}  # fmt: skip
    wrk_run(duration_s=warmup_s, **run)
    before = backend_snapshot()
    result = wrk_run(duration_s=duration_s, **run)
    after = backend_snapshot()
    opened = after.sessions - before.sessions if before and after else None
    if before and after:
        watch.first = watch.first or before
        watch.last = after
        watch.sessions_during_runs += opened or 0
    return CaseResult(
        key=case.key, label=case.label, rps=result.rps, p50_ms=result.p50_ms, p90_ms=result.p90_ms,
        p99_ms=result.p99_ms, requests=result.requests, errors=result.errors, new_db_sessions=opened,
    )  # fmt: skip


def machine_facts() -> dict[str, object]:
    """nproc, CPU model, memory, and the software versions that matter for the figures."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "memory_gib": round(int((_proc_field("/proc/meminfo", "MemTotal") or "0 kB").split()[0]) / 2**20, 1),
        "cpu_idle_before": round(cpu_idle_share(), 2),  # other work on the machine, just before measuring
        "python": platform.python_version(),
        "django": django.get_version(),
        "database": _database_version(),
    }


def cpu_idle_share(seconds: float = 1.0) -> float:
    """The share of all cores' time that was idle over the next `seconds` (1.0 = nothing else running)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as handle:
            ticks = [int(v) for v in handle.readline().split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, total

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except OSError:
        return 1.0
    return (idle1 - idle0) / max(1, total1 - total0)


def _proc_field(path: str, name: str) -> str | None:
    try:
        with open(path) as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        return None
    return None


def _database_version() -> str:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return f"PostgreSQL {cursor.fetchone()[0]}"
    return f"SQLite {sqlite3.sqlite_version}"
