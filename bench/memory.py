"""Memory benchmark: peak RSS of `lowbg curate` at 2k, 8k and 32k records, against a plain loop in the same run.

Issue 12, item 1: the memory of a local run must not grow with its input (flat within 20% from 2k to 32k
records) and the spine must stay under 600 MB with one worker, so that a real Common Crawl WARC file (~35,000
responses) goes through one worker on a 4 GB Dataflow vCPU share with room to spare.

Corpus: :func:`bench.ingest.build_corpus` (real pages of the bundled fixtures, reshuffled; same seed, so the 2k
corpus is the first 2,000 records of the 32k one), written as ONE file per size by default, like a real WARC file
(and then ``--num-buckets`` defaults to 1: one sink bucket holds every row of the run).

Measured, each in its own process:

* **baseline**: the plain warcio + extraction loop of ``bench/ingest.py`` (what a script would do by hand): its
  peak RSS is the floor for reading and extracting these files, and every figure is also printed as a ratio to it;
* **import floor**: a process that only imports ``pipeline.curate`` (Beam, pyarrow and, through
  ``apache_beam.ml.inference``, torch): what a worker holds before it reads a byte;
* ``lowbg curate`` for the spine (``--detectors none --dedup none --skip-language-id``) and the defaults
  (language ID, exact + near dedup, fastText scoring), with one worker (``--direct_running_mode=in_memory``,
  one process) and with ``--direct_running_mode=multi_processing --direct_num_workers=2`` (the launcher and its
  worker processes).

Peak RSS of one process: ``ru_maxrss`` from ``os.wait4`` on that child (the largest of it and the descendants it
waited for; exact, no sampling). The launcher + workers total: the sum of RSS over the whole process tree, sampled
every 50 ms with psutil (a lower bound of the true peak; shared pages are counted once per process, as ``ps``
would).

    python bench/memory.py [--sizes 2000,8000,32000] [--files 1] [--configs spine,defaults] [--modes one,multi]
    python bench/memory.py --quick     # the spine, one worker, 2k/8k/32k records: about 5 minutes on 2 cores

``--local-workers 2`` (mode ``local``) needs at least two files (``--files 2``); with the defaults, its workers run
the per-document head and one tail in the launcher the rest (``pipeline/local_run.py``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

try:
    import psutil
except ImportError:  # not a project dependency: without it only the largest single process is reported
    psutil = None

from bench.ingest import build_corpus, plain_loop  # noqa: E402

CONFIGS = {
    "spine": ["--detectors", "none", "--dedup", "none", "--skip-language-id"],
    "defaults": [],  # language ID, exact + near dedup, fastText scoring
}
MODES = {
    "one": ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
    "multi": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    "local": ["--local-workers", "2"],  # pipeline.local_run: per-file workers, one tail for dedup/decision
}
MODE_NAMES = {"one": "1 worker (in_memory, one process)", "multi": "multi_processing, 2 workers",
              "local": "--local-workers 2"}
FLAT_WITHIN = 1.2  # issue 12: peak RSS at 32k records within 20% of the figure at 2k
SPINE_ONE_WORKER_MB = 600  # issue 12: the spine, one worker
SAMPLE_SECONDS = 0.05


@dataclass
class Peak:
    wall: float  # seconds
    cpu: float  # user + sys seconds of the process and the descendants it waited for
    process_mb: float  # ru_maxrss of the largest single process
    tree_mb: float | None  # the largest sampled sum of RSS over the process tree (None without psutil)


class TreeSampler(threading.Thread):
    """The largest sum of RSS over a process and all its descendants, sampled until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self._done = pid, 0, threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._done.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:  # a worker that has just exited
                    pass
            self.peak = max(self.peak, total)
            self._done.wait(SAMPLE_SECONDS)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def measure(argv: list[str], log: Path, env: dict | None = None) -> Peak:
    """Run ``argv`` to completion; its wall and CPU time, and peak RSS (see the module docstring)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        sampler = TreeSampler(proc.pid) if psutil is not None else None
        if sampler is not None:
            sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        tree = sampler.stop() if sampler is not None else None
    code = os.waitstatus_to_exitcode(status)
    if code:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(argv[:5])} ... exited {code}; log {log}:\n{tail}")
    return Peak(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,  # Linux: KiB
                tree / 2**20 if tree is not None else None)


def curate_argv(paths: list[Path], output: Path, config: str, mode: str) -> list[str]:
    argv = [sys.executable, "-m", "pipeline.cli", "curate", "--output", str(output), "--overwrite",
            "--processed-at", "2026-01-01T00:00:00Z", *CONFIGS[config], *MODES[mode]]
    for p in paths:
        argv += ["--input", str(p)]
    return argv


def baseline_argv(paths: list[Path]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--plain-loop", *map(str, paths)]


IMPORT_FLOOR_ARGV = [sys.executable, "-c", "import pipeline.curate"]


def _mb(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f} MB"


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000,8000,32000", help="records per corpus, comma-separated")
    parser.add_argument("--files", type=int, default=1, help="WARC files per corpus (default 1, like one CC file)")
    parser.add_argument("--configs", default="spine,defaults", help=f"any of {','.join(CONFIGS)}")
    parser.add_argument("--modes", default="one,multi", help=f"any of {','.join(MODES)}")
    parser.add_argument("--quick", action="store_true",
                        help="only the spine with one worker (the issue's targets): --configs spine --modes one")
    parser.add_argument("--keep", metavar="DIR", default=None, help="build the corpora and logs here and keep them")
    parser.add_argument("--plain-loop", nargs="+", metavar="WARC", help=argparse.SUPPRESS)  # the baseline's child
    args = parser.parse_args()
    if args.plain_loop:
        print(plain_loop([Path(p) for p in args.plain_loop]))
        return
    if args.quick:
        args.configs, args.modes = "spine", "one"
    sizes = [int(s) for s in args.sizes.split(",")]
    configs = args.configs.split(",")
    modes = args.modes.split(",")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lowbg-bench-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"psutil {'yes' if psutil else 'no (tree totals not sampled)'}; load average {os.getloadavg()[0]:.1f}")
        corpora = {}
        for n in sizes:
            folder = work / f"corpus-{n}"
            folder.mkdir(exist_ok=True)
            paths = sorted(folder.glob("*.warc.gz"))
            if len(paths) != args.files:
                paths = build_corpus(folder, n, args.files)
            corpora[n] = paths
            size = sum(p.stat().st_size for p in paths)
            print(f"corpus: {n} HTML records in {args.files} file(s), {size / 1e6:.1f} MB gzip")

        floor = measure(IMPORT_FLOOR_ARGV, work / "import-floor.log")
        print(f"import floor (`import pipeline.curate`: Beam, pyarrow; torch only with a language-model detector): "
              f"{_mb(floor.process_mb)}")
        base = {}
        # --quick: the loop at the smallest size only (it holds one record at a time: its peak does not depend
        # on the size, which the full benchmark shows), for every ratio
        for n in sizes[:1] if args.quick else sizes:
            base[n] = measure(baseline_argv(corpora[n]), work / f"baseline-{n}.log")
            print(f"baseline, plain warcio + extraction loop, {n} records: peak RSS {_mb(base[n].process_mb)}, "
                  f"{n / base[n].wall:.0f} docs/s")

        for config in configs:
            for mode in modes:
                peaks = {}
                for n in sizes:
                    out = work / f"out-{config}-{mode}-{n}"
                    log = work / f"{config}-{mode}-{n}.log"
                    p = peaks[n] = measure(curate_argv(corpora[n], out, config, mode), log)
                    shutil.rmtree(out, ignore_errors=True)
                    tree = f", launcher + workers {_mb(p.tree_mb)}" if mode != "one" else ""
                    print(f"{config}, {MODE_NAMES[mode]}, {n} records: peak RSS {_mb(p.process_mb)} "
                          f"({p.process_mb / base.get(n, base[sizes[0]]).process_mb:.1f}x the baseline){tree}; "
                          f"{n / p.wall:.0f} docs/s, wall {p.wall:.1f}s, {p.cpu:.1f} CPU-s; "
                          f"load average {os.getloadavg()[0]:.1f}")
                lo, hi = min(sizes), max(sizes)
                if lo == hi:
                    continue
                growth = peaks[hi].process_mb / peaks[lo].process_mb
                slope = (peaks[hi].process_mb - peaks[lo].process_mb) / ((hi - lo) / 1000)
                line = (f"  -> {config}, {MODE_NAMES[mode]}: growth {hi}/{lo} records {growth:.2f}x "
                        f"(target <= {FLAT_WITHIN:.1f}x: {_verdict(growth <= FLAT_WITHIN)}), "
                        f"{slope:.1f} MB per 1k records")
                if mode != "one" and peaks[lo].tree_mb and peaks[hi].tree_mb:
                    line += f"; launcher + workers growth {peaks[hi].tree_mb / peaks[lo].tree_mb:.2f}x"
                if config == "spine" and mode == "one":
                    worst = max(p.process_mb for p in peaks.values())
                    line += (f"; largest {_mb(worst)} (target <= {SPINE_ONE_WORKER_MB} MB: "
                             f"{_verdict(worst <= SPINE_ONE_WORKER_MB)})")
                print(line)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
