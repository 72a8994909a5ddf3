"""Metrics, confidence intervals and regimes on inputs whose answers follow from the definitions."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats as st

from collapse.metrics import (
    Support,
    distinct_n,
    ngram_set,
    perplexity,
    perplexity_metrics,
    sample_metrics,
    self_bleu,
    unigram_entropy,
    words,
    zipf_slope,
)
from collapse.models.base import LogProb
from collapse.regimes import Regime
from collapse.stats import diff_ci, mean_ci


def test_distinct_n_and_entropy():
    docs = [["a", "b", "a", "b"], ["c"]]
    assert distinct_n(docs, 1) == 3 / 5
    assert distinct_n(docs, 2) == 2 / 3  # (a b), (b a), (a b)
    assert math.isnan(distinct_n(docs, 5))
    assert unigram_entropy(Counter("abcdefgh")) == pytest.approx(3.0)
    assert unigram_entropy(Counter("aaaa")) == 0.0


def test_self_bleu_follows_the_bleu_definition():
    same = [["the", "cat", "sat", "on", "the", "mat"]] * 3
    assert self_bleu(same) == pytest.approx(1.0)
    assert self_bleu([["a", "b", "c"], ["d", "e", "f"]]) == 0.0
    # Two 4-token documents sharing a 3-token prefix: p1 = 3/4, p2 = 2/3, p3 = 1/2, p4 = 0 -> epsilon 0.1 / 1.
    expected = math.exp((math.log(3 / 4) + math.log(2 / 3) + math.log(1 / 2) + math.log(0.1)) / 4)
    assert self_bleu([["a", "b", "c", "d"], ["a", "b", "c", "e"]]) == pytest.approx(expected)
    # Brevity penalty: a 2-token hypothesis against a 4-token reference.
    short = self_bleu([["a", "b"], ["a", "b", "c", "d"]])
    h_short = math.exp(1 - 4 / 2) * math.exp((math.log(1) + math.log(1) + math.log(0.1) + math.log(0.1)) / 4)
    h_long = math.exp((math.log(2 / 4) + math.log(1 / 3) + math.log(0.1 / 2) + math.log(0.1)) / 4)
    assert short == pytest.approx((h_short + h_long) / 2)
    assert math.isnan(self_bleu([["only"]]))


def test_zipf_slope_recovers_the_exponent():
    for s in (1.0, 1.5):
        counts = Counter({f"w{r}": int(round(1e7 / r**s)) for r in range(1, 1001)})
        assert zipf_slope(counts) == pytest.approx(-s, abs=0.01)


def test_perplexity_is_token_weighted():
    lp = LogProb(np.array([-3 * math.log(4), -math.log(2)]), np.array([3, 1]))
    assert perplexity(lp) == pytest.approx(math.exp((3 * math.log(4) + math.log(2)) / 4))
    m = perplexity_metrics(lp, ["abcd", "ef"], "x")
    assert m["x_ppl_p50"] == pytest.approx(3.0)  # median of the per-sequence perplexities 4 and 2
    assert m["x_bits_per_char"] == pytest.approx((3 * 2 + 1) / 6)


def test_sample_metrics_on_empty_samples_record_nan_not_errors():
    m = sample_metrics(["", "  ", ""], Support(["a b"]))
    assert m["sample_words"] == 0 and m["empty_samples"] == 3 and m["types"] == 0
    for k in ("distinct_1", "distinct_2", "distinct_3", "self_bleu", "unigram_entropy", "zipf_slope"):
        assert math.isnan(m[k]), k
    assert m["type_survival"] == 0.0 and m["bigram_survival"] == 0.0


def test_sample_metrics_match_the_set_definitions_on_real_text(human_texts):
    """The integer-key implementation agrees with plain Python sets of word tuples."""
    ref_texts, samples = human_texts[:60], human_texts[30:90] + ["", "Zyzzyva qwxp!"]
    ref_docs, docs = [words(t) for t in ref_texts], [words(t) for t in samples]
    ref_types = {w for d in ref_docs for w in d}
    ref_bigrams = ngram_set(ref_docs, 2)
    m = sample_metrics(samples, Support(ref_texts), self_bleu_docs=1000)
    for n in (1, 2, 3):
        assert m[f"distinct_{n}"] == pytest.approx(distinct_n(docs, n))
    assert m["types"] == len({w for d in docs for w in d}) and m["trigrams"] == len(ngram_set(docs, 3))
    assert m["bigrams"] == len(ngram_set(docs, 2))
    assert m["type_survival"] == pytest.approx(len(ref_types & {w for d in docs for w in d}) / len(ref_types))
    assert m["bigram_survival"] == pytest.approx(len(ref_bigrams & ngram_set(docs, 2)) / len(ref_bigrams))
    assert m["self_bleu"] == pytest.approx(self_bleu(docs, limit=1000))
    assert m["empty_samples"] == 1 and 0 < m["type_survival"] < 1
    assert sample_metrics(ref_texts, Support(ref_texts))["type_survival"] == 1.0


def test_confidence_intervals_match_scipy():
    x = [1.0, 2.0, 4.0, float("nan")]
    m, lo, hi, n = mean_ci(x)
    ref = st.t.interval(0.95, 2, loc=np.mean(x[:3]), scale=st.sem(x[:3]))
    assert n == 3 and m == pytest.approx(7 / 3) and (lo, hi) == pytest.approx(ref)
    assert math.isnan(mean_ci([5.0])[1])
    a, b = [1.0, 2.0, 3.0, 4.0], [3.0, 5.0, 9.0]
    d, lo, hi = diff_ci(a, b)
    ref = st.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert d == pytest.approx(np.mean(b) - np.mean(a)) and (lo, hi) == pytest.approx((ref.low, ref.high))


def test_regimes_build_the_documented_training_sets():
    real = np.arange(100)
    samples = [1000 * (g + 1) + np.arange(100) for g in range(3)]  # origin readable from the value
    rng = np.random.default_rng(0)
    assert np.array_equal(Regime("replace").training_data(real, [], rng), real)
    assert np.array_equal(Regime("replace").training_data(real, samples, rng), samples[-1])
    acc = Regime("accumulate").training_data(real, samples, rng)
    assert np.array_equal(acc, np.concatenate([real, *samples]))
    sub = Regime("accumulate-subsample").training_data(real, samples, rng)
    assert len(sub) == 100 and len(set(sub.tolist())) == 100 and set(sub.tolist()) <= set(acc.tolist())
    assert len({int(x) // 1000 for x in sub}) == 4  # drawn from the whole pool
    mix = Regime("mix", 0.1).training_data(real, samples, rng)
    assert len(mix) == 100 and np.sum(mix < 1000) == 10 and np.all((mix < 1000) | (mix >= 3000))
    texts = Regime("mix", 0.5).training_data(["r1", "r2", "r3", "r4"], [["s1", "s2", "s3", "s4"]], rng)
    assert sum(t.startswith("r") for t in texts) == 2 and sum(t.startswith("s") for t in texts) == 2
    with pytest.raises(ValueError, match="real-fraction"):
        Regime("replace", 0.2)
    with pytest.raises(ValueError, match="unknown regime"):
        Regime("bogus")
