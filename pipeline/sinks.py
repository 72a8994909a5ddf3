"""Parquet sinks: deterministic, size-bounded shards for curated, rejected and error rows.

Rows are spread over ``num_buckets`` buckets by a hash of their id, each bucket is sorted by source position
and cut into files of at most ``shard_size`` rows: ``<kind>/part-<bucket>-<chunk>.parquet``. The same input
gives byte-identical rows in identically named files whatever the runner or its parallelism.

Every shard is written with :func:`pipeline.layout.write_atomically` (as is every other file of a run): under
a unique temporary name (``.tmp-<random>-<name>``), closed (and fsynced on local disk), then renamed into place.
A crashed, killed or retried worker, or a full disk, leaves at worst a ``.tmp-`` file (which readers ignore and
``lowbg manifest`` reports), never a half-written file under its final name. Names and paths are
:mod:`pipeline.layout`'s.
"""

from __future__ import annotations

import functools
import zlib

import apache_beam as beam

import schemas
from pipeline.document import Document, ErrorRecord
from pipeline.layout import join, shard_name, write_atomically
from pipeline.settings import SinkSettings


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
            write_atomically(join(self.output, name), functools.partial(schemas.write_shard, chunk_rows, self.kind))
            yield name


class WriteShards(beam.PTransform):
    """PCollection[Document | ErrorRecord] -> PCollection[str] (shard names written): the ``kind`` shards of the
    run folder ``settings.output``, ``num_buckets`` buckets (resolved by the launcher when the settings leave it
    open), at most ``settings.shard_size`` rows a file."""

    def __init__(self, settings: SinkSettings, kind: str, num_buckets: int):
        super().__init__()
        self.output, self.kind, self.num_buckets, self.shard_size = settings.output, kind, num_buckets, \
            settings.shard_size

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
