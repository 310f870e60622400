"""`manage.py bench`: serve the app over HTTP and measure FHIR interactions against two baseline views.

The command migrates the chosen database, loads generated data up to --observations Observations, mints a
token, serves `ehr.wsgi` (granian, or gunicorn with `--server gunicorn`) with the bench settings (the
project's settings plus the two baseline routes) and measures each case with wrk: warm-up, then --duration
seconds with --connections connections and one wrk thread. It prints req/s, p50/p90/p99 and the ratios to (a)
and (b), then the issue's targets as PASS/FAIL lines. `--vitals-scaling` measures the vital-signs search
at 10,000 and at 1,000,000 Observations, each in its own database, and prints the ratio.
"""

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from ehr.bench import report as rep
from ehr.bench.data import (
    OBSERVATIONS_PER_PATIENT,
    BenchTargets,
    LoadStats,
    data_ensure,
    targets_pick,
    token_mint,
)
from ehr.bench.dbstats import backend_name, backend_snapshot, is_postgresql, postgres_database_ensure
from ehr.bench.explain import vitals_explain
from ehr.bench.loadgen import WrkUnavailable, wrk_ensure
from ehr.bench.profile import profile_case
from ehr.bench.runner import (
    CASE_KEYS,
    Case,
    ConnectionWatch,
    PreflightError,
    cases_build,
    cases_measure,
    cases_preflight,
    machine_facts,
)
from ehr.bench.server import (
    BenchServer,
    ServerConfig,
    ServerError,
    add_server_arguments,
    log_tail,
    server_config,
)
from fhirapi.store import statistics_refresh

SHARED_CORES_NOTE = (
    "wrk (1 thread) and the server share this machine's {nproc} cores: the client's own CPU use is inside "
    "every figure, alike for all cases."
)


