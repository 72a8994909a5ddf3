"""Thresholds for a target FPR, their bootstrap CI, and the thresholds file contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm

from detectors.calibration import calibrate, load_thresholds, save_thresholds, threshold_at_fpr


@pytest.mark.parametrize("direction,true_threshold", [("higher_is_machine", norm.ppf(0.99)),
                                                      ("lower_is_machine", norm.ppf(0.01))])
def test_recovers_known_threshold_within_ci(direction, true_threshold):
    human = np.random.default_rng(1).standard_normal(20_000)
    t, lo, hi, n = threshold_at_fpr(human, 0.01, direction, n_bootstrap=500, seed=0)
    assert n == 20_000 and lo <= t <= hi
    assert lo <= true_threshold <= hi
    assert hi - lo < 0.15
    flagged = (human > t) if direction == "higher_is_machine" else (human < t)
    assert flagged.mean() <= 0.01  # never above target on the calibration sample


def test_ci_covers_the_true_threshold_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    truth = norm.ppf(0.95)
    hits = 0
    for _ in range(60):
        t, lo, hi, _ = threshold_at_fpr(rng.standard_normal(2_000), 0.05, "higher_is_machine", n_bootstrap=200,
                                        seed=int(rng.integers(1 << 30)))
        hits += lo <= truth <= hi
    assert hits / 60 >= 0.85


def test_ignores_missing_scores_and_rejects_bad_arguments():
    t, _, _, n = threshold_at_fpr([1.0, None, float("nan"), 2.0, 3.0], 0.5, "higher_is_machine", n_bootstrap=0)
    assert n == 3 and t == 2.0  # k = floor(0.5 * 3) = 1: flag only the top score
    with pytest.raises(ValueError):
        threshold_at_fpr([1.0], 0.0, "higher_is_machine")
    with pytest.raises(ValueError):
        threshold_at_fpr([1.0], 0.01, "sideways")
    with pytest.raises(ValueError):
        threshold_at_fpr([None], 0.01, "higher_is_machine")


def test_thresholds_file_per_language_and_refusals(tmp_path):
    rng = np.random.default_rng(3)
    scores = list(rng.standard_normal(3000)) + list(rng.standard_normal(3000) + 1.0) + [5.0] * 20
    langs = ["en"] * 3000 + ["de"] * 3000 + ["xx"] * 20
    doc = calibrate(scores, detector="binoculars", models=["obs", "perf"], direction="lower_is_machine",
                    target_fpr=0.01, languages=langs, n_bootstrap=200, seed=0)
    path = tmp_path / "thresholds.json"
    save_thresholds(doc, path)
    raw = json.loads(path.read_text())
    for key in ("detector", "models", "direction", "target_fpr", "threshold", "ci", "n_negatives", "languages",
                "created_by"):
        assert key in raw
    assert raw["created_by"].startswith("lowbackground ")
    th = load_thresholds(path, "binoculars", ["obs", "perf"])
    assert th.languages["de"].threshold > th.languages["en"].threshold  # German scores were shifted up
    assert th.languages["de"].threshold == pytest.approx(norm.ppf(0.01) + 1.0, abs=0.2)
    assert not th.languages["xx"].measurable and th.threshold_for("xx") == th.threshold
    assert th.threshold_for("en") == th.languages["en"].threshold
    assert th.is_machine(th.threshold_for("en") - 1, "en") and not th.is_machine(10.0, "en")
    with pytest.raises(ValueError, match="calibrated for detector 'binoculars'"):
        load_thresholds(path, "fast-detectgpt", ["obs", "perf"])
    with pytest.raises(ValueError, match="calibrated with models"):
        load_thresholds(path, "binoculars", ["perf", "obs"])
    (tmp_path / "other.json").write_text(json.dumps({"threshold": 1}))
    with pytest.raises(ValueError, match="not a thresholds file"):
        load_thresholds(tmp_path / "other.json", "binoculars", ["obs", "perf"])
