"""The protocol on the bundled real corpus: replace collapses, accumulate does not; resume; bad input."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

import collapse.protocol as protocol
from collapse.cli import main
from collapse.data import CorpusError
from collapse.models.base import NonFiniteLoss
from collapse.protocol import ConfigMismatch, RunConfig, run
from collapse.report import aggregate

GENS = 5


def quiet(*_args, **_kw) -> None:
    pass


@pytest.fixture(scope="module")
def runs(human_parquet, tmp_path_factory):
    """The default n-gram harness, 3 seeds x generations 0..5, under replace and under accumulate."""
    root = tmp_path_factory.mktemp("collapse_runs")
    out = {}
    for regime in ("replace", "accumulate"):
        cfg = RunConfig(shards=str(human_parquet), regime=regime, generations=GENS, seeds=3, progress=False)
        run(cfg, root / regime, log=quiet)
        out[regime] = root / regime
    return out


def by_generation(run_dir, metric):
    table = pq.read_table(run_dir / "metrics.parquet")
    return {g: (m, lo, hi) for g, m, lo, hi, _ in aggregate(table, metric)}


def test_replace_collapses_while_accumulate_stays_near_generation_zero(runs):
    rep = by_generation(runs["replace"], "heldout_ppl_ratio")
    acc = by_generation(runs["accumulate"], "heldout_ppl_ratio")
    assert sorted(rep) == sorted(acc) == list(range(GENS + 1))
    # replace: held-out perplexity rises every generation, by well over 10% at generation 5.
    assert all(rep[g + 1][0] > rep[g][0] for g in range(GENS))
    assert rep[GENS][1] > 1.15
    # accumulate: within a few percent of generation 0 at every generation.
    assert all(acc[g][2] < 1.06 for g in range(GENS + 1))
    # the two regimes' confidence intervals do not overlap from generation 1 on
    assert all(rep[g][1] > acc[g][2] for g in range(1, GENS + 1))

    for metric in ("type_survival", "bigram_survival"):
        rs, ac = by_generation(runs["replace"], metric), by_generation(runs["accumulate"], metric)
        assert rs[GENS][2] < rs[0][1]  # replace loses support: generation 5's CI is below generation 0's
        assert rs[GENS][2] < ac[GENS][1]  # and below accumulate's, CIs disjoint
        assert ac[GENS][0] > 0.85 * ac[0][0]  # accumulate keeps most of it

    # generation 0's model finds later replace samples ever less likely (the paper's Fig. 1 shift)
    g0 = by_generation(runs["replace"], "gen0_ppl_on_samples")
    assert g0[GENS][1] > g0[0][2]


def test_run_outputs_metrics_report_and_plots(runs):
    run_dir = runs["replace"]
    table = pq.read_table(run_dir / "metrics.parquet")
    assert table.num_rows == 3 * (GENS + 1)
    for col in ("generation", "seed", "regime", "heldout_ppl", "heldout_ppl_ratio", "heldout_ppl_p50",
                "heldout_ppl_p90", "heldout_ppl_p99", "gen0_ppl_on_samples", "distinct_1", "distinct_2",
                "distinct_3", "self_bleu", "unigram_entropy", "types", "bigrams", "type_survival", "zipf_slope"):
        assert col in table.column_names, col
    rows = table.to_pylist()
    assert {r["regime"] for r in rows} == {"replace"} and {r["seed"] for r in rows} == {0, 1, 2}
    assert all(r["heldout_ppl_ratio"] == 1.0 for r in rows if r["generation"] == 0)
    assert all(r["heldout_ppl_p50"] <= r["heldout_ppl_p90"] <= r["heldout_ppl_p99"] for r in rows)
    for name in ("report.md", "ppl_ratio.png", "gen0_ppl_hist.png", "diversity.png", "support.png"):
        assert (run_dir / name).stat().st_size > 1000, name
    assert (run_dir / "ppl_ratio.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    gen = run_dir / "seed_1" / "gen_003"
    samples = pq.read_table(gen / "samples.parquet")
    assert samples.num_rows == json.loads((run_dir / "config.json").read_text())["data"]["n_train"]
    assert np.all(np.isfinite(samples.column("gen0_ppl").to_numpy()))
    assert pq.read_table(gen / "train.parquet").num_rows == samples.num_rows
    assert sorted(p.name for p in (gen / "model").iterdir()) == ["ngram.json", "ngram.npz", "tokenizer.json"]
    # accumulate's training data grows by one sample set per generation
    acc_train = pq.read_table(runs["accumulate"] / "seed_0" / "gen_005" / "train.parquet").num_rows
    assert acc_train == 6 * samples.num_rows


def test_compare_replace_vs_accumulate(runs, tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", str(runs["replace"]), str(runs["accumulate"]), "--output", str(out)]) == 0
    table = pq.read_table(out / "compare.parquet").to_pylist()
    last = {r["metric"]: r for r in table if r["generation"] == GENS}
    assert last["heldout_ppl_ratio"]["diff"] < 0 and last["heldout_ppl_ratio"]["significant"]
    assert last["heldout_ppl_ratio"]["diff_high"] < 0
    assert last["type_survival"]["diff"] > 0 and last["type_survival"]["significant"]
    md = (out / "compare.md").read_text()
    assert "minus" in md and "heldout_ppl_ratio" in md
    for name in ("compare_ppl_ratio.png", "compare_diversity.png", "compare_support.png"):
        assert (out / name).stat().st_size > 1000


def small_cfg(shards, **kw) -> RunConfig:
    opts = dict(shards=str(shards), generations=2, seeds=2, max_docs=200, progress=False)
    return RunConfig(**{**opts, **kw})


def test_resume_after_a_crash_reproduces_the_uninterrupted_run(human_parquet, tmp_path):
    full = tmp_path / "full"
    run(small_cfg(human_parquet), full, log=quiet)
    crashed = tmp_path / "crashed"
    run(small_cfg(human_parquet), crashed, log=quiet)
    # Simulate a crash during seed 1's generation 2: its directory is half-written, metrics.parquet is missing.
    shutil.rmtree(crashed / "seed_1" / "gen_002")
    (crashed / "seed_1" / "gen_002.tmp").mkdir()
    (crashed / "seed_1" / "gen_002.tmp" / "train.parquet").write_bytes(b"partial")
    (crashed / "metrics.parquet").unlink()
    kept = (crashed / "seed_1" / "gen_001" / "metrics.json").stat().st_mtime_ns
    run(small_cfg(human_parquet), crashed, log=quiet)
    assert (crashed / "seed_1" / "gen_001" / "metrics.json").stat().st_mtime_ns == kept  # not redone
    assert not (crashed / "seed_1" / "gen_002.tmp").exists()
    a = json.loads((full / "seed_1" / "gen_002" / "metrics.json").read_text())
    b = json.loads((crashed / "seed_1" / "gen_002" / "metrics.json").read_text())
    for k, v in a.items():
        if not k.endswith("seconds"):
            assert b[k] == v, k
    assert pq.read_table(crashed / "metrics.parquet").num_rows == 2 * 3


def test_resume_with_different_options_or_data_is_refused(human_parquet, tmp_path, write_shard):
    out = tmp_path / "run"
    run(small_cfg(human_parquet, generations=1, seeds=1), out, log=quiet)
    with pytest.raises(ConfigMismatch, match="regime: saved 'replace', now 'accumulate'"):
        run(small_cfg(human_parquet, generations=1, seeds=1, regime="accumulate"), out, log=quiet)
    with pytest.raises(ConfigMismatch, match="generations"):
        run(small_cfg(human_parquet, generations=3, seeds=1), out, log=quiet)
    # Same options, different text at the same path: the input's fingerprint differs.
    texts = pq.read_table(human_parquet).column("text").to_pylist()[:200]
    shard = write_shard(tmp_path / "in.parquet", texts)
    run(small_cfg(shard, generations=1, seeds=1), tmp_path / "run2", log=quiet)
    write_shard(shard, [t.upper() for t in texts])
    with pytest.raises(ConfigMismatch, match="input data"):
        run(small_cfg(shard, generations=1, seeds=1), tmp_path / "run2", log=quiet)
    assert main(["run", "--shards", str(shard), "--output", str(tmp_path / "run2"), "--generations", "1",
                 "--seeds", "1", "--no-progress"]) == 2


def test_empty_samples_are_recorded_and_stop_only_what_cannot_go_on(human_parquet, tmp_path):
    rep = run(small_cfg(human_parquet, max_new_tokens=0), tmp_path / "rep", log=quiet).to_pylist()
    ok = [r for r in rep if r["status"] == "ok"]
    stopped = [r for r in rep if r["status"] == "stopped"]
    assert [r["generation"] for r in ok] == [0, 0] and [r["generation"] for r in stopped] == [1, 1]
    assert all("EmptyTrainingData" in r["reason"] for r in stopped)
    assert all(r["sample_words"] == 0 and math.isnan(r["distinct_2"]) and math.isfinite(r["heldout_ppl"])
               and math.isfinite(r["gen0_ppl_on_samples"]) for r in ok)
    assert "stopped at generation 1" in (tmp_path / "rep" / "report.md").read_text()
    # accumulate still has the real data to train on: every generation completes.
    acc = run(small_cfg(human_parquet, max_new_tokens=0, regime="accumulate"), tmp_path / "acc", log=quiet)
    assert acc.num_rows == 2 * 3 and set(acc.column("status").to_pylist()) == {"ok"}


def test_nan_loss_stops_that_seed_and_keeps_the_others(human_parquet, tmp_path, monkeypatch):
    """Fault injection at the model boundary: seed 1's generation-1 training reports a NaN loss."""
    real_build = protocol.build_model
    calls = []

    class NaNOnFit:
        def __init__(self, model):
            self.model = model

        def fit(self, texts):
            raise NonFiniteLoss("training loss is nan at step 3 of 10")

        def __getattr__(self, name):
            return getattr(self.model, name)

    def build(cfg, tok, sampling, seed, encoder=None):
        calls.append(seed)
        model = real_build(cfg, tok, sampling, seed, encoder)
        # call 0 sizes max_new_tokens; then seed 0 builds 3 models, then seed 1's generations 0, 1, ...
        return NaNOnFit(model) if len(calls) == 6 else model

    monkeypatch.setattr(protocol, "build_model", build)
    table = run(small_cfg(human_parquet, seeds=3), tmp_path / "nan", log=quiet).to_pylist()
    status = {(r["seed"], r["generation"]): r["status"] for r in table}
    assert status == {(0, 0): "ok", (0, 1): "ok", (0, 2): "ok", (1, 0): "ok", (1, 1): "stopped",
                      (2, 0): "ok", (2, 1): "ok", (2, 2): "ok"}
    reason = next(r["reason"] for r in table if r["status"] == "stopped")
    assert reason == "NonFiniteLoss: training loss is nan at step 3 of 10"
    stop = json.loads((tmp_path / "nan" / "seed_1" / "stopped.json").read_text())
    assert stop["generation"] == 1


