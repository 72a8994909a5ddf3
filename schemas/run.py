"""The run-completion contract: what marks a `lowbg curate` (or `lowbg decide`) output folder as a finished run.

A run folder holds ``curated/``, ``rejected/`` and ``errors/`` Parquet shards (named by :func:`shard_name`),
``_inputs.jsonl`` (what was read), ``_thresholds.json`` (a scored run's thresholds), ``stats/`` (the run
statistics) and, written last, ``manifest.json``; `lowbg report` adds ``report/``. Every one of these files is
written under a temporary name (``.tmp-...``, hidden from ``*`` globs and from pyarrow datasets) and renamed into
place, so a file that has its final name is complete. A run is *finished* when:

* its ``manifest.json`` exists, parses as a JSON object and names a schema version this reader knows;
* its counts are whole numbers that balance: ``records_in = curated + rejected + sum(skipped) + errors``, and it
  says ``"balanced": true``;
* the shards it names are exactly the shards in the folder (none missing, none added since).

A folder holding shards but no valid manifest is a run that is still going, crashed, ran out of disk, or was
killed: never one to read as if it were complete. Every command that reads a run checks this first and refuses
otherwise (:class:`IncompleteRun`), unless the user says the run finished elsewhere (the readers'
``--allow-incomplete`` flag).

This module is Beam-free, so `collapse/` and `detectors/` can use it, and it owns the plain names of a run's files.
It reads files through a :class:`RunFiles` (``LOCAL_FILES`` by default); :mod:`pipeline.layout` passes one backed
by Beam's FileSystems, so the same rules apply to ``gs://`` and ``s3://`` runs.
"""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path
from typing import Protocol, cast

from schemas import KINDS, SCHEMA_VERSION

# The names of a run folder's files (pipeline/layout.py joins, lists, reads and writes them through Beam's
# FileSystems; collapse/ reads them locally through this module).
MANIFEST_FILE = "manifest.json"
INPUTS_FILE = "_inputs.jsonl"  # one line per input file: what was read, its counts and notes
THRESHOLDS_FILE = "_thresholds.json"  # the run's detector thresholds, written by the decision stage
STATS_DIR = "stats"
STATS_FILE = "stats/stats.json"  # the run statistics (pipeline/stats.py)
WORDS_FILE = "stats/words.json.gz"  # word document-frequencies of the same statistics
REPORT_DIR = "report"  # `lowbg report`'s default output
TMP_PREFIX = ".tmp-"  # temporary names of files being written; renamed into place when complete
SHARD_KINDS = KINDS
SHARD_GLOB = "part-*.parquet"
RUN_FOLDERS = (*SHARD_KINDS, STATS_DIR, REPORT_DIR)  # what a run folder holds besides its top-level files


def shard_name(kind: str, bucket: int, chunk: int) -> str:
    """A shard's path in its run folder: ``<kind>/part-<bucket:05d>-<chunk:04d>.parquet``."""
    return f"{kind}/part-{bucket:05d}-{chunk:04d}.parquet"
# Manifest schema versions this reader understands: the shard schema version (schemas.read_shard refuses others).
KNOWN_SCHEMA_VERSIONS = frozenset({SCHEMA_VERSION})
ALLOW_INCOMPLETE_HINT = "give --allow-incomplete to read it anyway"


class IncompleteRun(ValueError):
    """A run folder without a valid manifest: unfinished, crashed, killed, or not a run at all."""


class RunFiles(Protocol):
    """The few file operations the contract needs; paths are strings (local paths or URLs such as gs://b/x)."""

    def join(self, base: str, *parts: str) -> str: ...
    def split(self, path: str) -> tuple[str, str]: ...
    def exists(self, path: str) -> bool: ...
    def read_bytes(self, path: str) -> bytes: ...
    def glob(self, pattern: str) -> list[str]: ...


class LocalFiles:
    """:class:`RunFiles` on the local filesystem (hidden ``.tmp-`` files included in globs, as object stores do)."""

    def join(self, base: str, *parts: str) -> str:
        return os.path.join(base, *parts)

    def split(self, path: str) -> tuple[str, str]:
        return os.path.split(os.path.normpath(path))

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def read_bytes(self, path: str) -> bytes:
        return Path(path).read_bytes()

    def glob(self, pattern: str) -> list[str]:
        folder, name = os.path.split(pattern)
        try:
            entries = os.listdir(folder or ".")
        except OSError:
            return []
        return sorted(os.path.join(folder, e) for e in entries
                      if fnmatch.fnmatchcase(e, name) and os.path.isfile(os.path.join(folder, e)))


LOCAL_FILES = LocalFiles()


