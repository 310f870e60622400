"""Provides `NdjsonSplitter`: writes one JSON text per line into numbered files, split at a size limit.

Each file is written under a temporary `.part` name and renamed only once it is closed, so a file with its
final name is always complete (a crash leaves only `.part` files, which a restarted job deletes). Lines are
written as given: the store keeps each resource's JSON as compact one-line text, so nothing is parsed. Lines
come either as `str` (the portable path) or as UTF-8 bytes that already end in a newline (rows of a
PostgreSQL `COPY ... TO STDOUT`, written without ever being decoded).
"""

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO, TypeVar

PART_SUFFIX = ".part"

Line = TypeVar("Line")
BytesLine = bytes | memoryview


@dataclass(frozen=True)
class FinishedFile:
    """A closed ndjson file under its final name."""

    name: str
    count: int
    size: int


def _text_block(lines: Sequence[str]) -> bytes:
    # One join and one encode per batch: in C, far cheaper than a Python call per line.
    return ("\n".join(lines) + "\n").encode()


class NdjsonSplitter:
    """Writes lines to `<prefix>-<n>.ndjson` in `directory`, starting a new file past either limit.

    `on_finished` is called with each file once it has its final name (the caller records it).
    """

    def __init__(
        self,
        directory: Path,
        prefix: str,
        *,
        max_lines: int,
        max_bytes: int | None,
        on_finished: Callable[[FinishedFile], None],
    ) -> None:
        self.directory = directory
        self.prefix = prefix
        self.max_lines = max(1, max_lines)
        self.max_bytes = max_bytes
        self.on_finished = on_finished
        self._file: BinaryIO | None = None
        self._number = 0
        self._count = 0
        self._size = 0

    def write_all(
        self, lines: Iterable[str], *, batch: int = 1000, tick: Callable[[int], None] | None = None
    ) -> int:
        """Write every line (without its newline), `batch` lines at a time; `tick(lines so far)` per batch."""
        return self._write_batches(lines, _text_block, batch=batch, tick=tick)

    def write_all_bytes(
        self,
        lines: Iterable[BytesLine],
        *,
        join: Callable[[Sequence[BytesLine]], bytes] = b"".join,
        batch: int = 1000,
        tick: Callable[[int], None] | None = None,
    ) -> int:
        """Write lines of UTF-8 bytes that each end in a newline; `join` turns a batch into the bytes written.

        Each item counts as one resource: `join` may check or transform the batch (undo an escaping) but must
        keep one line per item.
        """
        return self._write_batches(lines, join, batch=batch, tick=tick)

    def _write_batches(
        self,
        lines: Iterable[Line],
        render: Callable[[Sequence[Line]], bytes],
        *,
        batch: int,
        tick: Callable[[int], None] | None,
    ) -> int:
        rows = iter(lines)
        written = 0
        try:
            while True:
                room = self.max_lines - self._count if self._file is not None else self.max_lines
                lines_batch = list(islice(rows, min(batch, room)))
                if not lines_batch:
                    break
                self._write_block(render(lines_batch), len(lines_batch))
                written += len(lines_batch)
                if tick is not None:
                    tick(written)
        except BaseException:
            self.abort()
            raise
        self.close()
        return written

    def _write_block(self, block: bytes, count: int) -> None:
        """One write per batch."""
        if self._file is None:
            self._open()
        assert self._file is not None
        self._file.write(block)
        self._count += count
        self._size += len(block)
        # Resources are counted exactly (batches never cross the line limit); bytes at batch granularity.
        if self._count >= self.max_lines or (self.max_bytes is not None and self._size >= self.max_bytes):
            self.close()

    def close(self) -> None:
        """Close the current file (if any) and give it its final name."""
        if self._file is None:
            return
        self._file.close()
        self._file = None
        final = self._name(self._number)
        os.replace(self.directory / (final + PART_SUFFIX), self.directory / final)
        self.on_finished(FinishedFile(final, self._count, self._size))

    def abort(self) -> None:
        """Drop the file being written: it never gets its final name."""
        if self._file is None:
            return
        self._file.close()
        self._file = None
        (self.directory / (self._name(self._number) + PART_SUFFIX)).unlink(missing_ok=True)

    def _open(self) -> None:
        self._number += 1
        self._count = 0
        self._size = 0
        path = self.directory / (self._name(self._number) + PART_SUFFIX)
        # Binary, 1 MiB buffer: few large writes keep the worker's throughput near the disk's.
        self._file = open(path, "wb", buffering=1024 * 1024)  # noqa: SIM115

    def _name(self, number: int) -> str:
        return f"{self.prefix}-{number}.ndjson"
