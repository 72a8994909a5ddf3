"""The contaminated-web regime on real text: what a filter between the crawl and the training data buys.

The setting (chosen so that a real, finite pool is the constraint, and justified in docs/collapse.md):
  - the bundled 900 real documents: 96 held out (perplexity), 114 set aside to calibrate detectors, and a real pool
    of 690 that the schedule consumes: a real document is offered to one generation only (the crawl's human
    documents are new each time and run out), so generation 0's 150 documents plus K_t = (1 - c_t) * 300 real
    candidates for t = 1..3 use up exactly the 690 (the harness's default budget: the largest the pool supports);
  - contamination 0.2, 0.5, 0.5 of a crawl twice the training budget (--crawl-factor 2), the model output being the
    previous generation's samples;
  - a trigram model: a sparse model, whose own samples (its smoothing mass and its training n-grams) dilute the
    real text's statistics, and a sharp enough generator for its own model to recognise its samples;
  - arms: none, oracle (perfect provenance) and the white-box Fast-DetectGPT criterion computed with the model that
    wrote the newest samples, calibrated at 5% FPR on the calibration documents (the easy case: see collapse.whitebox).
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from collapse.cli import main
from collapse.data import load_corpus, split_three
from collapse.experiment import arm_dirs, load_arms, prevented
from collapse.report import aggregate

GENS = 3
ARMS = ["none", "oracle", "detector:fast-detectgpt:last"]
OPTIONS = ["--contamination", "0.2,0.5,0.5", "--generations", str(GENS), "--seeds", "3", "--order", "3",
           "--crawl-factor", "2", "--synthetic-from", "last", "--real-pool-use", "consume", "--target-fpr", "0.05",
           "--calibration-fraction", "0.15", "--no-progress"]


def quiet(*_a, **_k) -> None:
    pass


@pytest.fixture(scope="module")
def experiment(human_parquet, tmp_path_factory):
    out = tmp_path_factory.mktemp("web") / "exp"
    assert main(["web", "--shards", str(human_parquet), *OPTIONS, "--filters", ",".join(ARMS),
                 "--output", str(out)]) == 0
    return out


def ci(table, metric, g):
    return {gen: (m, lo, hi) for gen, m, lo, hi, _ in aggregate(table, metric)}[g]


def test_strong_filters_prevent_collapse_with_disjoint_intervals(experiment):
    tables = load_arms(experiment)
    assert list(tables) == ARMS
    none, oracle, det = (ci(tables[a], "heldout_ppl_ratio", GENS) for a in ARMS)
    # Without a filter, held-out perplexity degrades by well over 10% ...
    assert none[1] > 1.10
    # ... and with the oracle or the white-box detector significantly less: the 95% CIs do not overlap.
    assert oracle[2] < none[1] and det[2] < none[1]
    assert oracle[0] < 1.03 and det[0] < 1.08
    # The "collapse prevented" share, paired by seed, with a bounded Fieller CI above 0 for both.
    last = {p["arm"]: p for p in prevented(tables) if p["generation"] == GENS}
    assert last["oracle"]["low"] > 0.5 and last["oracle"]["share"] > 0.8
    assert last["detector:fast-detectgpt:last"]["low"] > 0.2
    md = (experiment / "web.md").read_text()
    assert "collapse prevented" in md and "prevents collapse" in md
    for name in ("web_ppl.png", "web_filter.png", "web_prevented.png"):
        assert (experiment / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_detector_tpr_and_fpr_are_measured_every_generation(experiment):
    det = pq.read_table(arm_dirs(experiment)["detector:fast-detectgpt:last"] / "metrics.parquet").to_pylist()
    for g in range(1, GENS + 1):
        rows = [r for r in det if r["generation"] == g]
        assert len(rows) == 3
        for r in rows:
            assert 0.5 < r["filter_tpr"] <= 1.0 and 0.0 <= r["filter_fpr"] < 0.2 and r["filter_auroc"] > 0.9
            assert r["filter_removed_real"] == round(r["filter_fpr"] * r["pool_real"])
            assert r["filter_n_calibration"] == 114  # calibration documents, disjoint from pool and held-out text
    table = pq.read_table(experiment / "web.parquet").to_pylist()
    got = {(r["arm"], r["generation"]) for r in table if r["metric"] in ("filter_tpr", "filter_fpr")}
    assert {("detector:fast-detectgpt:last", g) for g in range(1, GENS + 1)} <= got
    # generation 0 is the unfiltered pre-cutoff web
    assert all(np.isnan(r["filter_tpr"]) for r in det if r["generation"] == 0)


def test_pools_recount_from_the_saved_candidates(experiment, human_parquet):
    """The figures hold against an independent count: the saved pools, the shards' ids and the saved samples."""
    corpus = load_corpus(human_parquet)
    pool, cal, held = split_three(corpus, 0.1, 0.15)
    pool_ids, never = set(pool.keys), set(cal.keys) | set(held.keys)
    text_of = dict(zip(corpus.keys, corpus.texts))
    arms = arm_dirs(experiment)
    for run in arms.values():
        rows = {(r["seed"], r["generation"]): r for r in pq.read_table(run / "metrics.parquet").to_pylist()}
        for seed in range(3):
            seen_real: set[str] = set()
            for g in range(GENS + 1):
                gen = run / f"seed_{seed}" / f"gen_{g:03d}"
                cand = pq.read_table(gen / "pool.parquet").to_pylist()
                train = pq.read_table(gen / "train.parquet").column("text").to_pylist()
                real = [c for c in cand if not c["synthetic"]]
                syn = [c for c in cand if c["synthetic"]]
                r = rows[(seed, g)]
                assert len(real) == r["pool_real"] and len(syn) == r["pool_synthetic"]
                assert len(cand) == (150 if g == 0 else 300)
                # real candidates are pool documents, never calibration or held-out ones, each offered once
                ids = [c["source"] for c in real]
                assert set(ids) <= pool_ids and not set(ids) & never and not set(ids) & seen_real
                seen_real |= set(ids)
                # synthetic candidates are samples of generation g-1 (--synthetic-from last)
                prev = pq.read_table(run / f"seed_{seed}" / f"gen_{g - 1:03d}" / "samples.parquet").column(
                    "text").to_pylist() if g else []
                for c in syn:
                    src_g, i = c["source"][3:].split(":")
                    assert int(src_g) == g - 1 == c["origin_generation"] and prev[int(i)].strip()
                # the trained candidates are the training data, and the counts match
                trained = [c for c in cand if c["trained"]]
                assert len(trained) == len(train) == r["train_docs"]
                assert sorted(text_of[c["source"]] for c in trained if not c["synthetic"]) == sorted(
                    t for t in train if t in text_of.values())
                assert sum(c["synthetic"] for c in trained) == r["train_synthetic"]
                if g:
                    removed_syn = sum(not c["kept"] for c in syn)
                    assert r["filter_tpr"] == pytest.approx(removed_syn / len(syn))
                    assert r["filter_removed_real"] == sum(not c["kept"] for c in real)
                    assert all(c["kept"] for c in cand if c["trained"])
            # the schedule consumes the pool exactly: 150 + 240 + 150 + 150 = 690
            assert len(seen_real) == 690
    # generation 0 is shared: the same documents and the same model output in every arm
    zero = [pq.read_table(run / "seed_1" / "gen_000" / "samples.parquet").column("text").to_pylist()
            for run in arms.values()]
    assert zero[0] == zero[1] == zero[2]


