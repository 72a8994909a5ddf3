"""`lowbg decide`: re-split scored shards under a new policy, without re-scoring.

Reads the curated and rejected shards of a `lowbg curate` run, recomputes the thresholds from the stored scores
of its pre-cutoff documents (or takes them from ``--thresholds``), clears earlier ``machine_generated`` and
``uncertain`` decisions, applies :class:`pipeline.machine_policy.MachinePolicy` again and writes new curated and
rejected shards (one output shard per input shard, same names) and a manifest that balances: every row read is
written exactly once, and ``stats/`` recomputed from the rows it wrote
(pipeline/stats.py). Other reject reasons (language, dedup, ...) are kept as they were.

The input must be a finished run (:mod:`schemas.run`): its manifest is valid and names exactly the shards in the
folder; ``--allow-incomplete`` reads a folder without one (the shards present, the detectors and options of its
``_thresholds.json`` and the flags), and the new manifest says so (``"source_complete": false``). The output must
not be the input folder, nor inside it or around it. Before anything is read, the output is checked: writable,
and not holding another run unless ``--overwrite``. Every file goes through Beam's FileSystems (local, gs://,
s3://) and is written atomically, the manifest last.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

import schemas
from common.cli import ArgumentParser, InputError, run_command
from common.flags import add_flag
from pipeline.document import Document
from pipeline.layout import (
    THRESHOLDS_FILE,
    basename,
    check_separate,
    check_writable,
    exists,
    join,
    open_read,
    prepare_output,
    read_json,
    read_run_manifest,
    run_shards,
    write_atomically,
)
from pipeline.machine_policy import DetectorInfo, MachinePolicy, calibration_keys, compute_thresholds
from pipeline.manifest import check_balance, write_manifest
from pipeline.options import add_pipeline_flag
from pipeline.reasons import REASON_MACHINE_GENERATED, REASON_UNCERTAIN
from pipeline.settings import recorded_settings
from pipeline.stats import RunStatsAccumulator, flags_for, write_stats

REDECIDED = frozenset({REASON_MACHINE_GENERATED, REASON_UNCERTAIN})
KINDS = ("curated", "rejected")
# `lowbg curate`'s defaults, for a source run without a manifest (--allow-incomplete)
CURATE_DEFAULTS = {"target_fpr": 0.01, "min_calibration_docs": 200, "on_uncertain": "keep"}


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="lowbg decide", description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, metavar="RUN_DIR", help="output folder of a scored `lowbg curate` run")
    p.add_argument("--output", required=True, metavar="DIR", help="a new folder (not the input, nor in it)")
    add_flag(p, "--target-fpr", default=None, default_note="the run's")
    for flag in ("--min-calibration-docs", "--on-uncertain"):
        add_pipeline_flag(p, flag, default=None, default_note="the run's")
    add_pipeline_flag(p, "--thresholds")
    add_flag(p, "--allow-incomplete")
    add_flag(p, "--overwrite")
    return p


def check_thresholds_arg(path: str | None) -> None:
    if path is None:
        return
    if not os.path.isfile(path):
        raise InputError(f"--thresholds {path}: no such file")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"--thresholds {path}: not a readable thresholds JSON file: {exc}") from exc
    if not isinstance(data, dict) or "detector" not in data:
        raise InputError(f"--thresholds {path}: not a thresholds file of `lowbg detect calibrate` (no detector)")


def _rows(paths: list[str], kind: str) -> Iterator[tuple[str, list[dict]]]:
    for path in paths:
        with open_read(path) as fh:
            table = pq.read_table(fh)
        try:
            schemas.validate_table(table, kind)
        except schemas.SchemaMismatch as exc:
            raise InputError(f"{path}: {exc}") from exc
        yield path, table.to_pylist()


def _options(recorded: dict, thresholds: dict) -> dict:
    """The run's decision options; where its manifest does not record them (a manifest written afterwards by
    `lowbg manifest`), the target FPR its thresholds were computed for, and `lowbg curate`'s defaults."""
    options = dict(CURATE_DEFAULTS)
    fprs = {e.get("target_fpr") for e in thresholds.values() if isinstance(e, dict)} - {None}
    if len(fprs) == 1:
        options["target_fpr"] = fprs.pop()
    decision = recorded_settings(recorded).get("decision", {})
    options.update({k: decision[k] for k in CURATE_DEFAULTS if decision.get(k) is not None})
    return options


