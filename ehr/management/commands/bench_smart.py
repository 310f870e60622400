"""`manage.py bench_smart`: benchmark the SMART authorization server over HTTP (granian by default).

Serves the app as `manage.py bench` does (ehr.bench.server: ehr.wsgi under granian, or gunicorn with
`--server gunicorn`, with the bench settings, DEBUG off, a random SECRET_KEY, the project's persistent
connections), with FHIR_BASE_URL set to the server's own port so that `iss`, `aud` and the issuer match.
Measures (1) sequential EHR launch round trips of a pre-authorized public app (launch, /authorize, /token,
first FHIR read) and (2) the token endpoint with wrk: code exchange, refresh, client_credentials with RS384
assertions, and a client_secret_basic client; with each, the server processes' own CPU per launch or request.
Each token request needs unique input, so the bodies are generated just before each run and read by wrk's
Lua script one per request. `--measure CASES` instead reports each case's SQL statements and CPU time per request
in-process, and `--profile CASE` adds cProfile's hot spots (ehr.bench.smart_profile); with `--instructions`,
each case's instructions per request are counted under valgrind's callgrind (ehr.bench.instructions).
"""

import argparse
import dataclasses
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ehr.bench import smart_cases as sc
from ehr.bench.dbstats import backend_name, is_postgresql, postgres_database_ensure
from ehr.bench.instructions import InstructionsUnavailable, callgrind_tools, instructions_count
from ehr.bench.loadgen import WrkUnavailable, wrk_ensure
from ehr.bench.report import CaseResult, rounds_merge
from ehr.bench.runner import cpu_idle_share, machine_facts
from ehr.bench.server import (
    BenchServer,
    ServerConfig,
    ServerError,
    add_server_arguments,
    log_tail,
    server_config,
)
from ehr.bench.smart_profile import PROFILE_CASES, gated_run, measure
from ehr.bench.smart_setup import actors_ensure, launch_creator

CASES = ("launch", *sc.TOKEN_CASES)
SHARED_CORES_NOTE = (
    "client and server share this machine's {nproc} cores: the launch client (Python, sequential), wrk (1 "
    "thread) and the input generation run beside the server, so every figure includes the client's CPU use."
)


