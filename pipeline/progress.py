"""Progress of a local run: files and records read, shown as a progress bar on a terminal only.

The reader (:class:`pipeline.ingest._ReadFiles`) calls :func:`report` for every record and every finished file;
nothing happens unless a local run installed a sink (:func:`installed`): Beam's counters are only readable once a
job has finished, and a local run (the DirectRunner in one process, or :mod:`pipeline.local_run`'s workers) runs
the reader in processes it started, where a plain callback reaches the launcher. The bar is drawn with tqdm (as
``datasets`` and DataTrove draw theirs) on standard error, and only when standard error is a terminal: logs and
CI output get nothing.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

_sink: Callable[[int, int], None] | None = None


def report(files: int = 0, records: int = 0) -> None:
    """``files`` finished and ``records`` read since the last call (a no-op unless a sink is installed)."""
    if _sink is not None:
        _sink(files, records)


@contextlib.contextmanager
def installed(sink: Callable[[int, int], None] | None) -> Iterator[None]:
    global _sink
    previous, _sink = _sink, sink
    try:
        yield
    finally:
        _sink = previous


def on_terminal() -> bool:
    return sys.stderr.isatty()


class Bar:
    """A tqdm bar of files (total known when the launcher listed them) with records and records/s beside it."""

    def __init__(self, total_files: int | None, description: str = "lowbg curate"):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total_files, unit="file", desc=description, file=sys.stderr, dynamic_ncols=True,
                        smoothing=0.1)
        self.records, self.start, self.shown = 0, time.monotonic(), 0.0

    def update(self, files: int, records: int) -> None:
        self.records += records
        if files:
            self.bar.update(files)
        now = time.monotonic()
        if files or now - self.shown > 0.5:
            self.shown = now
            rate = self.records / max(now - self.start, 1e-9)
            self.bar.set_postfix_str(f"{self.records:,} records, {rate:,.0f} records/s", refresh=True)

    def close(self) -> None:
        self.update(0, 0)
        self.bar.close()


class Batched:
    """A sink that hands its counts on at most every ``interval`` seconds (a worker process to the launcher)."""

    def __init__(self, send: Callable[[int, int], None], interval: float = 0.5):
        self.send, self.interval = send, interval
        self.files = self.records = 0
        self.last = time.monotonic()

    def __call__(self, files: int, records: int) -> None:
        self.files += files
        self.records += records
        now = time.monotonic()
        if files or now - self.last > self.interval:
            self.flush()
            self.last = now

    def flush(self) -> None:
        if self.files or self.records:
            self.send(self.files, self.records)
            self.files = self.records = 0
