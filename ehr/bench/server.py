"""Provides the bench server: `gunicorn ehr.wsgi` on a free local port with the bench settings; a probe."""

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

from django.conf import settings

BENCH_SETTINGS = "ehr.bench.settings"


class ServerError(Exception):
    """The bench server could not be started or did not answer."""


@dataclass(frozen=True)
class ServerConfig:
    """How gunicorn serves every case: workers, worker class (`sync` or `gthread`), threads per worker."""

    workers: int = 2
    worker_class: str = "gthread"
    threads: int = 2
    keepalive_s: int = 5

    def describe(self) -> str:
        plural = "s" if self.threads != 1 else ""
        threads = f" x {self.threads} thread{plural}" if self.worker_class == "gthread" else ""
        return f"gunicorn ehr.wsgi, {self.workers} {self.worker_class} workers{threads}"


@dataclass(frozen=True)
class Probe:
    status: int
    body: bytes
    content_type: str


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
    """Context manager running gunicorn until exit; `url(path)` addresses it."""

    def __init__(self, *, config: ServerConfig, database_url: str, log_path: Path) -> None:
        self.config = config
        self.database_url = database_url
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def command(self) -> list[str]:
        cfg = self.config
        command = [
            sys.executable, "-m", "gunicorn", "ehr.wsgi", "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(cfg.workers), "--worker-class", cfg.worker_class,
            "--keep-alive", str(cfg.keepalive_s), "--log-level", "warning", "--backlog", "512",
        ]  # fmt: skip
        if cfg.worker_class == "gthread":
            command += ["--threads", str(cfg.threads)]
        return command

    def __enter__(self) -> "BenchServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command(), cwd=settings.BASE_DIR, env=server_environment(self.database_url),
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
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
                raise ServerError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            try:
                probe(self.url("/fhir/metadata"))
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise ServerError(f"gunicorn did not answer within {timeout_s:.0f} s; see {self.log_path}")


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
