"""Thresholds and the machine-text decision: one place, over stored scores (no Beam, no models).

Used by the pipeline's decision step and by `lowbg decide`, which re-splits scored shards without re-scoring.

Thresholds: for each detector, the scores of *pre-cutoff* documents of the run are human text by construction;
the threshold that flags at most ``target_fpr`` of them is computed (per language when a language has at least
``min_docs`` of them, else over all), with a bootstrap CI. With fewer than ``min_docs`` pre-cutoff scores the
threshold comes from ``--thresholds`` (a `lowbg detect calibrate` file) or the detector's published default, and
the manifest says which.

Decision: only documents whose content is not known to predate the cutoff are judged (capture provenance and
content provenance both not ``pre_cutoff``). The deciding detector is the last one in cascade order with a usable
score; a score beyond its threshold rejects the document as ``machine_generated``. A document with no usable
score is kept or rejected as ``uncertain`` per ``on_uncertain``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from detectors.base import HIGHER_IS_MACHINE
from detectors.calibration import load_thresholds, threshold_at_fpr
from pipeline.document import Document
from pipeline.reasons import REASON_MACHINE_GENERATED, REASON_UNCERTAIN

PRE_CUTOFF = "pre_cutoff"
ALL_LANGUAGES = "*"
N_BOOTSTRAP = 200
# Decision boundaries used when a run cannot calibrate and no thresholds file is given. fastText's is its own
# classification rule (P(machine) > 0.5); the LM detectors use their published low-FPR thresholds when the models
# are the ones they were published for.
FALLBACK_THRESHOLDS = {"fasttext": 0.5}


def is_human_era(doc: Document) -> bool:
    return doc.provenance == PRE_CUTOFF or doc.content_provenance == PRE_CUTOFF


def stable_fraction(doc_id: str) -> float:
    """A deterministic pseudo-random number in [0, 1) per document (the same on every runner)."""
    return int.from_bytes(hashlib.sha1(doc_id.encode()).digest()[:8], "big") / 2**64


def calibration_keys(doc: Document) -> list[tuple[str, str, str, float]]:
    """(detector, language, doc id, score) entries a pre-cutoff document contributes to calibration."""
    if doc.provenance != PRE_CUTOFF or doc.rejected:
        return []
    out = []
    for s in doc.scores:
        if s["value"] is not None:
            out.append((s["detector"], ALL_LANGUAGES, doc.id, s["value"]))
            if doc.language:
                out.append((s["detector"], doc.language, doc.id, s["value"]))
    return out


@dataclass(frozen=True)
class DetectorInfo:
    name: str
    direction: str
    models: tuple[str, ...]
    published: tuple[tuple[str, float], ...] = ()

    def fallback(self) -> tuple[float, str] | None:
        published = dict(self.published)
        for key in ("low_fpr", "low-fpr", "accuracy", "best_f1"):
            if key in published:
                return published[key], f"published default ({key})"
        if published:
            key, value = sorted(published.items())[0]
            return value, f"published default ({key})"
        if self.name in FALLBACK_THRESHOLDS:
            return FALLBACK_THRESHOLDS[self.name], "detector decision boundary"
        return None


def thresholds_file_detector(path: str) -> str | None:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh).get("detector")


def check_thresholds_file(path: str, detectors: list[DetectorInfo]) -> None:
    """Refuse, before any work, a thresholds file made for a detector or models this run does not use."""
    named = thresholds_file_detector(path)
    match = [d for d in detectors if d.name == named]
    if not match:
        raise ValueError(f"{path}: thresholds were calibrated for detector {named!r}, which this run does not use "
                         f"({', '.join(d.name for d in detectors)})")
    load_thresholds(path, match[0].name, list(match[0].models))  # raises on other models


def compute_thresholds(samples: dict[tuple[str, str], list[float]], detectors: list[DetectorInfo],
                       target_fpr: float, min_docs: int, thresholds_file: str | None = None) -> dict:
    """Thresholds per detector from pre-cutoff scores grouped by (detector, language), with fallbacks."""
    result = {}
    for info in detectors:
        entry: dict = {"detector": info.name, "models": list(info.models), "direction": info.direction,
                       "target_fpr": target_fpr, "languages": {}}
        human = samples.get((info.name, ALL_LANGUAGES), [])
        entry["n_human"] = len(human)
        if len(human) >= min_docs:
            t, lo, hi, n = threshold_at_fpr(human, target_fpr, info.direction, n_bootstrap=N_BOOTSTRAP, seed=0)
            entry.update(threshold=t, ci=[lo, hi], source="calibrated on this run's pre-cutoff documents")
            for (name, language), scores in sorted(samples.items()):
                if name == info.name and language != ALL_LANGUAGES and len(scores) >= min_docs:
                    t, lo, hi, n = threshold_at_fpr(scores, target_fpr, info.direction, N_BOOTSTRAP, 0)
                    entry["languages"][language] = {"threshold": t, "ci": [lo, hi], "n_human": n}
        else:
            why = f"only {len(human)} pre-cutoff documents scored (< {min_docs}): not calibrated on this run"
            if thresholds_file and thresholds_file_detector(thresholds_file) == info.name:
                loaded = load_thresholds(thresholds_file, info.name, list(info.models))
                entry.update(threshold=loaded.threshold, ci=list(loaded.ci), source=f"file {thresholds_file}",
                             note=why, n_human=loaded.n_negatives, target_fpr=loaded.target_fpr)
                entry["languages"] = {k: {"threshold": v["threshold"], "ci": v.get("ci"),
                                          "n_human": v.get("n_negatives")}
                                      for k, v in loaded.languages.items() if v.get("measurable", True)}
            else:
                fallback = info.fallback()
                if fallback:
                    entry.update(threshold=fallback[0], ci=None, source=fallback[1], note=why)
                else:
                    entry.update(threshold=None, ci=None, source="none", note=why + "; no default exists")
        result[info.name] = entry
    return result


class MachinePolicy:
    """Reject post-cutoff documents whose deciding score is beyond its threshold."""

    name = "machine_policy"

    def __init__(self, detector_order: list[str], on_uncertain: str = "keep", on_machine: str = "reject"):
        self.detector_order = list(detector_order)
        self.on_uncertain, self.on_machine = on_uncertain, on_machine

    def decide(self, doc: Document, thresholds: dict) -> Document:
        if doc.rejected or not self.detector_order or is_human_era(doc):
            return doc
        for name in reversed(self.detector_order):
            score = doc.score_of(name)
            entry = thresholds.get(name)
            if score is None or score["value"] is None or not entry or entry.get("threshold") is None:
                continue
            threshold = entry["languages"].get(doc.language, entry)["threshold"]
            machine = score["value"] > threshold if entry["direction"] == HIGHER_IS_MACHINE else \
                score["value"] < threshold
            if machine and self.on_machine == "reject":
                sign = ">" if entry["direction"] == HIGHER_IS_MACHINE else "<"
                return doc.reject(REASON_MACHINE_GENERATED,
                                  f"{name} {score['value']:.4f} {sign} {threshold:.4f} "
                                  f"(target FPR {entry['target_fpr']}, {entry['source']})")
            return doc
        if self.on_uncertain == "reject":
            return doc.reject(REASON_UNCERTAIN, doc.not_scored_reason or "no usable score")
        return doc
