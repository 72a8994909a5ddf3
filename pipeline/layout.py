"""The run folder: its layout, and every file operation on a run, through Beam's FileSystems.

One module for what a run folder holds and how it is reached, used by every command that writes or reads a run
(`lowbg curate` and its sinks, the manifest, `lowbg decide`, `lowbg index build`, the run statistics,
`lowbg report`), so each works the same on a local folder, ``gs://`` and ``s3://`` (and any filesystem Beam
has registered, such as the tests' fake object store). Nothing here uses ``open()`` or ``pathlib``.

Layout (the plain names are :mod:`schemas.run`'s, which is Beam-free)::

    RUN/manifest.json            written last: the run-completion contract (schemas.run)
    RUN/_inputs.jsonl            what was read, one line per input file
    RUN/_thresholds.json         a scored run's detector thresholds
    RUN/curated|rejected|errors/part-BBBBB-CCCC.parquet   shards: bucket BBBBB, chunk CCCC (shard_name)
    RUN/stats/stats.json, RUN/stats/words.json.gz          run statistics
    RUN/report/                  `lowbg report`'s default output
    RUN/curated|rejected|errors/run-BBBBB-NNNN.arrows     a local run's worker: its sorted runs of bucket BBBBB,
                                 in their merge order NNNN (run_name), instead of shards (pipeline.local_run)

Rules: :func:`join` refuses a relative name that would leave the run folder; every file is written with
:func:`write_atomically` (a temporary ``.tmp-`` name, then a rename), so a file under its final name is
complete; :func:`list_files` is the one place an input pattern is expanded (sorted, so every listing of the
same files is in the same order); :func:`check_writable` and :func:`prepare_output` check an output folder
before any input is read.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import uuid
from collections.abc import Callable
from typing import Any, BinaryIO, Literal, NamedTuple, overload

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from common.cli import InputError, UsageError
from pipeline.reasons import known_reasons
from schemas.run import (
    INPUTS_FILE,
    MANIFEST_FILE,
    REPORT_DIR,
    RUN_FOLDERS,
    SHARD_KINDS,
    STATS_DIR,
    STATS_FILE,
    THRESHOLDS_FILE,
    TMP_PREFIX,
    WORDS_FILE,
    IncompleteRun,
    read_finished_manifest,
    shard_name,
    shard_paths,
    temporary_files,
)

__all__ = ["INPUTS_FILE", "MANIFEST_FILE", "REPORT_DIR", "SHARD_KINDS", "STATS_DIR", "STATS_FILE", "THRESHOLDS_FILE",
           "TMP_PREFIX", "WORDS_FILE", "BEAM_FILES", "FileInfo", "basename", "OutputNotEmpty", "OutputNotWritable",
           "check_separate", "check_writable", "delete", "exists", "finished_shards", "is_url", "join", "list_files",
           "match_files", "open_read", "prepare_output", "read_bytes", "read_json", "read_run_manifest",
           "relative_shard", "run_files_in", "run_name", "run_shards", "runs_by_bucket", "shard_name", "temporaries",
           "write_atomically", "write_bytes"]


class OutputNotWritable(InputError):
    """The output folder cannot be written (checked with a probe file before any input is read)."""


class OutputNotEmpty(InputError):
    """The output folder already holds a run (or the remains of one) and --overwrite was not given."""


class FileInfo(NamedTuple):
    path: str
    size: int | None


def is_url(path: str) -> bool:
    return "://" in path


def join(run_dir: str, relative: str) -> str:
    """Join a relative name (``curated/part-00000-0000.parquet``) under a run folder, refusing anything that
    would escape it."""
    normal = posixpath.normpath(relative)
    if normal.startswith("..") or posixpath.isabs(normal):
        raise ValueError(f"refusing to write outside the output folder: {relative!r}")
    return FileSystems.join(run_dir, *normal.split("/"))


def basename(path: str) -> str:
    return FileSystems.split(path)[1]


def relative_shard(kind: str, path: str) -> str:
    """A shard's name as a manifest lists it: relative to the run folder, whatever the filesystem."""
    return f"{kind}/{basename(path)}"


# --- reading -----------------------------------------------------------------------------------------------------


def list_files(pattern: str) -> list[FileInfo]:
    """The files a pattern (or a path) matches, sorted by path: the one place an input pattern is expanded.
    Raises what the filesystem raises (an unknown scheme, a bucket that cannot be listed)."""
    return sorted((FileInfo(m.path, m.size_in_bytes) for m in FileSystems.match([pattern])[0].metadata_list),
                  key=lambda f: f.path)


