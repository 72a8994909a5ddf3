"""Parquet sinks: deterministic, size-bounded shards for curated, rejected and error rows, in bounded memory.

Rows are spread over ``num_buckets`` buckets by a hash of their id, each bucket is sorted by source position
and cut into files of at most ``shard_size`` rows: ``<kind>/part-<bucket>-<chunk>.parquet``. The same input
gives byte-identical rows in identically named files whatever the runner or its parallelism.

Memory does not grow with the input (an external merge sort, as a database sorts what does not fit):

* ``SpillRuns``: each worker buffers the rows it is given per bucket up to :data:`SPILL_BYTES` (estimated), then
  sorts each bucket's buffer and writes it as one sorted *run* (an Arrow IPC stream of the kind's schema, in
  record batches of :data:`RUN_BATCH_ROWS` rows) under a temporary name in the kind's folder
  (``<kind>/.tmp-run-<random>.arrows``), and emits only ``(bucket, run path)``;
* the shuffle groups run paths, not rows (several inputs, e.g. the rejected documents of every stage, are each
  spilled on their own and only their run paths flattened: see :class:`WriteShards`);
* the shuffle groups run paths, not rows (the shuffle used to carry every row of the run: one worker's whole input
  in memory, since a local run has one bucket per input file);
* ``_WriteBucket`` merges a bucket's runs (``heapq.merge``: a batch of each run in memory at a time) into the one
  sorted order, cuts it into chunks and writes each chunk as Parquet row groups of at most :data:`ROW_GROUP_ROWS`
  rows, streamed (``pyarrow.parquet.ParquetWriter``), then deletes the runs. The row group being built is held as
  Arrow (converted every :data:`ARROW_BATCH_ROWS` rows), not as 2,048 Python dicts.

With ``stop_at_runs`` (the workers and the tail of ``lowbg curate --local-workers``, :mod:`pipeline.local_run`)
the sink stops before the merge: ``_KeepRuns`` renames each bucket's runs, in the order ``_WriteBucket`` would
have merged them, to ``<kind>/run-<bucket>-<seq>.arrows`` (:func:`pipeline.layout.run_name`), and the launcher
merges every worker's runs of a bucket straight into the run's shards (:func:`merge_sorted` and
:func:`write_chunks`, as here): no Parquet is written by a worker and read back. A bucket's runs are kept as they
are rather than merged into one run per bucket: that merge would decode and re-encode every row once more, and
the launcher's merge of a bucket opens about as many runs as one worker's ``_WriteBucket`` does (the runs hold the
same rows, cut at the same spill size). Runs are renamed only after the shuffle, once every run is complete: a
run under its kept name is whole, and one a retried bundle left keeps its temporary name (debris).

A chunk of at most :data:`ROW_GROUP_ROWS` rows is one row group, byte for byte what ``pyarrow.parquet.write_table``
writes; larger chunks have several row groups of that size (the row group is Parquet's unit of reading anyway).
The order of rows equal in their whole sort key (the same record twice) is the order the runs were merged in,
as it was the order the shuffle delivered them before.

Every shard is written with :func:`pipeline.layout.write_atomically` (as is every other file of a run): under
a unique temporary name (``.tmp-<random>-<name>``), closed (and fsynced on local disk), then renamed into place.
A crashed, killed or retried worker, or a full disk, leaves at worst a ``.tmp-`` file (which readers ignore and
``lowbg manifest`` reports; a run file of a retried bundle is one of them), never a half-written file under its
final name. Names and paths are :mod:`pipeline.layout`'s.
"""

from __future__ import annotations

import heapq
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

import schemas
from pipeline.document import Document, ErrorRecord
from pipeline.layout import (
    RUN_SUFFIX,
    TMP_PREFIX,
    delete,
    join,
    open_read,
    run_name,
    shard_name,
    write_atomically,
)
from pipeline.settings import SinkSettings

