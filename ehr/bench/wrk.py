"""Provides the wrk side of the benchmark: the Lua script it runs, its command line, and parsing its output.

Pure module (no Django). The Lua script sets the method, body and headers of every request and, when wrk is
done, prints one `BENCH_JSON {...}` line with the request count and latency percentiles in microseconds. The
`--latency` text report is parsed as a fallback (and for the checks in tests).
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

JSON_MARKER = "BENCH_JSON "


def done_lua(*, before: str = "", after: str = "") -> str:
    """wrk's `done` function printing the BENCH_JSON line; `before`/`after`: more Lua statements in it."""
    return _DONE_FUNCTION.replace("  -- before\n", before).replace("  -- after\n", after)


_DONE_FUNCTION = """
done = function(summary, latency, requests)
  -- before
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "mean_us": %.1f, "max_us": %d, '
    .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "errors_connect": %d, "errors_read": %d, '
    .. '"errors_write": %d, "errors_status": %d, "errors_timeout": %d}\\n',
    summary.requests, summary.duration, summary.bytes, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
  -- after
end
"""


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured: throughput, latency percentiles (ms) and failed requests."""

    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int = 0  # socket errors plus non-2xx/3xx responses
    non_2xx: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def lua_string(value: str) -> str:
    """A Lua long-bracket literal holding `value` verbatim (no escapes are interpreted inside)."""
    level = 0
    while f"]{'=' * level}]" in value:
        level += 1
    eq = "=" * level
    # A newline right after the opening bracket is dropped by Lua, so add one that absorbs it.
    return f"[{eq}[\n{value}]{eq}]"


def lua_script(
    *, method: str = "GET", body: str | None = None, headers: Mapping[str, str] | None = None
) -> str:
    """The wrk script for one case: its method, body and headers, plus the JSON summary at the end."""
    lines = [f"wrk.method = {lua_string(method)}"]
    if body is not None:
        lines.append(f"wrk.body = {lua_string(body)}")
    for name, value in (headers or {}).items():
        lines.append(f"wrk.headers[ {lua_string(name)} ] = {lua_string(value)}")
    return "\n".join(lines) + "\n" + done_lua()


def wrk_command(
    *, wrk: str, url: str, script_path: str, duration_s: float, connections: int, threads: int = 1
) -> list[str]:
    """The wrk command line for one run (whole seconds, at least one)."""
    return [
        wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--latency",
        "--timeout", "10s", "-s", script_path, url,
    ]  # fmt: skip


def parse_wrk_output(text: str) -> WrkResult:
    """Parse wrk's stdout: the script's BENCH_JSON line when present, else the `--latency` text report."""
    for line in text.splitlines():
        if line.startswith(JSON_MARKER):
            return _from_json(json.loads(line[len(JSON_MARKER) :]), text)
    return _from_text(text)


def _from_json(data: dict, text: str) -> WrkResult:
    non_2xx = _non_2xx(text)
    socket_errors = (
        data["errors_connect"] + data["errors_read"] + data["errors_write"] + data["errors_timeout"]
    )
    return WrkResult(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=socket_errors + data["errors_status"],
        non_2xx=non_2xx or data["errors_status"],
    )


_DURATION_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+(\d+(?:\.\d+)?)(us|ms|s|m|h)\s*$")
_SUMMARY = re.compile(r"^\s*(\d+) requests in (\d+(?:\.\d+)?)(us|ms|s|m|h)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def _from_text(text: str) -> WrkResult:
    percentiles: dict[float, float] = {}
    summary = None
    for line in text.splitlines():
        if match := _PERCENTILE.match(line):
            percentiles[float(match[1])] = float(match[2]) * _DURATION_UNITS[match[3]]
        elif match := _SUMMARY.match(line):
            summary = (int(match[1]), float(match[2]) * _DURATION_UNITS[match[3]] / 1000)
    if summary is None or not {50.0, 90.0, 99.0} <= percentiles.keys():
        raise ValueError("wrk printed no summary with latency percentiles (was --latency given?)")
    socket_errors = sum(int(n) for n in match.groups()) if (match := _SOCKET_ERRORS.search(text)) else 0
    non_2xx = _non_2xx(text)
    return WrkResult(
        requests=summary[0],
        duration_s=summary[1],
        p50_ms=percentiles[50.0],
        p90_ms=percentiles[90.0],
        p99_ms=percentiles[99.0],
        errors=socket_errors + non_2xx,
        non_2xx=non_2xx,
    )


def _non_2xx(text: str) -> int:
    match = _NON_2XX.search(text)
    return int(match[1]) if match else 0
