"""Reading shards and the deterministic train / held-out split."""

from __future__ import annotations

import subprocess
import sys

import pytest

from collapse.cli import main
from collapse.data import CorpusError, load_corpus, resolve_shards, split_corpus, text_key


def test_resolve_directory_glob_and_file(tmp_path, write_shard):
    b = write_shard(tmp_path / "d" / "sub" / "b.parquet", ["x"])
    a = write_shard(tmp_path / "d" / "a.parquet", ["y"])
    (tmp_path / "d" / "notes.txt").write_text("not a shard")
    assert resolve_shards(tmp_path / "d") == [a, b]
    assert resolve_shards(str(tmp_path / "d" / "*.parquet")) == [a]
    assert resolve_shards(str(tmp_path / "d" / "**" / "*.parquet")) == [a, b]
    assert resolve_shards(b) == [b]
    with pytest.raises(CorpusError, match="no Parquet files found"):
        resolve_shards(tmp_path / "missing")


def test_ids_or_text_hashes_and_empty_texts_skipped(tmp_path, write_shard):
    write_shard(tmp_path / "with_id.parquet", ["one", "", "  ", "two"], ids=["a", "b", "c", "d"])
    write_shard(tmp_path / "no_id.parquet", ["three", None])
    c = load_corpus(tmp_path)
    assert c.texts == ["three", "one", "two"]  # files sorted: no_id < with_id
    assert c.keys == [text_key("three"), "a", "d"]
    assert len(load_corpus(tmp_path, max_docs=2)) == 2


def test_missing_text_column_names_the_file_and_its_columns(tmp_path, write_shard):
    write_shard(tmp_path / "ok.parquet", ["fine"])
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["1"], "content": ["x"]}), tmp_path / "z.parquet")
    with pytest.raises(CorpusError, match=r"z.parquet has no 'text' column \(columns: id, content\)"):
        load_corpus(tmp_path)
    assert load_corpus(tmp_path / "z.parquet", text_column="content").texts == ["x"]


def test_split_is_deterministic_by_id_and_independent_of_sharding(human_parquet, tmp_path, write_shard):
    corpus = load_corpus(human_parquet)
    train, held = split_corpus(corpus, 0.1)
    assert not set(train.keys) & set(held.keys) and len(train) + len(held) == len(corpus)
    # Binomial(900, 0.1): the held-out share is within 4 standard deviations of 10%.
    assert abs(len(held) - 90) < 4 * (900 * 0.1 * 0.9) ** 0.5
    # Shuffled into three shards in another order: every document lands on the same side.
    order = list(reversed(range(len(corpus))))
    for i in range(3):
        part = order[i::3]
        write_shard(tmp_path / f"s{i}.parquet", [corpus.texts[j] for j in part], ids=[corpus.keys[j] for j in part])
    train2, held2 = split_corpus(load_corpus(tmp_path), 0.1)
    assert set(held2.keys) == set(held.keys) and set(train2.keys) == set(train.keys)
    assert load_corpus(tmp_path).fingerprint() == corpus.fingerprint()


def test_cli_report_regenerates_from_a_run(human_parquet, tmp_path, capsys):
    out = tmp_path / "r"
    args = ["run", "--shards", str(human_parquet), "--max-docs", "150", "--generations", "1", "--seeds", "2",
            "--output", str(out), "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "heldout_ppl_ratio" in printed and "1.000" in printed  # the summary table
    (out / "report.md").unlink()
    (out / "ppl_ratio.png").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").exists() and (out / "ppl_ratio.png").exists()
    assert main(args) == 0  # a finished run resumes to a no-op


def test_collapse_never_imports_beam_and_ngram_runs_never_import_torch():
    code = ("import sys, collapse, collapse.cli, collapse.protocol, collapse.report, collapse.compare; "
            "assert 'apache_beam' not in sys.modules; assert 'torch' not in sys.modules, 'torch'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
