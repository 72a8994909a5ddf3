"""The run's manifest: inputs, options, versions and the counts, which must balance.

``records_in = curated + rejected + sum(skipped) + errors``. The counts come from what is actually on disk (shard
row counts and reasons, the per-file read stats; for a local run's worker, which stops at its sorted runs, the
rows of its runs: ``runs``), so a record lost anywhere in the pipeline breaks the balance
and the run fails loudly. Beam's metric counters (one per decision reason) are reported beside them.
"""

from __future__ import annotations

import json
import platform
from collections import Counter
from importlib import metadata

import pyarrow as pa
import pyarrow.parquet as pq

import schemas
from common.cli import RunFailed
from pipeline.layout import (
    INPUTS_FILE,
    MANIFEST_FILE,
    finished_shards,
    join,
    open_read,
    relative_shard,
    runs_by_bucket,
    write_bytes,
)
from pipeline.reasons import LIST_STAGE, unknown_reasons
from schemas.run import SHARD_KINDS


class UnbalancedRun(RunFailed):
    """records_in != curated + rejected + skipped + errors: something was lost or counted twice."""


def count_shards(output: str, kind: str, runs: bool = False) -> tuple[int, Counter[str], Counter[str], list[str]]:
    """(rows, rows by reason, error rows by stage, shard paths) of one kind, from the Parquet files' columns; with
    ``runs``, from the kept sorted runs instead (Arrow IPC streams, every record batch read:
    :func:`pipeline.layout.runs_by_bucket`)."""
    if runs:
        paths = [path for bucket_runs in runs_by_bucket(output, kind).values() for path in bucket_runs]
    else:
        paths = finished_shards(output, kind)
    total = 0
    reasons: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    columns = {"curated": [], "rejected": ["reason"], "errors": ["reason", "stage"]}[kind]
    for path in paths:
        with open_read(path) as fh:
            tables = list(pa.ipc.open_stream(fh)) if runs else [pq.read_table(fh, columns=columns)]
            for table in tables:
                total += table.num_rows
                if "reason" in columns:
                    reasons.update(table.column("reason").to_pylist())
                if "stage" in columns:
                    stages.update(table.column("stage").to_pylist())
    return total, reasons, stages, paths


def read_inputs(output: str) -> list[dict]:
    with open_read(join(output, INPUTS_FILE)) as fh:
        return sorted((json.loads(line) for line in fh.read().decode().splitlines() if line.strip()),
                      key=lambda d: d["path"])


def _versions() -> dict:
    names = ["lowbackground", "apache-beam", "warcio", "resiliparse", "pyarrow", "numpy", "datasketch",
             "fasttext-numpy2", "torch", "transformers"]
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def assemble_manifest(counts: dict, shards: dict[str, list[str]], options: dict, inputs: list[dict] | None = None,
                      metrics: dict | None = None, extra: dict | None = None) -> dict:
    """A run's manifest from its counts and shard paths (`lowbg curate`'s and `lowbg decide`'s alike): the one
    place its fields are laid out; ``balanced`` is computed here from ``counts``."""
    manifest = {
        "schema_version": schemas.SCHEMA_VERSION,
        "pipeline_version": schemas.package_version(),
        "inputs": [{"path": i["path"], "size": i["size"], "sha256": i["sha256"], "records_read": i["records"],
                    "documents": i["documents"], "errors": i["errors"], "skipped": i["skipped"],
                    "notes": i["notes"], "duplicate_of": i.get("duplicate_of"), "listed": i.get("listed", 1)}
                   for i in inputs or []],
        "options": options,
        "versions": _versions(),
        "counts": counts,
        "balanced": counts["records_in"] == counts["curated"] + counts["rejected"] + sum(counts["skipped"].values())
        + counts["errors"],
        "metrics": dict(sorted((metrics or {}).items())),
        "shards": {kind: [relative_shard(kind, p) for p in shards.get(kind, [])] for kind in SHARD_KINDS},
    }
    if extra:
        manifest.update(extra)
    return manifest


def build_manifest(output: str, options: dict, metrics: dict[str, dict[str, int]] | None,
                   extra: dict | None = None, runs: bool = False) -> dict:
    """The manifest of a `lowbg curate` run, from what is on disk: its inputs record and its shards (``runs``: a
    local run's worker, its kept sorted runs, :func:`count_shards`)."""
    inputs = read_inputs(output)
    curated, _, _, curated_paths = count_shards(output, "curated", runs)
    rejected, rejected_by, _, rejected_paths = count_shards(output, "rejected", runs)
    errors, errors_by, error_stages, error_paths = count_shards(output, "errors", runs)
    skipped: Counter[str] = Counter()
    for item in inputs:
        skipped.update(item["skipped"])
    # A pattern that matched nothing (or could not be listed) has no file stats: each is one unit of input.
    records_in = sum(item["units"] for item in inputs) + error_stages.get(LIST_STAGE, 0)
    counts = {
        "records_in": records_in,
        "curated": curated,
        "rejected": rejected,
        "rejected_by_reason": dict(sorted(rejected_by.items())),
        "skipped": dict(sorted(skipped.items())),
        "errors": errors,
        "errors_by_reason": dict(sorted(errors_by.items())),
    }
    return assemble_manifest(counts, {"curated": curated_paths, "rejected": rejected_paths, "errors": error_paths},
                             options, inputs, metrics, extra)


def check_balance(manifest: dict) -> None:
    """Refuse a run whose counts do not balance, or that counts a reason code :mod:`pipeline.reasons` does not
    know (a stage that wrote a code it does not own in the registry is a bug, not a new kind of outcome)."""
    c = manifest["counts"]
    total = c["curated"] + c["rejected"] + sum(c["skipped"].values()) + c["errors"]
    if c["records_in"] != total:
        raise UnbalancedRun(
            f"records_in={c['records_in']} but curated+rejected+skipped+errors={total} "
            f"(curated={c['curated']}, rejected={c['rejected']}, skipped={sum(c['skipped'].values())}, "
            f"errors={c['errors']}): records were lost or duplicated")
    unknown = unknown_reasons(c.get("rejected_by_reason", {}), c.get("errors_by_reason", {}))
    if unknown:
        raise UnbalancedRun(f"the run counts reason codes that are not in the registry (pipeline/reasons.py): "
                            f"{', '.join(unknown)}")


def write_manifest(output: str, manifest: dict) -> str:
    """Write ``manifest.json`` atomically: after this returns it is complete; if it raises there is none (or the
    previous one, untouched). Call it last, after every other file of the run is in place."""
    data = json.dumps(manifest, indent=2, sort_keys=False, default=str).encode()
    return write_bytes(join(output, MANIFEST_FILE), data)