class SmartBenchServer(BenchServer):
    """The bench server with FHIR_BASE_URL on its own port and a known random SECRET_KEY."""

    def __init__(self, *, secret_key: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.secret_key = secret_key

    @property
    def fhir_base(self) -> str:
        return self.url("/fhir")

    def environment(self) -> dict[str, str]:
        return {**super().environment(), "FHIR_BASE_URL": self.fhir_base, "SECRET_KEY": self.secret_key}


def default_database_url() -> str:
    return f"sqlite:///{Path(settings.VAR_DIR) / 'bench-smart.sqlite3'}"


class Command(BaseCommand):
    help = "Benchmark the SMART authorization server (launch round trip, token endpoint) over HTTP."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database-url", help="Database (default: var/bench-smart.sqlite3).")
        parser.add_argument("--duration", type=float, default=5.0, help="Seconds per token case (default 5).")
        parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8).")
        # granian: 12-22 % less server CPU per launch than gunicorn's gthread workers, and one thread per
        # worker: on two cores it beat two in most alternating runs (docs/benchmarks-smart.md); the FHIR
        # bench keeps its own defaults
        add_server_arguments(parser, server="granian", threads=1)
        parser.add_argument("--launches", type=int, default=300, help="Sequential launches (default 300).")
        parser.add_argument("--rounds", type=int, default=1, help="Repeat everything; report medians.")
        parser.add_argument("--cases", default=",".join(CASES), help=f"Subset of {','.join(CASES)}.")
        parser.add_argument("--gen-threads", type=int, default=4, help="Connections generating inputs.")
        parser.add_argument(
            "--profile",
            choices=PROFILE_CASES,
            help="cProfile one case in-process (with --measure's figures).",
        )
        parser.add_argument(
            "--measure",
            metavar="CASES",
            help=f"In-process SQL and CPU per request of a subset of {','.join(PROFILE_CASES)}.",
        )
        parser.add_argument(
            "--requests", type=int, default=200, help="Requests (launches) for --measure/--profile."
        )
        parser.add_argument(
            "--instructions",
            action="store_true",
            help="With --measure: instructions per request, counted by valgrind's callgrind (steady on a "
            "noisy machine; about a minute per case).",
        )
        parser.add_argument("--instructions-child", choices=PROFILE_CASES, help=argparse.SUPPRESS)
        parser.add_argument("--gate", help=argparse.SUPPRESS)
        parser.add_argument("--json", action="store_true", help="Print one JSON object with every figure.")

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["database_url"] or default_database_url()
        if os.environ.get("DATABASE_URL") != url:
            self._child(url)
            return
        if options["instructions_child"]:  # under callgrind, started by _instructions() below
            gated_run(options["instructions_child"], requests=options["requests"], gate=Path(options["gate"]))
            return
        if is_postgresql() and postgres_database_ensure(url):
            self._note(f"created database {urlsplit(url).path.lstrip('/')}")
        self._note("migrating ...")
        call_command("migrate", interactive=False, verbosity=0)
        if options["instructions"]:
            if not options["measure"]:
                raise CommandError("--instructions goes with --measure CASES.")
            self._instructions(url, _case_list(options["measure"], PROFILE_CASES), options)
            return
        if options["profile"] or options["measure"]:
            cases = (
                [options["profile"]] if options["profile"] else _case_list(options["measure"], PROFILE_CASES)
            )
            self.stdout.write(measure(cases, requests=options["requests"], profile=bool(options["profile"])))
            return
        keys = _case_list(options["cases"], CASES)
        wrk = ""  # the launch round trip is driven by this command itself; only the token cases need wrk
        if set(keys) & set(sc.TOKEN_CASES):
            try:
                wrk = wrk_ensure()
            except WrkUnavailable as exc:
                raise CommandError(str(exc)) from exc
        report = self._bench(url, wrk, keys, options)
        self._print(report, options)

    def _child(self, url: str) -> None:
        argv = [a for a in sys.argv[1:] if a != "bench_smart"]
        command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "bench_smart", *argv]
        if "--database-url" not in " ".join(argv):
            command += ["--database-url", url]
        done = subprocess.run(command, env={**os.environ, "DATABASE_URL": url})
        if done.returncode != 0:
            raise CommandError(f"bench_smart failed (exit {done.returncode}).")

    # ------------------------------------------------------------ measuring

    def _instructions(self, url: str, cases: list[str], options: dict[str, Any]) -> None:
        try:
            callgrind_tools()
        except InstructionsUnavailable as exc:
            raise CommandError(str(exc)) from exc
        counts = []
        for case in cases:
            self._note(f"{case}: {options['requests']} requests under callgrind (a minute or more) ...")
            counts.append(instructions_count(case, requests=options["requests"], database_url=url,
                                             manage_py=Path(settings.BASE_DIR) / "manage.py"))  # fmt: skip
        if options["json"]:
            rows = [{**dataclasses.asdict(c), "per_request": round(c.per_request)} for c in counts]
            self.stdout.write(json.dumps({"backend": backend_name(), "instructions": rows}, indent=2))
            return
        self.stdout.write("Instructions per request (valgrind callgrind, in-process through the test client; "
                          "RSA signing counts high under valgrind: compare builds, not absolute figures):")  # fmt: skip
        for c in counts:
            one, many = ("launch", "launches") if c.case == "launch" else ("request", "requests")
            self.stdout.write(f"  {c.case:<13} {c.per_request / 1e6:7.2f} M per {one} ({c.requests} {many})")

    def _bench(self, url: str, wrk: str, keys: list[str], options: dict[str, Any]) -> dict[str, Any]:
        config = server_config(options)
        machine = machine_facts()
        log = config.log_path("bench-smart")
        server = SmartBenchServer(secret_key=secrets.token_urlsafe(50), config=config, database_url=url,
                                  log_path=log)  # fmt: skip
        actors = actors_ensure(fhir_base=server.fhir_base, token_url=server.url("/o/token/"),
                               secret_key=server.secret_key)  # fmt: skip
        create_launch = launch_creator(actors)
        trips: list[sc.RoundTrips] = []
        token_runs: dict[str, list[sc.TokenRun]] = {k: [] for k in sc.TOKEN_CASES if k in keys}
        estimates: dict[str, float] = {}
        idle: list[float] = []
        try:
            with server:
                make = lambda: sc.HttpTransport("127.0.0.1", server.port)  # noqa: E731
                main = make()
                cookie = sc.login(main, actors.username, actors.password)
                self._note("warming up (20 launches) ...")
                sc.launch_round_trips(main, actors, cookie, launches=20, create_launch=create_launch)
                for number in range(1, max(1, options["rounds"]) + 1):
                    idle.append(cpu_idle_share(0.5))
                    if "launch" in keys:
                        self._note(f"round {number}: {options['launches']} sequential launches ...")
                        cpu = server.cpu_seconds()
                        trips.append(sc.launch_round_trips(main, actors, cookie, launches=options["launches"],
                                                           create_launch=create_launch))  # fmt: skip
                        trips[-1].server_cpu_s = server.cpu_since(cpu)
                    for case in token_runs:
                        run = self._token_case(
                            case, server, wrk, actors, cookie, make, create_launch, estimates, options
                        )
                        token_runs[case].append(run)
                        estimates[case] = max(run.result.rps, estimates.get(case, 0.0))
                main.close()
        except (ServerError, sc.StepError) as exc:
            raise CommandError(f"{exc}\n--- end of {log}:\n{log_tail(log)}") from exc
        return self._report(trips, token_runs, config, machine, idle, options)

    def _token_case(
        self, case: str, server: SmartBenchServer, wrk: str, actors: sc.Actors, cookie: str, make: Any,
        create_launch: Any, estimates: dict[str, float], options: dict[str, Any],
    ) -> sc.TokenRun:  # fmt: skip
        label = sc.TOKEN_CASE_LABELS[case]
        generate = lambda n: sc.token_inputs(  # noqa: E731
            case,
            n,
            actors=actors,
            cookie=cookie,
            make=make,
            create_launch=create_launch,
            threads=options["gen_threads"],
        )
        run = lambda inputs, seconds: sc.wrk_token_run(  # noqa: E731
            wrk=wrk,
            url=server.url("/o/token/"),
            inputs=inputs,
            duration_s=seconds,
            connections=options["connections"],
            label=label,
        )
        if case not in estimates:  # pilot: warms the path and estimates the rate
            self._note(f"{case}: pilot run ...")
            pilot = run(generate(300), 1.0)
            estimates[case] = pilot.result.rps * (2.5 if pilot.exhausted else 1.0)
        count = sc.bodies_needed(estimates[case], options["duration"])
        self._note(f"{case}: generating {count} request bodies ...")
        started = time.monotonic()
        inputs = generate(count)
        generated_s = time.monotonic() - started
        self._note(f"{case}: generated in {generated_s:.1f} s; measuring {options['duration']:.0f} s ...")
        cpu = server.cpu_seconds()
        result = run(inputs, options["duration"])
        result = dataclasses.replace(result, server_cpu_s=server.cpu_since(cpu))
        # the next round sizes its bodies on the fastest rate seen (a slow pilot left later rounds short)
        estimates[case] = max(estimates[case], result.result.rps * (2.5 if result.exhausted else 1.0))
        if result.exhausted:
            self._note(f"{case}: all {result.bodies} bodies used before the end: the rate is a lower bound")
        return result

    def _report(
        self, trips: list[sc.RoundTrips], token_runs: dict[str, list[sc.TokenRun]], config: ServerConfig,
        machine: dict[str, Any], idle: list[float], options: dict[str, Any],
    ) -> dict[str, Any]:  # fmt: skip
        merged: dict[str, CaseResult] = {
            case: rounds_merge([r.result for r in runs]) for case, runs in token_runs.items() if runs
        }
        launch = sc.round_trips_merge(trips) if trips else None
        targets = []
        if launch:
            targets.append(sc.launch_target(launch["launches_per_s"], launch["p50_ms"]))
        targets.append(sc.confidential_target(merged.get("confidential")))
        targets.append(sc.code_reference_line(merged.get("code")))
        return {
            "backend": backend_name(),
            "server": {
                "config": config.describe(),
                "connections": options["connections"],
                "wrk_threads": 1,
                "duration_s": options["duration"],
                "rounds": options["rounds"],
                "launches_per_round": options["launches"],
            },  # fmt: skip
            "machine": {**machine, "cpu_idle_per_round": [round(i, 2) for i in idle]},
            "launch": launch,
            "token_cases": [
                {
                    **vars(merged[c]),
                    "bodies_last_round": token_runs[c][-1].bodies,
                    "used_last_round": token_runs[c][-1].used,
                    "exhausted_any": any(r.exhausted for r in token_runs[c]),
                    "rps_rounds": [round(r.result.rps, 1) for r in token_runs[c]],
                    "server_cpu_ms_per_request": sc.median_or_none(r.server_cpu_ms for r in token_runs[c]),
                }
                for c in merged
            ],  # fmt: skip
            "reference": {
                "smart_launcher_v2_code_exchanges_per_s": sc.REFERENCE_CODE_EXCHANGES_PER_S,
                "smart_launcher_v2_launches_per_s": sc.REFERENCE_LAUNCHES_PER_S,
                "smart_launcher_v2_launch_p50_ms": sc.REFERENCE_LAUNCH_P50_MS,
            },  # fmt: skip
            "targets": [
                {"name": t.name, "status": t.status, "detail": t.detail, "line": t.line()} for t in targets
            ],
        }

    def _print(self, report: dict[str, Any], options: dict[str, Any]) -> None:
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, default=str))
            return
        m, s = report["machine"], report["server"]
        self.stdout.write(
            f"\nbench_smart: {report['backend']} ({m['database']}); {s['config']}; wrk 1 thread, "
            f"{s['connections']} connections, {s['duration_s']:.0f} s per token case; {s['rounds']} round(s), "
            f"medians"
        )
        self.stdout.write(
            f"machine: {m['nproc']} cores, {m['cpu_model']}, {m['memory_gib']} GiB; CPU idle before each round: "
            + ", ".join(f"{i:.0%}" for i in m["cpu_idle_per_round"])
        )
        self.stdout.write(SHARED_CORES_NOTE.format(nproc=m["nproc"]) + "\n")
        launch = report["launch"]
        if launch:
            steps = ", ".join(f"{k} {v:.2f}" for k, v in launch["step_p50_ms"].items())
            self.stdout.write(
                f"EHR launch round trip ({launch['launches']} launches, sequential, one keep-alive connection): "
                f"{launch['launches_per_s']:.0f} launches/s, p50 {launch['p50_ms']:.2f} ms, "
                f"p99 {launch['p99_ms']:.2f} ms\n  step p50 ms: {steps}\n"
                f"  server CPU per launch: {_ms(launch['server_cpu_ms_per_launch'])}\n"
                f"  smart-launcher-v2 reference: ~{sc.REFERENCE_LAUNCHES_PER_S:.0f} launches/s at "
                f"{sc.REFERENCE_LAUNCH_P50_MS:.0f} ms p50\n"
            )
        rows = [
            (CaseResult(**{k: c[k] for k in CaseResult.__dataclass_fields__}), None)
            for c in report["token_cases"]
        ]
        self.stdout.write(sc.format_token_table(rows))
        for c in report["token_cases"]:
            self.stdout.write(f"  {c['key']}: server CPU per request {_ms(c['server_cpu_ms_per_request'])}")
            if c["exhausted_any"]:
                self.stdout.write(f"  {c['key']}: bodies ran out in some round: its rate is a lower bound")
        self.stdout.write(
            f"  smart-launcher-v2 reference: ~{sc.REFERENCE_CODE_EXCHANGES_PER_S:.0f} code exchanges/s (RS256)\n"
        )
        for target in report["targets"]:
            self.stdout.write(target["line"])

    def _note(self, text: str) -> None:
        self.stderr.write(f"bench_smart: {text}")


def _case_list(text: str, known: tuple[str, ...]) -> list[str]:
    cases = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in cases if c not in known]
    if unknown:
        raise CommandError(f"Unknown case(s) {', '.join(unknown)}; known: {', '.join(known)}.")
    return cases


def _ms(value: float | None) -> str:
    return f"{value:.2f} ms" if value is not None else "not measured (no /proc)"