SPILL_BYTES = 12 * 2**20  # rows buffered by one writer before a sorted run is written (estimated bytes)
ROW_OVERHEAD_BYTES = 1024  # the estimate of a row's size besides its text: ids, URLs, signals, Python objects
# rows per record batch of a run file: what the merge holds of each run at a time (as Arrow and as dicts; ~0.5 MB
# for 16 rows of real text); the merge of a 32,000-record file reads ~26 runs at once
RUN_BATCH_ROWS = 16
# rows of a run converted to Arrow at once (then written as record batches of RUN_BATCH_ROWS): converting costs
# ~0.5 ms a call besides its rows: ~30-40 us a row in calls of 16 rows, ~10 us in calls of 128 (a slab of a
# run is at most the run, SPILL_BYTES)
RUN_CONVERT_ROWS = 128
ROW_GROUP_ROWS = 2048  # rows per Parquet row group at most
ARROW_BATCH_ROWS = 64  # rows of a row group being built held as Python dicts before they are converted to Arrow
DOCUMENT_RUN_SUFFIX = ".docs"  # runs of whole documents (SpillDocuments)
DOCUMENT_RUN_KIND = "curated"  # their schema: a kept document's row


def _bucket(key: str, num_buckets: int) -> int:
    return zlib.crc32(key.encode("utf-8")) % num_buckets


def _document_sort_key(row: dict) -> tuple:
    return (row["warc_file"], row["warc_offset"] if row["warc_offset"] is not None else -1, row["id"])


def _error_sort_key(row: dict) -> tuple:
    return (row["warc_file"], row["warc_offset"] if row["warc_offset"] is not None else -1, row["stage"],
            row["reason"], row["document_id"] or "", row["message"] or "")


def sort_key_for(kind: str) -> Callable[[dict], tuple]:
    return _error_sort_key if kind == "errors" else _document_sort_key


def _row_bytes(row: dict) -> int:
    text = row.get("text") or row.get("message") or ""
    return len(text) + ROW_OVERHEAD_BYTES


def write_run(rows: list[dict], kind: str, path: str) -> None:
    """``rows`` (already sorted) as one run file: an Arrow IPC stream of ``kind``'s schema."""
    schema = schemas.schema_for(kind)
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        with pa.ipc.new_stream(fh, schema) as writer:
            for start in range(0, len(rows), RUN_CONVERT_ROWS):
                writer.write_table(schemas.table_from_rows(rows[start:start + RUN_CONVERT_ROWS], kind),
                                   max_chunksize=RUN_BATCH_ROWS)


def read_run(path: str) -> Iterator[dict]:
    """The rows of a run file, one record batch in memory at a time."""
    with open_read(path) as fh:
        reader = pa.ipc.open_stream(fh)
        for batch in reader:
            yield from batch.to_pylist()


def run_rows(path: str) -> int:
    """The number of rows in a run file (every record batch read: the rows actually there)."""
    with open_read(path) as fh:
        return sum(batch.num_rows for batch in pa.ipc.open_stream(fh))


def merge_sorted(runs: Iterable[Iterator[dict]], kind: str) -> Iterator[dict]:
    return heapq.merge(*runs, key=sort_key_for(kind))


def write_chunks(rows: Iterator[dict], kind: str, shard_size: int, output: str, bucket: int) -> Iterator[str]:
    """Cut sorted ``rows`` into chunks of ``shard_size`` rows and write each (row groups of at most
    :data:`ROW_GROUP_ROWS` rows, streamed); yields the shard names written, in order."""
    rows = iter(rows)
    first = next(rows, None)
    chunk = 0
    while first is not None:
        name = shard_name(kind, bucket, chunk)
        state = {"next": None}

        def write(sink, head=first, state=state):
            state["next"] = _write_chunk(sink, kind, head, rows, shard_size)

        write_atomically(join(output, name), write)
        yield name
        first, chunk = state["next"], chunk + 1


class _RowGroup:
    """The rows of one Parquet row group, held as Arrow (compact) rather than as Python dicts: every
    :data:`ARROW_BATCH_ROWS` rows are converted, and the pieces joined into one contiguous table when the group is
    written. A row of real text is about twice as large as a Python dict as in Arrow (a ``str`` with one non-Latin-1
    character stores every character in 2 or 4 bytes), and a row group of 2,048 such dicts held ~70 MB: the largest
    single allocation of a local run (``docs/scaling.md``, section 1)."""

    def __init__(self, kind: str):
        self.kind, self.size = kind, 0
        self.rows: list[dict] = []
        self.tables: list[pa.Table] = []

    def append(self, row: dict) -> None:
        self.rows.append(row)
        self.size += 1
        if len(self.rows) == ARROW_BATCH_ROWS:
            self.tables.append(schemas.table_from_rows(self.rows, self.kind))
            self.rows = []

    def write(self, writer: pq.ParquetWriter) -> None:
        if self.rows:
            self.tables.append(schemas.table_from_rows(self.rows, self.kind))
        # One contiguous table: the pieces as separate chunks would be written as other pages (other bytes).
        table = pa.concat_tables(self.tables).combine_chunks()
        self.rows, self.tables, self.size = [], [], 0
        writer.write_table(table)


