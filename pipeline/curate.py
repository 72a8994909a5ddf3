"""`lowbg curate`: build and run the curation pipeline, then write and check the manifest.

Graph: ReadWarc -> ExtractText -> DocumentSteps (content policy, language, quality) -> Dedup (exact, reference,
near) -> ScoreCascade (detectors) -> CalibrateAndDecide -> Parquet sinks, and RunStats (the ``stats/``
aggregates, pipeline/stats.py) over the same documents and errors. Each stage follows :mod:`pipeline.steps`'
contract: its kept documents go on to the next stage, the documents it rejects leave there for the rejected
shards, and its errors go to the errors shards; what the last stage keeps is curated. Each stage is built from
its own part of the typed settings (:mod:`pipeline.settings`), parsed once from the command line. The manifest
is written last, by the launcher, after the job has finished (the run-completion contract, :mod:`schemas.run`),
with the settings recorded whole and the stages' counters by stage.

The graph can also be built in two parts, split before the first stage that needs every file's documents
(:func:`split_stage`, :class:`Phase`): a *head* per share of the input files and one *tail* over what the heads
kept. ``lowbg curate --local-workers N`` (:mod:`pipeline.local_run`) runs them; the stages are the same objects
either way (:func:`document_stages`).

Before any input is read, the launcher refuses what cannot work (exit 2, one line): a bad command line
(:mod:`pipeline.options`), an output folder that cannot be written or already holds a run, a missing
``--input-list``, a language, detector or thresholds file, or reference index that does not load or does not fit
(``--languages`` must be labels of the language model). A job that does not end ``DONE``, or whose counts do not
balance, gets no manifest (exit 1).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState

import schemas
from common.cli import ArgumentParser, InputError, RunFailed, run_command
from common.hashing import in_sample
from pipeline import progress
from pipeline.decision import CalibrateAndDecide, check_thresholds_file
from pipeline.dedup import Dedup, ReferenceIndexError
from pipeline.document import Document, utcnow
from pipeline.ingest import ExtractText, ReadWarc, read_path_list, slice_inputs
from pipeline.langid import LanguageModelError, LanguageStep, check_language_model
from pipeline.layout import (
    INPUTS_FILE,
    MANIFEST_FILE,
    THRESHOLDS_FILE,
    check_writable,
    delete,
    exists,
    join,
    list_files,
    prepare_output,
    read_json,
    read_run_manifest,
    temporaries,
    write_bytes,
)
from pipeline.manifest import UnbalancedRun, build_manifest, check_balance, write_manifest
from pipeline.options import parse_curate_args, parse_local_workers
from pipeline.policy import ContentPolicy
from pipeline.quality import QualityStep
from pipeline.scoring import ScoreCascade, detector_specs
from pipeline.settings import CurateSettings, IngestSettings
from pipeline.sinks import WriteShards, merge_sorted, read_run
from pipeline.stats import RunStats
from pipeline.steps import ERRORS, KEPT, NAMESPACE, REJECTED_TAG, DocumentSteps
from schemas.run import IncompleteRun

MAX_DEFAULT_BUCKETS = 1024


class StartupError(InputError):
    """A configuration that cannot run (a model that does not load): raised before any input is read."""


def check_input_lists(paths: list[str]) -> None:
    """A path list that does not exist is a mistake in the command, not a damaged input: refuse it at start."""
    for path in paths:
        try:
            found = exists(path)
        except Exception as exc:  # an unknown scheme, a filesystem that cannot be reached
            raise InputError(f"--input-list {path}: {exc}") from exc
        if not found:
            raise InputError(f"--input-list {path}: no such file")


def count_inputs(ingest: IngestSettings, planned: list[str] | None = None) -> int | None:
    if planned is not None and ingest.input_slice:  # the files of this slice
        return len(set(planned))
    n = 0
    for pattern in ingest.inputs:
        try:
            n += len(list_files(pattern))
        except Exception:
            return None
    if ingest.input_lists:
        return None if ingest.max_files is None else n + ingest.max_files
    return n


def plan_inputs(ingest: IngestSettings) -> list[str] | None:
    """The input files of a bounded run (``--max-files``) or of one slice (``--input-slice``), listed here on the
    launcher, in order; None when the pipeline lists them itself. A slice is cut from every input, sampled
    (``--sample-files``) first; a pattern that matches nothing stays in the list as itself, so one slice reports
    it as an input that cannot be opened."""
    if ingest.max_files is None and ingest.input_slice is None:
        return None
    limit = None if ingest.input_slice else ingest.max_files
    paths: list[str] = []
    for pattern in ingest.inputs:
        paths += [f.path for f in list_files(pattern)] or ([pattern] if ingest.input_slice else [])
    for path_list in ingest.input_lists:
        paths += read_path_list(path_list, ingest.input_base, limit)
    if ingest.input_slice:
        paths = slice_inputs([p for p in paths if in_sample(p, ingest.sample_files)], *ingest.input_slice)
    return paths[: ingest.max_files]


def document_steps(settings: CurateSettings) -> list:
    """Per-document steps, in order: each stores its signals and may reject with its reason code."""
    language = [LanguageStep(settings.language)] if settings.language.enabled else []
    return [ContentPolicy(), *language, QualityStep(settings.quality)]


# The stages after ExtractText, in order (module docstring). A local run splits the graph before the first of them
# that needs every file's documents (:func:`split_stage`).
DEDUP_STAGE, SCORE_STAGE, DECIDE_STAGE = "Dedup", "ScoreCascade", "CalibrateAndDecide"


def split_stage(settings: CurateSettings) -> str | None:
    """The first stage whose output for one document depends on other files' documents, or None when every stage
    is per document: dedup keeps the earliest copy across all files; calibration turns every pre-cutoff score of
    the run into thresholds (also with ``--thresholds``, which is a fallback under ``--min-calibration-docs``, and
    whose record counts the run's pre-cutoff documents)."""
    if settings.dedup.mode != "none":
        return DEDUP_STAGE
    if settings.scoring.detectors:
        return DECIDE_STAGE
    return None


@dataclasses.dataclass(frozen=True)
class Phase:
    """One pipeline of a local run split at ``split`` (:mod:`pipeline.local_run`). The head (``staged`` None) reads
    its files and runs the stages before ``split``; what they keep is its curated runs, the *staged* documents,
    which its statistics leave out. The tail reads the ``staged`` runs of every head (one tuple of sorted runs per
    head and bucket, in order: each tuple merged into one sorted sequence), and runs ``split`` and every stage
    after it, with the sinks and statistics of a whole run (no inputs record)."""

    split: str
    staged: tuple[tuple[str, ...], ...] | None = None

    @property
    def tail(self) -> bool:
        return self.staged is not None


def document_stages(settings: CurateSettings, detectors: list, dedup: Dedup) -> list[tuple[str, beam.PTransform]]:
    """The stages after ExtractText, named, in order (:mod:`pipeline.steps`' stage contract)."""
    stages: list[tuple[str, beam.PTransform]] = [("DocumentSteps", DocumentSteps(document_steps(settings))),
                                                 (DEDUP_STAGE, dedup)]
    if settings.scoring.detectors:
        stages.append((SCORE_STAGE, ScoreCascade(settings.scoring, detectors)))
        stages.append((DECIDE_STAGE, CalibrateAndDecide(settings.decision, detectors, settings.sinks.output)))
    return stages


class ReadStaged(beam.PTransform):
    """The staged documents of a local run's heads (their curated runs, :class:`Phase`) -> Documents, one group of
    runs (a head's bucket) after the other in the order given, each group's runs merged in their sorted order: the
    order of the curated shards the head's sinks would have cut from them."""

    def __init__(self, groups: tuple[tuple[str, ...], ...]):
        super().__init__()
        self.groups = [list(runs) for runs in groups]

    def expand(self, pipeline):
        return (pipeline
                | "StagedRuns" >> beam.Create(self.groups, reshuffle=False)
                | "ReadDocuments" >> beam.FlatMap(read_staged))


def read_staged(runs: list[str]):
    """The documents of one head's bucket: its sorted runs (Arrow IPC of the curated schema, read as data) merged,
    a record batch of each run in memory at a time."""
    for row in merge_sorted([read_run(path) for path in runs], "curated"):
        yield Document.from_row(row)


def build(pipeline: beam.Pipeline, settings: CurateSettings, processed_at: dt.datetime, num_buckets: int,
          detectors: list, dedup: Dedup, planned: list[str] | None = None, stats_state: bool = False,
          phase: Phase | None = None, stop_at_runs: bool = False) -> None:
    """The graph (module docstring): each stage's kept documents go to the next stage, its rejected documents to
    the rejected shards and its errors to the errors shards (:mod:`pipeline.steps`' stage contract). ``phase``:
    only the head or the tail of it (:class:`Phase`), a local run's two phases. ``stop_at_runs``: the sinks keep
    their sorted runs instead of writing shards (a local run's worker or tail, :class:`WriteShards`)."""
    version = schemas.package_version()
    output, sinks = settings.sinks.output, settings.sinks
    stages = document_stages(settings, detectors, dedup)
    split = [name for name, _ in stages].index(phase.split) if phase is not None else len(stages)
    outputs = []  # every stage's {kept, rejected, errors}
    read = None
    if phase is None or not phase.tail:
        planned = planned if planned is not None else plan_inputs(settings.ingest)
        read = pipeline | "ReadWarc" >> ReadWarc(settings.ingest, planned)
        outputs.append(read["records"] | "ExtractText" >> ExtractText(settings.provenance, processed_at, version))
        kept = outputs[-1][KEPT]
        stages = stages[:split]
    else:
        kept = pipeline | "ReadStaged" >> ReadStaged(phase.staged or ())
        stages = stages[split:]
    thresholds = None
    for name, stage in stages:
        outputs.append(kept | name >> stage)
        kept = outputs[-1][KEPT]
        if isinstance(stage, CalibrateAndDecide):
            thresholds = stage.thresholds

    # No Flatten of documents or errors: Beam's local runner materialises a Flatten's output (every element
    # buffered before the next stage runs). The sinks and the statistics take the lists and flatten only what
    # they reduce them to (run file paths, partial statistics).
    curated = kept
    rejected = [stage[REJECTED_TAG] for stage in outputs if REJECTED_TAG in stage]
    errors = [pcoll | f"StampErrors{i or ''}" >> beam.Map(_stamp_error, processed_at, version)
              for i, pcoll in enumerate(([read["errors"]] if read is not None else [])
                                        + [stage[ERRORS] for stage in outputs if ERRORS in stage])]
    if not errors:  # a tail without a stage that can fail (dedup alone)
        errors = [pipeline | "NoErrors" >> beam.Create([])]
    _ = curated | "WriteCurated" >> WriteShards(sinks, "curated", num_buckets, stop_at_runs)
    _ = _numbered(rejected) | "WriteRejected" >> WriteShards(sinks, "rejected", num_buckets, stop_at_runs)
    _ = _numbered(errors) | "WriteErrors" >> WriteShards(sinks, "errors", num_buckets, stop_at_runs)
    # A head's kept documents are not final: the tail counts them once it has decided them.
    final = rejected if phase is not None and not phase.tail else [curated, *rejected]
    _ = ({**_numbered(final, "documents"), **_numbered(errors, "errors")}
         | "RunStats" >> RunStats(output, {"processed_at": processed_at.isoformat()}, thresholds, stats_state))
    if read is not None:
        _ = (read["inputs"]
             | "CollectInputs" >> beam.combiners.ToList()
             | "WriteInputs" >> beam.Map(_write_inputs, output))


def _numbered(pcolls: list, prefix: str = "") -> dict:
    """Several inputs of one transform as Beam takes them: a flat dict."""
    return {f"{prefix}{i}": pcoll for i, pcoll in enumerate(pcolls)}


def _stamp_error(error, processed_at: dt.datetime, version: str):
    """Errors are raised in many places; the run's timestamp and version are put on them in one."""
    error.processed_at = error.processed_at or processed_at
    error.pipeline_version = error.pipeline_version or version
    return error


def _write_inputs(items: list[dict], output: str) -> None:
    data = "".join(json.dumps(item, sort_keys=True) + "\n" for item in sorted(items, key=lambda d: d["path"]))
    write_bytes(join(output, INPUTS_FILE), data.encode())


def read_thresholds(output: str) -> dict:
    path = join(output, THRESHOLDS_FILE)
    return read_json(path) if exists(path) else {}


def query_counters(result) -> dict[str, dict[str, int]]:
    """Our stages' counters as the runner reports them, by stage (some portable runners report none)."""
    try:
        counters = result.metrics().query(MetricsFilter())["counters"]
    except Exception:  # a runner without metrics support: the on-disk counts still decide the balance
        return {}
    prefix = f"{NAMESPACE}."
    totals: dict[str, dict[str, int]] = {}
    for c in counters:
        namespace = c.key.metric.namespace or ""
        if not namespace.startswith(prefix):
            continue
        value = c.committed if c.committed is not None else c.attempted
        stage = totals.setdefault(namespace[len(prefix):], {})
        stage[c.key.metric.name] = stage.get(c.key.metric.name, 0) + int(value or 0)
    return {stage: dict(sorted(names.items())) for stage, names in sorted(totals.items())}


def runs_in_process(beam_args: tuple[str, ...]) -> bool:
    """The DirectRunner with its DoFns in this process (not ``multi_processing``): the reader's progress reaches
    the launcher (:mod:`pipeline.progress`)."""
    joined = " ".join(beam_args)
    return "multi_processing" not in joined and all(
        a.split("=", 1)[-1] in ("DirectRunner", "direct") for a in beam_args if a.startswith("--runner="))


def run_curate(argv: list[str] | CurateSettings, stats_state: bool = False, progress_sink=None,
               phase: Phase | None = None, stop_at_runs: bool = False) -> dict:
    """One run (one worker's, for :mod:`pipeline.local_run`, which asks for its statistics' state, takes its
    progress through ``progress_sink``, may run one ``phase`` of the graph and has its sinks stop at their sorted
    runs, ``stop_at_runs``: its manifest then counts the runs' rows); returns its manifest. A tail
    (:class:`Phase`) has no inputs and no manifest of its own: it returns its counters alone (``metrics``)."""
    settings = argv if isinstance(argv, CurateSettings) else parse_curate_args(argv)
    output = settings.sinks.output
    tail = phase is not None and phase.tail
    # The output first (cheap, and the commonest surprise), then everything else that can be checked without
    # reading input: a mistake is reported in seconds, not after the whole job has run.
    check_writable(output)
    prepare_output(output, settings.sinks.overwrite)
    if not tail:
        check_input_lists(list(settings.ingest.input_lists))
    processed_at = settings.processed_at or utcnow()
    # Models are checked here once, so one that cannot load fails before any input is read.
    try:
        if settings.language.enabled:
            check_language_model(settings.language.model, settings.language.languages)
    except LanguageModelError as exc:
        raise StartupError(str(exc)) from exc
    scoring = settings.scoring
    try:  # described from the registry (model files hashed, model folders checked), nothing loaded
        detectors = detector_specs(scoring) if scoring.detectors else []
    except Exception as exc:
        raise StartupError(f"cannot load detector(s) {','.join(scoring.detectors)}: {type(exc).__name__}: "
                           f"{exc}") from exc
    thresholds_file = settings.decision.thresholds
    if thresholds_file:
        try:
            check_thresholds_file(thresholds_file, detectors)
        except (OSError, ValueError) as exc:
            message = str(exc) if thresholds_file in str(exc) else f"--thresholds {thresholds_file}: {exc}"
            raise StartupError(message) from exc
    try:
        # refuses a reference index built with other MinHash settings; joins decisions through runs on disk
        dedup = Dedup(settings.dedup, spill_dir=settings.sinks.output)
    except (OSError, ReferenceIndexError) as exc:
        raise StartupError(str(exc)) from exc
    planned = plan_inputs(settings.ingest) if not tail else None
    n_inputs = count_inputs(settings.ingest, planned) if not tail else None
    num_buckets = settings.sinks.num_buckets or max(1, min(MAX_DEFAULT_BUCKETS, n_inputs or 256))
    options = PipelineOptions(list(settings.beam_args))
    pipeline = beam.Pipeline(options=options)
    build(pipeline, settings, processed_at, num_buckets, detectors, dedup, planned, stats_state, phase, stop_at_runs)
    bar = None
    if progress_sink is None and progress.on_terminal() and runs_in_process(settings.beam_args):
        bar = progress.Bar(n_inputs if not settings.ingest.input_lists else None)
        progress_sink = bar.update
    try:
        with progress.installed(progress_sink):
            result = pipeline.run()
            if getattr(result, "has_job", True):
                result.wait_until_finish()
    finally:
        if bar is not None:
            bar.close()
    if not getattr(result, "has_job", True):
        # A Flex Template launch or --dry_run submits (or only builds) a job: there is nothing on disk yet. The
        # manifest is written afterwards with `lowbg manifest OUTPUT`.
        return {}
    state = getattr(result, "state", PipelineState.DONE)
    if state != PipelineState.DONE:
        raise RunFailed(f"the job ended {state}, not DONE: no manifest written, {output} is not a finished run")
    if tail:  # the launcher checks its ledger against the heads' and merges it (pipeline.local_run)
        return {"metrics": query_counters(result)}
    extra = {"processed_at": processed_at.isoformat(), "num_buckets": num_buckets}
    if settings.ingest.input_slice:  # which part of the whole this run is: the slices' files add up to it
        index, count = settings.ingest.input_slice
        extra["input_slice"] = {"index": index, "count": count, "files": n_inputs}
    return finish_run(output, settings.to_json(), query_counters(result), extra, job_finished=True,
                      runs=stop_at_runs)


def finish_run(output: str, options: dict, metrics: dict[str, dict[str, int]], extra: dict,
               job_finished: bool = False, runs: bool = False) -> dict:
    """Build the manifest from what is on disk, fail loudly unless it balances, then write it (last).

    Files still under a temporary name mean a writer is running, or died: refused, unless the caller knows the
    job has finished (``job_finished``), when they are debris of failed or retried attempts and are deleted.
    ``runs``: a local run's worker, whose rows are in its kept sorted runs (:func:`build_manifest`).
    """
    leftovers = temporaries(output)
    if leftovers and not job_finished:
        raise InputError(f"{output} holds {len(leftovers)} file(s) still under a temporary name (e.g. "
                         f"{leftovers[0]}): a writer may still be running. If the job has finished, run again with "
                         "--job-finished to delete them")
    if leftovers:
        delete(leftovers)
    if not exists(join(output, INPUTS_FILE)):
        raise InputError(f"{output} has no {INPUTS_FILE}: not a `lowbg curate` output folder, or the job has not "
                         "finished reading its inputs")
    extra = {**extra, "thresholds": read_thresholds(output)}
    manifest = build_manifest(output, options, metrics, extra, runs)
    check_balance(manifest)
    write_manifest(output, manifest)
    return manifest


def build_manifest_parser() -> ArgumentParser:
    p = ArgumentParser(prog="lowbg manifest", description=(
        "Write the manifest of a `lowbg curate` run that finished elsewhere (a Dataflow template job), after "
        "checking that its inputs record is there, no writer is still at work and the counts balance. On a run "
        "that already has a valid manifest, check it against the shards and print its summary."))
    p.add_argument("output", help="the --output folder of the finished run")
    p.add_argument("--job-finished", action="store_true",
                   help="the job has finished (see its state on the runner): delete files left under a temporary "
                   "name by failed or retried workers instead of refusing")
    return p


def _manifest(argv: list[str]) -> int:
    ns = build_manifest_parser().parse_args(argv)
    if exists(join(ns.output, MANIFEST_FILE)):
        try:
            existing = read_run_manifest(ns.output)
        except IncompleteRun as exc:  # never silently replaced: it may be the only record of the run's options
            raise InputError(f"{exc}; if the run has finished, move that manifest away and run `lowbg manifest` "
                             "again to write a new one") from exc
        print(summary(existing))
        print(f"manifest: {join(ns.output, MANIFEST_FILE)} is valid and names exactly the shards present")
        return 0
    try:
        manifest = finish_run(ns.output, {"output": ns.output, "note": "manifest written after the run"}, {}, {},
                              job_finished=ns.job_finished)
    except UnbalancedRun as exc:
        raise UnbalancedRun(f"{exc}. If the job is still running, run this again once it has finished") from exc
    print(summary(manifest))
    print(f"manifest: {join(ns.output, MANIFEST_FILE)}")
    return 0


def manifest_main(argv: list[str]) -> int:
    """`lowbg manifest OUTPUT`: write the manifest of a run that finished elsewhere (a Dataflow template job)."""
    return run_command("lowbg manifest", lambda: _manifest(argv))


def summary(manifest: dict) -> str:
    c = manifest["counts"]

    def line(label: str, total: int, parts: dict | None = None) -> str:
        detail = ", ".join(f"{k}={v}" for k, v in (parts or {}).items())
        return f"{label:<14} {total:>8}  {detail}".rstrip()

    return "\n".join([
        line("records in", c["records_in"]),
        line("curated", c["curated"]),
        line("rejected", c["rejected"], c.get("rejected_by_reason")),
        line("skipped", sum(c["skipped"].values()), c["skipped"]),
        line("errors", c["errors"], c.get("errors_by_reason")),
        f"balanced       {'yes' if manifest['balanced'] else 'NO'}",
    ])


def _curate(argv: list[str] | CurateSettings, local_workers: int | None) -> int:
    settings = argv if isinstance(argv, CurateSettings) else parse_curate_args(argv)
    workers = local_workers or (1 if isinstance(argv, CurateSettings) else parse_local_workers(argv))
    if workers > 1:
        from pipeline.local_run import run_local

        manifest = run_local(settings, workers)
    else:
        manifest = run_curate(settings)
    if not manifest:
        print("job submitted; when it has finished, write its manifest with: lowbg manifest OUTPUT")
        return 0
    print(summary(manifest))
    print(f"manifest: {join(settings.sinks.output, MANIFEST_FILE)}")
    return 0


def main(argv: list[str] | CurateSettings, local_workers: int | None = None) -> int:
    """`lowbg curate`: ``argv`` (or the options already parsed from it, and ``--local-workers``)."""
    return run_command("lowbg curate", lambda: _curate(argv, local_workers))
