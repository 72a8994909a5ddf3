"""`--shards` inside a `lowbg curate` run folder: read only a finished run (schemas.run), its curated shards only,
and `--real-filter` on the pipeline's columns (provenance=pre_cutoff: what capture dates certify)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from collapse.cli import main
from collapse.data import CorpusError, load_corpus, parse_row_filters, resolve_shards
from schemas import SCHEMA_VERSION
from schemas.run import IncompleteRun


@pytest.fixture()
def curate_run(tmp_path, human_texts, write_shard):
    """A run folder as `lowbg curate` writes it: curated/ and rejected/ shards, and manifest.json written last."""
    root = tmp_path / "out" / "run"
    texts = human_texts[:240]
    prov = ["pre_cutoff" if i % 3 else "post_cutoff" for i in range(len(texts))]
    write_shard(root / "curated" / "part-00000-0000.parquet", texts[:120], ids=[f"d{i}" for i in range(120)],
                provenance=prov[:120])
    write_shard(root / "curated" / "part-00001-0000.parquet", texts[120:], ids=[f"d{i}" for i in range(120, 240)],
                provenance=prov[120:])
    write_shard(root / "rejected" / "part-00000-0000.parquet", human_texts[300:350],
                ids=[f"r{i}" for i in range(50)], provenance=["pre_cutoff"] * 50, reason=["language"] * 50)
    manifest = {"schema_version": SCHEMA_VERSION, "counts": {"records_in": 290, "curated": 240, "rejected": 50,
                                                         "skipped": {}, "errors": 0},
                "balanced": True, "shards": {"curated": ["curated/part-00000-0000.parquet",
                                                         "curated/part-00001-0000.parquet"],
                                             "rejected": ["rejected/part-00000-0000.parquet"], "errors": []}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_a_finished_run_reads_its_curated_shards_only(curate_run):
    files = resolve_shards(curate_run)
    assert [f.relative_to(curate_run).as_posix() for f in files] == [
        "curated/part-00000-0000.parquet", "curated/part-00001-0000.parquet"]
    assert len(load_corpus(curate_run)) == 240  # not the rejected documents
    assert len(load_corpus(curate_run / "curated")) == 240
    assert len(load_corpus(str(curate_run / "curated" / "*.parquet"))) == 240
    pre = load_corpus(curate_run, row_filters=parse_row_filters(["provenance=pre_cutoff"]))
    truth = [t for f in files for t, p in zip(*pq.read_table(f, columns=["text", "provenance"]).to_pydict()
                                              .values()) if p == "pre_cutoff"]
    assert pre.texts == truth and len(pre) == 160
    both = load_corpus(curate_run, row_filters=parse_row_filters(["provenance=pre_cutoff|post_cutoff"]))
    assert len(both) == 240


@pytest.mark.parametrize("where", ["", "curated", "curated/*.parquet", "curated/part-00001-0000.parquet"])
def test_an_unfinished_run_is_refused_unless_allowed(curate_run, where):
    (curate_run / "manifest.json").unlink()
    spec = str(curate_run / where) if where else str(curate_run)
    with pytest.raises(IncompleteRun, match="not finished.*--allow-incomplete"):
        resolve_shards(spec)
    assert resolve_shards(spec, allow_incomplete=True)
    assert all(f.parent.name == "curated" for f in resolve_shards(spec, allow_incomplete=True))


def test_a_run_that_did_not_balance_or_whose_manifest_is_truncated_is_refused(curate_run):
    m = json.loads((curate_run / "manifest.json").read_text())
    (curate_run / "manifest.json").write_text(json.dumps({**m, "balanced": False}))
    with pytest.raises(IncompleteRun, match="did not balance"):
        resolve_shards(curate_run / "curated")
    (curate_run / "manifest.json").write_text(json.dumps(m)[:40])
    with pytest.raises(IncompleteRun, match="not valid JSON"):
        resolve_shards(curate_run / "curated")


def test_cli_answers_bad_shards_with_one_line_and_exit_2(curate_run, tmp_path, capsys):
    def one_line() -> str:
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        return err

    (curate_run / "manifest.json").rename(curate_run / "manifest.json.bak")
    for cmd in (["run"], ["web", "--contamination", "0.5", "--filters", "none,oracle"]):
        assert main([*cmd, "--shards", str(curate_run / "curated"), "--output", str(tmp_path / "o")]) == 2
        assert "is not finished" in one_line()
        assert not (tmp_path / "o").exists()
    assert main(["run", "--shards", str(curate_run / "curated"), "--allow-incomplete", "--generations", "0",
                 "--seeds", "1", "--no-progress", "--output", str(tmp_path / "o")]) == 0
    assert json.loads((tmp_path / "o" / "config.json").read_text())["data"]["n_docs"] == 240
    capsys.readouterr()
    (curate_run / "manifest.json.bak").rename(curate_run / "manifest.json")
    assert main(["run", "--shards", str(curate_run), "--real-filter", "language=en", "--output",
                 str(tmp_path / "o2")]) == 2
    assert "has no 'language' column for --real-filter (columns: id, text, provenance)" in one_line()
    assert main(["run", "--shards", str(curate_run), "--real-filter", "provenance", "--output",
                 str(tmp_path / "o2")]) == 2
    assert "expected COLUMN=VALUE" in one_line()
    assert main(["run", "--shards", str(curate_run), "--generations", "x", "--output", str(tmp_path / "o2")]) == 2
    assert "not a whole number: 'x'" in one_line()
    assert main(["report", str(tmp_path / "out")]) == 2
    assert "neither a collapse run" in one_line()
    assert main(["compare", str(tmp_path / "out"), str(tmp_path / "out")]) == 2
    assert "is not a finished collapse run (no metrics.parquet)" in one_line()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "web.json").write_text("{\"format\": 1")
    assert main(["report", str(tmp_path / "broken")]) == 2
    assert "is not a collapse web experiment" in one_line()
    with pytest.raises(CorpusError):
        parse_row_filters(["=x"])


def test_the_oracle_arm_is_what_capture_dates_give(curate_run, tmp_path):
    """A web run on the pipeline's shards as they are: the real pool is the pre-cutoff documents, and the oracle
    keeps exactly those of the crawl."""
    out = tmp_path / "w"
    assert main(["run", "--shards", str(curate_run), "--real-filter", "provenance=pre_cutoff", "--regime", "web",
                 "--contamination", "0.5", "--generations", "1", "--seeds", "1", "--filter", "oracle",
                 "--no-progress", "--output", str(out)]) == 0
    data = json.loads((out / "config.json").read_text())["data"]
    assert data["n_docs"] == 160 and data["files"] == [str(curate_run / "curated" / "part-00000-0000.parquet"),
                                                      str(curate_run / "curated" / "part-00001-0000.parquet")]
    pre = set(load_corpus(curate_run, row_filters={"provenance": {"pre_cutoff"}}).keys)
    pool = pq.read_table(out / "seed_0" / "gen_001" / "pool.parquet").to_pylist()
    kept = {r["source"] for r in pool if r["kept"]}
    assert kept == {r["source"] for r in pool if not r["synthetic"]} and kept <= pre
