"""Reading what the report needs from a run folder: the manifest and ``stats/``; never a shard.

Paths go through Beam's FileSystems, like the rest of ``pipeline/`` (local folders, gs://, s3://). A run is
read only when it is finished (a valid manifest, :mod:`schemas.run`) unless ``allow_incomplete``; ``stats/`` is
optional (runs made before it existed), and stats written by another run into the same folder are ignored.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field

from pipeline.layout import MANIFEST_FILE, STATS_FILE, WORDS_FILE, exists, join, read_bytes
from pipeline.reasons import known_reasons
from pipeline.stats import FORMAT, WORDS_FORMAT
from schemas.run import IncompleteRun, check_manifest


@dataclass
class RunData:
    path: str
    manifest: dict | None
    stats: dict | None
    words: dict | None
    notes: list[str] = field(default_factory=list)

    def require_stats(self) -> dict:
        """The run's ``stats/`` summary, for the sections that are only drawn when it exists."""
        if self.stats is None:
            raise ValueError(f"{self.path} has no stats/")
        return self.stats

    @property
    def label(self) -> str:
        return self.path.rstrip("/") or self.path


def _read(path: str) -> bytes | None:
    return read_bytes(path) if exists(path) else None


def _same_run(manifest: dict | None, stats: dict) -> str | None:
    """Why these stats are not this run's (None when they are, or when nothing says otherwise)."""
    run = stats.get("run") or {}
    if not manifest:
        return None
    for key in ("processed_at", "decided_from"):
        if key in run and key in manifest and str(run[key]) != str(manifest[key]):
            return f"stats/ were written by another run ({key} {run[key]!r}, manifest {manifest[key]!r})"
    return None


def load_run(path: str, allow_incomplete: bool = False) -> RunData:
    """Manifest, stats and word frequencies of a run; :class:`IncompleteRun` when it is not finished."""
    notes: list[str] = []
    manifest_path = join(path, MANIFEST_FILE)
    raw = _read(manifest_path)
    manifest = None
    try:
        if raw is None:
            raise IncompleteRun(f"{path} has no {MANIFEST_FILE}: the run is unfinished, crashed or was killed "
                                "(give --allow-incomplete to report on it anyway)")
        manifest = check_manifest(raw, manifest_path, known_reasons())
    except IncompleteRun as exc:
        if not allow_incomplete:
            raise
        notes.append(f"not a finished run ({exc}); reported anyway because of --allow-incomplete: counts may be "
                     "partial and nothing here is balanced")
    stats = words = None
    raw_stats = _read(join(path, STATS_FILE))
    if raw_stats is None:
        notes.append(f"no {STATS_FILE}: this run was made before the pipeline wrote statistics, or its manifest was "
                     "written by `lowbg manifest` after a job that did not; only the funnel and inputs (from the "
                     "manifest) can be shown. Re-run `lowbg curate` with this version for provenance, quality, "
                     "detector, machine-written share, vocabulary and drift sections.")
    else:
        try:
            stats = json.loads(raw_stats)
        except ValueError as exc:  # not UTF-8 or not JSON
            notes.append(f"{STATS_FILE} is not valid JSON ({exc}): ignored")
            stats = None
        if stats is not None and stats.get("format") != FORMAT:
            notes.append(f"{STATS_FILE} has format {stats.get('format')!r}, this report reads {FORMAT!r}: ignored")
            stats = None
        if stats is not None:
            other = _same_run(manifest, stats)
            if other:
                notes.append(other + ": ignored")
                stats = None
    if stats is not None:
        raw_words = _read(join(path, WORDS_FILE))
        if raw_words is None:
            notes.append(f"no {WORDS_FILE}: no excess-vocabulary section")
        else:
            try:
                words = json.loads(gzip.decompress(raw_words))
            except (OSError, EOFError, ValueError) as exc:  # not gzip, not UTF-8, not JSON
                notes.append(f"{WORDS_FILE} is unreadable ({exc}): no excess-vocabulary section")
            if words is not None and words.get("format") != WORDS_FORMAT:
                notes.append(f"{WORDS_FILE} has format {words.get('format')!r}: ignored")
                words = None
    return RunData(path, manifest, stats, words, notes)