def match_files(patterns: list[str]) -> list[str]:
    """Every path the patterns match, pattern by pattern; FileNotFoundError for a pattern that matches nothing."""
    paths: list[str] = []
    for pattern in patterns:
        matched = [f.path for f in list_files(pattern)]
        if not matched:
            raise FileNotFoundError(f"no file matches {pattern}")
        paths.extend(matched)
    return paths


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def open_read(path: str) -> BinaryIO:
    """A file's bytes as stored (never decompressed on the way: a ``.gz`` input is read member by member)."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def read_bytes(path: str) -> bytes:
    with open_read(path) as fh:
        return fh.read()


def read_json(path: str) -> Any:
    return json.loads(read_bytes(path))


class BeamFiles:
    """:class:`schemas.run.RunFiles` through Beam's FileSystems: what the run-completion contract reads with."""

    def join(self, base: str, *parts: str) -> str:
        return FileSystems.join(base, *parts)

    def split(self, path: str) -> tuple[str, str]:
        return FileSystems.split(path.rstrip("/") if is_url(path) else path)

    def exists(self, path: str) -> bool:
        return FileSystems.exists(path)

    def read_bytes(self, path: str) -> bytes:
        return read_bytes(path)

    def glob(self, pattern: str) -> list[str]:
        return [f.path for f in list_files(pattern)]


BEAM_FILES = BeamFiles()


def finished_shards(run_dir: str, kind: str) -> list[str]:
    """The finished shards of one kind in a run folder as listed now (temporary files excluded)."""
    return shard_paths(BEAM_FILES, run_dir, kind)


RUN_SUFFIX = ".arrows"  # a sorted run: an Arrow IPC stream of its kind's schema (pipeline.sinks)
_RUN_NAME = re.compile(r"^run-(\d{5})-(\d{4,})\.arrows$")


def run_name(kind: str, bucket: int, seq: int) -> str:
    """A kept sorted run's path in its run folder: ``<kind>/run-<bucket:05d>-<seq:04d>.arrows`` (a local run's
    worker stops at its runs: :class:`pipeline.sinks.WriteShards`, ``stop_at_runs``)."""
    return f"{kind}/run-{bucket:05d}-{seq:04d}{RUN_SUFFIX}"


def runs_by_bucket(run_dir: str, kind: str) -> dict[int, list[str]]:
    """The kept runs of one kind in a run folder, by bucket, each bucket's in their merge order."""
    found: dict[int, list[tuple[int, str]]] = {}
    for info in list_files(join(run_dir, f"{kind}/run-*{RUN_SUFFIX}")):
        match = _RUN_NAME.match(basename(info.path))
        if match:
            found.setdefault(int(match[1]), []).append((int(match[2]), info.path))
    return {bucket: [path for _, path in sorted(runs)] for bucket, runs in sorted(found.items())}


def temporaries(run_dir: str) -> list[str]:
    """Files of a run still under a temporary name (writers running, or debris of killed or retried ones)."""
    return temporary_files(BEAM_FILES, run_dir)


@overload
def read_run_manifest(run_dir: str, allow_incomplete: Literal[False] = False) -> dict: ...
@overload
def read_run_manifest(run_dir: str, allow_incomplete: bool) -> dict | None: ...
def read_run_manifest(run_dir: str, allow_incomplete: bool = False) -> dict | None:
    """The manifest of the finished run in ``run_dir``, checked as :mod:`schemas.run` says;
    :class:`~schemas.run.IncompleteRun` when there is none that is valid, or None with ``allow_incomplete``."""
    try:
        return read_finished_manifest(run_dir, BEAM_FILES, known_reasons())
    except IncompleteRun:
        if allow_incomplete:
            return None
        raise


def run_shards(run_dir: str, kind: str, manifest: dict | None) -> list[str]:
    """The shards of one kind to read: those the manifest names, or (no manifest) the finished ones present."""
    if manifest is None:
        return finished_shards(run_dir, kind)
    return [join(run_dir, p) for p in manifest["shards"].get(kind, [])]