def _as_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_manifest(data: bytes, where: str, reasons: tuple[frozenset[str], frozenset[str]] | None = None) -> dict:
    """Parse and validate a manifest's bytes; raise :class:`IncompleteRun` naming ``where`` and what is wrong.
    ``reasons`` (the reject and error codes the reader knows, from ``pipeline.reasons``): a count under any
    other code is refused too."""
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IncompleteRun(f"{where}: manifest is not valid JSON (truncated write?): {exc}") from exc
    if not isinstance(manifest, dict):
        raise IncompleteRun(f"{where}: manifest is not a JSON object")
    version = manifest.get("schema_version")
    if version not in KNOWN_SCHEMA_VERSIONS:
        raise IncompleteRun(f"{where}: manifest schema_version {version!r} is not one this reader knows "
                            f"({', '.join(sorted(KNOWN_SCHEMA_VERSIONS))})")
    counts = manifest.get("counts")
    if not isinstance(counts, dict):
        raise IncompleteRun(f"{where}: manifest has no counts")
    skipped = counts.get("skipped", {})
    numbers = [counts.get(k) for k in ("records_in", "curated", "rejected", "errors")]
    if not all(_as_int(n) for n in numbers) or not isinstance(skipped, dict) \
            or not all(_as_int(n) for n in skipped.values()):
        raise IncompleteRun(f"{where}: manifest counts are not whole numbers")
    records_in, curated, rejected, errors = cast(list[int], numbers)  # checked just above
    if manifest.get("balanced") is not True or records_in != curated + rejected + sum(skipped.values()) + errors:
        raise IncompleteRun(f"{where}: manifest says the run did not balance "
                            f"(records_in={records_in}, curated+rejected+skipped+errors="
                            f"{curated + rejected + sum(skipped.values()) + errors})")
    if reasons is not None:
        unknown = sorted(set(counts.get("rejected_by_reason") or {}) - reasons[0]) + \
            sorted(set(counts.get("errors_by_reason") or {}) - reasons[1])
        if unknown:
            raise IncompleteRun(f"{where}: manifest counts reason codes this reader does not know: "
                                f"{', '.join(unknown)}")
    shards = manifest.get("shards")
    if not isinstance(shards, dict) or not all(isinstance(v, list) and all(isinstance(p, str) for p in v)
                                               for v in shards.values()):
        raise IncompleteRun(f"{where}: manifest does not list its shards")
    return manifest


def shard_paths(files: RunFiles, run_dir: str, kind: str) -> list[str]:
    """The finished shards of one kind in a run folder, as listed now (temporary files excluded)."""
    found = files.glob(files.join(run_dir, kind, SHARD_GLOB))
    return sorted(p for p in found if not files.split(p)[1].startswith(TMP_PREFIX))


def temporary_files(files: RunFiles, run_dir: str) -> list[str]:
    """Files still under a temporary name: writers still running, or debris of killed or retried ones."""
    found = files.glob(files.join(run_dir, TMP_PREFIX + "*"))
    for kind in SHARD_KINDS:
        found += files.glob(files.join(run_dir, kind, TMP_PREFIX + "*"))
    return sorted(found)


def check_shards(manifest: dict, run_dir: str, files: RunFiles = LOCAL_FILES) -> None:
    """Refuse a run whose folder no longer holds exactly the shards its manifest names."""
    named = {p for paths in manifest["shards"].values() for p in paths}
    present = {f"{kind}/{files.split(p)[1]}" for kind in SHARD_KINDS for p in shard_paths(files, run_dir, kind)}
    missing, extra = sorted(named - present), sorted(present - named)
    if missing:
        raise IncompleteRun(f"{run_dir}: {len(missing)} shard(s) named in its manifest are missing "
                            f"(e.g. {missing[0]}): the folder changed after the run finished")
    if extra:
        raise IncompleteRun(f"{run_dir}: {len(extra)} shard(s) not named in its manifest (e.g. {extra[0]}): "
                            "another run wrote into this folder")


def _has_run_files(files: RunFiles, folder: str) -> bool:
    if files.exists(files.join(folder, MANIFEST_FILE)) or files.exists(files.join(folder, INPUTS_FILE)):
        return True
    return any(files.glob(files.join(folder, kind, "*")) for kind in SHARD_KINDS)


def run_root_of(path: str | Path, files: RunFiles = LOCAL_FILES) -> Path | str | None:
    """The run folder that ``path`` (a run folder, a shard-kind folder, a shard, or a glob in one) belongs to.

    A folder is a run when it holds a manifest, an ``_inputs.jsonl`` or shards in a ``curated/``, ``rejected/``
    or ``errors/`` folder; a folder *named* ``curated``, ``rejected`` or ``errors`` is always taken as part of a
    run (a killed run may have written nothing else). Only the path and its one or two nearest parents are
    looked at, never the whole way up, so loose Parquet files in an unrelated folder are not a run: None,
    and such input is read without this contract. On the local filesystem the answer is a :class:`~pathlib.Path`;
    through another :class:`RunFiles`, a string.
    """
    text = str(path)
    static = text.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0]
    prefix = static.rstrip("/" + os.sep) or static
    if prefix != text and not static.endswith(("/", os.sep)):  # a glob in the last component: its folder
        prefix = files.split(prefix)[0]
    candidate = prefix
    parent, name = files.split(candidate)
    if candidate and _has_run_files(files, candidate):
        root = candidate
    elif name in SHARD_KINDS:
        root = parent
    elif files.split(parent)[1] in SHARD_KINDS and parent != candidate:
        root = files.split(parent)[0]
    else:
        return None
    root = root or "."
    return Path(root) if files is LOCAL_FILES or isinstance(path, Path) else root


def read_finished_manifest(run_dir: str | Path, files: RunFiles = LOCAL_FILES,
                           reasons: tuple[frozenset[str], frozenset[str]] | None = None) -> dict:
    """The manifest of a finished run; :class:`IncompleteRun` when there is none that is valid and intact (with
    ``reasons``, also when it counts a reason code not among them: see :func:`check_manifest`)."""
    run_dir = str(run_dir)
    path = files.join(run_dir, MANIFEST_FILE)
    if not files.exists(path):
        raise IncompleteRun(f"{run_dir} has no {MANIFEST_FILE}: the run is unfinished, crashed or was killed, "
                            f"or this is not a run folder ({ALLOW_INCOMPLETE_HINT})")
    try:
        data = files.read_bytes(path)
    except OSError as exc:
        raise IncompleteRun(f"{path}: cannot read the manifest: {exc}") from exc
    manifest = check_manifest(data, path, reasons)
    check_shards(manifest, run_dir, files)
    return manifest

