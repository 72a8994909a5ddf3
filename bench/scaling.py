"""Local scaling benchmark: `lowbg curate --local-workers 2` (and Beam's multi_processing) against one worker.

Issue 12, item 2: on 2 cores a local run must reach at least 1.7x one worker, with the same output. Corpus:
:func:`bench.ingest.build_corpus` (real pages of the bundled fixtures, reshuffled), several WARC files so that
workers have files to share. The spine (``--detectors none --dedup none --skip-language-id``) is run:

* with one worker (``--direct_running_mode=in_memory``): the reference, wall and CPU time;
* with ``--local-workers N`` (:mod:`pipeline.local_run`): independent one-worker processes over disjoint files,
  then one merge;
* with Beam's ``--direct_running_mode=multi_processing --direct_num_workers=N`` (for comparison);

and the output of each is compared with the reference's, file by file (shards, ``_inputs.jsonl``, statistics
without their writing time): a speed-up with a different output does not count. Each figure is the median of
``--rounds`` rounds, the configurations alternating within a round (a shared machine drifts); the load average is
printed with every line, since other processes on the same cores distort every wall-time ratio.

    python bench/scaling.py [--records 16000] [--files 8] [--workers 2] [--rounds 3]
    python bench/scaling.py --quick          # 4,000 records in 4 files, 1 round: about 2-3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import build_corpus  # noqa: E402

SPINE = ["--detectors", "none", "--dedup", "none", "--skip-language-id"]
TARGET = 1.7  # issue 12: 2 workers on 2 cores


def configurations(workers: int) -> dict[str, list[str]]:
    return {
        "one worker": ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
        f"--local-workers {workers}": ["--local-workers", str(workers)],
        f"multi_processing {workers}": ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"],
    }


def output_digest(out: Path) -> dict[str, str]:
    """sha256 of every file of a run but its manifest (and the statistics' writing time)."""
    digest = {}
    for p in sorted(out.rglob("*")):
        if not p.is_file() or p.name == "manifest.json":
            continue
        data = p.read_bytes()
        if p.name == "stats.json":
            doc = json.loads(data)
            doc.pop("written_at", None)
            data = json.dumps(doc, sort_keys=True).encode()
        digest[p.relative_to(out).as_posix()] = hashlib.sha256(data).hexdigest()
    return digest


def run(paths: list[Path], out: Path, extra: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the run's processes and their children)."""
    argv = [sys.executable, "-m", "pipeline.cli", "curate", "--output", str(out), "--overwrite",
            "--processed-at", "2026-01-01T00:00:00Z", *SPINE, *extra]
    for p in paths:
        argv += ["--input", str(p)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{' '.join(extra)}: exited {os.waitstatus_to_exitcode(status)}\n{err[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=16_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-multi-processing", action="store_true", help="leave Beam's multi_processing out")
    parser.add_argument("--quick", action="store_true", help="4,000 records in 4 files, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.records, args.files, args.rounds = 4000, 4, 1
    configs = configurations(args.workers)
    if args.no_multi_processing:
        configs.pop(f"multi_processing {args.workers}")
    work = Path(tempfile.mkdtemp(prefix="lowbg-bench-scaling-"))
    try:
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
              f"load average {os.getloadavg()[0]:.1f}")
        t = time.perf_counter()
        paths = build_corpus(work, args.records, args.files)
        print(f"corpus: {args.records} HTML records in {args.files} files, "
              f"{sum(p.stat().st_size for p in paths) / 1e6:.1f} MB gzip (built in {time.perf_counter() - t:.1f}s)")
        walls: dict[str, list[float]] = {name: [] for name in configs}
        cpus: dict[str, list[float]] = {name: [] for name in configs}
        reference = None
        for r in range(args.rounds):
            for name, extra in configs.items():
                out = work / f"out-{r}-{len(walls[name])}-{name.split()[0].strip('-')}"
                load = os.getloadavg()[0]
                wall, cpu = run(paths, out, extra)
                digest = output_digest(out)
                reference = reference if reference is not None else digest
                same = digest == reference
                walls[name].append(wall)
                cpus[name].append(cpu)
                print(f"round {r + 1}, {name}: wall {wall:.1f}s, {cpu:.1f} CPU-s, {args.records / wall:.0f} records/s; "
                      f"output {'identical to one worker' if same else 'DIFFERENT from one worker'}; "
                      f"load average at start {load:.1f}", flush=True)
                if not same:
                    raise SystemExit(f"{name}: output differs from one worker's: {out}")
                shutil.rmtree(out, ignore_errors=True)
        one = statistics.median(walls["one worker"])
        for name in configs:
            if name == "one worker":
                continue
            wall = statistics.median(walls[name])
            verdict = "met" if one / wall >= TARGET else "NOT MET"
            print(f"{name}: {one / wall:.2f}x one worker (median wall {wall:.1f}s vs {one:.1f}s; target >= "
                  f"{TARGET}x on 2 cores: {verdict}); CPU {statistics.median(cpus[name]):.1f} vs "
                  f"{statistics.median(cpus['one worker']):.1f} CPU-s")
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