def default_database_url() -> str:
    """$DATABASE_URL, else a SQLite file of its own, var/bench.sqlite3 (bench writes thousands of rows)."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{Path(settings.VAR_DIR) / 'bench.sqlite3'}"


def large_database_url(url: str) -> str:
    """The database for the 1,000,000-Observation run: the same server, the name suffixed with `_1m`."""
    if url.startswith("sqlite"):
        head, _, name = url.rpartition("/")
        stem, dot, suffix = name.partition(".")
        return f"{head}/{stem}-1m{dot}{suffix}"
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_1m"))


class Command(BaseCommand):
    help = "Benchmark the FHIR API over HTTP against a bare view and a plain ORM view (needs wrk)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database-url", help="Database to use (default: $DATABASE_URL or var/bench.sqlite3)."
        )
        parser.add_argument(
            "--observations", type=int, default=10_000, help="At least this many (default 10000)."
        )
        parser.add_argument(
            "--per-patient", type=int, default=OBSERVATIONS_PER_PATIENT,
            help="Observations per patient, topped up with home readings (default 1000).",
        )  # fmt: skip
        parser.add_argument(
            "--duration", type=float, default=10.0, help="Seconds measured per case (default 10)."
        )
        parser.add_argument(
            "--warmup", type=float, default=2.0, help="Seconds of warm-up per case (default 2)."
        )
        parser.add_argument(
            "--rounds", type=int, default=1,
            help="Measure the cases round-robin this many times; report medians (default 1).",
        )  # fmt: skip
        parser.add_argument(
            "--connections", type=int,
            help="wrk connections (default 8; 1 with --vitals-scaling, whose p50 target is a latency, not a queue).",
        )  # fmt: skip
        # granian: 1.3-4x the req/s of gunicorn gthread in alternating runs (docs/benchmarks.md)
        add_server_arguments(parser, server="granian", threads=2)
        parser.add_argument("--cases", default=",".join(CASE_KEYS), help=f"Subset of {','.join(CASE_KEYS)}.")
        parser.add_argument(
            "--load-jobs",
            type=int,
            default=1,
            help="Processes loading patients at once (PostgreSQL; default 1).",
        )
        parser.add_argument(
            "--validate", action="store_true", help="Validate every generated resource as FHIR."
        )
        parser.add_argument(
            "--explain", action="store_true", help="Print EXPLAIN ANALYZE of the vital-signs search."
        )
        parser.add_argument(
            "--profile", metavar="CASE", choices=CASE_KEYS,
            help="Instead of serving: cProfile one case's requests in-process (CPU per request, SQL, hot spots).",
        )  # fmt: skip
        parser.add_argument(
            "--profile-top", type=int, default=30, help="Functions listed per --profile table (default 30)."
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object with every figure.")
        parser.add_argument(
            "--vitals-scaling", action="store_true",
            help="Measure the vital-signs search at --observations and at --large-observations, each in its "
            "own database, and print the ratio.",
        )  # fmt: skip
        parser.add_argument("--large-observations", type=int, default=rep.VITALS_LARGE_OBSERVATIONS)
        parser.add_argument("--large-database-url", help="Database of the large run (default: name + _1m).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["connections"] is None:
            options["connections"] = 1 if options["vitals_scaling"] else 8
        url = options["database_url"] or default_database_url()
        if options["vitals_scaling"]:
            self._scaling(url, options)
        elif os.environ.get("DATABASE_URL") != url:
            # Settings read DATABASE_URL at start-up: run again in a process configured for this database.
            self._child(url, options)
        else:
            self._bench(url, options)

    # ------------------------------------------------------------ one database, in this process

    def _bench(self, url: str, options: dict[str, Any]) -> rep.BenchReport | None:
        try:
            wrk = wrk_ensure()
        except WrkUnavailable as exc:
            raise CommandError(str(exc)) from exc
        if is_postgresql() and postgres_database_ensure(url):
            self._note(f"created database {urlsplit(url).path.lstrip('/')}")
        self._note("migrating ...")
        call_command("migrate", interactive=False, verbosity=0)
        stats = self._load(options, validate_all=options["validate"])
        # Earlier runs' create case adds thousands of Observations: plan with statistics that know them, as
        # autovacuum's ANALYZE would by the time a real server sees traffic.
        statistics_refresh()
        targets, token = targets_pick(), token_mint()
        if options["profile"]:
            (case,) = cases_build(targets, token, [options["profile"]])
            self.stdout.write(profile_case(case, top=options["profile_top"]))
            return None
        keys = [k.strip() for k in options["cases"].split(",") if k.strip()]
        config = server_config(options)
        machine = machine_facts()
        watch = ConnectionWatch(before_server=backend_snapshot())
        results = self._serve(url, config, cases_build(targets, token, keys), targets, wrk, watch, options)
        report = self._report(stats, results, config, options, watch, machine)
        report.server["patient"] = targets.patient_id
        report.server["observation"] = targets.observation_id
        if options["explain"]:
            report.server["explain"] = vitals_explain(targets.patient_id)
        self._print(report, options)
        return report

    def _serve(
        self, url: str, config: ServerConfig, cases: list[Case], targets: BenchTargets, wrk: str,
        watch: ConnectionWatch, options: dict[str, Any],
    ) -> list[rep.CaseResult]:  # fmt: skip
        """Start the bench server, check every case once, then measure them in turn."""
        log = config.log_path("bench")
        try:
            with BenchServer(config=config, database_url=url, log_path=log) as server:
                cases_preflight(server, cases)
                return cases_measure(
                    server, cases, wrk=wrk, duration_s=options["duration"], warmup_s=options["warmup"],
                    connections=options["connections"], watch=watch, rounds=options["rounds"],
                    prime_path=f"/bench/orm/Observation/{targets.observation_id}",
                    on_case=lambda c: self._note(f"measuring {c.label} ..."),
                )  # fmt: skip
        except (ServerError, PreflightError) as exc:
            raise CommandError(f"{exc}\n--- end of {log}:\n{log_tail(log)}") from exc

    def _load(self, options: dict[str, Any], *, validate_all: bool) -> LoadStats:
        observations = options["observations"]
        self._note(f"making sure there are at least {observations:,} Observations ...")
        with tqdm(total=observations, unit="obs", file=sys.stderr, smoothing=0.05) as bar:
            stats = data_ensure(
                observations=observations, today=date.today(), per_patient=options["per_patient"],
                validate_all=validate_all, jobs=options["load_jobs"],
                progress=lambda n: bar.update(min(n, max(0, bar.total - bar.n))),
            )  # fmt: skip
        if stats.resources_loaded:
            self._note(
                f"loaded {stats.patients_loaded} patients, {stats.resources_loaded:,} resources in "
                f"{stats.seconds:.1f} s ({stats.rate:.0f} resources/s); validated part: "
                f"{stats.validated_resources:,} in {stats.validated_seconds:.1f} s "
                f"({stats.validated_rate:.0f}/s)"
            )
        self._note(f"{stats.observations_after:,} Observations in the database")
        return stats

    def _report(
        self,
        stats: LoadStats,
        results: list[rep.CaseResult],
        config: ServerConfig,
        options: dict[str, Any],
        watch: ConnectionWatch,
        machine: dict[str, Any],
    ) -> rep.BenchReport:
        report = rep.BenchReport(
            backend=backend_name(),
            observations=stats.observations_after,
            cases=results,
            server={"config": config.describe(), "connections": options["connections"], "wrk_threads": 1,
                    "rounds": options["rounds"],
                    "duration_s": options["duration"], "warmup_s": options["warmup"]},
            load=_load_dict(stats),
            connections=watch.as_dict(),
            machine=machine,
        )  # fmt: skip
        trusted = stats.resources_loaded - stats.validated_resources
        report.targets = [
            rep.read_target(report.case("read"), report.case(rep.ORM)),
            rep.seeding_target(
                stats.validated_resources, stats.validated_seconds, what="validated, as seed_demo"
            ),
            rep.seeding_target(trusted, stats.seconds - stats.validated_seconds, what="trusted bulk load"),
        ]
        return report

    def _print(self, report: rep.BenchReport, options: dict[str, Any]) -> None:
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, default=str))
            return
        m = report.machine
        self.stdout.write(
            f"\nbench: {report.backend} ({m['database']}), {report.observations:,} Observations; "
            f"{report.server['config']}; wrk 1 thread, {report.server['connections']} connections, "
            f"{report.server['duration_s']:.0f} s per case after {report.server['warmup_s']:.0f} s warm-up"
            + (
                f", {report.server['rounds']} rounds round-robin (medians)"
                if report.server["rounds"] > 1
                else ""
            )
        )
        self.stdout.write(
            f"machine: {m['nproc']} cores, {m['cpu_model']}, {m['memory_gib']} GiB; "
            f"{m['cpu_idle_before']:.0%} of the CPU idle just before measuring"
            + (" (BUSY: other processes compete for the cores; figures are low)" if _busy(m) else "")
        )
        self.stdout.write(SHARED_CORES_NOTE.format(nproc=m["nproc"]) + "\n")
        self.stdout.write(rep.format_table(report) + "\n")
        self.stdout.write(_connections_line(report.connections))
        for target in report.targets:
            self.stdout.write(target.line())
        if "explain" in report.server:
            self.stdout.write("\nEXPLAIN ANALYZE of the vital-signs search:\n" + report.server["explain"])

    # ------------------------------------------------------------ other processes

    def _child(self, url: str, options: dict[str, Any], *, capture: bool = False) -> str:
        """Run bench again in a process whose settings use `url`; its stdout when `capture`."""
        command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "bench", *_argv(options, url)]
        done = subprocess.run(
            command,
            env={**os.environ, "DATABASE_URL": url},
            stdout=subprocess.PIPE if capture else None,
            text=True,
        )
        if done.returncode != 0:
            raise CommandError(f"bench against {_redacted(url)} failed (exit {done.returncode}).")
        return done.stdout or ""

    def _scaling(self, url: str, options: dict[str, Any]) -> None:
        large_url = options["large_database_url"] or large_database_url(url)
        runs = []
        for database, observations in (
            (url, options["observations"]),
            (large_url, options["large_observations"]),
        ):
            self._note(f"vital-signs search at {observations:,} Observations in {_redacted(database)} ...")
            child = {
                **options,
                "vitals_scaling": False,
                "json": True,
                "cases": "vitals",
                "observations": observations,
            }
            runs.append(json.loads(self._child(database, child, capture=True)))
        small, large = (r["cases"][0] for r in runs)
        targets = rep.vitals_targets(
            small_p50_ms=small["p50_ms"], large_p50_ms=large["p50_ms"], small_count=runs[0]["observations"],
            large_count=runs[1]["observations"], backend=runs[1]["backend"],
        )  # fmt: skip
        result = {
            "runs": runs,
            "p50_ratio": large["p50_ms"] / small["p50_ms"],
            "targets": [{"name": t.name, "status": t.status, "detail": t.detail} for t in targets],
        }
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2, default=str))
            return
        self.stdout.write(
            f"\nvital-signs search scaling ({runs[1]['backend']}; {runs[1]['server']['config']}; "
            f"wrk {options['connections']} connection(s)):"
        )
        for run, case in zip(runs, (small, large), strict=True):
            self.stdout.write(
                f"  {run['observations']:>9,} Observations: {case['rps']:7.0f} req/s"
                f"  p50 {case['p50_ms']:6.2f} ms"
                f"  p90 {case['p90_ms']:6.2f} ms  p99 {case['p99_ms']:6.2f} ms"
            )
        self.stdout.write(f"  p50 ratio large/small: {result['p50_ratio']:.2f}")
        for run in runs:
            if run["load"]["resources_loaded"]:
                self.stdout.write(f"  load into {run['observations']:,}: {_load_line(run['load'])}")
        for target in targets:
            self.stdout.write(target.line())

    def _note(self, text: str) -> None:
        self.stderr.write(f"bench: {text}")


def _argv(options: dict[str, Any], url: str) -> list[str]:
    """The command line that repeats these options for a child process."""
    argv = ["--database-url", url]
    names = ("observations", "per_patient", "load_jobs", "rounds", "duration", "warmup", "connections",
             "server", "workers", "worker_class", "threads", "cases", "large_observations", "profile_top")  # fmt: skip
    for name in names:
        argv += [f"--{name.replace('_', '-')}", str(options[name])]
    argv += [f"--{flag}" for flag in ("validate", "explain", "json") if options[flag]]
    if options.get("profile"):
        argv += ["--profile", options["profile"]]
    return argv


def _busy(machine: dict[str, Any]) -> bool:
    return machine["cpu_idle_before"] < 0.8


def _load_dict(stats: LoadStats) -> dict[str, Any]:
    return {
        "observations_before": stats.observations_before,
        "observations_after": stats.observations_after,
        "patients_loaded": stats.patients_loaded,
        "resources_loaded": stats.resources_loaded,
        "seconds": round(stats.seconds, 2),
        "resources_per_s": round(stats.rate, 1) if stats.rate else None,
        "validated_resources": stats.validated_resources,
        "validated_seconds": round(stats.validated_seconds, 2),
        "validated_resources_per_s": round(stats.validated_rate, 1) if stats.validated_rate else None,
    }


def _load_line(load: dict[str, Any]) -> str:
    return (
        f"{load['resources_loaded']:,} resources in {load['seconds']:.0f} s ({load['resources_per_s']:.0f}/s)"
    )


def _connections_line(facts: dict[str, Any]) -> str:
    if not facts.get("postgresql"):
        age = settings.DATABASES["default"].get("CONN_MAX_AGE", 0)
        kept = "one connection per request" if not age else f"kept per worker thread for {age} s"
        return f"database connections: SQLite (CONN_MAX_AGE={age}, {kept})"
    persistent = (
        facts["same_backends_first_to_last_case"] and facts["sessions_opened_during_measured_runs"] == 0
    )
    return (
        f"PostgreSQL client backends: {facts['backends_before_server']} before the server started, "
        f"{facts['backends_while_serving']} while serving; same backends from first to last case: "
        f"{'yes' if facts['same_backends_first_to_last_case'] else 'no'}; "
        f"sessions opened during measured runs: "
        f"{facts['sessions_opened_during_measured_runs']} -> connections "
        f"{'persist across requests' if persistent else 'DO NOT persist'}"
    )


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)
