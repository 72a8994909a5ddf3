from __future__ import annotations

import pytest

from detectors import Detector, Score, build_detector
from detectors.registry import DETECTORS, DIRECTION


def test_every_detector_builds_by_name_and_follows_the_interface(tiny):
    opts = {
        "binoculars": {"observer": str(tiny.observer_dir), "performer": str(tiny.performer_dir)},
        "fast-detectgpt": {"scoring": str(tiny.performer_dir), "reference": str(tiny.observer_dir)},
        "likelihood": {"model": str(tiny.performer_dir)},
        "logrank": {"model": str(tiny.performer_dir)},
        "entropy": {"model": str(tiny.performer_dir)},
        "lrr": {"model": str(tiny.performer_dir)},
        "fasttext": {},
        "watermark": {"tokenizer": str(tiny.tokenizer_dir)},
    }
    assert set(opts) == set(DETECTORS)
    text = tiny.human_texts[0]
    for name, o in opts.items():
        lm_opts = {"device": "cpu", "max_tokens": 4096} if name not in ("fasttext", "watermark") else {}
        det = build_detector(name, **o, **lm_opts)
        assert isinstance(det, Detector)
        assert det.name == name and det.direction == DIRECTION[name] and det.model_ids
        assert isinstance(det.published_thresholds, dict)
        assert 0 < det.count_tokens(text) <= 4096
        scores = det.score([text, ""])
        assert all(isinstance(s, Score) for s in scores)
        assert isinstance(scores[0].value, float) and scores[1].value is None and scores[1].reason == "empty"


def test_bad_names_and_options():
    with pytest.raises(ValueError, match="unknown detector"):
        build_detector("gptzero")
    with pytest.raises(ValueError, match="does not take option"):
        build_detector("fasttext", observer="x")
    with pytest.raises(ValueError, match="needs option"):
        build_detector("binoculars", observer="x")