def _write_chunk(sink, kind: str, head: dict, rows: Iterator[dict], shard_size: int) -> dict | None:
    """Write ``head`` and the rows after it up to ``shard_size`` rows as one Parquet file; the row after the chunk
    (None at the end)."""
    schema = schemas.schema_for(kind)
    group = _RowGroup(kind)
    group.append(head)
    written = 1
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for row in rows:
            if written == shard_size:
                group.write(writer)
                return row
            if group.size == ROW_GROUP_ROWS:
                group.write(writer)
            group.append(row)
            written += 1
        group.write(writer)
    return None


class _BufferedSpill(beam.DoFn):
    """Items -> (bucket, run path): buffered per bucket up to ``spill_bytes`` (estimated) by each worker, then
    every bucket's buffer written as one sorted run (:meth:`_write`); the shared half of :class:`_SpillRuns` and
    :class:`SpillDocuments`."""

    def __init__(self, spill_bytes: int | None = None):
        self.spill_bytes = spill_bytes if spill_bytes is not None else SPILL_BYTES

    def start_bundle(self):
        self.buffers: dict[int, list] = {}
        self.buffered = 0

    def add(self, bucket: int, item, size: int) -> Iterator[tuple[int, str]]:
        self.buffers.setdefault(bucket, []).append(item)
        self.buffered += size
        if self.buffered >= self.spill_bytes:
            yield from self._spill()

    def finish_bundle(self):
        for element in self._spill():
            yield GlobalWindows.windowed_value(element)

    def _spill(self) -> Iterator[tuple[int, str]]:
        for bucket in sorted(self.buffers):
            yield bucket, self._write(self.buffers[bucket])
        self.buffers, self.buffered = {}, 0

    def _write(self, items: list) -> str:
        """Sort ``items`` and write them as one run; its path."""
        raise NotImplementedError


class _SpillRuns(_BufferedSpill):
    """Rows -> (bucket, run path): sorted runs of at most :data:`SPILL_BYTES` per bucket (module docstring)."""

    def __init__(self, output: str, kind: str, num_buckets: int, spill_bytes: int | None = None):
        super().__init__(spill_bytes)
        self.output, self.kind, self.num_buckets = output, kind, num_buckets

    def process(self, row: dict):
        key = row.get("id") or row.get("document_id") or f"{row['warc_file']}@{row['warc_offset']}"
        yield from self.add(_bucket(key, self.num_buckets), row, _row_bytes(row))

    def _write(self, items: list) -> str:
        path = join(self.output, f"{self.kind}/{TMP_PREFIX}run-{uuid.uuid4().hex}{RUN_SUFFIX}")
        write_run(sorted(items, key=sort_key_for(self.kind)), self.kind, path)
        return path


def document_bucket(doc_id: str, buckets: int) -> int:
    return zlib.crc32(doc_id.encode("utf-8")) % buckets


