"""Evaluation metrics against brute-force definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from detectors.evaluation import auroc, evaluate_scores, format_table, plot_roc, roc_curve, tpr_at_fpr


def test_auroc_equals_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    neg = rng.integers(0, 20, 150).astype(float)
    pos = rng.integers(5, 25, 120).astype(float)
    brute = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)])
    assert auroc(neg, pos) == pytest.approx(brute, abs=1e-12)
    assert auroc([0, 1], [2, 3]) == 1.0 and auroc([2, 3], [0, 1]) == 0.0


def test_tpr_at_fpr_and_roc_curve():
    neg = np.arange(1000, dtype=float)  # 0..999
    pos = np.array([995.5, 990.5, 980.5, 500.0])
    tpr, t, fpr = tpr_at_fpr(neg, pos, 0.01)
    assert t == 989.0 and fpr == pytest.approx(0.01) and tpr == pytest.approx(0.5)
    f, r = roc_curve(neg, pos)
    assert (f[0], r[0], f[-1], r[-1]) == (0, 0, 1, 1) and np.all(np.diff(f) >= 0) and np.all(np.diff(r) >= 0)
    # The area under the curve (trapezoids, which count ties as half) is the AUROC.
    assert np.sum(np.diff(f) * (r[1:] + r[:-1]) / 2) == pytest.approx(auroc(neg, pos), abs=1e-9)


def test_report_flags_unmeasurable_fpr(tmp_path):
    rng = np.random.default_rng(1)
    neg, pos = rng.standard_normal(150), rng.standard_normal(150) + 2
    m = evaluate_scores(neg, pos, n_bootstrap=200, seed=0)
    assert m["n_negatives"] == 150
    lo, hi = m["auroc"]["ci"]
    assert lo < m["auroc"]["value"] < hi and 0.85 < m["auroc"]["value"] < 0.98
    assert m["tpr_at_fpr"]["0.01"]["measurable"] and not m["tpr_at_fpr"]["0.001"]["measurable"]
    assert "need >= 1000" in m["tpr_at_fpr"]["0.001"]["note"]
    table = format_table([("set", m)])
    assert "n/m (" in table and "| set | 150 | 150 |" in table
    plot_roc([("set", m, *roc_curve(neg, pos))], str(tmp_path / "roc.png"), "test")
    assert (tmp_path / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
