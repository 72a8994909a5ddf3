"""Run-statistics benchmark: what ``stats/`` costs the pipeline (target <= 10% of throughput), and how long the
report takes, in one run.

The same `lowbg curate` on the same corpus (the ingest benchmark's real pages), with the statistics and with the
RunStats transform replaced by nothing, back to back in each of ``--rounds`` rounds (alternating which goes first);
the figure is the median over rounds of the paired cost, ``1 - t_without / t_with``, so a change of machine load
between rounds cancels out. Both wall time and the child process's CPU time (user + system) are measured: on a
shared machine the CPU time is the steadier measure of the work the statistics add. The accumulator's own CPU
time per document, outside Beam and start-up, is measured too. Two configurations: the default pipeline
(language ID, quality signals, near dedup, fastText) and the spine (no language ID, no dedup, no detector), where
the statistics are the largest share of the work.

    python bench/stats.py [--records 4000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/detectors.py would shadow the detectors package: bench/ goes last.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT / "bench")]

CONFIGS = {
    "default (language ID, quality, near dedup, fastText)": ["--detectors", "fasttext"],
    "spine (no language ID, no dedup, no detector)": ["--detectors", "none", "--dedup", "none", "--skip-language-id"],
}


def curate_without_stats(argv: list[str]) -> int:
    """`lowbg curate` with RunStats replaced by a transform that does nothing (the baseline)."""
    import apache_beam as beam

    import pipeline.curate
    from pipeline.cli import main

    class NoStats(beam.PTransform):
        def __init__(self, *args, **kwargs):
            super().__init__()

        def expand(self, pcolls):
            # documents and errors come as several inputs (documents0, documents1, ...): any gives the pipeline
            return next(iter(pcolls.values())).pipeline | "Nothing" >> beam.Create([])

    pipeline.curate.RunStats = NoStats
    return main(["curate", *argv])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(paths: list[Path], output: Path, extra: list[str], stats: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `lowbg curate`."""
    argv = ["--output", str(output), "--overwrite", "--processed-at", "2026-01-01T00:00:00Z",
            "--direct_running_mode=in_memory", "--direct_num_workers=1", *extra]
    for p in paths:
        argv += ["--input", str(p)]
    command = [sys.executable, "-m", "pipeline.cli", "curate", *argv] if stats else \
        [sys.executable, __file__, "--curate-without-stats", *argv]
    start, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu
    assert (output / "stats" / "stats.json").exists() == stats
    return elapsed, cpu


def accumulator_alone(run_dir: Path, pipeline_cpu_per_doc: float) -> None:
    """The statistics' own work per document, without Beam or start-up: the accumulator over the run's rows."""
    import schemas
    from pipeline.document import Document
    from pipeline.stats import stats_of_documents

    manifest = json.loads((run_dir / "manifest.json").read_text())
    docs = [Document.from_row(r) for kind in ("curated", "rejected")
            for p in sorted((run_dir / kind).glob("*.parquet")) for r in schemas.read_shard(str(p)).to_pylist()]
    start = time.process_time()
    stats_of_documents(docs, manifest.get("thresholds"))
    per_doc = (time.process_time() - start) / len(docs)
    print(f"  accumulator alone (no Beam, no start-up): {1e6 * per_doc:.0f} us CPU per document = "
          f"{100 * per_doc / pipeline_cpu_per_doc:.1f}% of the pipeline's CPU per document (start-up included)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--curate-without-stats":
        sys.exit(curate_without_stats(sys.argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spine", action="store_true", help="also measure the spine configuration")
    args = parser.parse_args()
    from ingest import build_corpus

    work = Path(tempfile.mkdtemp(prefix="lowbg-bench-stats-"))
    try:
        paths = build_corpus(work, args.records, args.files)
        print(f"corpus: {args.records} real-page HTML records in {args.files} files; load average "
              f"{os.getloadavg()[0]:.1f} at start")
        for label, extra in list(CONFIGS.items())[:2 if args.spine else 1]:
            times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
            for r in range(args.rounds):
                for stats in ((True, False) if r % 2 == 0 else (False, True)):
                    times[stats].append(run(paths, work / f"out-{stats}", extra, stats))
            docs = json.loads((work / "out-True" / "manifest.json").read_text())["counts"]
            n = docs["curated"] + docs["rejected"]
            print(f"{label}: {n} documents")
            for i, what in ((0, "wall"), (1, "CPU")):
                paired = sorted(1 - a[i] / b[i] for a, b in zip(times[False], times[True]))
                with_s, without_s = min(t[i] for t in times[True]), min(t[i] for t in times[False])
                print(f"  {what:>4}: without stats {[round(t[i], 1) for t in times[False]]} s, with stats "
                      f"{[round(t[i], 1) for t in times[True]]} s (best: {n / without_s:.0f} vs {n / with_s:.0f} "
                      f"docs/s) -> stats cost, median of {len(paired)} paired rounds: "
                      f"{100 * statistics.median(paired):.1f}% of throughput (rounds: "
                      f"{', '.join(f'{100 * p:.1f}%' for p in paired)}; target <= 10%)")
            if extra == CONFIGS[next(iter(CONFIGS))]:
                accumulator_alone(work / "out-True", min(t[1] for t in times[True]) / n)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline.cli", "report", str(work / "out-True")], check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        print(f"lowbg report on the last run (with stats): {time.perf_counter() - start:.1f} s, process start included")
        size = sum(p.stat().st_size for p in (work / "out-True" / "stats").iterdir())
        print(f"stats/ size: {size / 1024:.0f} KiB")
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load "
              f"average {os.getloadavg()[0]:.1f} at end")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
