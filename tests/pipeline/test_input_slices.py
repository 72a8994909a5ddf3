"""`--input-slice I/N`: N independent jobs read every input once, and dedup across them through the index."""

from __future__ import annotations

import random
import shutil

import pytest

from pipeline.cli import main as lowbg
from pipeline.ingest import slice_inputs
from pipeline.options import parse_curate_args
from tests.pipeline.conftest import DATA, curate, read_kind
from tests.pipeline.test_dedup_e2e import near_copy, real_pages
from tests.pipeline.test_scoring import write_warc


def test_slices_cover_every_input_once_whatever_the_order():
    rng = random.Random(3)
    paths = [f"s3://commoncrawl/crawl-data/CC-MAIN-2024-22/segments/{rng.randrange(10**6)}/warc/{i}.warc.gz"
             for i in range(103)]
    paths += paths[:5]  # listed twice: one input, in one slice, listed twice there
    for n in (1, 2, 7, 103, 150):
        slices = [slice_inputs(paths, i, n) for i in range(n)]
        assert sorted(p for s in slices for p in s) == sorted(paths)  # every listing, exactly once
        distinct = [set(s) for s in slices]
        assert sum(len(s) for s in distinct) == len(set(paths))  # disjoint
        assert max(map(len, distinct)) - min(map(len, distinct)) <= 1  # balanced
        shuffled = paths[:]
        rng.shuffle(shuffled)
        assert [set(slice_inputs(shuffled, i, n)) for i in range(n)] == distinct  # the list's order does not matter


@pytest.mark.parametrize("value", ["2/2", "-1/2", "1/0", "0", "a/b", "1/2/3"])
def test_a_bad_slice_is_refused_in_one_line(value, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_curate_args(["--input", "x.warc.gz", "--output", "out", f"--input-slice={value}"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and err.count("\n") == 0 and "--input-slice" in err and "I/N" in err


def test_on_reference_match_needs_an_index(capsys):
    with pytest.raises(SystemExit):
        parse_curate_args(["--input", "x.warc.gz", "--output", "out", "--on-reference-match", "reject"])
    assert "needs --reference-index" in capsys.readouterr().err


def test_sliced_jobs_dedup_across_slices_through_the_index(tmp_path):
    """Two jobs over one 'snapshot' (four bundled fixtures and two planted files), each a slice of one path list:
    job 1 (slice 0/2) is indexed, job 2 (slice 1/2) runs against the index and rejects what job 1 holds."""
    crawl = tmp_path / "crawl"
    crawl.mkdir()
    for name in ("cc-main-2020-34.warc.gz", "cc-main-2024-22.warc.gz", "cc-main-2024-22.warc.wet.gz",
                 "clueweb09-invalid-date.warc.gz"):
        shutil.copy(DATA / name, crawl / name)
    pages = real_pages(4)
    # Sorted, slice 0 is aaa + the first two fixtures; slice 1 the other two + zzz
    write_warc(crawl / "aaa-originals.warc.gz",
               [(f"http://orig.example/{i}", t, "2020-03-01T00:00:00Z") for i, t in enumerate(pages)])
    write_warc(crawl / "zzz-copies.warc.gz",
               [(f"http://copy.example/{i}", t, "2024-05-01T00:00:00Z") for i, t in enumerate(pages[:2])]
               + [(f"http://near.example/{i}", near_copy(t, i), "2024-05-01T00:00:00Z")
                  for i, t in enumerate(pages[2:], 2)])
    names = sorted(p.name for p in crawl.iterdir())
    random.Random(5).shuffle(names)  # the list's order is not the slices'
    (tmp_path / "paths.txt").write_text("".join(f"{n}\n" for n in names))

    def job(i: int, *extra: str) -> dict:
        return curate(tmp_path / f"job{i}", extra=("--input-list", str(tmp_path / "paths.txt"), "--input-base",
                                                   str(crawl), "--input-slice", f"{i}/2", *extra))

    first = job(0)
    assert lowbg(["index", "build", "--runs", str(tmp_path / "job0"), "--output", str(tmp_path / "index")]) == 0
    second = job(1, "--reference-index", str(tmp_path / "index"), "--on-reference-match", "reject")

    read = [sorted(i["path"].rsplit("/", 1)[1] for i in m["inputs"]) for m in (first, second)]
    assert read == [sorted(names)[:3], sorted(names)[3:]]  # every file once, in its slice
    assert first["options"]["ingest"]["input_slice"] == [0, 2] and second["input_slice"] == {
        "index": 1, "count": 2, "files": 3}
    assert first["balanced"] and second["balanced"]

    kept_first = {r["url"]: r for r in read_kind(tmp_path / "job0", "curated").to_pylist()}
    rejected = {r["url"]: r for r in read_kind(tmp_path / "job1", "rejected").to_pylist()}
    for i in range(4):  # the planted copies in job 2 are copies of job 1's originals, with the right reason
        url = f"http://copy.example/{i}" if i < 2 else f"http://near.example/{i}"
        row = rejected[url]
        assert row["duplicate_of"] == kept_first[f"http://orig.example/{i}"]["id"]
        assert row["reason"] == ("duplicate_exact" if i < 2 else "duplicate_near")
        assert "reference index" in row["detail"]
    # Whatever else job 2 rejected against the index is a copy of a document job 1 curated
    from_index = [r for r in rejected.values() if "reference index" in (r["detail"] or "")]
    ids_first = {r["id"] for r in kept_first.values()}
    assert all(r["duplicate_of"] in ids_first for r in from_index)
    assert second["metrics"]["dedup"]["reference_matches"] >= 4

    # Between them, the two jobs keep no text twice, and as many documents as one job over everything
    whole = curate(tmp_path / "whole", extra=("--input-list", str(tmp_path / "paths.txt"), "--input-base",
                                              str(crawl)))
    hashes = [r["text_hash"] for job_dir in ("job0", "job1")
              for r in read_kind(tmp_path / job_dir, "curated").to_pylist()]
    assert len(hashes) == len(set(hashes))
    assert first["counts"]["curated"] + second["counts"]["curated"] == whole["counts"]["curated"]
    assert first["counts"]["records_in"] + second["counts"]["records_in"] == whole["counts"]["records_in"]
