"""Reference index: built by a Beam pipeline from curated shards, extended without rebuilding, and matched by
`lowbg curate`'s dedup (content dated by the index, or rejected as a copy of a document a finished run holds)."""

from __future__ import annotations

import datetime as dt
import json
import random

import pyarrow.parquet as pq
import pytest

import schemas
from pipeline.curate import finish_run
from pipeline.dedup import Dedup, IndexReader, NearDedup, ReferenceMatch, index_main
from pipeline.dedup.index_build import build_index, extend_index
from pipeline.dedup.minhash import MinHasher, band_keys, optimal_bands
from pipeline.dedup.normalize import text_hash
from pipeline.dedup.reference import (
    BANDS,
    EXACT,
    INDEX_FILE,
    SIGNATURES,
    ReferenceIndexError,
    partition_of,
    read_index_manifest,
    read_index_metadata,
    read_table,
    table_files,
)
from pipeline.reasons import REASON_DUPLICATE_EXACT, REASON_DUPLICATE_NEAR
from pipeline.settings import DedupSettings, MinHashSettings


def _write_shard(path, docs) -> None:
    rows = []
    for d in docs:
        d.processed_at = dt.datetime(2022, 12, 1, tzinfo=dt.UTC)
        d.pipeline_version = "test"
        rows.append(d.to_row())
    schemas.write_shard(rows, "curated", str(path))


def finished_run(folder, docs) -> str:
    """A finished run as `lowbg curate` leaves one: curated shard, inputs record, manifest (written by the same
    code that finishes a curate run)."""
    (folder / "curated").mkdir(parents=True)
    _write_shard(folder / "curated" / "part-00000-0000.parquet", docs)
    entry = {"path": f"{folder.name}.warc.gz", "size": 1, "sha256": None, "records": len(docs), "units": len(docs),
             "documents": len(docs), "errors": 0, "skipped": {}, "notes": []}
    (folder / "_inputs.jsonl").write_text(json.dumps(entry) + "\n")
    finish_run(str(folder), {"note": "test run"}, {}, {}, job_finished=True)
    return str(folder)


@pytest.fixture
def reference(tmp_path, aut_pages, doc_factory, at):
    texts = [p["text"] for p in aut_pages if len(p["text"].split()) > 150]
    refs = {
        "ref-a": doc_factory("ref-a", texts[0], at(2019, 5)),
        "ref-b": doc_factory("ref-b", texts[1], at(2020, 8)),
        "ref-c": doc_factory("ref-c", texts[2], at(2021, 2)),
        "ref-post": doc_factory("ref-post", texts[3], at(2023, 3)),  # post-cutoff: indexed, not pre-cutoff
        "ref-short": doc_factory("ref-short", "too short to shingle", at(2019, 1)),  # exact key only
    }
    _write_shard(tmp_path / "curated-00000.parquet", list(refs.values()))
    index = tmp_path / "index"
    manifest = build_index([str(tmp_path / "curated-*.parquet")], str(index), partitions=4)
    return index, refs, texts, manifest


