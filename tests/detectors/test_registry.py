from __future__ import annotations

import pytest

from detectors import Detector, Score, build_detector
from detectors.registry import DETECTORS, DIRECTION, PUBLISHED_THRESHOLDS, describe


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
        if name != "watermark":  # a watermark test is known by its tokenizer: only loading tells
            # What the launcher is told without loading a model is what the loaded detector reports.
            spec = describe(name, **o, **lm_opts)
            assert (spec.name, spec.direction, list(spec.model_ids), dict(spec.published)) == \
                (det.name, det.direction, list(det.model_ids), det.published_thresholds)


def test_describe_knows_published_thresholds_and_refuses_what_cannot_load(tmp_path):
    models, values = PUBLISHED_THRESHOLDS["binoculars"]
    spec = describe("binoculars", observer=models[0], performer=models[1])  # hub ids: nothing downloaded
    assert spec.model_ids == models and dict(spec.published) == values
    assert spec.fallback() == (values["low-fpr"], "published default (low-fpr)")
    assert describe("fasttext").fallback() == (0.5, "detector decision boundary")
    assert describe("likelihood", model="org/some-model").fallback() is None
    with pytest.raises(FileNotFoundError):
        describe("likelihood", model=str(tmp_path / "missing"))
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="only pickle weights"):
        describe("likelihood", model=str(tmp_path / "pickled"))
    with pytest.raises(ValueError, match="does not take option"):
        describe("fasttext", observer="x")


def test_bad_names_and_options():
    with pytest.raises(ValueError, match="unknown detector"):
        build_detector("gptzero")
    with pytest.raises(ValueError, match="does not take option"):
        build_detector("fasttext", observer="x")
    with pytest.raises(ValueError, match="needs option"):
        build_detector("binoculars", observer="x")
