"""The run's manifest: inputs, options, versions and the counts, which must balance.

``records_in = curated + rejected + sum(skipped) + errors``. The counts come from what is actually on disk (shard
row counts and reasons, the per-file read stats), so a record lost anywhere in the pipeline breaks the balance
and the run fails loudly. Beam's metric counters (one per decision reason) are reported beside them.
"""

from __future__ import annotations

import json
import platform
from collections import Counter
from importlib import metadata

import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

import schemas
from common.cli import RunFailed
from pipeline.sinks import join, write_atomically
from schemas.run import INPUTS_FILE, MANIFEST_FILE, IncompleteRun, read_finished_manifest, shard_paths

MANIFEST = MANIFEST_FILE
LIST_STAGE = "list"


class UnbalancedRun(RunFailed):
    """records_in != curated + rejected + skipped + errors: something was lost or counted twice."""


class BeamFiles:
    """:class:`schemas.run.RunFiles` through Beam's FileSystems: local paths, gs://, s3://, ..."""

    def join(self, base: str, *parts: str) -> str:
        return FileSystems.join(base, *parts)

    def split(self, path: str) -> tuple[str, str]:
        return FileSystems.split(path.rstrip("/") if "://" in path else path)

    def exists(self, path: str) -> bool:
        return FileSystems.exists(path)

    def read_bytes(self, path: str) -> bytes:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            return fh.read()

    def glob(self, pattern: str) -> list[str]:
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


BEAM_FILES = BeamFiles()


def list_shards(output: str, kind: str) -> list[str]:
    """The finished shards of one kind in ``output`` as listed now (temporary files excluded)."""
    return shard_paths(BEAM_FILES, output, kind)


def read_run_manifest(run_dir: str, allow_incomplete: bool = False) -> dict | None:
    """The manifest of the finished run in ``run_dir`` (any Beam filesystem), checked as :mod:`schemas.run`
    says; :class:`IncompleteRun` when there is none that is valid, or None with ``allow_incomplete``."""
    try:
        return read_finished_manifest(run_dir, BEAM_FILES)
    except IncompleteRun:
        if allow_incomplete:
            return None
        raise


def run_shards(run_dir: str, kind: str, manifest: dict | None) -> list[str]:
    """The shards of one kind to read: those the manifest names, or (no manifest) the finished ones present."""
    if manifest is None:
        return list_shards(run_dir, kind)
    return [join(run_dir, p) for p in manifest["shards"].get(kind, [])]


def count_shards(output: str, kind: str) -> tuple[int, Counter, Counter, list[str]]:
    """(rows, rows by reason, error rows by stage, shard paths) of one kind, from the Parquet files' columns."""
    total, reasons, stages, paths = 0, Counter(), Counter(), list_shards(output, kind)
    columns = {"curated": [], "rejected": ["reason"], "errors": ["reason", "stage"]}[kind]
    for path in paths:
        with FileSystems.open(path) as fh:
            table = pq.read_table(fh, columns=columns)
        total += table.num_rows
        if "reason" in columns:
            reasons.update(table.column("reason").to_pylist())
        if "stage" in columns:
            stages.update(table.column("stage").to_pylist())
    return total, reasons, stages, paths


def read_inputs(output: str) -> list[dict]:
    with FileSystems.open(join(output, INPUTS_FILE), compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return sorted((json.loads(line) for line in fh.read().decode().splitlines() if line.strip()),
                      key=lambda d: d["path"])


def _versions() -> dict:
    names = ["lowbackground", "apache-beam", "warcio", "resiliparse", "pyarrow", "numpy", "datasketch",
             "fasttext-numpy2", "torch", "transformers"]
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def build_manifest(output: str, options: dict, metrics: dict[str, int] | None, extra: dict | None = None) -> dict:
    inputs = read_inputs(output)
    curated, _, _, curated_paths = count_shards(output, "curated")
    rejected, rejected_by, _, rejected_paths = count_shards(output, "rejected")
    errors, errors_by, error_stages, error_paths = count_shards(output, "errors")
    skipped = Counter()
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
    manifest = {
        "schema_version": schemas.SCHEMA_VERSION,
        "pipeline_version": schemas.package_version(),
        "inputs": [{"path": i["path"], "size": i["size"], "sha256": i["sha256"], "records_read": i["records"],
                    "documents": i["documents"], "errors": i["errors"], "skipped": i["skipped"],
                    "notes": i["notes"], "duplicate_of": i.get("duplicate_of"), "listed": i.get("listed", 1)}
                   for i in inputs],
        "options": options,
        "versions": _versions(),
        "counts": counts,
        "balanced": records_in == curated + rejected + sum(skipped.values()) + errors,
        "metrics": dict(sorted((metrics or {}).items())),
        "shards": {"curated": _relative("curated", curated_paths),
                   "rejected": _relative("rejected", rejected_paths), "errors": _relative("errors", error_paths)},
    }
    if extra:
        manifest.update(extra)
    return manifest


def _relative(kind: str, paths: list[str]) -> list[str]:
    """Shard paths as the manifest names them: relative to the run folder, whatever the filesystem."""
    return [f"{kind}/{FileSystems.split(p)[1]}" for p in paths]


def check_balance(manifest: dict) -> None:
    c = manifest["counts"]
    total = c["curated"] + c["rejected"] + sum(c["skipped"].values()) + c["errors"]
    if c["records_in"] != total:
        raise UnbalancedRun(
            f"records_in={c['records_in']} but curated+rejected+skipped+errors={total} "
            f"(curated={c['curated']}, rejected={c['rejected']}, skipped={sum(c['skipped'].values())}, "
            f"errors={c['errors']}): records were lost or duplicated")


def write_manifest(output: str, manifest: dict) -> str:
    """Write ``manifest.json`` atomically: after this returns it is complete; if it raises there is none (or the
    previous one, untouched). Call it last, after every other file of the run is in place."""
    data = json.dumps(manifest, indent=2, sort_keys=False, default=str).encode()
    return write_atomically(join(output, MANIFEST), lambda fh: fh.write(data))
