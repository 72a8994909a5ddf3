"""LLM-text detectors: zero-shot LM scores, a supervised fastText detector, watermarks, calibration, evaluation.

A plain library (no Beam). The pipeline builds a detector by name and scores batches of texts:

    from detectors import build_detector
    det = build_detector("binoculars", observer="tiiuae/falcon-7b", performer="tiiuae/falcon-7b-instruct")
    scores = det.score(["some text", ...])   # list[Score], in input order; Score.value None when unscorable

`det.direction` says how to read values; `detectors.calibration` turns human scores into a threshold for a
target FPR. See docs/detectors.md.
"""

from detectors.base import HIGHER_IS_MACHINE, LOWER_IS_MACHINE, Detector, Score
from detectors.registry import DETECTORS, build_detector

__all__ = ["DETECTORS", "HIGHER_IS_MACHINE", "LOWER_IS_MACHINE", "Detector", "Score", "build_detector"]
