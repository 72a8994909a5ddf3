"""`lowbg decide`: re-split scored shards under a new policy, without re-scoring.

Reads the curated and rejected shards of a `lowbg curate` run, recomputes the thresholds from the stored scores
of its pre-cutoff documents (or takes them from ``--thresholds``), clears earlier ``machine_generated`` and
``uncertain`` decisions, applies :class:`pipeline.machine_policy.MachinePolicy` again and writes new curated and
rejected shards (one output shard per input shard, same names), ``stats/`` recomputed from the rows it wrote
(pipeline/stats.py) and a manifest that balances: every row read is written exactly once. Other reject reasons
(language, dedup, ...) are kept as they were.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import schemas
from pipeline.document import REASON_MACHINE_GENERATED, REASON_UNCERTAIN, Document
from pipeline.machine_policy import DetectorInfo, MachinePolicy, calibration_keys, compute_thresholds
from pipeline.manifest import MANIFEST, check_balance
from pipeline.stats import RunStatsAccumulator, flags_for, write_stats

REDECIDED = frozenset({REASON_MACHINE_GENERATED, REASON_UNCERTAIN})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lowbg decide", description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, metavar="RUN_DIR", help="output folder of a scored `lowbg curate` run")
    p.add_argument("--output", required=True, metavar="DIR")
    p.add_argument("--target-fpr", type=float, default=None, help="default: the run's")
    p.add_argument("--thresholds", default=None, metavar="FILE", help="thresholds JSON (lowbg detect calibrate)")
    p.add_argument("--min-calibration-docs", type=int, default=None, help="default: the run's")
    p.add_argument("--on-uncertain", choices=["keep", "reject"], default=None, help="default: the run's")
    return p


def _rows(paths: list[Path], kind: str):
    for path in paths:
        yield path, schemas.read_shard(str(path), kind).to_pylist()


def decide(run_dir: Path, output: Path, target_fpr: float | None = None, thresholds_file: str | None = None,
           min_docs: int | None = None, on_uncertain: str | None = None) -> dict:
    source = json.loads((run_dir / MANIFEST).read_text())
    options = source["options"]
    target_fpr = target_fpr if target_fpr is not None else options["target_fpr"]
    min_docs = min_docs if min_docs is not None else options["min_calibration_docs"]
    on_uncertain = on_uncertain or options["on_uncertain"]
    old = source.get("thresholds") or {}
    if not old:
        raise SystemExit(f"lowbg decide: {run_dir} was not scored (no thresholds in its manifest)")
    infos = [DetectorInfo(name, e["direction"], tuple(e["models"])) for name, e in old.items()]
    shards = {kind: sorted((run_dir / kind).glob("part-*.parquet")) for kind in ("curated", "rejected")}

    # Pass 1: the stored scores of pre-cutoff documents (kept ones: the population the pipeline calibrated on).
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    for kind in ("curated", "rejected"):
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
    output.mkdir(parents=True, exist_ok=True)
    out_rows: dict[str, dict[str, list[dict]]] = {"curated": {}, "rejected": {}}
    records_in, reasons = 0, Counter()
    stats = RunStatsAccumulator()  # stats/ of the new split, from the same rows (pipeline/stats.py)
    for kind in ("curated", "rejected"):
        for path, rows in _rows(shards[kind], kind):
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
                out_rows[target].setdefault(path.name, []).append(doc.to_row())
    for kind, by_name in out_rows.items():
        (output / kind).mkdir(exist_ok=True)
        for name, rows in sorted(by_name.items()):
            schemas.write_shard(rows, kind, str(output / kind / name))
    curated = sum(len(r) for r in out_rows["curated"].values())
    rejected = sum(len(r) for r in out_rows["rejected"].values())
    manifest = {
        "schema_version": schemas.SCHEMA_VERSION, "pipeline_version": schemas.package_version(),
        "decided_from": str(run_dir), "source_counts": source["counts"],
        "options": {"target_fpr": target_fpr, "thresholds": thresholds_file, "min_calibration_docs": min_docs,
                    "on_uncertain": on_uncertain},
        "thresholds": thresholds,
        "counts": {"records_in": records_in, "curated": curated, "rejected": rejected,
                   "rejected_by_reason": dict(sorted(reasons.items())),
                   "skipped": {}, "errors": 0, "errors_by_reason": {}},
        "balanced": records_in == curated + rejected,
        "shards": {kind: sorted(f"{kind}/{n}" for n in by_name) for kind, by_name in out_rows.items()},
    }
    check_balance(manifest)
    write_stats(str(output), *stats.to_json({"decided_from": str(run_dir)}, thresholds, "lowbg decide"))
    (output / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    return manifest


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    manifest = decide(Path(args.input), Path(args.output), args.target_fpr, args.thresholds,
                      args.min_calibration_docs, args.on_uncertain)
    c = manifest["counts"]
    for name, entry in manifest["thresholds"].items():
        print(f"{name}: threshold {entry['threshold']} ({entry['source']}, n_human={entry.get('n_human')})")
    print(f"records {c['records_in']}: curated {c['curated']}, rejected {c['rejected']} {c['rejected_by_reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

