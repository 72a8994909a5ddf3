"""Pick a detector threshold for a target false-positive rate from scores of known-human texts.

Decision rule: a text is flagged as machine when `score > threshold` (direction higher_is_machine) or
`score < threshold` (lower_is_machine). Given n human scores and a target FPR f, the threshold is the (k+1)-th most
machine-like human score with k = floor(f n): at most k of the n human texts are flagged, so the empirical FPR is
<= f (ties only lower it). A percentile bootstrap over the human scores gives its confidence interval. When
n * f < 1 the target is not measurable (the threshold is the most extreme human score) and the entry says so.
The JSON format is documented in docs/detectors.md.

:class:`Thresholds` is the one typed form of a threshold in the project (frozen): a `lowbg detect calibrate` file
read back (:func:`load_thresholds`), a `lowbg curate` run's calibration (``_thresholds.json`` and the manifest's
``thresholds``, computed by ``pipeline.decision``), `lowbg decide` and collapse's detector filters all decide
through it.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections import defaultdict
from collections.abc import Mapping
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


@dataclass(frozen=True)
class LanguageThreshold:
    """A per-language threshold; ``measurable`` is False when the language had too few human texts for the target
    FPR (fewer than 1 / FPR): such an entry is recorded but never used."""

    threshold: float
    ci: tuple[float, float] | None = None
    n_human: int | None = None
    measurable: bool = True


@dataclass(frozen=True)
class Thresholds:
    """One detector's decision thresholds: the one typed form of a threshold in the project. A `lowbg detect
    calibrate` file (:func:`load_thresholds`, :meth:`from_document`), a `lowbg curate` run's calibration (the
    entries of its ``_thresholds.json`` and of the manifest's ``thresholds``: :meth:`to_entry`,
    :meth:`from_entry`), `lowbg decide` and collapse's detector filters all read and decide through it.

    ``threshold_for(language)`` is the language's threshold where one is measurable, else the global one;
    ``is_machine(score, language)`` applies the decision rule (module docstring). ``threshold`` is None when
    nothing could set one (then nothing is flagged)."""

    detector: str
    models: tuple[str, ...]
    direction: str
    target_fpr: float
    threshold: float | None
    ci: tuple[float, float] | None = None
    n_human: int | None = None
    languages: Mapping[str, LanguageThreshold] = field(default_factory=dict)
    source: str = ""  # where the threshold comes from: this run's calibration, a file, a published default
    note: str | None = None  # why it does not come from this run's own calibration, when it does not

    def threshold_for(self, language: str | None = None) -> float | None:
        entry = self.languages.get(language) if language else None
        return entry.threshold if entry is not None and entry.measurable else self.threshold

    def is_machine(self, score: float | None, language: str | None = None) -> bool | None:
        """Whether ``score`` is beyond the threshold; None when there is no score or no threshold."""
        t = self.threshold_for(language)
        if score is None or t is None:
            return None
        return score > t if self.direction == HIGHER_IS_MACHINE else score < t

    def to_entry(self) -> dict:
        """The run's record of these thresholds (one entry of ``_thresholds.json`` and the manifest's
        ``thresholds``); languages without a measurable threshold are left out."""
        entry: dict = {"detector": self.detector, "models": list(self.models), "direction": self.direction,
                       "target_fpr": self.target_fpr,
                       "languages": {lang: {"threshold": t.threshold, "ci": list(t.ci) if t.ci is not None else None,
                                            "n_human": t.n_human}
                                     for lang, t in self.languages.items() if t.measurable},
                       "n_human": self.n_human, "threshold": self.threshold,
                       "ci": list(self.ci) if self.ci is not None else None, "source": self.source}
        if self.note is not None:
            entry["note"] = self.note
        return entry

    @classmethod
    def from_entry(cls, entry: Mapping) -> Thresholds:
        """Read one entry of a run's thresholds record back (ValueError when it lacks what deciding needs)."""
        try:
            ci = entry.get("ci")
            return cls(detector=str(entry["detector"]), models=tuple(entry.get("models") or ()),
                       direction=str(entry["direction"]), target_fpr=float(entry["target_fpr"]),
                       threshold=None if entry.get("threshold") is None else float(entry["threshold"]),
                       ci=(float(ci[0]), float(ci[1])) if ci else None, n_human=entry.get("n_human"),
                       languages={lang: LanguageThreshold(float(v["threshold"]),
                                                          tuple(v["ci"]) if v.get("ci") else None, v.get("n_human"))
                                  for lang, v in (entry.get("languages") or {}).items()},
                       source=str(entry.get("source", "")), note=entry.get("note"))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"a thresholds record without {exc}: not one `lowbg curate` writes") from exc

    @classmethod
    def from_document(cls, doc: Mapping, detector_name: str, model_ids: list[str] | tuple[str, ...],
                      where: str = "thresholds") -> Thresholds:
        """A `lowbg detect calibrate` document (already parsed), refusing one made for another detector or
        other models (ValueError naming ``where``)."""
        if doc.get("format") != FORMAT:
            raise ValueError(f"{where}: not a thresholds file of format {FORMAT!r} (got {doc.get('format')!r})")
        if doc.get("detector") != detector_name:
            raise ValueError(f"{where}: thresholds were calibrated for detector {doc.get('detector')!r}, not "
                             f"{detector_name!r}; a threshold only means something for the detector that set it")
        if list(doc.get("models", [])) != list(model_ids):
            raise ValueError(f"{where}: thresholds were calibrated with models {doc.get('models')}, not "
                             f"{list(model_ids)}; scores of different models are not on the same scale, recalibrate")
        return cls(detector=doc["detector"], models=tuple(doc["models"]), direction=doc["direction"],
                   target_fpr=float(doc["target_fpr"]), threshold=float(doc["threshold"]),
                   ci=(float(doc["ci"][0]), float(doc["ci"][1])), n_human=int(doc["n_negatives"]),
                   languages={lang: LanguageThreshold(float(v["threshold"]), tuple(v["ci"]) if v.get("ci") else None,
                                                      v.get("n_negatives"), bool(v.get("measurable", True)))
                              for lang, v in (doc.get("languages") or {}).items()},
                   source=str(doc.get("source") or ""))


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
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a thresholds file of format {FORMAT!r} (not a JSON object)")
    return Thresholds.from_document(doc, detector_name, model_ids, str(path))
