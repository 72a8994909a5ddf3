"""The web regime's parts: the crawl, its arithmetic, the white-box detector, the filter specs, the prevented share,
and the bad input that must fail before generation 0."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collapse.cli import main
from collapse.filters import FilterError, parse_filter, split_filters
from collapse.models.ngram import NGramModel
from collapse.stats import prevented_share
from collapse.tokenizer import CachedEncoder, train_tokenizer
from collapse.web import ScheduleError, WebRegime, parse_contamination
from collapse.whitebox import STATISTICS, NGramDetector
from detectors.base import Detector


# ---- the crawl ---------------------------------------------------------------------------------------------------
def test_crawl_composition_draws_and_consumption():
    real = [f"real {i}" for i in range(100)]
    keys = [f"k{i}" for i in range(100)]
    samples = [[f"s{g}-{i}" for i in range(20)] for g in range(3)]
    samples[1][3] = "   "  # an empty sample is never a candidate
    web = WebRegime((0.25, 0.5, 0.75), crawl_factor=2.0, synthetic_from="all", real_pool_use="consume")
    rng = np.random.default_rng(0)
    pool0, left0 = web.candidates(real, keys, [], seed=4, n=20, rng=rng)
    assert len(pool0) == 20 and not pool0.synthetic.any() and left0 == 80
    seen = set(pool0.source)
    for g in (1, 2, 3):
        pool, left = web.candidates(real, keys, samples[:g], seed=4, n=20, rng=np.random.default_rng(g))
        k = round((1 - web.at(g)) * 40)
        assert len(pool) == 40 and int((~pool.synthetic).sum()) == k
        real_ids = [s for s, syn in zip(pool.source, pool.synthetic) if not syn]
        assert not set(real_ids) & seen  # consume: a real document is offered once
        seen |= set(real_ids)
        assert set(pool.origin[pool.synthetic].tolist()) <= set(range(g))  # all earlier generations
        assert "   " not in pool.items
        assert left == 100 - 20 - sum(round((1 - web.at(s)) * 40) for s in range(1, g + 1))
    # the same seed gives the same generation 0 whatever the filter (it is drawn before any filter runs)
    again, _ = web.candidates(real, keys, [], seed=4, n=20, rng=np.random.default_rng(99))
    assert sorted(again.source) == sorted(pool0.source)
    last = WebRegime((0.5,), crawl_factor=1.0, synthetic_from="last")
    pool, _ = last.candidates(real, keys, samples, seed=0, n=20, rng=np.random.default_rng(1))
    assert set(pool.origin[pool.synthetic].tolist()) == {2}
    keep = np.ones(len(pool), dtype=bool)
    assert len(last.training_index(keep, 5, np.random.default_rng(0))) == 5  # subsampled to the budget


def test_pool_arithmetic_names_the_numbers():
    web = WebRegime((0.2, 0.5, 0.5), crawl_factor=2.0, real_pool_use="consume")
    assert web.problems(150, 690, 3) == []
    assert web.largest_budget(690, 3) == 150
    with pytest.raises(ScheduleError, match=r"n \+ K_1 \+ \.\.\. \+ K_3 = 151 \+ 242 \+ 151 \+ 151 = 695 real "
                                            r"documents .* but the real pool holds 690 .*--sample-size <= 150"):
        web.check(151, 690, 3, "test")
    reuse = WebRegime((0.1,), crawl_factor=3.0, synthetic_from="last")
    assert reuse.problems(30, 1000, 2) == []  # 90 candidates: 81 real of the 1000 reused, 9 of the 30 samples
    assert "draws K_1 = round((1 - 0.1) * 90) = 81 real documents but the real pool holds 80" in reuse.problems(
        30, 80, 2)[0]
    issues = WebRegime((0.6,), crawl_factor=2.0, synthetic_from="last").problems(30, 1000, 2)
    assert issues and "needs 60 - 24 = 36 synthetic candidates" in issues[0] and "number 30" in issues[0]
    with pytest.raises(ScheduleError, match="gives 2 shares"):
        WebRegime((0.1, 0.2)).schedule(3)
    assert parse_contamination("0.1, 0.2,0.35") == [0.1, 0.2, 0.35]
    for bad in ("1.5", "x", ""):
        with pytest.raises(ScheduleError):
            parse_contamination(bad)


# ---- the white-box detector --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models(human_texts):
    tok = train_tokenizer(human_texts[:300], 512)
    enc = CachedEncoder(tok)
    out = {}
    for order in (1, 2, 3):
        m = NGramModel(tok, order=order, encoder=enc, seed=0)
        m.fit(human_texts[:300])
        out[order] = m
    return out


@pytest.mark.parametrize("order", [1, 2, 3])
def test_white_box_statistics_match_a_position_by_position_computation(models, human_texts, order):
    m = models[order]
    texts = human_texts[600:606] + m.sample(4)
    texts = [t for t in texts if t.strip()]
    width = max(order - 1, 1)
    expect = {s: [] for s in STATISTICS}
    for ids in m.encode(texts):
        stream, pos, _ = m._stream([ids])
        hist = np.stack([stream[pos - width + j] for j in range(width)], axis=1)
        p = m.next_token_probs(hist)  # the full distribution at every position, the slow way
        x = stream[pos]
        px = p[np.arange(len(x)), x]
        ll = np.log(px)
        assert np.allclose(ll, np.log(m._prob(m._gram_keys(stream, pos))))
        logp = np.log(p)
        mu = (p * logp).sum(1)
        var = (p * logp**2).sum(1) - mu**2
        lr = np.log1p((p > px[:, None] * (1 + 1e-12)).sum(1))
        expect["likelihood"].append(ll.mean())
        expect["logrank"].append(-lr.mean())
        expect["entropy"].append(-mu.mean())
        expect["lrr"].append(-ll.sum() / lr.sum())
        expect["fast-detectgpt"].append((ll.sum() - mu.sum()) / math.sqrt(var.sum()))
    for stat in STATISTICS:
        det = NGramDetector(m, stat, "test-model")
        assert isinstance(det, Detector)
        got = [s.value for s in det.score(texts)]
        assert np.allclose(got, expect[stat], rtol=1e-9, atol=1e-9), stat
    empty = NGramDetector(m, "likelihood", "x").score(["", "  \n"])
    assert [s.reason for s in empty] == ["empty", "empty"]


def test_white_box_detector_separates_its_own_samples_from_unseen_real_text(models, human_texts):
    from detectors.evaluation import auroc

    m = models[3]
    det = NGramDetector(m, "fast-detectgpt", "gen0")
    real = [s.value for s in det.score(human_texts[700:800])]
    fake = [s.value for s in det.score([t for t in m.sample(100) if len(t.split()) > 20])]
    assert auroc(real, fake) > 0.9  # the easy, white-box case: the generator's own model scores


# ---- filter specs ------------------------------------------------------------------------------------------------
def test_filter_specs():
    assert parse_filter("none").kind == "none" and parse_filter("oracle").kind == "oracle"
    s = parse_filter("detector:fast-detect-gpt:gen0")
    assert (s.detector, s.opts, s.harness_models) == ("fast-detectgpt", {"scoring": "gen0"}, {"gen0"})
    b = parse_filter("detector:binoculars:observer=a/b,performer=c,max-tokens=4096")
    assert b.opts == {"observer": "a/b", "performer": "c", "max_tokens": 4096} and not b.harness_models
    assert parse_filter("detector:fasttext").opts == {}
    assert split_filters(["none,oracle,detector:binoculars:observer=a,performer=b", "detector:fasttext"]) == [
        "none", "oracle", "detector:binoculars:observer=a,performer=b", "detector:fasttext"]
    for bad, msg in [("maybe", "expected none, oracle"), ("detector:nope", "unknown detector"),
                     ("detector:binoculars:observer=a", "needs option"), ("detector:fasttext:gen0", "no language"),
                     ("detector:likelihood:model=gen0,colour=red", "does not take"),
                     ("detector:binoculars:observer=gen0,performer=gpt2", "mix of harness models"),
                     ("detector:likelihood:model=x,max_tokens=many", "not a number")]:
        with pytest.raises(FilterError, match=msg):
            parse_filter(bad)
    assert parse_filter("detector:binoculars:observer=a/b,performer=c").slug == \
        "detector-binoculars-observer=a-b-performer=c-" + parse_filter(
            "detector:binoculars:observer=a/b,performer=c").slug.rsplit("-", 1)[1]


# ---- the prevented share's interval ------------------------------------------------------------------------------
def test_prevented_share_fieller_interval():
    base = [0.20, 0.15, 0.17, 0.19]
    arm = [0.02, 0.03, -0.01, 0.01]
    share, lo, hi = prevented_share(base, arm)
    assert share == pytest.approx(1 - np.mean(arm) / np.mean(base))
    assert lo < share < hi
    # The bounds solve Fieller's equation (mean(arm) - r mean(base))^2 = t^2 Var(arm - r base) / n at r = 1 - bound.
    from scipy import stats

    t2 = stats.t.ppf(0.975, 3) ** 2
    for bound in (lo, hi):
        r = 1 - bound
        d = np.array(arm) - r * np.array(base)
        assert (np.mean(arm) - r * np.mean(base)) ** 2 == pytest.approx(t2 * d.var(ddof=1) / 4)
    # A baseline that does not degrade significantly leaves the share unbounded; one pair has no interval.
    assert prevented_share([0.01, -0.02, 0.02], [0.0, 0.0, 0.0])[1:] == (-math.inf, math.inf)
    assert math.isnan(prevented_share([0.1], [0.0])[1])
    # an arm that degrades more than the baseline has a negative share
    assert prevented_share(base, [0.4, 0.35, 0.38, 0.41])[2] < 0


# ---- bad input, before generation 0 ------------------------------------------------------------------------------
WEB = ["--contamination", "0.2,0.5", "--generations", "2", "--seeds", "1", "--no-progress"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_filters_that_cannot_load_or_calibrate_fail_before_generation_zero(human_parquet, tmp_path, capsys):
    out = tmp_path / "a"
    assert main(["web", "--shards", str(human_parquet), *WEB, "--filters",
                 f"none,detector:fasttext:model={tmp_path / 'missing.ftz'}", "--target-fpr", "0.05",
                 "--output", str(out)]) == 2
    assert "the detector cannot load: FileNotFoundError" in _one_line(capsys)
    assert not (out / "arms").exists() and not (out / "web.json").exists()
    assert main(["web", "--shards", str(human_parquet), *WEB, "--filters", "none,detector:fast-detectgpt:gen0",
                 "--target-fpr", "0.001", "--output", str(out)]) == 2
    err = _one_line(capsys)
    assert "--target-fpr 0.001 needs at least 1000 scorable calibration documents" in err
    assert "but 76 are available (--calibration-fraction 0.1 of 900 documents)" in err
    assert not (out / "arms").exists()
    # a single arm (`run --regime web`) refuses the same way, and leaves nothing that blocks a corrected rerun
    assert main(["run", "--shards", str(human_parquet), "--regime", "web", *WEB, "--filter", "detector:fasttext",
                 "--target-fpr", "0.005", "--output", str(tmp_path / "b")]) == 2
    assert "needs at least 200" in _one_line(capsys)
    assert not any((tmp_path / "b").glob("seed_*"))
    assert main(["run", "--shards", str(human_parquet), "--regime", "web", *WEB, "--filter", "detector:fasttext",
                 "--target-fpr", "0.05", "--max-docs", "300", "--output", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    # white-box detectors the n-gram cannot compute are refused before anything runs
    assert main(["web", "--shards", str(human_parquet), *WEB, "--filters", "detector:binoculars:gen0",
                 "--output", str(tmp_path / "c")]) == 2
    assert "needs a pair of transformers models" in _one_line(capsys)


def test_a_pool_too_small_for_the_schedule_is_refused_with_the_arithmetic(human_parquet, tmp_path, capsys):
    assert main(["web", "--shards", str(human_parquet), *WEB, "--filters", "none,oracle", "--real-pool-use",
                 "consume", "--crawl-factor", "2", "--sample-size", "250", "--output", str(tmp_path / "o")]) == 2
    err = _one_line(capsys)
    assert "n + K_1 + ... + K_2 = 250 + 400 + 250 = 900 real documents (K_t = round((1 - c_t) * 500)), but the " \
           "real pool holds 728" in err
    assert "76 for calibration (--calibration-fraction 0.1) and 728 in the real pool" in err
    assert "use --sample-size <= 202" in err
    assert not (tmp_path / "o").exists()
    assert main(["web", "--shards", str(human_parquet), *WEB, "--filters", "none", "--real-pool", "5000",
                 "--output", str(tmp_path / "o2")]) == 2
    assert "--real-pool 5000 but the shards hold 900" in _one_line(capsys)
    assert main(["web", "--shards", str(human_parquet), "--contamination", "0.1,0.2,0.3", "--generations", "2",
                 "--filters", "none", "--output", str(tmp_path / "o3")]) == 2
    assert "gives 3 shares (0.1,0.2,0.3) for --generations 2" in _one_line(capsys)
    assert main(["run", "--shards", str(human_parquet), "--filter", "oracle", "--output", str(tmp_path / "o4")]) == 2
    assert "--filter applies to the web regime only" in _one_line(capsys)
    assert main(["web", "--shards", str(human_parquet), "--filters", "none", "--output", str(tmp_path / "o5")]) == 2
    assert "the following arguments are required: --contamination" in _one_line(capsys)


def test_a_single_web_arm_resumes_and_refuses_another_filter_or_schedule(human_parquet, tmp_path, capsys):
    args = ["run", "--shards", str(human_parquet), "--regime", "web", "--contamination", "0.5", "--generations", "1",
            "--seeds", "2", "--max-docs", "300", "--no-progress", "--output", str(tmp_path / "r")]
    assert main([*args, "--filter", "oracle"]) == 0
    capsys.readouterr()
    assert main([*args, "--filter", "oracle"]) == 0
    capsys.readouterr()
    assert main([*args, "--filter", "none"]) == 2
    assert "filter: saved 'oracle', now 'none'" in _one_line(capsys)
    args[args.index("0.5")] = "0.4"
    assert main([*args, "--filter", "oracle"]) == 2
    assert "contamination: saved [0.5], now [0.4]" in _one_line(capsys)


def test_a_resumed_web_run_with_a_last_model_filter_reproduces_the_uninterrupted_one(human_parquet, tmp_path):
    """The filter of a resumed generation scores with the previous generation's model reloaded from disk."""
    import json
    import shutil

    from collapse.protocol import RunConfig, run

    cfg = RunConfig(shards=str(human_parquet), regime="web", contamination=[0.5], generations=2, seeds=1,
                    max_docs=400, order=3, crawl_factor=2.0, synthetic_from="last", filter_fpr=0.05,
                    calibration_fraction=0.2, filter="detector:fast-detectgpt:last", progress=False)
    run(cfg, tmp_path / "full", log=lambda *a: None)
    run(cfg, tmp_path / "crashed", log=lambda *a: None)
    shutil.rmtree(tmp_path / "crashed" / "seed_0" / "gen_002")
    run(cfg, tmp_path / "crashed", log=lambda *a: None)
    a = json.loads((tmp_path / "full" / "seed_0" / "gen_002" / "metrics.json").read_text())
    b = json.loads((tmp_path / "crashed" / "seed_0" / "gen_002" / "metrics.json").read_text())
    assert a["filter_tpr"] > 0.5
    for k, v in a.items():
        if not k.endswith(("seconds", "share")):
            assert b[k] == v, k
    fa = json.loads((tmp_path / "full" / "seed_0" / "gen_002" / "filter.json").read_text())
    fb = json.loads((tmp_path / "crashed" / "seed_0" / "gen_002" / "filter.json").read_text())
    assert fa["threshold"] == fb["threshold"] and fa["models"] == fb["models"] == [
        fa["models"][0].split("/")[0] + "/gen_001@" + fa["models"][0].split("@")[1]]