def test_index_tables_hold_every_key_once_sorted_and_partitioned(reference):
    index, refs, _, manifest = reference
    assert manifest["counts"][EXACT] == 5 and manifest["counts"][SIGNATURES] == 4
    assert manifest["counts"]["last_build"] == {"documents_read": 5, "empty_text": 0, "indexed": 5, "no_date": 0,
                                                "not_pre_cutoff": 0, "too_short": 1}
    meta = read_index_metadata(str(index))
    assert (meta["num_perm"], meta["bands"], meta["rows"], meta["ngram"]) == (128, 9, 13, 5)
    # The band rows, computed here document by document, independently of the Beam build
    hasher, (bands, rows) = MinHasher(128, 5), optimal_bands(0.8, 128)
    expected = set()
    for doc in refs.values():
        values, ok = hasher.signatures([doc.text])
        if ok[0]:
            expected |= {(int.from_bytes(k[:2], "big"), int.from_bytes(k[2:], "big"), doc.id)
                         for k in band_keys(values[0], bands, rows)}
    got = read_table(str(index), BANDS)
    assert {(r["band"], r["band_hash"], r["ref_id"]) for r in got.to_pylist()} == expected
    assert manifest["counts"][BANDS] == len(expected) == 36
    exact = {r["text_hash"]: r for r in read_table(str(index), EXACT).to_pylist()}
    assert set(exact) == {text_hash(d.text) for d in refs.values()}
    assert exact[text_hash(refs["ref-a"].text)]["first_seen"] == refs["ref-a"].warc_date
    assert [r["pre_cutoff"] for r in exact.values()].count(False) == 1  # ref-post
    # Four partition files per table, each sorted by its key and holding only its key range
    for table, column in ((EXACT, "key"), (BANDS, "band_hash"), (SIGNATURES, "key")):
        files = table_files(str(index), table)
        assert len(files) == 4
        for p, path in enumerate(files):
            keys = pq.read_table(path).column(column).to_pylist()
            assert keys == sorted(keys) and all(partition_of(k, 4) == p for k in keys)


def test_each_key_keeps_its_earliest_capture(tmp_path, aut_pages, doc_factory, at):
    text = next(p["text"] for p in aut_pages if len(p["text"].split()) > 150)
    docs = [doc_factory("z-late", text, at(2021, 6)), doc_factory("b-early", text, at(2020, 1)),
            doc_factory("a-early", text, at(2020, 1)), doc_factory("c-later", text, at(2020, 2))]
    _write_shard(tmp_path / "s.parquet", docs)
    build_index([str(tmp_path / "s.parquet")], str(tmp_path / "index"), partitions=2)
    bands = read_table(str(tmp_path / "index"), BANDS).to_pylist()
    assert len(bands) == 9 and {r["ref_id"] for r in bands} == {"a-early"}  # earliest, then lowest id
    assert len(read_table(str(tmp_path / "index"), SIGNATURES)) == 4  # one per indexed document
    assert read_table(str(tmp_path / "index"), EXACT).column("ref_id").to_pylist() == ["a-early"]


