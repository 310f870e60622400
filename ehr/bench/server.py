"""Provides the bench server: `ehr.wsgi` under gunicorn or granian on a free local port with the bench settings;
a probe."""

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from django.conf import settings

from ehr.bench.dbstats import backend_name

BENCH_SETTINGS = "ehr.bench.settings"


class ServerError(Exception):
    """The bench server could not be started or did not answer."""


SERVERS = ("gunicorn", "granian")


@dataclass(frozen=True)
class ServerConfig:
    """How every case is served: the WSGI server, its worker processes and threads per worker.

    gunicorn: worker class `sync` or `gthread` (threads apply to gthread). granian (a Rust HTTP server): one
    single-threaded runtime per worker, `threads` Python threads running the app (its blocking threads).
    """

    workers: int = 2
    worker_class: str = "gthread"
    threads: int = 2
    keepalive_s: int = 5
    server: str = "gunicorn"

    def describe(self) -> str:
        plural = "s" if self.threads != 1 else ""
        if self.server == "granian":
            return (
                f"granian ehr.wsgi:application (WSGI), {self.workers} workers x {self.threads} thread{plural}"
            )
        threads = f" x {self.threads} thread{plural}" if self.worker_class == "gthread" else ""
        return f"gunicorn ehr.wsgi, {self.workers} {self.worker_class} workers{threads}"

    def log_path(self, command: str) -> Path:
        """Where the server's output goes when `command` (bench, bench-smart) runs it on this database."""
        return Path(settings.VAR_DIR) / f"{command}-{self.server}-{backend_name()}.log"

    def command(self, port: int) -> list[str]:
        """The server's command line, listening on 127.0.0.1:`port`."""
        if self.server == "granian":
            return [
                sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(self.workers), "--blocking-threads", str(self.threads),
                "--runtime-mode", "st", "--http", "1", "--log-level", "warning", "--backlog", "512",
                "ehr.wsgi:application",
            ]  # fmt: skip
        command = [
            sys.executable, "-m", "gunicorn", "ehr.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", str(self.workers), "--worker-class", self.worker_class,
            "--keep-alive", str(self.keepalive_s), "--log-level", "warning", "--backlog", "512",
        ]  # fmt: skip
        if self.worker_class == "gthread":
            command += ["--threads", str(self.threads)]
        return command


def add_server_arguments(parser: Any, *, server: str, threads: int) -> None:
    """The options that choose how the bench server serves (`server_config` reads them back)."""
    parser.add_argument("--server", choices=SERVERS, default=server, help=f"WSGI server (default {server}).")
    parser.add_argument("--workers", type=int, default=2, help="Worker processes (default 2).")
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="gthread", help="gunicorn's.")
    parser.add_argument(
        "--threads",
        type=int,
        default=threads,
        help=f"Threads per worker (gthread, granian; default {threads}).",
    )


def server_config(options: dict[str, Any]) -> ServerConfig:
    return ServerConfig(
        options["workers"], options["worker_class"], options["threads"], server=options["server"]
    )


@dataclass(frozen=True)
class Probe:
    status: int
    body: bytes
    content_type: str


def process_tree_cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float | None:
    """User + system CPU seconds used so far by process `pid` and its live descendants (Linux /proc; None
    where there is none). Wall-clock rates on a shared VM swing with the host's load; the server's own CPU
    per request moves far less, so the benchmarks report both."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    try:
        entries = [e for e in proc.iterdir() if e.name.isdigit()]
    except OSError:
        return None
    for entry in entries:
        try:
            text = (entry / "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        fields = text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime + stime
    if pid not in ticks:
        return None
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        total += ticks.get(current, 0)
        pending.extend(children.get(current, []))
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(database_url: str) -> dict[str, str]:
    """The bench server's environment: the bench settings and routes, this database, DEBUG off."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": BENCH_SETTINGS,
        "EHR_BENCH_ROUTES": "1",
        "DATABASE_URL": database_url,
        "DEBUG": "0",  # DEBUG on records every SQL query: not what a deployment runs
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        "PYTHONUNBUFFERED": "1",
    }


class BenchServer:
    """Context manager running the server until exit; `url(path)` addresses it."""

    def __init__(self, *, config: ServerConfig, database_url: str, log_path: Path) -> None:
        self.config = config
        self.database_url = database_url
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def command(self) -> list[str]:
        return self.config.command(self.port)

    def cpu_seconds(self) -> float | None:
        """CPU seconds the server's processes (the master and its workers) have used so far."""
        return process_tree_cpu_seconds(self.process.pid) if self.process is not None else None

    def cpu_since(self, before: float | None) -> float | None:
        """CPU seconds used since `cpu_seconds()` gave `before`; None where it cannot be measured."""
        now = self.cpu_seconds()
        return now - before if now is not None and before is not None else None

    def environment(self) -> dict[str, str]:
        """The server's environment (a subclass adds its own variables)."""
        return server_environment(self.database_url)

    def __enter__(self) -> "BenchServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=settings.BASE_DIR,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(
                    f"{self.config.server} exited with {self.process.returncode}; see {self.log_path}"
                )
            try:
                probe(self.url("/fhir/metadata"))
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise ServerError(
            f"{self.config.server} did not answer within {timeout_s:.0f} s; see {self.log_path}"
        )


def probe(
    url: str, *, method: str = "GET", body: str | None = None, headers: dict[str, str] | None = None
) -> Probe:
    """One request; any HTTP status is an answer (only connection failures raise OSError)."""
    data = body.encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Probe(response.status, response.read(), response.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as error:
        return Probe(error.code, error.read(), error.headers.get("Content-Type", ""))


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log (a server's, a child process's), for an error message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
