"""Provides the benchmark report: per-case figures, ratios to the baselines, the issue's targets, the table.

Pure module (no Django). The targets are the performance issue's acceptance figures: a FHIR read keeps at
least 80% of a plain ORM view's throughput, the vital-signs search answers in under 10 ms at the median with
1,000,000 Observations on PostgreSQL and at most 1.5 times its median at 10,000, and seeding writes at least
500 resources per second.
"""

from dataclasses import asdict, dataclass, field
from statistics import median
from typing import Any

BARE = "bare"
ORM = "orm"

READ_VS_ORM_MIN = 0.80
VITALS_P50_MAX_MS = 10.0
VITALS_SCALING_MAX = 1.5
VITALS_LARGE_OBSERVATIONS = 1_000_000
SEEDING_MIN_PER_S = 500.0


@dataclass(frozen=True)
class CaseResult:
    """One measured case: its key and label, throughput, latency and failures."""

    key: str
    label: str
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    errors: int = 0
    new_db_sessions: int | None = None  # PostgreSQL sessions opened during the measured run (None: not known)


@dataclass(frozen=True)
class Target:
    """One acceptance target: PASS, FAIL, or not measured (passed is None) with the figures behind it."""

    name: str
    passed: bool | None
    detail: str

    @property
    def status(self) -> str:
        return {True: "PASS", False: "FAIL", None: "N/A"}[self.passed]

    def line(self) -> str:
        return f"{self.status:4}  {self.name}: {self.detail}"


@dataclass
class BenchReport:
    """Everything one `manage.py bench` run measured, printable as a table or as one JSON object."""

    backend: str
    observations: int
    cases: list[CaseResult]
    server: dict[str, Any] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)
    connections: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)

    def case(self, key: str) -> CaseResult | None:
        return next((c for c in self.cases if c.key == key), None)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cases"] = [dict(asdict(c), **ratios(c, self.case(BARE), self.case(ORM))) for c in self.cases]
        data["targets"] = [{"name": t.name, "status": t.status, "detail": t.detail} for t in self.targets]
        return data


def rounds_merge(rounds: list[CaseResult]) -> CaseResult:
    """One case measured in several rounds: the median of each figure; requests, errors, sessions summed."""
    first = rounds[0]
    sessions = [r.new_db_sessions for r in rounds if r.new_db_sessions is not None]
    return CaseResult(
        key=first.key,
        label=first.label,
        rps=median(r.rps for r in rounds),
        p50_ms=median(r.p50_ms for r in rounds),
        p90_ms=median(r.p90_ms for r in rounds),
        p99_ms=median(r.p99_ms for r in rounds),
        requests=sum(r.requests for r in rounds),
        errors=sum(r.errors for r in rounds),
        new_db_sessions=sum(sessions) if sessions else None,
    )


def ratio(value: float, baseline: float | None) -> float | None:
    """value / baseline, or None without a usable baseline."""
    return value / baseline if baseline else None


def ratios(case: CaseResult, bare: CaseResult | None, orm: CaseResult | None) -> dict[str, float | None]:
    """Throughput of a case relative to the bare view (a) and the ORM view (b)."""
    return {
        "rps_vs_bare": ratio(case.rps, bare.rps if bare else None),
        "rps_vs_orm": ratio(case.rps, orm.rps if orm else None),
    }


def read_target(read: CaseResult | None, orm: CaseResult | None) -> Target:
    name = f"FHIR read >= {READ_VS_ORM_MIN:.0%} of the ORM view's (b) throughput"
    if read is None or orm is None or not orm.rps:
        return Target(name, None, "not measured in this run")
    share = read.rps / orm.rps
    return Target(name, share >= READ_VS_ORM_MIN, f"{read.rps:.0f} vs {orm.rps:.0f} req/s = {share:.0%}")


def seeding_target(resources: int, seconds: float, *, what: str = "") -> Target:
    name = f"seeding >= {SEEDING_MIN_PER_S:.0f} resources/s" + (f" ({what})" if what else "")
    if resources <= 0 or seconds <= 0:
        return Target(name, None, "nothing was loaded in this run (the data was already there)")
    rate = resources / seconds
    return Target(name, rate >= SEEDING_MIN_PER_S, f"{resources} resources in {seconds:.1f} s = {rate:.0f}/s")


def vitals_targets(
    *, small_p50_ms: float, large_p50_ms: float, small_count: int, large_count: int, backend: str
) -> list[Target]:
    """The vital-signs search targets: p50 < 10 ms at 1M Observations on PostgreSQL, <= 1.5x its 10k p50."""
    at_scale = large_count >= VITALS_LARGE_OBSERVATIONS
    on_pg = backend == "postgresql"
    absolute_name = (
        f"vital-signs query p50 < {VITALS_P50_MAX_MS:.0f} ms with 1,000,000 Observations on PostgreSQL"
    )
    detail = f"p50 {large_p50_ms:.2f} ms with {large_count:,} Observations on {backend}"
    if at_scale and on_pg:
        absolute = Target(absolute_name, large_p50_ms < VITALS_P50_MAX_MS, detail)
    else:
        absolute = Target(absolute_name, None, detail + " (not the target's setting)")
    growth = large_p50_ms / small_p50_ms if small_p50_ms else float("inf")
    scaling = Target(
        f"vital-signs query p50 at 1,000,000 <= {VITALS_SCALING_MAX}x its p50 at 10,000",
        growth <= VITALS_SCALING_MAX if at_scale else None,
        f"{large_p50_ms:.2f} ms at {large_count:,} / {small_p50_ms:.2f} ms at {small_count:,} "
        f"= {growth:.2f}x",
    )
    return [absolute, scaling]


def format_table(report: BenchReport) -> str:
    """The per-case table: req/s, p50, p90, p99, ratios to (a) and (b), errors and new DB sessions."""
    bare, orm = report.case(BARE), report.case(ORM)
    header = (
        f"{'case':<62} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'x(a)':>6} {'x(b)':>6} "
        f"{'errors':>6} {'new DB conns':>12}"
    )
    lines = [header, "-" * len(header)]
    for case in report.cases:
        r = ratios(case, bare, orm)
        sessions = "-" if case.new_db_sessions is None else str(case.new_db_sessions)
        lines.append(
            f"{case.label:<62} {case.rps:>8.0f} {case.p50_ms:>7.2f} {case.p90_ms:>7.2f} {case.p99_ms:>7.2f} "
            f"{_fmt_ratio(r['rps_vs_bare']):>6} {_fmt_ratio(r['rps_vs_orm']):>6} {case.errors:>6} "
            f"{sessions:>12}"
        )
    return "\n".join(lines)


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
