"""`lowbg curate`: build and run the curation pipeline, then write and check the manifest.

Graph: ReadWarc -> ExtractText -> per-document steps (content policy, language, quality) -> Dedup
(exact, reference, near) -> ScoreCascade (detectors) -> CalibrateAndDecide -> Parquet sinks, and RunStats (the
``stats/`` aggregates, pipeline/stats.py) over the same documents and errors. Every branch that
can fail has an errors output; all of them meet in the errors shards. The manifest is written last, by the
launcher, after the job has finished.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

import schemas
from pipeline.dedup import Dedup, ReferenceIndexError
from pipeline.document import utcnow
from pipeline.ingest import ExtractText, ReadWarc, read_path_list
from pipeline.langid import LanguageModelError, LanguageStep, check_language_model
from pipeline.machine_policy import check_thresholds_file
from pipeline.manifest import INPUTS_FILE, MANIFEST, build_manifest, check_balance, write_manifest
from pipeline.options import CurateArgs, parse_curate_args
from pipeline.policy import ContentPolicy
from pipeline.quality import QualityStep
from pipeline.scoring import THRESHOLDS_FILE, CalibrateAndDecide, ScoreCascade, detector_infos, release_detectors
from pipeline.sinks import WriteShards, join
from pipeline.stats import RunStats
from pipeline.steps import ERRORS_TAG, NAMESPACE, ApplySteps

MAX_DEFAULT_BUCKETS = 1024


class OutputNotEmpty(RuntimeError):
    pass


class StartupError(RuntimeError):
    """A configuration that cannot run (a model that does not load): raised before any input is read."""


def prepare_output(output: str, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder unless asked to replace the old one."""
    old = [join(output, name) for name in (MANIFEST, INPUTS_FILE, THRESHOLDS_FILE)]
    old_shards = []
    for kind in schemas.KINDS:
        old_shards += [m.path for m in FileSystems.match([join(output, f"{kind}/*.parquet")])[0].metadata_list]
    existing = [p for p in old if FileSystems.exists(p)] + old_shards
    if existing and not overwrite:
        raise OutputNotEmpty(f"{output} already holds a run ({len(existing)} files); use --overwrite to replace it")
    if existing:
        FileSystems.delete(existing)


def count_inputs(args: CurateArgs) -> int | None:
    n = 0
    for pattern in args.input:
        try:
            n += len(FileSystems.match([pattern])[0].metadata_list)
        except Exception:
            return None
    if args.input_list:
        return None if args.max_files is None else n + args.max_files
    return n


def plan_inputs(args: CurateArgs) -> tuple[list[str], list[str], list[str]]:
    """(patterns, explicit paths, path lists to read in the pipeline)."""
    if args.max_files is None:
        return list(args.input), [], list(args.input_list)
    # A bounded run: list on the launcher, in order, and stop at --max-files.
    paths: list[str] = []
    for pattern in args.input:
        paths += sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    for path_list in args.input_list:
        paths += read_path_list(path_list, args.input_base, args.max_files)
    return [], paths[: args.max_files], []


def document_steps(args: CurateArgs) -> list:
    """Per-document steps, in order: each stores its signals and may reject with its reason code."""
    language = [] if args.skip_language_id else [LanguageStep.from_options(args)]
    return [ContentPolicy(), *language, QualityStep.from_options(args)]


def build(pipeline: beam.Pipeline, args: CurateArgs, processed_at: dt.datetime, num_buckets: int,
          detectors: list, dedup: Dedup) -> None:
    version = schemas.package_version()
    patterns, paths, path_lists = plan_inputs(args)
    read = pipeline | "ReadWarc" >> ReadWarc(patterns, paths, path_lists, args.input_base, args.sample_files,
                                             args.max_payload_bytes)
    extracted = read["records"] | "ExtractText" >> ExtractText(args.cutoff, processed_at, version)
    stepped = extracted["documents"] | "DocumentSteps" >> beam.ParDo(ApplySteps(document_steps(args))).with_outputs(
        ERRORS_TAG, main="documents")
    documents = stepped.documents | "Dedup" >> dedup
    error_branches = [read["errors"], extracted["errors"], stepped[ERRORS_TAG]]
    thresholds = None
    if args.detectors:
        scored = documents | "ScoreCascade" >> ScoreCascade(args)
        error_branches.append(scored["errors"])
        decide = CalibrateAndDecide(args, detectors, args.output)
        documents = scored["documents"] | "CalibrateAndDecide" >> decide
        thresholds = decide.thresholds

    curated, rejected = documents | "SplitDecision" >> beam.Partition(lambda doc, _: int(doc.rejected), 2)
    errors = (error_branches
              | "AllErrors" >> beam.Flatten()
              | "StampErrors" >> beam.Map(_stamp_error, processed_at, version))
    output = args.output
    _ = curated | "CountCurated" >> beam.Map(_count_curated)
    _ = curated | "WriteCurated" >> WriteShards(output, "curated", num_buckets, args.shard_size)
    _ = rejected | "WriteRejected" >> WriteShards(output, "rejected", num_buckets, args.shard_size)
    _ = errors | "WriteErrors" >> WriteShards(output, "errors", num_buckets, args.shard_size)
    _ = ({"documents": documents, "errors": errors}
         | "RunStats" >> RunStats(output, {"processed_at": processed_at.isoformat()}, thresholds))
    _ = (read["inputs"]
         | "CollectInputs" >> beam.combiners.ToList()
         | "WriteInputs" >> beam.Map(_write_inputs, output))


