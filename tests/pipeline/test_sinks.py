"""pipeline/sinks.py on real pages: every row in exactly one shard, at most ``shard_size`` rows a file, rows
bucketed by id and sorted by source position, no temporary file left, and byte-identical shards whatever the
order the rows arrive in or the runner's parallelism."""

from __future__ import annotations

import hashlib
import re
import zlib
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions

import schemas
from pipeline.document import ErrorRecord
from pipeline.reasons import ERROR_STEP, QUALITY
from pipeline.settings import SinkSettings
from pipeline.sinks import WriteShards

SHARD_SIZE, BUCKETS = 3, 2
NAME = re.compile(r"^part-(\d+)-(\d+)\.parquet$")


def documents(pages: list[dict], doc_factory, at) -> list:
    docs = []
    for i, page in enumerate(pages):
        doc = doc_factory(f"id-{i:03d}", page["text"], at(2020), warc_file=f"file-{i % 2}.warc.gz")
        doc.warc_offset = 1000 - 37 * i  # source order differs from id order
        doc.processed_at, doc.pipeline_version = at(2026), "test"
        docs.append(doc)
    return docs


def write(items: list, kind: str, output: Path, workers: int = 1) -> list[str]:
    options = PipelineOptions([f"--direct_num_workers={workers}", "--direct_running_mode=multi_threading"])
    with beam.Pipeline(runner="DirectRunner", options=options) as p:
        _ = (p | beam.Create(items, reshuffle=workers > 1)
             | "Write" >> WriteShards(SinkSettings(output=str(output), shard_size=SHARD_SIZE), kind, BUCKETS))
    return sorted(path.name for path in (output / kind).iterdir())


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_curated_shards_hold_every_row_once_bucketed_by_id_and_in_source_order(cc_pages, aut_pages, doc_factory,
                                                                                 at, tmp_path):
    docs = documents(cc_pages + aut_pages, doc_factory, at)
    names = write(docs, "curated", tmp_path / "a")
    assert names and all(NAME.match(n) for n in names)  # no .tmp- file left behind
    seen = []
    for name in names:
        bucket, chunk = map(int, NAME.match(name).groups())
        table = schemas.read_shard(str(tmp_path / "a" / "curated" / name), "curated")
        assert 0 < table.num_rows <= SHARD_SIZE
        rows = table.select(["id", "warc_file", "warc_offset", "text"]).to_pylist()
        assert all(zlib.crc32(r["id"].encode()) % BUCKETS == bucket for r in rows)
        seen += [(bucket, chunk, r["warc_file"], r["warc_offset"], r["id"], r["text"]) for r in rows]
    assert sorted((d.id, d.text) for d in docs) == sorted((s[4], s[5]) for s in seen)
    for bucket in range(BUCKETS):  # a bucket's chunks, read in order, are sorted by source position
        mine = [s for s in seen if s[0] == bucket]
        assert mine == sorted(mine, key=lambda s: (s[1], s[2], s[3], s[4]))
        assert [s[2:4] for s in mine] == sorted(s[2:4] for s in mine)


def test_the_same_rows_give_byte_identical_shards_whatever_their_order_or_parallelism(cc_pages, aut_pages,
                                                                                       doc_factory, at, tmp_path):
    docs = documents(cc_pages + aut_pages, doc_factory, at)
    write(docs, "curated", tmp_path / "one")
    write(list(reversed(docs)), "curated", tmp_path / "reversed", workers=3)
    assert digests(tmp_path / "one" / "curated") == digests(tmp_path / "reversed" / "curated")


def test_error_rows_are_written_sorted_and_valid(cc_pages, doc_factory, at, tmp_path):
    docs = documents(cc_pages, doc_factory, at)
    errors = [ErrorRecord.for_document(d, RuntimeError(f"bug {i}"), stage=QUALITY, reason=ERROR_STEP)
              for i, d in enumerate(docs)]
    for e in errors:  # stamped by the builder on the way to the sink
        e.processed_at, e.pipeline_version = at(2026), "test"
    names = write(errors, "errors", tmp_path / "e")
    rows = [r for n in names for r in pq.read_table(tmp_path / "e" / "errors" / n).to_pylist()]
    assert sorted(r["document_id"] for r in rows) == sorted(d.id for d in docs)
    assert {(r["stage"], r["reason"]) for r in rows} == {(QUALITY, ERROR_STEP)}
    assert all(schemas.read_shard(str(tmp_path / "e" / "errors" / n), "errors").num_rows <= SHARD_SIZE for n in names)
