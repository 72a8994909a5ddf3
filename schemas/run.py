"""The run-completion contract: what marks a `lowbg curate` (or `lowbg decide`) output folder as a finished run.

A run folder holds ``curated/``, ``rejected/`` and ``errors/`` Parquet shards and, written last, ``manifest.json``.
A run is *finished* when its manifest exists, parses as a JSON object, names a schema version this reader knows,
has counts, and says ``"balanced": true``. The manifest is written after every shard and atomically (a temporary
name, then a rename), so a folder holding shards but no valid manifest is a run that is still going, crashed, or
was killed: never one to read as if it were complete.

Every command that reads a run checks this first and refuses otherwise, unless the user says the run finished
elsewhere (the readers' ``--allow-incomplete`` flag). This module is Beam-free and reads local paths only, so
`collapse/` and `detectors/` can use it; ``pipeline`` applies the same :func:`check_manifest` to bytes it read
through Beam's FileSystems (gs://, s3://).
"""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST_FILE = "manifest.json"
SHARD_KINDS = ("curated", "rejected", "errors")
# Manifest schema versions this reader understands (the shard schema version the run was written with).
KNOWN_SCHEMA_VERSIONS = frozenset({"1.0", "1.1"})


class IncompleteRun(ValueError):
    """A run folder without a valid manifest: unfinished, crashed, killed, or not a run at all."""


def check_manifest(data: bytes, where: str) -> dict:
    """Parse and validate a manifest's bytes; raise :class:`IncompleteRun` naming ``where`` and what is wrong."""
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
    if not isinstance(manifest.get("counts"), dict):
        raise IncompleteRun(f"{where}: manifest has no counts")
    if manifest.get("balanced") is not True:
        raise IncompleteRun(f"{where}: manifest says the run did not balance")
    return manifest


def run_root_of(path: str | Path) -> Path | None:
    """The run folder that ``path`` (a run folder, a shard-kind folder, a shard, or a glob in one) belongs to.

    None when the path is not inside a run (a loose Parquet file, a folder of other data): such input is not a
    run and is read without this contract.
    """
    p = Path(str(path).split("*", 1)[0].split("?", 1)[0].split("[", 1)[0])
    for candidate in (p, *p.parents):
        if candidate.name in SHARD_KINDS:
            parent = candidate.parent
            if (parent / MANIFEST_FILE).exists() or any((parent / k).is_dir() for k in SHARD_KINDS if k !=
                                                         candidate.name) or (parent / "_inputs.jsonl").exists():
                return parent
        if candidate.is_dir() and ((candidate / MANIFEST_FILE).exists()
                                   or any((candidate / k).is_dir() for k in SHARD_KINDS)):
            return candidate
    return None


def read_finished_manifest(run_dir: str | Path) -> dict:
    """The manifest of a finished run in a local folder; :class:`IncompleteRun` when there is none that is valid."""
    path = Path(run_dir) / MANIFEST_FILE
    if not path.is_file():
        raise IncompleteRun(f"{run_dir} has no {MANIFEST_FILE}: the run is unfinished, crashed or was killed "
                            "(give --allow-incomplete to read it anyway)")
    return check_manifest(path.read_bytes(), str(path))