def _stamp_error(error, processed_at: dt.datetime, version: str):
    """Errors are raised in many places; the run's timestamp and version are put on them in one."""
    error.processed_at = error.processed_at or processed_at
    error.pipeline_version = error.pipeline_version or version
    return error


def _count_curated(doc) -> None:
    beam.metrics.Metrics.counter(NAMESPACE, "curated").inc()


def _write_inputs(items: list[dict], output: str) -> None:
    with FileSystems.create(join(output, INPUTS_FILE)) as fh:
        for item in sorted(items, key=lambda d: d["path"]):
            fh.write((json.dumps(item, sort_keys=True) + "\n").encode())


def read_thresholds(output: str) -> dict:
    path = join(output, THRESHOLDS_FILE)
    if not FileSystems.exists(path):
        return {}
    with FileSystems.open(path) as fh:
        return json.loads(fh.read())


def query_counters(result) -> dict[str, int]:
    """Our namespace's counters as the runner reports them (some portable runners report none)."""
    try:
        counters = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    except Exception:  # a runner without metrics support: the on-disk counts still decide the balance
        return {}
    totals: dict[str, int] = {}
    for c in counters:
        value = c.committed if c.committed is not None else c.attempted
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + int(value or 0)
    return totals


def run_curate(argv: list[str]) -> dict:
    args = parse_curate_args(argv)
    prepare_output(args.output, args.overwrite)
    processed_at = args.processed_at or utcnow()
    n_inputs = count_inputs(args)
    num_buckets = args.num_buckets or max(1, min(MAX_DEFAULT_BUCKETS, n_inputs or 256))
    # Models are checked here once, so one that cannot load fails before any input is read.
    try:
        if not args.skip_language_id:
            check_language_model(args.language_model)
    except LanguageModelError as exc:
        raise StartupError(str(exc)) from exc
    release_detectors()
    try:
        detectors = detector_infos(args) if args.detectors else []
    except Exception as exc:
        raise StartupError(f"cannot load detector(s) {','.join(args.detectors)}: {type(exc).__name__}: {exc}") from exc
    if args.thresholds:
        try:
            check_thresholds_file(args.thresholds, detectors)
        except (OSError, ValueError) as exc:
            raise StartupError(str(exc)) from exc
    try:
        dedup = Dedup.from_options(args)  # refuses a reference index built with other MinHash settings
    except (OSError, ReferenceIndexError) as exc:
        raise StartupError(str(exc)) from exc
    options = PipelineOptions(args.beam_args)
    pipeline = beam.Pipeline(options=options)
    build(pipeline, args, processed_at, num_buckets, detectors, dedup)
    try:
        result = pipeline.run()
        if getattr(result, "has_job", True):
            result.wait_until_finish()
    finally:
        release_detectors()
    if not getattr(result, "has_job", True):
        # A Flex Template launch or --dry_run submits (or only builds) a job: there is nothing on disk yet. The
        # manifest is written afterwards with `lowbg manifest OUTPUT`.
        return {}
    extra = {"processed_at": processed_at.isoformat(), "num_buckets": num_buckets}
    return finish_run(args.output, args.as_manifest(), query_counters(result), extra)


def finish_run(output: str, options: dict, metrics: dict[str, int], extra: dict) -> dict:
    """Build the manifest from what is on disk, fail loudly unless it balances, then write it (last)."""
    extra = {**extra, "thresholds": read_thresholds(output)}
    manifest = build_manifest(output, options, metrics, extra)
    check_balance(manifest)
    write_manifest(output, manifest)
    return manifest


def manifest_main(argv: list[str]) -> int:
    """`lowbg manifest OUTPUT`: write the manifest of a run that finished elsewhere (a Dataflow template job)."""
    import argparse

    parser = argparse.ArgumentParser(prog="lowbg manifest", description=manifest_main.__doc__)
    parser.add_argument("output", help="the --output folder of the finished run")
    ns = parser.parse_args(argv)
    manifest = finish_run(ns.output, {"output": ns.output, "note": "manifest written after the run"}, {}, {})
    print(summary(manifest))
    return 0


def summary(manifest: dict) -> str:
    c = manifest["counts"]

    def line(label: str, total: int, parts: dict | None = None) -> str:
        detail = ", ".join(f"{k}={v}" for k, v in (parts or {}).items())
        return f"{label:<14} {total:>8}  {detail}".rstrip()

    return "\n".join([
        line("records in", c["records_in"]),
        line("curated", c["curated"]),
        line("rejected", c["rejected"], c["rejected_by_reason"]),
        line("skipped", sum(c["skipped"].values()), c["skipped"]),
        line("errors", c["errors"], c["errors_by_reason"]),
        f"balanced       {'yes' if manifest['balanced'] else 'NO'}",
    ])


def main(argv: list[str]) -> int:
    try:
        manifest = run_curate(argv)
    except (OutputNotEmpty, StartupError) as exc:
        print(f"lowbg curate: {exc}", file=sys.stderr)
        return 2
    if not manifest:
        print("job submitted; when it has finished, write its manifest with: lowbg manifest OUTPUT")
        return 0
    print(summary(manifest))
    print(f"manifest: {join(manifest['options']['output'], MANIFEST)}")
    return 0
