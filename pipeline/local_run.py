"""`lowbg curate --local-workers N`: one run on N local processes, the same output as one worker, byte for byte.

Beam's DirectRunner does not scale on one machine (``multi_processing`` measured 1.16-1.44x on 2 cores: one
launcher process decodes and re-encodes every element between stages). A local run is instead split by input
file, as DataTrove splits a job into tasks:

1. The launcher lists the inputs (the patterns, the path lists, ``--max-files``, or the files of one
   ``--input-slice``, cut once here and never again by a worker) once, fingerprints each distinct
   file (:func:`pipeline.ingest.fingerprint`: the key the pipeline uses to find the same bytes under two names),
   and deals the groups of files with one fingerprint to the workers, largest first, each to the least loaded
   (a path listed twice and copies of one file always go to the same worker, whose pipeline then records them
   exactly as one worker would). A pattern that cannot be listed or matches nothing goes to worker 0 as a
   pattern, for its pipeline to report as an error row as it always does.
2. Each worker is a one-worker run (``--direct_running_mode=in_memory``, its own process, forked from
   the launcher before any pipeline runs, so that it inherits the imports) of the same settings over its files,
   into a private staging folder ``<output>/.tmp-local/<i>``, with the number of buckets and the processing time
   the launcher resolved for the whole run. Its sinks stop at their sorted spill runs (:mod:`pipeline.sinks`,
   ``stop_at_runs``): each bucket's runs are kept as ``<kind>/run-<bucket>-<seq>.arrows`` (Arrow IPC of the
   kind's schema) instead of being merged into Parquet shards that this launcher would read back and rewrite.
   Each worker's run is checked (its manifest, counted from the rows in its runs, must balance) before anything
   is merged.
3. What crosses files splits the graph in two (:func:`pipeline.curate.split_stage`): dedup (``--dedup
   exact|near`` keeps the earliest copy across all files) and the machine-text decision (its thresholds are
   calibrated on every pre-cutoff score of the run, also with ``--thresholds``, which is only the fallback). Then
   each worker runs the *head* of the graph, the stages before the first of those (read, extract, content policy,
   language, quality; and dedup without copies and scoring, when the decision is where it splits): its rejected
   documents and errors are its runs as before, and what it keeps is its curated runs, the *staged*
   documents, which its statistics leave out (:class:`pipeline.curate.Phase`). Then one pipeline in the launcher
   (the same settings, ``in_memory``), the *tail*, reads every worker's staged documents (worker by worker, bucket
   by bucket, each bucket's runs merged in their sorted order: the order of the curated shards the worker would
   have written; Arrow IPC of the curated schema, which round-trips a Document exactly and is read as data,
   never unpickled) and runs the rest of the one-worker graph, the same code (:func:`pipeline.curate.build`), into
   ``<output>/.tmp-local/tail``: dedup, scoring, calibration and decision, with its sinks (stopping at their runs
   too) and its partial statistics. Its ledger is checked against the workers': every staged document leaves it
   once, curated, rejected or as an error (the rows in the run files, counted on both sides). With nothing that
   crosses files there is no tail and each worker runs the whole graph.
4. One deterministic merge (:func:`merge_runs`): every shard bucket is the k-way merge
   (:func:`pipeline.sinks.merge_sorted`) of the sorted runs of that bucket of every worker and of the tail (the
   curated ones: the tail's alone when there is one), straight from the runs, cut and written exactly as
   :mod:`pipeline.sinks` writes one worker's (:func:`pipeline.sinks.write_chunks`), buckets in parallel on the
   workers' processes, each bucket's runs deleted once merged; ``_inputs.jsonl`` is the union of the workers'
   records sorted by path; the statistics are the runs' partial accumulators (:data:`pipeline.stats.STATE_FILE`,
   JSON) merged; the thresholds file is the tail's (only the tail decides). Then the staging folder is deleted and
   the manifest is written from what is on disk (:func:`pipeline.curate.finish_run`), with the counters of all runs
   summed. Every run file lives under ``<output>/.tmp-local`` and is gone when the run ends, whether it succeeded or
   failed.

The tail is one process on one core: what it runs (dedup, scoring, the decision) takes as long and as much
memory as in a one-worker run, and bounds the speed-up of a run that dedups or scores. What a worker could do
for the tail without seeing other files (MinHash signatures, scores) is left for a later change
(docs/scaling.md).
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import queue
import shutil
import sys
from typing import TYPE_CHECKING

from common.cli import InputError
from pipeline import progress
from pipeline.document import utcnow
from pipeline.ingest import fingerprint, join_base, read_path_list
from pipeline.layout import (
    INPUTS_FILE,
    THRESHOLDS_FILE,
    check_writable,
    delete,
    exists,
    join,
    list_files,
    prepare_output,
    read_bytes,
    runs_by_bucket,
    write_bytes,
)
from pipeline.settings import CurateSettings
from pipeline.sinks import merge_sorted, read_run, run_rows, write_chunks
from pipeline.stats import STATE_FILE, RunStatsAccumulator, read_state, write_stats

if TYPE_CHECKING:
    from pipeline.curate import Phase

STAGING = ".tmp-local"
TAIL = "tail"  # the staging folder of a split run's second phase, beside the workers' 0, 1, ...
SHARD_KINDS = ("curated", "rejected", "errors")
_LOCAL_BEAM_FLAGS = ("--direct_running_mode", "--direct_num_workers", "--runner")


def check_local(settings: CurateSettings) -> None:
    """Refuse (:class:`InputError`, exit 2) a run that local workers cannot run: one for another runner."""
    for arg in settings.beam_args:
        if arg.startswith("--runner") and arg.split("=", 1)[-1] not in ("--runner", "DirectRunner", "direct"):
            raise InputError("--local-workers is for local runs (the DirectRunner): drop --runner")


@dataclasses.dataclass
class Plan:
    groups: list[tuple[int, list[tuple[str, bool]]]]  # (bytes, every listing (path, from a pattern) of one key)
    patterns: list[str]  # patterns that cannot be listed or match nothing: worker 0 reports them
    files: int  # distinct files to read


def plan(settings: CurateSettings) -> Plan:
    """The launcher's listing (module docstring, step 1). A file is handed on the way one worker's pipeline
    would have listed it: found by a pattern (the worker lists it again, as a pattern matching only it, so that
    its size is known as it would be), or named by a path list or ``--max-files`` (a path alone)."""
    from pipeline.curate import plan_inputs

    ingest = settings.ingest
    listed: list[tuple[str, int | None, bool]] = []
    failed: list[str] = []
    if ingest.input_slice:  # one worker's pipeline is given this slice's paths alone (curate.plan_inputs)
        listed = [(path, None, False) for path in plan_inputs(ingest) or []]
    for pattern in () if ingest.input_slice else ingest.inputs:
        try:
            found = list_files(pattern)
        except Exception:  # noqa: BLE001 - the worker's pipeline reports it, as one worker's would
            found = []
        if not found:
            failed.append(pattern)
        listed += [(f.path, f.size, True) for f in found]
    for path_list in () if ingest.input_slice else ingest.input_lists:
        listed += [(p, None, False) for p in read_path_list(path_list, ingest.input_base)]
    if ingest.max_files is not None and not ingest.input_slice:
        # one worker's pipeline is then given the paths alone (curate.plan_inputs)
        listed = [(path, None, False) for path, _, _ in listed[: ingest.max_files]]
    sizes: dict[str, int | None] = {}
    for path, size, _ in listed:
        sizes[path] = sizes.get(path) if sizes.get(path) is not None else size
    by_key: dict[tuple, list[str]] = {}
    weight: dict[tuple, int] = {}
    for path, size in sorted(sizes.items()):
        key = fingerprint(path, size)
        by_key.setdefault(key, []).append(path)
        weight[key] = weight.get(key, 0) + (size or (key[1] if key[0] == "fingerprint" else 0))
    listings: dict[str, list[tuple[str, bool]]] = {}
    for path, _, from_pattern in listed:
        listings.setdefault(path, []).append((path, from_pattern))
    groups = [(weight[key], [item for path in paths for item in listings[path]]) for key, paths in by_key.items()]
    return Plan(groups, failed, len(sizes))


def deal(groups: list[tuple[int, list]], workers: int) -> list[list]:
    """Groups to workers, largest first, each to the least loaded (ties: the lowest index): deterministic."""
    loads = [0] * workers
    assigned: list[list] = [[] for _ in range(workers)]
    for size, items in sorted(groups, key=lambda g: (-g[0], g[1])):
        i = min(range(workers), key=lambda w: (loads[w], w))
        loads[i] += max(size, 1)
        assigned[i] += items
    return assigned


def literal_pattern(path: str) -> str:
    """A pattern that matches exactly ``path`` (glob's special characters in brackets)."""
    return "".join(f"[{c}]" if c in "*?[]" else c for c in path)


def worker_settings(settings: CurateSettings, staging: str, paths_file: str | None, patterns: list[str],
                    num_buckets: int, processed_at) -> CurateSettings:
    beam_args = [a for a in settings.beam_args if not a.startswith(_LOCAL_BEAM_FLAGS)]
    return dataclasses.replace(
        settings,
        ingest=dataclasses.replace(settings.ingest, inputs=tuple(patterns),
                                   input_lists=(paths_file,) if paths_file else (),
                                   input_base="", max_files=None, input_slice=None),
        sinks=dataclasses.replace(settings.sinks, output=staging, num_buckets=num_buckets, overwrite=True),
        processed_at=processed_at,
        beam_args=(*beam_args, "--direct_running_mode=in_memory", "--direct_num_workers=1"),
    )


_progress_queue = None  # in a worker process: where its progress goes (set by the pool's initializer)


def _set_progress_queue(progress_queue) -> None:
    global _progress_queue
    _progress_queue = progress_queue


def _worker(settings: CurateSettings, phase: Phase | None) -> dict:
    """One worker process: a one-worker run (its manifest, checked) with its statistics' state kept; the head of
    the graph alone when the run is split (``phase``)."""
    from pipeline.curate import run_curate

    progress_queue = _progress_queue
    sink = progress.Batched(lambda f, r: progress_queue.put((f, r))) if progress_queue is not None else None
    try:
        return run_curate(settings, stats_state=True, progress_sink=sink or _no_progress, phase=phase,
                          stop_at_runs=True)
    finally:
        if sink is not None:
            sink.flush()


def _no_progress(files: int, records: int) -> None:
    pass


def run_local(settings: CurateSettings, workers: int) -> dict:
    """The whole local run (module docstring); returns its manifest."""
    from pipeline.curate import MAX_DEFAULT_BUCKETS, Phase, count_inputs, finish_run, plan_inputs, split_stage

    check_local(settings)
    output = settings.sinks.output
    check_writable(output)
    prepare_output(output, settings.sinks.overwrite)
    processed_at = settings.processed_at or utcnow()
    listing = plan(settings)
    n_inputs = count_inputs(settings.ingest, plan_inputs(settings.ingest) if settings.ingest.input_slice else None)
    num_buckets = settings.sinks.num_buckets or max(1, min(MAX_DEFAULT_BUCKETS, n_inputs or 256))
    workers = max(1, min(workers, len(listing.groups)))
    assigned = deal(listing.groups, workers)
    staging_root = join(output, STAGING)
    stagings = [join(staging_root, str(i)) for i in range(workers)]
    jobs = []
    for i, items in enumerate(assigned):
        patterns = (listing.patterns if i == 0 else []) + [literal_pattern(p) for p, pattern in items if pattern]
        paths = [p for p, pattern in items if not pattern]
        paths_file = join(staging_root, f"{i}.paths") if paths else None
        if paths_file:
            write_bytes(paths_file, "".join(p + "\n" for p in paths).encode())
        jobs.append(worker_settings(settings, stagings[i], paths_file, patterns, num_buckets, processed_at))
    split = split_stage(settings)
    tail = None
    if split is not None:  # the tail's run: the same settings, no inputs, its own staging folder
        tail = worker_settings(settings, join(staging_root, TAIL), None, [], num_buckets, processed_at)
    try:
        manifests = _run_workers(jobs, listing.files, stagings, output, num_buckets, settings.sinks.shard_size,
                                 Phase(split) if split is not None else None, tail)
    finally:
        _remove_tree(staging_root)
    extra: dict = {"processed_at": processed_at.isoformat(), "num_buckets": num_buckets}
    if settings.ingest.input_slice:  # as a one-worker run of the slice records it (pipeline.curate)
        index, count = settings.ingest.input_slice
        extra["input_slice"] = {"index": index, "count": count, "files": n_inputs}
    return finish_run(output, settings.to_json(), sum_metrics(m.get("metrics") or {} for m in manifests), extra,
                      job_finished=True)


def _run_workers(jobs: list[CurateSettings], files: int, stagings: list[str], output: str, num_buckets: int,
                 shard_size: int, head: Phase | None = None, tail: CurateSettings | None = None) -> list[dict]:
    """Run the workers (the heads of a split run: ``head``), then the tail in this process when the run is split,
    then merge their runs (the buckets merged in parallel by the workers' processes). Returns the workers' manifests
    and the tail's counters."""
    # fork where there is one: the workers inherit the launcher's imports (Beam, pyarrow, torch through
    # apache_beam.ml.inference: ~4.5 CPU-s a process, the largest cost of a worker on small inputs). The launcher
    # has run no pipeline and started no thread yet (the progress bar's monitor thread starts after the fork).
    methods = mp.get_all_start_methods()
    context = mp.get_context("fork" if "fork" in methods else "spawn")
    progress_queue = context.Queue() if progress.on_terminal() else None
    # a queue reaches the workers by inheritance only: through the pool's initializer, not as an argument
    with context.Pool(len(jobs), initializer=_set_progress_queue, initargs=(progress_queue,)) as pool:
        pending = [pool.apply_async(_worker, (job, head)) for job in jobs]
        bar = progress.Bar(files) if progress_queue is not None else None
        while not all(p.ready() for p in pending):
            if progress_queue is not None and bar is not None:
                try:
                    bar.update(*progress_queue.get(timeout=0.2))
                except queue.Empty:
                    pass
            else:
                pending[0].wait(0.2)
        while progress_queue is not None and bar is not None and not progress_queue.empty():
            bar.update(*progress_queue.get())
        if bar is not None:
            bar.close()
        manifests = [p.get() for p in pending]  # re-raises a worker's failure
        tail_staging = None
        if head is not None and tail is not None:
            manifests.append(run_tail(tail, head, stagings))
            tail_staging = tail.sinks.output
        merge_runs(stagings, output, num_buckets, shard_size, pool.starmap, tail_staging)
        return manifests


def run_tail(settings: CurateSettings, head: Phase, stagings: list[str]) -> dict:
    """Phase 2 of a split run (module docstring), in this process: the stages from ``head.split`` on over the
    heads' staged documents (their curated runs, worker by worker and bucket by bucket), into
    ``settings.sinks.output``, whose sinks stop at their sorted runs too. Its ledger is checked against the heads':
    every staged document leaves it exactly once, curated, rejected or as an error (the rows in the run files,
    counted). Returns its counters (``metrics``)."""
    from pipeline.curate import Phase, run_curate

    staged = tuple(tuple(runs) for staging in stagings for runs in runs_by_bucket(staging, "curated").values())
    rows_in = sum(run_rows(path) for runs in staged for path in runs)
    if progress.on_terminal():  # the bar of files has closed; the rest of the run has no files to count
        print(f"{rows_in} documents kept by the workers: {head.split} and the stages after it, in one process",
              file=sys.stderr, flush=True)
    result = run_curate(settings, stats_state=True, progress_sink=_no_progress, phase=Phase(head.split, staged),
                        stop_at_runs=True)
    rows_out = sum(run_rows(path) for kind in SHARD_KINDS
                   for runs in runs_by_bucket(settings.sinks.output, kind).values() for path in runs)
    if rows_in != rows_out:
        raise RuntimeError(f"the second phase of a local run wrote {rows_out} rows for {rows_in} staged documents: "
                           "not one run")
    return result


def sum_metrics(per_worker) -> dict[str, dict[str, int]]:
    total: dict[str, dict[str, int]] = {}
    for metrics in per_worker:
        for stage, names in metrics.items():
            mine = total.setdefault(stage, {})
            for name, n in names.items():
                mine[name] = mine.get(name, 0) + n
    return {stage: dict(sorted(names.items())) for stage, names in sorted(total.items())}


# --- merge --------------------------------------------------------------------------------------------------


def merge_runs(stagings: list[str], output: str, num_buckets: int, shard_size: int, starmap=None,
               tail: str | None = None) -> None:
    """The workers' runs (in ``stagings``) into one run in ``output`` (module docstring, step 4); with the ``tail``
    of a split run, the curated shards are the tail's alone (the workers' curated runs are what the tail read), the
    rejected and errors shards, statistics and thresholds those of every run, the inputs record the workers'.
    Buckets are independent: ``starmap`` (a pool's) merges them in parallel."""
    every = [*stagings, tail] if tail is not None else stagings
    sources = {"curated": [tail] if tail is not None else stagings, "rejected": every, "errors": every}
    tasks = []
    for kind in SHARD_KINDS:
        found = [runs_by_bucket(staging, kind) for staging in sources[kind]]
        for bucket in range(num_buckets):
            runs = [path for by_bucket in found for path in by_bucket.get(bucket, [])]
            if runs:
                tasks.append((runs, output, kind, bucket, shard_size))
    if starmap is None:
        for task in tasks:
            merge_bucket(*task)
    else:
        starmap(merge_bucket, tasks, chunksize=max(1, len(tasks) // 16))
    _merge_inputs(stagings, output)
    thresholds = _merge_thresholds(every, output)
    _merge_stats(every, output, thresholds)


def merge_bucket(runs: list[str], output: str, kind: str, bucket: int, shard_size: int) -> None:
    """One bucket of the run: its sorted runs (every source's, source by source, each's in its merge order) merged
    into the one sorted order and cut into shards, as one worker's sink writes them; then the runs are deleted."""
    rows = merge_sorted([read_run(path) for path in runs], kind)
    for _ in write_chunks(rows, kind, shard_size, output, bucket):
        pass
    delete(runs)


def _merge_inputs(stagings: list[str], output: str) -> None:
    items = []
    for staging in stagings:
        items += [json.loads(line) for line in read_bytes(join(staging, INPUTS_FILE)).decode().splitlines() if line]
    data = "".join(json.dumps(item, sort_keys=True) + "\n" for item in sorted(items, key=lambda d: d["path"]))
    write_bytes(join(output, INPUTS_FILE), data.encode())


def _merge_thresholds(stagings: list[str], output: str) -> dict | None:
    found = {read_bytes(join(s, THRESHOLDS_FILE)) for s in stagings if exists(join(s, THRESHOLDS_FILE))}
    if not found:
        return None
    if len(found) != 1:
        raise RuntimeError("the workers of a local run wrote different thresholds: not one run")
    (data,) = found
    write_bytes(join(output, THRESHOLDS_FILE), data)
    return json.loads(data)


def _merge_stats(stagings: list[str], output: str, thresholds: dict | None) -> None:
    merged = RunStatsAccumulator()
    run = None
    for staging in stagings:
        merged.merge(read_state(staging))
        if run is None:
            run = json.loads(read_bytes(join(staging, "stats/stats.json")))["run"]
    stats, words = merged.to_json(run or {}, thresholds, "lowbg curate")
    write_stats(output, stats, words)


def _remove_tree(path: str) -> None:
    if "://" in path:
        from apache_beam.io.filesystems import FileSystems

        if FileSystems.exists(path):
            FileSystems.delete([path])
    else:
        shutil.rmtree(path, ignore_errors=True)


__all__ = ["STAGING", "STATE_FILE", "check_local", "deal", "join_base", "merge_runs", "plan", "run_local"]
