"""Reference index: built from curated pre-cutoff shards, it dates post-cutoff copies of their content."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow.parquet as pq
import pytest

import schemas
from pipeline.dedup import Dedup, NearDedup, ReferenceMatch, build_reference_index, index_main
from pipeline.dedup.reference import BANDS_FILE, SIGNATURES_FILE, ReferenceIndexError, read_index_metadata
from pipeline.reasons import REASON_DUPLICATE_EXACT
from pipeline.settings import DedupSettings, MinHashSettings


def _write_shard(path, docs) -> None:
    rows = []
    for d in docs:
        d.processed_at = dt.datetime(2022, 12, 1, tzinfo=dt.UTC)
        d.pipeline_version = "test"
        rows.append(d.to_row())
    schemas.write_shard(rows, "curated", str(path))


@pytest.fixture
def reference(tmp_path, aut_pages, doc_factory, at):
    texts = [p["text"] for p in aut_pages if len(p["text"].split()) > 150]
    refs = {
        "ref-a": doc_factory("ref-a", texts[0], at(2019, 5)),
        "ref-b": doc_factory("ref-b", texts[1], at(2020, 8)),
        "ref-c": doc_factory("ref-c", texts[2], at(2021, 2)),
        "ref-post": doc_factory("ref-post", texts[3], at(2023, 3)),  # post-cutoff: not indexed
        "ref-short": doc_factory("ref-short", "too short to shingle", at(2019, 1)),
    }
    shard = tmp_path / "curated-00000.parquet"
    _write_shard(shard, list(refs.values()))
    index = tmp_path / "index"
    stats = build_reference_index([str(tmp_path / "curated-*.parquet")], str(index))
    return index, refs, texts, stats


def test_index_contents_and_metadata(reference):
    index, refs, _, stats = reference
    assert stats == {"pre_cutoff_read": 4, "indexed": 3, "too_short": 1, "band_keys": 27}
    meta = read_index_metadata(str(index))
    assert (meta["num_perm"], meta["bands"], meta["rows"], meta["ngram"]) == (128, 9, 13, 5)
    bands = pq.read_table(index / BANDS_FILE)
    sigs = pq.read_table(index / SIGNATURES_FILE)
    assert set(sigs.column("ref_id").to_pylist()) == {"ref-a", "ref-b", "ref-c"}
    assert {len(s) for s in sigs.column("signature").to_pylist()} == {128 * 4}
    assert bands.num_rows == 27 and set(bands.column("band").to_pylist()) == set(range(9))
    first = dict(zip(sigs.column("ref_id").to_pylist(), sigs.column("first_seen").to_pylist()))
    assert first["ref-a"] == refs["ref-a"].warc_date


def test_post_cutoff_copies_of_reference_content_are_pre_cutoff(reference, doc_factory, mutator, at, run):
    index, refs, texts, _ = reference
    import random

    rng = random.Random(4)
    docs = [
        doc_factory("new-a", texts[0], at(2024, 1)),  # exact copy of ref-a
        doc_factory("new-b", mutator(texts[1], 1, rng), at(2023, 6)),  # near copy of ref-b
        doc_factory("new-c1", texts[2], at(2024, 4)),  # two copies of ref-c in this run
        doc_factory("new-c2", texts[2], at(2023, 9)),
        doc_factory("new-post", texts[3], at(2024, 2)),  # copy of a post-cutoff reference doc: not indexed
        doc_factory("new-other", texts[4], at(2024, 2)),
    ]
    out, counters = run(docs, NearDedup(reference_index=str(index)))
    got = {d.id: d for d in out}
    for doc_id, ref_id in (("new-a", "ref-a"), ("new-b", "ref-b"), ("new-c2", "ref-c")):
        d = got[doc_id]
        assert d.provenance == "post_cutoff" and not d.rejected
        assert (d.content_provenance, d.content_provenance_source) == ("pre_cutoff", "reference")
        assert d.first_seen == refs[ref_id].warc_date
    assert got["new-c1"].duplicate_of == "new-c2" and got["new-c1"].reason == REASON_DUPLICATE_EXACT
    assert got["new-c2"].dup_cluster_size == 2
    for doc_id in ("new-post", "new-other"):
        d = got[doc_id]
        assert (d.content_provenance, d.content_provenance_source, d.first_seen) == ("post_cutoff", "self",
                                                                                    d.warc_date)
    assert counters["reference_matches"] == 3


def test_reference_match_alone(reference, doc_factory, at, run):
    index, refs, texts, _ = reference
    docs = [doc_factory("x", texts[0], at(2025, 1)), doc_factory("y", texts[0], at(2025, 2))]
    out, _ = run(docs, ReferenceMatch(str(index)))
    assert all(not d.rejected for d in out)  # no dedup asked for
    assert {d.content_provenance_source for d in out} == {"reference"}
    assert {d.first_seen for d in out} == {refs["ref-a"].warc_date}


def test_mismatching_or_missing_index_is_refused_before_work(reference, tmp_path):
    index = str(reference[0])
    with pytest.raises(ReferenceIndexError, match="num_perm: index 128 vs run 64"):
        Dedup(DedupSettings(reference_index=index, minhash=MinHashSettings(num_perm=64)))
    with pytest.raises(ReferenceIndexError, match="ngram: index 5 vs run 3"):
        Dedup(DedupSettings(reference_index=index, minhash=MinHashSettings(ngram=3)))
    with pytest.raises(ReferenceIndexError, match="cannot read reference index"):
        Dedup(DedupSettings(reference_index=str(tmp_path / "nowhere")))
    plain = tmp_path / "plain"
    plain.mkdir()
    pq.write_table(pq.read_table(reference[0] / BANDS_FILE).replace_schema_metadata(None), plain / BANDS_FILE)
    with pytest.raises(ReferenceIndexError, match="not a lowbackground reference index"):
        Dedup(DedupSettings(reference_index=str(plain)))


def test_index_main(reference, tmp_path, capsys):
    _, _, _, _ = reference
    out = tmp_path / "index2"
    assert index_main(["build", "--input", str(tmp_path / "curated-*.parquet"), "--output", str(out),
                       "--minhash-num-perm", "64"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["indexed"] == 3
    assert read_index_metadata(str(out))["num_perm"] == 64
    assert index_main(["--input", str(tmp_path / "missing-*.parquet"), "--output", str(out)]) == 2
    assert "no file matches" in capsys.readouterr().err
