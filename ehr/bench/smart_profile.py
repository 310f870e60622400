"""Provides `bench_smart --measure` and `--profile`: the authorization server's requests in-process.

Each request goes through Django's test client (the whole middleware stack and URLconf, minus the socket)
against the database the command runs on. `--measure` reports, per case, the SQL statements of one request
and the CPU time per request (this process: the test client, Django and the views; the database server's own
time is not in it); `--profile` adds cProfile's top functions. The launch case is the benchmark's EHR launch
round trip, step by step: launch_create, GET /o/authorize/, POST /o/token/, the first FHIR read.
`gated_run` runs a case in the callgrind child of `--instructions` (ehr.bench.instructions).
"""

import cProfile
import io
import pstats
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import override_settings

from ehr.bench import smart_cases as sc
from ehr.bench.instructions import DONE, GO, OFF, READY, gate_pass
from ehr.bench.smart_setup import actors_ensure, launch_creator
from smart.launch import fhir_base_url

PROFILE_CASES = ("launch", *sc.TOKEN_CASES)


@dataclass
class StepFigures:
    """One request kind: the SQL of one request and the CPU/wall time per request."""

    name: str
    sql: list[str] = field(default_factory=list)
    cpu_ms: float = 0.0
    wall_ms: float = 0.0

    def line(self) -> str:
        return f"{self.name:<14} {len(self.sql):>4} SQL   {self.cpu_ms:>6.2f} ms CPU   {self.wall_ms:>6.2f} ms wall"


@dataclass
class _Harness:
    transport: sc.ClientTransport
    actors: sc.Actors
    cookie: str
    create_launch: Callable[[str], str]


def _harness() -> _Harness:
    transport = sc.ClientTransport(Client())
    actors = actors_ensure(fhir_base=fhir_base_url(), token_url="http://testserver/o/token/",
                           secret_key=settings.SECRET_KEY)  # fmt: skip
    cookie = sc.login(transport, actors.username, actors.password)
    return _Harness(transport, actors, cookie, launch_creator(actors))


def _token_requests(h: _Harness, case: str, count: int) -> Iterator[Callable[[], None]]:
    inputs = sc.token_inputs(case, count, actors=h.actors, cookie=h.cookie, make=lambda: h.transport,
                             create_launch=h.create_launch, threads=1)  # fmt: skip
    headers = {"Content-Type": sc.FORM, **inputs.headers}
    for body in inputs.bodies:
        yield lambda body=body: sc.expect(h.transport.send("POST", "/o/token/", body=body, headers=headers),
                                          200, case)  # fmt: skip


def _launch_steps(h: _Harness) -> list[tuple[str, Callable[[], Any]]]:
    """One launch's four steps; each step's callable feeds the next through `state`."""
    actors, state = h.actors, {}

    def launch() -> None:
        state["launch"] = h.create_launch(actors.public_client_id)

    def authorize() -> None:
        state["code"], state["verifier"] = sc.authorize(
            h.transport, actors, h.cookie, client_id=actors.public_client_id, scope=sc.LAUNCH_SCOPE,
            launch=state["launch"],
        )  # fmt: skip

    def token() -> None:
        body = sc.exchange_body(state["code"], state["verifier"], actors.public_client_id)
        state["answer"] = sc.token(h.transport, body)

    def read() -> None:
        answer = state["answer"]
        reply = h.transport.send("GET", f"/fhir/Patient/{answer['patient']}",
                                 headers={"Authorization": f"Bearer {answer['access_token']}",
                                          "Accept": "application/fhir+json"})  # fmt: skip
        sc.expect(reply, 200, "GET /fhir/Patient/<id>")

    return [("launch", launch), ("authorize", authorize), ("token", token), ("fhir_read", read)]


def case_calls(h: _Harness, case: str, count: int) -> list[Callable[[], Any]]:
    """`count` calls of a case, inputs made: each one whole launch (four steps) or one token request."""
    if case == "launch":
        return [lambda: [step() for _name, step in _launch_steps(h)] for _ in range(count)]
    return list(_token_requests(h, case, count))


def gated_run(case: str, *, requests: int, gate: Path) -> None:
    """The callgrind child of `--instructions` (ehr.bench.instructions): set up, warm up and make the inputs,
    then run the requests between the two gates at which the parent switches instrumentation on and off."""
    with override_settings(DEBUG=False):
        h = _harness()
        for call in case_calls(h, case, 5):
            call()
        calls = case_calls(h, case, requests)
        gate_pass(gate, READY, GO)
        for call in calls:
            call()
        gate_pass(gate, DONE, OFF)


@contextmanager
def statements_recorded() -> Iterator[list[str]]:
    """The SQL text of every statement run meanwhile (CaptureQueriesContext shows a prepared statement's as
    None: Django reads it back from the cursor, which no longer holds it)."""
    recorded: list[str] = []

    def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        recorded.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield recorded


def _measure_token_case(
    h: _Harness, case: str, requests: int, profiler: cProfile.Profile | None
) -> StepFigures:
    calls = _token_requests(h, case, requests + 6)
    for _ in range(5):
        next(calls)()
    figures = StepFigures(case)
    with statements_recorded() as figures.sql:
        next(calls)()
    batch = list(calls)
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for call in batch:
        call()
    if profiler:
        profiler.disable()
    figures.cpu_ms = (time.process_time() - cpu) / len(batch) * 1000
    figures.wall_ms = (time.perf_counter() - wall) / len(batch) * 1000
    return figures


def _measure_launch(h: _Harness, launches: int, profiler: cProfile.Profile | None) -> list[StepFigures]:
    for _ in range(5):
        for _name, step in _launch_steps(h):
            step()
    steps = _launch_steps(h)
    figures = {name: StepFigures(name) for name, _ in steps}
    for name, step in steps:
        with statements_recorded() as figures[name].sql:
            step()
    for _ in range(launches):
        for name, step in _launch_steps(h):
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            step()
            if profiler:
                profiler.disable()
            figures[name].cpu_ms += (time.process_time() - cpu) / launches * 1000
            figures[name].wall_ms += (time.perf_counter() - wall) / launches * 1000
    total = StepFigures("round trip", [s for f in figures.values() for s in f.sql],
                        sum(f.cpu_ms for f in figures.values()), sum(f.wall_ms for f in figures.values()))  # fmt: skip
    return [*figures.values(), total]


def measure(cases: list[str], *, requests: int = 200, profile: bool = False, top: int = 30) -> str:
    """Per case: SQL statements of one request, CPU and wall ms per request; with `profile`, cProfile too."""
    out = io.StringIO()
    with override_settings(DEBUG=False):
        h = _harness()
        for case in cases:
            profiler = cProfile.Profile(time.process_time) if profile else None
            if case == "launch":
                rows = _measure_launch(h, requests, profiler)
                title = "EHR launch round trip (public app, pre-authorized, RS256 id_token), per step"
            else:
                rows = [_measure_token_case(h, case, requests, profiler)]
                title = sc.TOKEN_CASE_LABELS[case]
            out.write(f"\n{title}: {requests} requests, in-process (test client)\n")
            for row in rows:
                out.write(f"  {row.line()}\n")
            if profile:
                for row in rows[:-1] if case == "launch" else rows:
                    out.write(f"  SQL of one {row.name} request:\n")
                    out.writelines(f"    {sql[:160]}\n" for sql in row.sql)
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("tottime").print_stats(top)
                stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()
