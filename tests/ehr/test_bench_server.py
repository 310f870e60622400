"""Tests of ehr.bench.server's pure parts: the server command lines and the server's CPU from /proc."""

import os

from ehr.bench.server import ServerConfig, process_tree_cpu_seconds


def test_command_lines_of_each_server():
    gunicorn = ServerConfig(workers=3, worker_class="gthread", threads=2).command(8123)
    assert gunicorn[1:4] == ["-m", "gunicorn", "ehr.wsgi"]
    assert "127.0.0.1:8123" in gunicorn and gunicorn[gunicorn.index("--threads") + 1] == "2"
    assert gunicorn[gunicorn.index("--workers") + 1] == "3"
    sync = ServerConfig(worker_class="sync").command(8123)
    assert "--threads" not in sync

    granian = ServerConfig(workers=2, threads=1, server="granian").command(8124)
    assert granian[1:3] == ["-m", "granian"] and granian[-1] == "ehr.wsgi:application"
    assert granian[granian.index("--interface") + 1] == "wsgi"
    assert granian[granian.index("--port") + 1] == "8124"
    assert granian[granian.index("--blocking-threads") + 1] == "1"


def test_describe_names_the_server_and_its_threads():
    assert ServerConfig(2, "gthread", 1).describe() == "gunicorn ehr.wsgi, 2 gthread workers x 1 thread"
    assert ServerConfig(2, "sync", 4).describe() == "gunicorn ehr.wsgi, 2 sync workers"
    assert ServerConfig(2, threads=2, server="granian").describe() == (
        "granian ehr.wsgi:application (WSGI), 2 workers x 2 threads"
    )


def _stat(proc, pid: int, parent: int, utime: int, stime: int, name: str = "python") -> None:
    folder = proc / str(pid)
    folder.mkdir()
    # /proc/<pid>/stat: pid (comm) state ppid ... field 14 utime, 15 stime (1-based)
    rest = ["S", str(parent)] + ["0"] * 9 + [str(utime), str(stime)] + ["0"] * 5
    (folder / "stat").write_text(f"{pid} ({name}) {' '.join(rest)}\n")


def test_process_tree_cpu_sums_the_process_and_its_descendants(tmp_path):
    tick = os.sysconf("SC_CLK_TCK")
    _stat(tmp_path, 100, 1, 10, 5)  # the server's master
    _stat(tmp_path, 101, 100, 200, 20, name="granian worker (x)")  # a worker; a name with spaces and ")"
    _stat(tmp_path, 90, 101, 3, 2)  # a worker's child with a lower pid (pids wrap)
    _stat(tmp_path, 102, 1, 999, 999)  # not in the tree
    (tmp_path / "self").mkdir()  # non-numeric entries are skipped

    assert process_tree_cpu_seconds(100, tmp_path) == (15 + 220 + 5) / tick
    assert process_tree_cpu_seconds(101, tmp_path) == (220 + 5) / tick
    assert process_tree_cpu_seconds(555, tmp_path) is None


def test_process_tree_cpu_of_this_process_grows():
    before = process_tree_cpu_seconds(os.getpid())
    sum(i * i for i in range(3_000_000))
    assert before is not None and process_tree_cpu_seconds(os.getpid()) > before