def test_copies_of_indexed_content_are_dated_by_the_index(reference, doc_factory, mutator, at, run):
    index, refs, texts, _ = reference
    rng = random.Random(4)
    docs = [
        doc_factory("new-a", texts[0], at(2024, 1)),  # exact copy of ref-a
        doc_factory("new-b", mutator(texts[1], 1, rng), at(2023, 6)),  # near copy of ref-b
        doc_factory("new-c1", texts[2], at(2024, 4)),  # two copies of ref-c in this run
        doc_factory("new-c2", texts[2], at(2023, 9)),
        doc_factory("new-post", texts[3], at(2024, 2)),  # copy of a post-cutoff indexed document
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
    post = got["new-post"]  # dated by its earlier post-cutoff copy, but that is no pre-cutoff evidence
    assert (post.content_provenance, post.content_provenance_source) == ("post_cutoff", "self")
    assert post.first_seen == refs["ref-post"].warc_date and not post.rejected
    other = got["new-other"]
    assert (other.content_provenance, other.first_seen) == ("post_cutoff", other.warc_date)
    assert counters["reference_matches"] == 4


def test_rejecting_matches_dedups_across_runs_with_the_right_reason(reference, doc_factory, mutator, at, run):
    index, refs, texts, _ = reference
    rng = random.Random(4)
    docs = [
        doc_factory("new-a", texts[0], at(2024, 1)),
        doc_factory("new-b", mutator(texts[1], 1, rng), at(2023, 6)),
        doc_factory("new-c1", texts[2], at(2024, 4)),
        doc_factory("new-c2", texts[2], at(2023, 9)),
        doc_factory("new-short", "Too short  to shingle", at(2024, 2)),  # exact key only (no signature)
        doc_factory("new-other", texts[4], at(2024, 2)),
        doc_factory("new-early", texts[3], at(2020, 2)),  # earlier than its indexed copy: a finished run holds it
    ]
    out, _ = run(docs, Dedup(DedupSettings(reference_index=str(index), on_reference_match="reject")))
    got = {d.id: d for d in out}
    expect = {"new-a": ("ref-a", REASON_DUPLICATE_EXACT), "new-b": ("ref-b", REASON_DUPLICATE_NEAR),
              "new-c1": ("ref-c", REASON_DUPLICATE_EXACT), "new-c2": ("ref-c", REASON_DUPLICATE_EXACT),
              "new-short": ("ref-short", REASON_DUPLICATE_EXACT), "new-early": ("ref-post", REASON_DUPLICATE_EXACT)}
    for doc_id, (ref_id, reason) in expect.items():
        d = got[doc_id]
        assert (d.rejected, d.reason, d.duplicate_of) == (True, reason, ref_id), doc_id
        assert "reference index" in d.detail
    assert not got["new-other"].rejected and got["new-other"].duplicate_of is None


def test_reference_match_alone(reference, doc_factory, at, run):
    index, refs, texts, _ = reference
    docs = [doc_factory("x", texts[0], at(2025, 1)), doc_factory("y", texts[0], at(2025, 2))]
    out, _ = run(docs, ReferenceMatch(str(index)))
    assert all(not d.rejected for d in out)  # no dedup asked for
    assert {d.content_provenance_source for d in out} == {"reference"}
    assert {d.first_seen for d in out} == {refs["ref-a"].warc_date}


def test_mismatching_missing_or_old_index_is_refused_before_work(reference, tmp_path):
    index = str(reference[0])
    with pytest.raises(ReferenceIndexError, match="num_perm: index 128 vs run 64"):
        Dedup(DedupSettings(reference_index=index, minhash=MinHashSettings(num_perm=64)))
    with pytest.raises(ReferenceIndexError, match="ngram: index 5 vs run 3"):
        Dedup(DedupSettings(reference_index=index, minhash=MinHashSettings(ngram=3)))
    with pytest.raises(ReferenceIndexError, match="cannot read reference index"):
        Dedup(DedupSettings(reference_index=str(tmp_path / "nowhere")))
    old = tmp_path / "old"
    old.mkdir()
    pq.write_table(pq.read_table(table_files(index, BANDS)[0]), old / "bands.parquet")
    with pytest.raises(ReferenceIndexError, match="format 1"):
        Dedup(DedupSettings(reference_index=str(old)))
    (old / INDEX_FILE).write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ReferenceIndexError, match="not a lowbackground reference index"):
        Dedup(DedupSettings(reference_index=str(old)))


def index_content(index: str) -> dict:
    """An index by what it holds: every row of every table, as sorted tuples (not files or generations)."""
    return {t: sorted(tuple(sorted(r.items())) for r in read_table(index, t).to_pylist()) for t in
            (EXACT, BANDS, SIGNATURES)}