# --- writing -----------------------------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    """A short cause: the first underlying error of a BeamIOError, the strerror of an OSError."""
    details = getattr(exc, "exception_details", None)
    if isinstance(details, dict) and details:
        exc = next(iter(details.values()))
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def _delete_quietly(path: str) -> None:
    try:
        if FileSystems.exists(path):
            FileSystems.delete([path])
    except Exception:  # best effort: the caller is already failing with the real cause
        pass


def _make_durable(fh) -> None:
    """On local disk, flush and fsync before the rename publishes the file (so a power cut cannot leave an
    empty file under the final name). Object-store writers have no file descriptor, and some refuse a flush
    before close (GCS): they are left alone; their close() is what commits the object."""
    try:
        fd = fh.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return
    fh.flush()
    os.fsync(fd)


def write_atomically(path: str, write: Callable[[BinaryIO], object]) -> str:
    """Write a file so that it is complete under its final name or absent: ``write(fh)`` fills a temporary file
    beside ``path``, which is closed (fsynced on local disk) and renamed over ``path``. Any failure (a full
    disk, a network error at close) removes the temporary file and leaves an existing ``path`` as it was."""
    folder, name = FileSystems.split(path)
    temporary = FileSystems.join(folder, f"{TMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}")
    try:
        with FileSystems.create(temporary, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            write(fh)
            _make_durable(fh)
        try:
            FileSystems.rename([temporary], [path])
        except Exception:  # a filesystem whose rename refuses an existing target (HDFS): replace it
            if not FileSystems.exists(path):
                raise
            FileSystems.delete([path])
            FileSystems.rename([temporary], [path])
    except BaseException:
        _delete_quietly(temporary)
        raise
    return path


def delete(paths: list[str]) -> None:
    FileSystems.delete(list(paths))


def write_bytes(path: str, data: bytes) -> str:
    return write_atomically(path, lambda fh: fh.write(data))


def check_writable(output: str) -> None:
    """Create and delete a probe file in ``output`` (through Beam's FileSystems, so gs:// and s3:// too);
    :class:`OutputNotWritable` naming the cause otherwise. Called before any input is read."""
    probe = join(output, f"{TMP_PREFIX}probe-{uuid.uuid4().hex[:12]}")
    try:
        with FileSystems.create(probe, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            fh.write(b"lowbackground write probe\n")
        FileSystems.delete([probe])
    except Exception as exc:
        _delete_quietly(probe)
        raise OutputNotWritable(f"cannot write to the output folder {output}: {_reason(exc)}") from exc


def run_files_in(output: str) -> list[str]:
    """Every file of a run (finished or not) in ``output``: manifest first, then records, shards, statistics,
    report, temporaries."""
    found = [p for p in (join(output, n) for n in (MANIFEST_FILE, INPUTS_FILE, THRESHOLDS_FILE)) if exists(p)]
    # stats/ and report/ describe the run they sit in: a replaced run takes them along
    patterns = [join(output, f"{TMP_PREFIX}*")] + [join(output, f"{folder}/*") for folder in RUN_FOLDERS]
    for result in FileSystems.match(patterns):
        found += sorted(m.path for m in result.metadata_list)
    return found


def prepare_output(output: str, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder unless asked to replace the old one (whose manifest goes first, so
    an interrupted replacement never leaves a valid manifest over missing shards)."""
    existing = run_files_in(output)
    if existing and not overwrite:
        raise OutputNotEmpty(f"{output} already holds a run ({len(existing)} files); use --overwrite to replace it")
    for path in existing:
        FileSystems.delete([path])


def _normal(path: str) -> str:
    """A comparable form of a folder: absolute and symlink-free locally, normalised for a URL."""
    if is_url(path):
        scheme, rest = path.split("://", 1)
        return f"{scheme}://{posixpath.normpath('/' + rest).lstrip('/')}"
    return os.path.realpath(os.path.abspath(path))


def check_separate(source: str, output: str) -> None:
    """Refuse an output that is the input folder, inside it, or around it: writing there would replace or mix
    with the run being read (its manifest first of all)."""
    a, b = _normal(source), _normal(output)
    if a == b:
        raise UsageError(f"--output {output} is the --input folder: it would replace the run being read; "
                         "give a new folder")
    if b.startswith(a.rstrip("/") + "/"):
        raise UsageError(f"--output {output} is inside the --input run {source}; give a folder outside it")
    if a.startswith(b.rstrip("/") + "/"):
        raise UsageError(f"--output {output} contains the --input run {source}; give a folder outside it")
