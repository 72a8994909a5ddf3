"""Dedup through `lowbg curate` itself: planted copies of real pages across the cutoff, and a reference index."""

from __future__ import annotations

import json
import random
from pathlib import Path

from pipeline.cli import main as lowbg
from tests.pipeline.conftest import curate, read_kind
from tests.pipeline.test_scoring import write_warc

DEDUP_DATA = Path(__file__).resolve().parents[1] / "data" / "dedup"


def real_pages(n: int) -> list[str]:
    """Real English page texts (2008 crawl) long enough for 5-word shingles to be meaningful."""
    pages = []
    for line in (DEDUP_DATA / "aut-2008.jsonl").read_text(encoding="utf-8").splitlines():
        text = json.loads(line)["text"]
        if len(text.split()) >= 300 and text not in pages:
            pages.append(text)
    assert len(pages) >= n
    return pages[:n]


def near_copy(text: str, seed: int) -> str:
    words = text.split(" ")
    rng = random.Random(seed)
    for i in rng.sample(range(len(words)), 2):  # <= 10 of >= 300 shingles differ: Jaccard >= 0.93
        words[i] = "changed"
    return " ".join(words)


def test_survivors_are_the_earliest_copies_and_the_manifest_balances(tmp_path):
    pages = real_pages(6)
    docs = []
    for i, text in enumerate(pages):
        # Planted in file order latest-first, so "first read" and "earliest captured" disagree.
        docs.append((f"http://post.example/{i}", text, "2024-05-18T00:00:00Z"))  # exact copy, after the cutoff
        docs.append((f"http://near.example/{i}", near_copy(text, i), "2023-03-01T00:00:00Z"))  # near copy
        docs.append((f"http://orig.example/{i}", text, f"2020-0{i + 1}-15T00:00:00Z"))  # the original, before
    docs.append(("http://only-post.example/", real_pages(7)[6], "2024-01-01T00:00:00Z"))  # no earlier copy
    warc = tmp_path / "copies.warc.gz"
    write_warc(warc, docs)
    out = tmp_path / "out"
    manifest = curate(out, str(warc))  # default: --dedup near
    assert manifest["balanced"]
    rows = {r["url"]: r for r in read_kind(out, "curated").to_pylist() + read_kind(out, "rejected").to_pylist()}
    curated = {r["url"] for r in read_kind(out, "curated").to_pylist()}
    assert curated == {f"http://orig.example/{i}" for i in range(6)} | {"http://only-post.example/"}
    for i in range(6):
        survivor = rows[f"http://orig.example/{i}"]
        assert survivor["dup_cluster_size"] == 3 and survivor["provenance"] == "pre_cutoff"
        assert survivor["first_seen"] == survivor["warc_date"] and survivor["content_provenance"] == "pre_cutoff"
        exact, near = rows[f"http://post.example/{i}"], rows[f"http://near.example/{i}"]
        assert (exact["reason"], exact["duplicate_of"]) == ("duplicate_exact", survivor["id"])
        assert (near["reason"], near["duplicate_of"]) == ("duplicate_near", survivor["id"])
    alone = rows["http://only-post.example/"]
    assert (alone["content_provenance"], alone["dup_cluster_size"]) == ("post_cutoff", 1)
    counts = manifest["counts"]["rejected_by_reason"]
    assert counts["duplicate_exact"] == 6 and counts["duplicate_near"] == 6
    assert manifest["metrics"]["dedup"]["rejected_duplicate_near"] == 6


def test_reference_index_marks_a_post_cutoff_copy_as_pre_cutoff_content(tmp_path):
    pages = real_pages(8)
    old = tmp_path / "old.warc.gz"
    write_warc(old, [(f"http://old.example/{i}", t, "2019-06-01T00:00:00Z") for i, t in enumerate(pages[:5])])
    curate(tmp_path / "old_run", str(old))
    assert lowbg(["index", "build", "--input", str(tmp_path / "old_run" / "curated"),
                  "--output", str(tmp_path / "index")]) == 0

    new = tmp_path / "new.warc.gz"
    write_warc(new, [("http://copy.example/", near_copy(pages[2], 7), "2024-05-18T00:00:00Z"),
                     ("http://fresh.example/", pages[6], "2024-05-18T00:00:00Z")])
    manifest = curate(tmp_path / "new_run", str(new), extra=("--reference-index", str(tmp_path / "index")))
    assert manifest["balanced"]
    rows = {r["url"]: r for r in read_kind(tmp_path / "new_run", "curated").to_pylist()}
    copy, fresh = rows["http://copy.example/"], rows["http://fresh.example/"]
    assert copy["provenance"] == "post_cutoff" and copy["content_provenance"] == "pre_cutoff"
    assert copy["content_provenance_source"] == "reference" and copy["first_seen"].year == 2019
    assert fresh["content_provenance"] == "post_cutoff" and fresh["content_provenance_source"] == "self"

    # An index built with other MinHash settings is refused before any work.
    code = lowbg(["curate", "--input", str(new), "--output", str(tmp_path / "bad"), "--detectors", "none",
                  "--reference-index", str(tmp_path / "index"), "--minhash-num-perm", "64"])
    assert code == 2 and not (tmp_path / "bad" / "curated").exists()