class SpillDocuments(_BufferedSpill):
    """Kept Documents -> (bucket, run path): runs of whole documents on disk, so that a stage which must wait for
    all of its input (a join, a side input) holds their paths and not the documents (Beam's local runner buffers
    whatever waits, whole). Each worker buffers documents up to ``spill_bytes`` (estimated: text + a fixed
    overhead), then writes each bucket's buffer (``document_bucket(id, buckets)``), sorted by id, as one run:
    ``<folder>/.tmp-<name>-<random>.docs``, an Arrow IPC stream of the curated shards' schema, the row of a kept
    document being all of it (:meth:`Document.to_row` / :meth:`Document.from_row` round-trip it; a file is read
    as data, never unpickled). :func:`read_document_run` reads a run back; its reader deletes it."""

    def __init__(self, folder: str, buckets: int = 1, spill_bytes: int | None = None, name: str = "documents"):
        super().__init__(spill_bytes)
        self.folder, self.buckets, self.name = folder, buckets, name

    def process(self, doc: Document):
        if doc.rejected:
            raise ValueError(f"document {doc.id}: only kept documents are spilled (a row holds no reject reason)")
        yield from self.add(document_bucket(doc.id, self.buckets), doc, len(doc.text or "") + ROW_OVERHEAD_BYTES)

    def _write(self, items: list) -> str:
        path = join(self.folder, f"{TMP_PREFIX}{self.name}-{uuid.uuid4().hex}{DOCUMENT_RUN_SUFFIX}")
        write_run([doc.to_row() for doc in sorted(items, key=lambda d: d.id)], DOCUMENT_RUN_KIND, path)
        return path


def read_document_run(path: str) -> Iterator[Document]:
    """The documents of a run written by :class:`SpillDocuments`, one at a time, in its order (by id)."""
    for row in read_run(path):
        yield Document.from_row(row)


class _WriteBucket(beam.DoFn):
    def __init__(self, output: str, kind: str, shard_size: int):
        self.output, self.kind, self.shard_size = output, kind, shard_size

    def process(self, element):
        bucket, runs = element
        runs = sorted(runs)  # a grouped iterable; sorted so that the merge order does not depend on the shuffle
        rows = merge_sorted([read_run(path) for path in runs], self.kind)
        yield from write_chunks(rows, self.kind, self.shard_size, self.output, bucket)
        delete(runs)


class _KeepRuns(beam.DoFn):
    """(bucket, run paths) -> the runs kept under their final names, in merge order (module docstring)."""

    def __init__(self, output: str, kind: str):
        self.output, self.kind = output, kind

    def process(self, element):
        bucket, runs = element
        runs = sorted(runs)  # the order _WriteBucket merges them in
        kept = [join(self.output, run_name(self.kind, bucket, seq)) for seq in range(len(runs))]
        FileSystems.rename(runs, kept)
        yield from kept


class WriteShards(beam.PTransform):
    """PCollection[Document | ErrorRecord] (or several: {"0": pcoll, "1": ...}) -> PCollection[str] (shards written):
    the ``kind`` shards of the run folder ``settings.output``, ``num_buckets`` buckets (resolved by the launcher
    when the settings leave it open), at most ``settings.shard_size`` rows a file. With ``stop_at_runs``, each
    bucket's sorted runs under their final names instead (``<kind>/run-<bucket>-<seq>.arrows``), for a local run's
    launcher to merge (module docstring)."""

    def __init__(self, settings: SinkSettings, kind: str, num_buckets: int, stop_at_runs: bool = False):
        super().__init__()
        self.output, self.kind, self.num_buckets, self.shard_size = settings.output, kind, num_buckets, \
            settings.shard_size
        self.stop_at_runs = stop_at_runs

    def expand(self, pcolls):
        # Several inputs (every stage's rejected documents) are spilled each on its own and only the run paths are
        # flattened: a Flatten is a materialisation point of Beam's local runner (every element of its output
        # buffered, encoded, before the next stage runs), which for whole rows was a copy of the run in memory.
        inputs = [pcolls[k] for k in sorted(pcolls, key=int)] if isinstance(pcolls, dict) else [pcolls]
        spill = _SpillRuns(self.output, self.kind, self.num_buckets)
        runs = [pcoll
                | f"ToRow{i or ''}" >> beam.Map(_to_row)
                | f"SpillRuns{i or ''}" >> beam.ParDo(spill)
                for i, pcoll in enumerate(inputs)]
        if len(runs) > 1:
            runs = [runs | "AllRuns" >> beam.Flatten()]
        grouped = runs[0] | "GroupRuns" >> beam.GroupByKey()
        if self.stop_at_runs:
            return grouped | "KeepRuns" >> beam.ParDo(_KeepRuns(self.output, self.kind))
        return grouped | "WriteParquet" >> beam.ParDo(_WriteBucket(self.output, self.kind, self.shard_size))


def _to_row(item: Document | ErrorRecord) -> dict:
    return item.to_row()
