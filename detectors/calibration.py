"""Pick a detector threshold for a target false-positive rate from scores of known-human texts.

Decision rule: a text is flagged as machine when `score > threshold` (direction higher_is_machine) or
`score < threshold` (lower_is_machine). Given n human scores and a target FPR f, the threshold is the (k+1)-th most
machine-like human score with k = floor(f n): at most k of the n human texts are flagged, so the empirical FPR is
<= f (ties only lower it). A percentile bootstrap over the human scores gives its confidence interval. When
n * f < 1 the target is not measurable (the threshold is the most extreme human score) and the entry says so.
The JSON format is documented in docs/detectors.md.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from importlib.metadata import version as _version

import numpy as np

from detectors.base import DIRECTIONS, HIGHER_IS_MACHINE

FORMAT = "lowbackground.detector-thresholds/1"
DEFAULT_TARGET_FPR = 0.01  # the false-positive rate on human text a threshold holds unless told otherwise


def _order_stat(x: np.ndarray, k: int, direction: str, axis: int = -1) -> np.ndarray:
    n = x.shape[axis]
    if direction == HIGHER_IS_MACHINE:
        return np.take(np.partition(x, n - 1 - k, axis=axis), n - 1 - k, axis=axis)
    return np.take(np.partition(x, k, axis=axis), k, axis=axis)


def threshold_at_fpr(human_scores, target_fpr: float, direction: str, n_bootstrap: int = 1000, seed: int = 0,
                     ci: float = 0.95) -> tuple[float, float, float, int]:
    """(threshold, ci_low, ci_high, n) for flagging at most `target_fpr` of these human texts.

    NaN/None scores are ignored; n is the number of scores used. The CI is a percentile bootstrap (n_bootstrap
    resamples of the human scores, `seed` for the generator); n_bootstrap=0 gives ci_low = ci_high = threshold.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}")
    if not 0 < target_fpr < 1:
        raise ValueError("target_fpr must be in (0, 1)")
    x = np.asarray([s for s in human_scores if s is not None], dtype=np.float64)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        raise ValueError("no human scores to calibrate on")
    k = math.floor(target_fpr * n)
    t = float(_order_stat(x, k, direction))
    if n_bootstrap <= 0:
        return t, t, t, n
    rng = np.random.default_rng(seed)
    boot = np.empty(n_bootstrap)
    per = max(1, (1 << 24) // n)  # resamples per block: bounds memory at ~128 MiB
    for start in range(0, n_bootstrap, per):
        stop = min(n_bootstrap, start + per)
        sample = x[rng.integers(0, n, size=(stop - start, n))]
        boot[start:stop] = _order_stat(sample, k, direction, axis=1)
    alpha = (1 - ci) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha])
    return t, float(lo), float(hi), n


@dataclass
class Thresholds:
    """A loaded thresholds file. `threshold_for(language)` falls back to the global threshold when the language has
    no entry or too few human texts for the target FPR."""

    detector: str
    models: list[str]
    direction: str
    target_fpr: float
    threshold: float
    ci: tuple[float, float]
    n_negatives: int
    languages: dict[str, dict] = field(default_factory=dict)
    raw: dict = field(default_factory=dict)

    def threshold_for(self, language: str | None = None) -> float:
        entry = self.languages.get(language) if language else None
        return entry["threshold"] if entry and entry.get("measurable") else self.threshold

    def is_machine(self, score: float | None, language: str | None = None) -> bool | None:
        if score is None:
            return None
        t = self.threshold_for(language)
        return score > t if self.direction == HIGHER_IS_MACHINE else score < t


def _entry(scores, target_fpr, direction, n_bootstrap, seed) -> dict:
    t, lo, hi, n = threshold_at_fpr(scores, target_fpr, direction, n_bootstrap, seed)
    return {"threshold": t, "ci": [lo, hi], "n_negatives": n, "measurable": n * target_fpr >= 1}


def calibrate(human_scores, *, detector: str, models: list[str], direction: str, target_fpr: float = DEFAULT_TARGET_FPR,
              languages=None, n_bootstrap: int = 1000, seed: int = 0, min_per_language: int = 1,
              source: str | None = None) -> dict:
    """Thresholds document (see docs/detectors.md) from human scores, optionally per language.

    languages: one language code (or None) per score; a per-language entry is made for each language with at
    least `min_per_language` scored texts.
    """
    scores = list(human_scores)
    doc = {"format": FORMAT, "detector": detector, "models": list(models), "direction": direction,
           "decision_rule": "machine if score > threshold" if direction == HIGHER_IS_MACHINE
           else "machine if score < threshold",
           "target_fpr": target_fpr, **_entry(scores, target_fpr, direction, n_bootstrap, seed),
           "ci_level": 0.95, "n_bootstrap": n_bootstrap, "seed": seed, "languages": {}}
    if languages is not None:
        groups: dict[str, list[float]] = defaultdict(list)
        for s, lang in zip(scores, languages):
            if lang and s is not None:
                groups[str(lang)].append(s)
        for lang in sorted(groups):
            if len(groups[lang]) >= min_per_language:
                doc["languages"][lang] = _entry(groups[lang], target_fpr, direction, n_bootstrap, seed)
    doc["created_by"] = f"lowbackground {_version('lowbackground')}"
    doc["created_at"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    if source:
        doc["source"] = source
    return doc


def save_thresholds(doc: dict, path: str | os.PathLike) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, sort_keys=False)
        f.write("\n")


def load_thresholds(path: str | os.PathLike, detector_name: str, model_ids: list[str]) -> Thresholds:
    """Read a thresholds file, refusing one made for another detector or other models (ValueError)."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not a thresholds file of format {FORMAT!r} (got {doc.get('format')!r})")
    if doc.get("detector") != detector_name:
        raise ValueError(f"{path}: thresholds were calibrated for detector {doc.get('detector')!r}, not "
                         f"{detector_name!r}; a threshold only means something for the detector that set it")
    if list(doc.get("models", [])) != list(model_ids):
        raise ValueError(f"{path}: thresholds were calibrated with models {doc.get('models')}, not {list(model_ids)}; "
                         "scores of different models are not on the same scale, recalibrate")
    return Thresholds(detector=doc["detector"], models=list(doc["models"]), direction=doc["direction"],
                      target_fpr=float(doc["target_fpr"]), threshold=float(doc["threshold"]),
                      ci=(float(doc["ci"][0]), float(doc["ci"][1])), n_negatives=int(doc["n_negatives"]),
                      languages=dict(doc.get("languages", {})), raw=doc)
