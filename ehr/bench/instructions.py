"""Provides `bench_smart --measure CASES --instructions`: instructions per request, counted by callgrind.

On a shared VM, wall and CPU time move by tens of percent from one minute to the next (the same build ran
103-192 launches/s within an hour); the number of instructions a request executes hardly moves (two runs
of one build: within 0.4 %). So a change of a few percent is judged by its count.

Each case runs in-process as `--measure` runs it (ehr.bench.smart_profile: Django's test client, the whole
middleware stack), in a child process started under valgrind's callgrind with instrumentation off. The
child sets up, warms up and makes the inputs, then waits at a gate while this process switches
instrumentation on (`callgrind_control -i on`); it runs the requests and waits again while it is switched
off, so the count holds the measured requests alone. The gate is a pair of files in a temporary folder.

Caveats, also printed with the figures: callgrind slows the child about fifty-fold (most of it in starting
Django); OpenSSL takes a slower path under valgrind, so RSA signing counts far more instructions than its
native cost (some 6 M of a launch's 21 M); the count includes the test client. Compare builds with it; do
not read it as time.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ehr.bench.server import log_tail

READY, GO, DONE, OFF = "ready", "go", "done", "off"


class InstructionsUnavailable(Exception):
    """valgrind's callgrind is not installed."""


@dataclass(frozen=True)
class InstructionCount:
    case: str
    requests: int
    instructions: int

    @property
    def per_request(self) -> float:
        return self.instructions / self.requests if self.requests else 0.0


def callgrind_tools() -> tuple[str, str]:
    """valgrind and callgrind_control, or InstructionsUnavailable."""
    valgrind, control = shutil.which("valgrind"), shutil.which("callgrind_control")
    if not (valgrind and control):
        raise InstructionsUnavailable("--instructions needs valgrind's callgrind (Debian package valgrind).")
    return valgrind, control


def callgrind_total(text: str) -> int:
    """The instructions a callgrind output file counted: its `totals:` line (the `summary:` line above it
    can be 0 when instrumentation was switched on after the start), else its `summary:` line."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("totals", "summary") and value.split():
            found.setdefault(key, int(value.split()[0]))
    if not found:
        raise ValueError("no totals in the callgrind output")
    return found.get("totals", found.get("summary", 0))


def instructions_count(
    case: str, *, requests: int, database_url: str, manage_py: Path, timeout_s: float = 1800
) -> InstructionCount:
    """Run `requests` of `case` in a callgrind child and count the instructions they executed."""
    valgrind, control = callgrind_tools()
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as folder:
        gate = Path(folder)
        out = gate / "callgrind.out"
        command = [
            valgrind, "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
            sys.executable, str(manage_py), "bench_smart", "--database-url", database_url,
            "--instructions-child", case, "--gate", str(gate), "--requests", str(requests),
        ]  # fmt: skip
        log = gate / "child.log"
        with log.open("wb") as sink:
            child = subprocess.Popen(
                command, env={**os.environ, "DATABASE_URL": database_url}, stdout=sink, stderr=sink
            )
        deadline = time.monotonic() + timeout_s
        try:
            _await(gate / READY, child, deadline, log)
            subprocess.run([control, "-i", "on", str(child.pid)], check=True, capture_output=True)
            (gate / GO).touch()
            _await(gate / DONE, child, deadline, log)
            subprocess.run([control, "-i", "off", str(child.pid)], check=True, capture_output=True)
            (gate / OFF).touch()
            if child.wait(timeout=max(1.0, deadline - time.monotonic())) != 0:
                raise RuntimeError(f"the callgrind child failed:\n{log_tail(log)}")
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        return InstructionCount(case, requests, callgrind_total(out.read_text()))


def gate_pass(gate: Path, arrived: str, wait_for: str, timeout_s: float = 600) -> None:
    """In the child: say we are at the gate (`arrived`), then wait until the parent opens it (`wait_for`)."""
    (gate / arrived).touch()
    deadline = time.monotonic() + timeout_s
    while not (gate / wait_for).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gate {wait_for!r} never opened")
        time.sleep(0.02)


def _await(path: Path, child: subprocess.Popen, deadline: float, log: Path) -> None:
    while not path.exists():
        if child.poll() is not None:
            raise RuntimeError(f"the callgrind child ended early:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the callgrind child never reached {path.name!r}")
        time.sleep(0.05)
