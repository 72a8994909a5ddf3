"""The machine-written-share estimators and the fixed bins, on data whose truth is known."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy.stats import binomtest

from pipeline.estimators import (
    Rate,
    clopper_pearson,
    cut_at_fpr,
    drift_check,
    excess_share,
    flagged_beyond,
    ks_distance,
    mixture_lower_bound,
    tpr_corrected,
)
from pipeline.stats import Log2Scale, LogitScale, SymlogScale, prune_counter, scale_from_json


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (7, 1000), (500, 1000), (1, 3)])
def test_clopper_pearson_matches_scipy(k, n):
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    lo, hi = clopper_pearson(k, n)
    assert lo == pytest.approx(ref.low, abs=1e-9) and hi == pytest.approx(ref.high, abs=1e-9)


@pytest.mark.parametrize("scale", [LogitScale(), SymlogScale(), Log2Scale(8)])
def test_bins_are_ordered_and_hold_their_values(scale):
    rng = np.random.default_rng(0)
    if isinstance(scale, LogitScale):
        xs = np.concatenate([rng.uniform(0, 1, 500), [0.0, 1.0, 1e-15, 1 - 1e-15, 0.5, 0.999999]])
    elif isinstance(scale, Log2Scale):
        xs = np.concatenate([rng.exponential(500, 500), [0, 1, 2, 3, 1e9]])
    else:
        xs = np.concatenate([rng.normal(0, 3, 300), rng.normal(0, 1e-7, 50), [0.0, -1e12, 1e12, 0.9015, -0.9015]])
    xs = np.sort(xs)
    idx = [scale.index(float(x)) for x in xs]
    assert idx == sorted(idx)  # a threshold on the bins is a threshold on the scores
    for x, i in zip(xs, idx):
        lo, hi = scale.bounds(i)
        assert lo <= x <= hi
    assert scale_from_json(scale.to_json()).to_json() == scale.to_json()


def test_probability_bins_are_fine_near_zero_and_one():
    # fastText's calibrated threshold in the demo is P(machine) > 0.999999: neighbours must land in other bins.
    s = LogitScale()
    assert len({s.index(p) for p in (0.99999, 0.999999, 0.9999999, 0.99999999)}) == 4
    assert len({s.index(p) for p in (1e-5, 1e-6, 1e-7, 1e-8)}) == 4
    lo, hi = s.bounds(s.index(0.999999))
    assert (hi - lo) / (1 - lo) < 0.011  # 1% relative resolution in 1 - p


def test_symlog_bins_have_small_relative_width():
    s = SymlogScale()
    for x in (0.85, -4.2, 123.0, 3e-4):
        lo, hi = s.bounds(s.index(x))
        assert abs(hi - lo) <= 0.0011 * abs(x)


def _hist(values, scale) -> dict[int, int]:
    return dict(Counter(scale.index(float(v)) for v in values))


def test_bounds_hold_and_the_corrected_estimate_covers_under_a_known_mixture():
    """Monte Carlo: human N(0,1), machine N(2.5,1), share 0.3; the lower bounds stay below the truth in at least
    95% of draws, and the TPR-corrected interval covers it."""
    rng = np.random.default_rng(1)
    scale, pi, n_post, n_human, reps = SymlogScale(), 0.3, 600, 600, 120
    threshold = float(np.quantile(rng.normal(0, 1, 200_000), 0.95))  # true FPR 5%
    tpr = float(np.mean(rng.normal(2.5, 1, 200_000) > threshold))
    a_ok = b_ok = c_ok = 0
    b_values = []
    for _ in range(reps):
        machine = rng.random(n_post) < pi
        post = np.where(machine, rng.normal(2.5, 1, n_post), rng.normal(0, 1, n_post))
        human = rng.normal(0, 1, n_human)
        f = Rate.exact(int(np.sum(post > threshold)), n_post)
        e = Rate.exact(int(np.sum(human > threshold)), n_human)
        true_share = machine.mean()
        a_ok += excess_share(f, e)["ci"][0] <= true_share
        b = mixture_lower_bound(_hist(post, scale), _hist(human, scale), "higher_is_machine")["lower_bound"]
        b_values.append(b)
        b_ok += b <= true_share
        lo, hi = tpr_corrected(f, e, tpr)["ci"]
        c_ok += lo <= true_share <= hi
    assert a_ok / reps >= 0.95 and b_ok / reps >= 0.95 and c_ok / reps >= 0.93
    assert np.mean(b_values) > 0.1  # valid and informative


def test_mixture_bound_is_zero_without_machine_text():
    rng = np.random.default_rng(2)
    scale = SymlogScale()
    post, human = rng.normal(0, 1, 2000), rng.normal(0, 1, 2000)
    b = mixture_lower_bound(_hist(post, scale), _hist(human, scale), "higher_is_machine")
    assert b["lower_bound"] == 0.0


def test_lower_is_machine_is_the_mirror_image():
    rng = np.random.default_rng(3)
    scale = SymlogScale()
    human = rng.normal(5, 1, 1000)
    post = np.concatenate([rng.normal(5, 1, 600), rng.normal(1, 1, 400)])
    hi_dir = mixture_lower_bound(_hist(-post, scale), _hist(-human, scale), "higher_is_machine")["lower_bound"]
    lo_dir = mixture_lower_bound(_hist(post, scale), _hist(human, scale), "lower_is_machine")["lower_bound"]
    assert lo_dir == pytest.approx(hi_dir, abs=0.02) and 0.25 < lo_dir <= 0.4


def test_histogram_range_brackets_the_exact_rate():
    # A threshold inside a bin: the rate is a range that contains the exact count.
    r = Rate(10, 14, 100)
    lo, hi = r.interval()
    assert lo == clopper_pearson(10, 100)[0] and hi == clopper_pearson(14, 100)[1]


def test_tpr_not_above_fpr_is_refused():
    assert "unavailable" in tpr_corrected(Rate.exact(10, 100), Rate.exact(5, 100), 0.06)


def test_drift_check_and_calibration_on_bins():
    rng = np.random.default_rng(4)
    scale = SymlogScale()
    old = _hist(rng.normal(0, 1, 3000), scale)
    cut, flagged = cut_at_fpr(old, "higher_is_machine", 0.05)
    assert flagged <= math.floor(0.05 * 3000) and flagged >= 0.045 * 3000
    assert flagged_beyond(old, cut, "higher_is_machine") == flagged
    same = drift_check({2018: old, 2019: old, 2020: _hist(rng.normal(0, 1, 1500), scale)}, "higher_is_machine",
                       0.05, 100)
    shifted = drift_check({2018: old, 2020: _hist(rng.normal(0.7, 1, 1500), scale)}, "higher_is_machine", 0.05, 100)
    assert same["target_inside_ci"] and same["ks_ks"] < same["ks_critical_95"]
    assert not shifted["target_inside_ci"] and shifted["fpr_newest"] > 0.1 and shifted["ks_ks"] > 0.2
    assert "unavailable" in drift_check({2020: old}, "higher_is_machine", 0.05, 100)


def test_ks_on_bins_matches_scipy_on_values():
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 800), rng.normal(0.3, 1, 600)
    scale = SymlogScale()
    ours = ks_distance(_hist(a, scale), _hist(b, scale))
    ref = ks_2samp(a, b)
    assert ours["ks"] == pytest.approx(ref.statistic, abs=0.01)
    assert ours["p_value"] == pytest.approx(ref.pvalue, rel=0.5, abs=1e-4)


def test_misra_gries_counts_are_within_the_decrement():
    rng = np.random.default_rng(6)
    stream = rng.zipf(1.3, 60_000)
    true = Counter(int(x) for x in stream)
    parts = []
    for chunk in np.array_split(stream, 7):  # partial summaries merged, as Beam does
        c, dec = Counter(), 0
        for x in chunk:
            c[int(x)] += 1
            if len(c) > 100:
                dec += prune_counter(c, 50)
        parts.append((c, dec))
    merged, dec = Counter(), 0
    for c, d in parts:
        merged.update(c)
        dec += d
        if len(merged) > 100:
            dec += prune_counter(merged, 50)
    dec += prune_counter(merged, 50)
    for item, n in true.items():
        assert merged.get(item, 0) <= n <= merged.get(item, 0) + dec
    assert all(item in merged for item, n in true.most_common(10))
