"""Parquet sinks: deterministic, size-bounded shards for curated, rejected and error rows.

Rows are spread over ``num_buckets`` buckets by a hash of their id, each bucket is sorted by source position
and cut into files of at most ``shard_size`` rows: ``<kind>/part-<bucket>-<chunk>.parquet``. The same input
gives byte-identical rows in identically named files whatever the runner or its parallelism.

Every file of a run (shards, ``_inputs.jsonl``, ``_thresholds.json``, ``manifest.json``) is written with
:func:`write_atomically`: under a unique temporary name (``.tmp-<random>-<name>``), closed (and fsynced on local
disk), then renamed into place. A crashed, killed or retried worker, or a full disk, leaves at worst a ``.tmp-``
file (which readers ignore and ``lowbg manifest`` reports), never a half-written file under its final name.
This module also holds the checks an output folder gets before any input is read: :func:`check_writable` and
:func:`prepare_output`.
"""

from __future__ import annotations

import os
import posixpath
import uuid
import zlib
from collections.abc import Callable
from typing import BinaryIO

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

import schemas
from common.cli import InputError
from pipeline.document import Document, ErrorRecord
from schemas.run import INPUTS_FILE, MANIFEST_FILE, THRESHOLDS_FILE, TMP_PREFIX


class OutputNotWritable(InputError):
    """The output folder cannot be written (checked with a probe file before any input is read)."""


class OutputNotEmpty(InputError):
    """The output folder already holds a run (or the remains of one) and --overwrite was not given."""


def shard_name(kind: str, bucket: int, chunk: int) -> str:
    return f"{kind}/part-{bucket:05d}-{chunk:04d}.parquet"


def join(output: str, relative: str) -> str:
    """Join under the output folder, refusing anything that would escape it."""
    normal = posixpath.normpath(relative)
    if normal.startswith("..") or posixpath.isabs(normal):
        raise ValueError(f"refusing to write outside the output folder: {relative!r}")
    return FileSystems.join(output, *normal.split("/"))


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
    """Every file of a run (finished or not) in ``output``: manifest first, then records, shards, temporaries."""
    found = [p for p in (join(output, n) for n in (MANIFEST_FILE, INPUTS_FILE, THRESHOLDS_FILE))
             if FileSystems.exists(p)]
    # stats/ and report/ describe the run they sit in: a replaced run takes them along
    patterns = [join(output, f"{TMP_PREFIX}*")] + [join(output, f"{folder}/*")
                                                   for folder in (*schemas.KINDS, "stats", "report")]
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


def _bucket(key: str, num_buckets: int) -> int:
    return zlib.crc32(key.encode("utf-8")) % num_buckets


def _document_sort_key(row: dict) -> tuple:
    return (row["warc_file"], row["warc_offset"] if row["warc_offset"] is not None else -1, row["id"])


def _error_sort_key(row: dict) -> tuple:
    return (row["warc_file"], row["warc_offset"] if row["warc_offset"] is not None else -1, row["stage"],
            row["reason"], row["document_id"] or "", row["message"] or "")


class _WriteBucket(beam.DoFn):
    def __init__(self, output: str, kind: str, shard_size: int):
        self.output, self.kind, self.shard_size = output, kind, shard_size

    def process(self, element):
        bucket, rows = element
        rows = sorted(rows, key=_error_sort_key if self.kind == "errors" else _document_sort_key)
        for chunk, start in enumerate(range(0, len(rows), self.shard_size)):
            name = shard_name(self.kind, bucket, chunk)
            chunk_rows = rows[start:start + self.shard_size]
            write_atomically(join(self.output, name),
                             lambda sink, part=chunk_rows: schemas.write_shard(part, self.kind, sink))
            yield name


class WriteShards(beam.PTransform):
    """PCollection[Document | ErrorRecord] -> PCollection[str] (shard names written)."""

    def __init__(self, output: str, kind: str, num_buckets: int, shard_size: int):
        super().__init__()
        self.output, self.kind, self.num_buckets, self.shard_size = output, kind, num_buckets, shard_size

    def expand(self, pcoll):
        buckets = self.num_buckets
        return (pcoll
                | "ToRow" >> beam.Map(_to_row)
                | "KeyByBucket" >> beam.Map(lambda row: (_bucket(row.get("id") or row.get("document_id")
                                                                 or f"{row['warc_file']}@{row['warc_offset']}",
                                                                 buckets), row))
                | "GroupBuckets" >> beam.GroupByKey()
                | "WriteParquet" >> beam.ParDo(_WriteBucket(self.output, self.kind, self.shard_size)))


def _to_row(item: Document | ErrorRecord) -> dict:
    return item.to_row()