def test_extend_equals_a_rebuild_and_refuses_a_run_twice(tmp_path, aut_pages, doc_factory, mutator, at):
    texts = [p["text"] for p in aut_pages if len(p["text"].split()) > 150]
    rng = random.Random(7)
    run_a = finished_run(tmp_path / "run_a", [
        doc_factory("a1", texts[0], at(2021, 1)), doc_factory("a2", texts[1], at(2019, 3)),
        doc_factory("a3", texts[2], at(2024, 1)), doc_factory("a4", "short one", at(2020, 1))])
    run_b = finished_run(tmp_path / "run_b", [
        doc_factory("b1", texts[0], at(2020, 6)),  # earlier than a1: takes its keys over
        doc_factory("b2", mutator(texts[1], 2, rng), at(2023, 1)),  # later near copy of a2: most keys stay a2's
        doc_factory("b3", texts[5], at(2022, 1)), doc_factory("b4", "short one", at(2020, 1))])  # tie: a4 < b4
    whole = build_index([run_a, run_b], str(tmp_path / "whole"), partitions=3)
    grown = build_index([run_a], str(tmp_path / "grown"), partitions=3)
    assert grown["generation"] == 1
    grown = extend_index(str(tmp_path / "grown"), [run_b])
    assert grown["generation"] == 2 and [r["run"] for r in grown["runs"]] == [run_a, run_b]
    assert index_content(str(tmp_path / "grown")) == index_content(str(tmp_path / "whole"))
    assert {k: grown["counts"][k] for k in (EXACT, BANDS, SIGNATURES)} == \
        {k: whole["counts"][k] for k in (EXACT, BANDS, SIGNATURES)}
    assert not list((tmp_path / "grown" / "g00001").rglob("*.parquet"))  # the old generation is gone
    band_ids = set(read_table(str(tmp_path / "grown"), BANDS).column("ref_id").to_pylist())
    assert "a1" not in band_ids and {"b1", "a2"} <= band_ids  # a1 lost every band key to b1
    digests = {r["manifest_sha256"] for r in grown["runs"]}
    assert len(digests) == 2 and None not in digests
    from common.cli import UsageError

    with pytest.raises(UsageError, match="already in the index"):
        extend_index(str(tmp_path / "grown"), [run_b])
    with pytest.raises(UsageError, match="already in the index"):
        build_index([run_a, run_a], str(tmp_path / "twice"))


def test_point_lookups_read_one_row_group_per_key(tmp_path, doc_factory, at):
    docs = [doc_factory(f"d{i:05d}", f"alpha {i} omega", at(2020, 1)) for i in range(20_000)]  # exact keys only
    _write_shard(tmp_path / "s.parquet", docs)
    build_index([str(tmp_path / "s.parquet")], str(tmp_path / "index"), partitions=1)
    assert pq.ParquetFile(table_files(str(tmp_path / "index"), EXACT)[0]).metadata.num_row_groups >= 3
    reader = IndexReader(str(tmp_path / "index"))
    wanted = [text_hash(docs[i].text) for i in (5, 19_999)]
    found = reader.exact(wanted + [text_hash("not indexed at all")])
    assert {h: r["ref_id"] for h, r in found.items()} == {wanted[0]: "d00005", wanted[1]: "d19999"}
    assert reader.row_groups_read <= 3  # of >= 3 row groups; one per key, and at most one for the absent key


def test_index_cli(reference, tmp_path, capsys):
    out = tmp_path / "index2"
    assert index_main(["build", "--runs", str(tmp_path / "curated-*.parquet"), "--output", str(out),
                       "--minhash-num-perm", "64", "--documents", "pre-cutoff", "--partitions", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["exact_keys"], printed["signatures"], printed["not_pre_cutoff"]) == (4, 3, 1)
    manifest = read_index_manifest(str(out))
    assert (manifest["minhash"]["num_perm"], manifest["documents"], manifest["partitions"]) == (64, "pre-cutoff", 2)
    assert index_main(["build", "--input", str(tmp_path / "curated-*.parquet"), "--output", str(out)]) == 2
    assert "already holds an index" in capsys.readouterr().err
    assert index_main(["build", "--input", str(tmp_path / "curated-*.parquet"), "--output", str(out), "--overwrite",
                       "--partitions", "3"]) == 0
    capsys.readouterr()
    assert len(list(out.rglob("*.parquet"))) == 9 and read_index_manifest(str(out))["partitions"] == 3
    assert index_main(["--input", str(tmp_path / "missing-*.parquet"), "--output", str(tmp_path / "i3")]) == 2
    assert "no file matches" in capsys.readouterr().err
    assert index_main(["extend", "--index", str(tmp_path / "nowhere"), "--runs", str(out)]) == 2
    assert "cannot read reference index" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        index_main(["build", "--inptu", "x", "--output", str(out)])
    assert exit_.value.code == 2 and "did you mean --input?" in capsys.readouterr().err
