"""Provides the load generator: finding (or installing) wrk and running one case with its Lua script."""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping

from ehr.bench.wrk import WrkResult, lua_script, parse_wrk_output, wrk_command


class WrkUnavailable(Exception):
    """wrk is not installed and could not be installed."""


def wrk_ensure() -> str:
    """The path of wrk; installs the Debian package `wrk` with apt-get when missing and running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = subprocess.run(
            [apt, "install", "-y", "-qq", "wrk"], env=env, capture_output=True, text=True
        )
        if install.returncode != 0:
            subprocess.run([apt, "update", "-qq"], env=env, capture_output=True)
            subprocess.run([apt, "install", "-y", "-qq", "wrk"], env=env, capture_output=True)
        found = shutil.which("wrk")
        if found:
            return found
    raise WrkUnavailable(
        "The load generator wrk is not installed and could not be installed; install it with "
        "`apt-get install wrk` (Debian/Ubuntu) or from https://github.com/wg/wrk, then run bench again."
    )


def wrk_run(
    *,
    wrk: str,
    url: str,
    duration_s: float,
    connections: int,
    method: str = "GET",
    body: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> WrkResult:
    """Run wrk with one thread against `url` for `duration_s` seconds and return what it measured."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-") as script:
        script.write(lua_script(method=method, body=body, headers=headers))
        script.flush()
        command = wrk_command(
            wrk=wrk, url=url, script_path=script.name, duration_s=duration_s, connections=connections
        )
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 120)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return parse_wrk_output(done.stdout)