def _source(run_dir: str, allow_incomplete: bool) -> tuple[dict | None, dict, dict]:
    """(manifest or None, options, thresholds of the run) of the source run."""
    manifest = read_run_manifest(run_dir, allow_incomplete)
    if manifest is not None:
        old = manifest.get("thresholds") or {}
        if not old:
            raise InputError(f"{run_dir} was not scored (no thresholds in its manifest): nothing to re-decide")
        return manifest, _options(manifest.get("options") or {}, old), old
    path = join(run_dir, THRESHOLDS_FILE)
    if not exists(path):
        raise InputError(f"{run_dir} has neither a valid manifest nor {THRESHOLDS_FILE}: it was not scored or "
                         "stopped before calibration; nothing to re-decide")
    try:
        old = read_json(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable: {exc}") from exc
    return None, _options({}, old), old


def decide(run_dir: str | Path, output: str | Path, target_fpr: float | None = None,
           thresholds_file: str | None = None, min_docs: int | None = None, on_uncertain: str | None = None,
           *, allow_incomplete: bool = False, overwrite: bool = False) -> dict:
    run_dir, output = str(run_dir), str(output)
    # Everything that can be refused is refused before a shard is read.
    check_separate(run_dir, output)
    check_thresholds_arg(thresholds_file)
    check_writable(output)
    source, options, old = _source(run_dir, allow_incomplete)
    prepare_output(output, overwrite)
    target_fpr = target_fpr if target_fpr is not None else options["target_fpr"]
    min_docs = min_docs if min_docs is not None else options["min_calibration_docs"]
    on_uncertain = on_uncertain or options["on_uncertain"]
    try:
        infos = [DetectorInfo(name, e["direction"], tuple(e["models"])) for name, e in old.items()]
    except (AttributeError, KeyError, TypeError) as exc:
        raise InputError(f"{run_dir}: thresholds record without detector direction and models: {exc}") from exc
    shards = {kind: run_shards(run_dir, kind, source) for kind in KINDS}

    # Pass 1: the stored scores of pre-cutoff documents (kept ones: the population the pipeline calibrated on).
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    for kind in KINDS:
        for _, rows in _rows(shards[kind], kind):
            for row in rows:
                doc = Document.from_row(row)
                if kind == "rejected" and row["reason"] not in REDECIDED:
                    continue
                for detector, language, _, value in calibration_keys(doc):
                    samples[(detector, language)].append(value)
    thresholds = compute_thresholds(samples, infos, target_fpr, min_docs, thresholds_file)
    for name, entry in thresholds.items():  # keep a published/file fallback the run used when we cannot calibrate
        if entry.get("threshold") is None and old.get(name, {}).get("threshold") is not None:
            entry.update(threshold=old[name]["threshold"], source=f"previous run ({old[name]['source']})")

    # Pass 2: decide again and write, one output shard per input shard.
    policy = MachinePolicy([i.name for i in infos], on_uncertain)
    out_rows: dict[str, dict[str, list[dict]]] = {"curated": {}, "rejected": {}}
    records_in, reasons = 0, Counter()
    stats = RunStatsAccumulator()  # stats/ of the new split, from the same rows (pipeline/stats.py)
    for kind in KINDS:
        for path, rows in _rows(shards[kind], kind):
            name = basename(path)
            for row in rows:
                records_in += 1
                doc = Document.from_row(row)
                if doc.reason in REDECIDED:
                    doc.reason = doc.detail = None
                doc = policy.decide(doc, thresholds)
                stats.add_document(doc, flags_for(doc, thresholds))
                target = "rejected" if doc.rejected else "curated"
                if doc.rejected:
                    reasons[doc.reason] += 1
                out_rows[target].setdefault(name, []).append(doc.to_row())
    for kind, by_name in out_rows.items():
        for name, rows in sorted(by_name.items()):
            write_atomically(join(output, f"{kind}/{name}"),
                             lambda fh, rows=rows, kind=kind: schemas.write_shard(rows, kind, fh))
    curated = sum(len(r) for r in out_rows["curated"].values())
    rejected = sum(len(r) for r in out_rows["rejected"].values())
    manifest = {
        "schema_version": schemas.SCHEMA_VERSION, "pipeline_version": schemas.package_version(),
        "decided_from": run_dir, "source_complete": source is not None,
        "source_counts": source["counts"] if source else None,
        "options": {"target_fpr": target_fpr, "thresholds": thresholds_file, "min_calibration_docs": min_docs,
                    "on_uncertain": on_uncertain, "output": output},
        "thresholds": thresholds,
        "counts": {"records_in": records_in, "curated": curated, "rejected": rejected,
                   "rejected_by_reason": dict(sorted(reasons.items())),
                   "skipped": {}, "errors": 0, "errors_by_reason": {}},
        "balanced": records_in == curated + rejected,
        "shards": {kind: sorted(f"{kind}/{n}" for n in by_name) for kind, by_name in out_rows.items()},
    }
    check_balance(manifest)
    write_stats(str(output), *stats.to_json({"decided_from": str(run_dir)}, thresholds, "lowbg decide"))
    write_manifest(output, manifest)
    return manifest


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    manifest = decide(args.input, args.output, args.target_fpr, args.thresholds, args.min_calibration_docs,
                      args.on_uncertain, allow_incomplete=args.allow_incomplete, overwrite=args.overwrite)
    c = manifest["counts"]
    if not manifest["source_complete"]:
        print(f"note: {args.input} had no valid manifest (--allow-incomplete): decided over the shards present")
    for name, entry in manifest["thresholds"].items():
        print(f"{name}: threshold {entry['threshold']} ({entry['source']}, n_human={entry.get('n_human')})")
    print(f"records {c['records_in']}: curated {c['curated']}, rejected {c['rejected']} {c['rejected_by_reason']}")
    return 0


def main(argv: list[str]) -> int:
    return run_command("lowbg decide", lambda: _main(argv))