def test_oracle_and_none_arms_do_what_they_say(experiment):
    tables = load_arms(experiment)
    for r in tables["oracle"].to_pylist():
        if r["generation"]:
            assert r["filter_tpr"] == 1.0 and r["filter_fpr"] == 0.0 and r["train_synthetic"] == 0
    for r in tables["none"].to_pylist():
        if r["generation"]:
            assert r["filter_tpr"] == 0.0 and r["filter_fpr"] == 0.0
    share = ci(tables["none"], "train_synthetic_share", GENS)[0]
    assert 0.4 < share < 0.6  # c_3 = 0.5 of the crawl, subsampled to the budget


def test_report_and_compare_understand_the_experiment(experiment, tmp_path, capsys):
    (experiment / "web.md").unlink()
    assert main(["report", str(experiment)]) == 0
    out = capsys.readouterr().out
    assert "collapse prevented" in out and "oracle" in out and (experiment / "web.md").exists()
    arm = arm_dirs(experiment)["detector:fast-detectgpt:last"]
    assert main(["report", str(arm)]) == 0
    report = (arm / "report.md").read_text()
    assert "filter detector:fast-detectgpt:last" in report and "filter_tpr" in report
    assert (arm / "filter.png").exists()
    assert main(["compare", str(experiment), "--output", str(tmp_path / "cmp")]) == 0
    diffs = pq.read_table(tmp_path / "cmp" / "compare.parquet").to_pylist()
    last = {(d["run"].split(" (")[0], d["metric"]): d for d in diffs if d["generation"] == GENS}
    assert last[("oracle", "heldout_ppl_ratio")]["significant"] and last[("oracle", "heldout_ppl_ratio")]["diff"] < 0
    assert (tmp_path / "cmp" / "compare_filter.png").exists()
    # a finished experiment resumes to a no-op, and refuses another schedule or other filters
    assert main(["web", "--shards", str(_shards(experiment)), *OPTIONS, "--filters", ",".join(ARMS), "--output",
                 str(experiment)]) == 0
    capsys.readouterr()
    other = [("0.2,0.5,0.6" if x == "0.2,0.5,0.5" else x) for x in OPTIONS]
    assert main(["web", "--shards", str(_shards(experiment)), *other, "--filters", ",".join(ARMS), "--output",
                 str(experiment)]) == 2
    err = capsys.readouterr().err
    assert "contamination: saved [0.2, 0.5, 0.5], now [0.2, 0.5, 0.6]" in err and len(err.splitlines()) == 1
    assert main(["web", "--shards", str(_shards(experiment)), *OPTIONS, "--filters", "none,oracle", "--output",
                 str(experiment)]) == 2
    assert "filters: saved" in capsys.readouterr().err


def _shards(experiment):
    return json.loads((experiment / "web.json").read_text())["options"]["shards"]


def test_the_table_shows_a_filter_that_costs_more_than_it_saves(human_parquet, tmp_path, capsys):
    """The measurement, not a foregone conclusion: when the crawl is only as large as the training budget
    (--crawl-factor 1), even perfect provenance halves the training data at c = 0.5, and on this corpus the
    bigram model loses more from the missing real documents than the unfiltered arm loses to model output."""
    out = tmp_path / "cost"
    assert main(["web", "--shards", str(human_parquet), "--contamination", "0.5", "--generations", "1", "--seeds",
                 "3", "--max-docs", "500", "--real-pool-use", "consume", "--filters", "none,oracle", "--no-progress",
                 "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    tables = load_arms(out)
    none, oracle = (ci(tables[a], "heldout_ppl_ratio", 1) for a in ("none", "oracle"))
    assert oracle[1] > none[2]  # the oracle arm degrades significantly more
    last = next(p for p in prevented(tables) if p["generation"] == 1)
    assert last["high"] < 0
    assert "costs more than it saves" in (out / "web.md").read_text() and "costs more than it saves" in printed
    assert ci(tables["oracle"], "train_docs", 1)[0] == ci(tables["none"], "train_docs", 1)[0] / 2
