"""Parquet sinks: deterministic, size-bounded shards for curated, rejected and error rows.

Rows are spread over ``num_buckets`` buckets by a hash of their id, each bucket is sorted by source position
and cut into files of at most ``shard_size`` rows: ``<kind>/part-<bucket>-<chunk>.parquet``. The same input
gives byte-identical rows in identically named files whatever the runner or its parallelism. Each file is
written under a temporary name and renamed into place, so a crashed worker leaves no half shard behind.
"""

from __future__ import annotations

import posixpath
import zlib

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

import schemas
from pipeline.document import Document, ErrorRecord

TMP_PREFIX = ".tmp-"


def shard_name(kind: str, bucket: int, chunk: int) -> str:
    return f"{kind}/part-{bucket:05d}-{chunk:04d}.parquet"


def join(output: str, relative: str) -> str:
    """Join under the output folder, refusing anything that would escape it."""
    normal = posixpath.normpath(relative)
    if normal.startswith("..") or posixpath.isabs(normal):
        raise ValueError(f"refusing to write outside the output folder: {relative!r}")
    return FileSystems.join(output, *normal.split("/"))


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
            final = join(self.output, name)
            temporary = join(self.output, f"{self.kind}/{TMP_PREFIX}{name.rsplit('/', 1)[1]}")
            with FileSystems.create(temporary) as sink:
                schemas.write_shard(rows[start:start + self.shard_size], self.kind, sink)
            if FileSystems.exists(final):
                FileSystems.delete([final])
            FileSystems.rename([temporary], [final])
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