def test_bad_input_gives_clear_errors(human_parquet, tmp_path, write_shard, capsys):
    no_text = write_shard(tmp_path / "a" / "x.parquet", ["some text"] * 20, body=["b"] * 20)
    no_text.unlink()
    write_shard(no_text, ["x"] * 3)  # has text
    other = tmp_path / "b" / "y.parquet"
    import pyarrow as pa

    other.parent.mkdir()
    pq.write_table(pa.table({"id": ["1"], "body": ["hello"]}), other)
    assert main(["run", "--shards", str(other), "--output", str(tmp_path / "o1"), "--no-progress"]) == 2
    assert "has no 'text' column (columns: id, body)" in capsys.readouterr().err
    with pytest.raises(CorpusError, match=r"--sample-size 5000 but the shards hold 200 non-empty documents: "
                                          r"\d+ for training and \d+ held out"):
        run(small_cfg(human_parquet, sample_size=5000), tmp_path / "o2", log=quiet)
    with pytest.raises(CorpusError, match="need at least 8 training documents"):
        run(small_cfg(no_text), tmp_path / "o3", log=quiet)
    assert main(["run", "--shards", str(tmp_path / "nothing-here"), "--output", str(tmp_path / "o4")]) == 2
    assert "no Parquet files found" in capsys.readouterr().err
