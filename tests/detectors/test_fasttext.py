"""The supervised fastText detector: deterministic training, document-level splits, the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detectors.evaluation import auroc
from detectors.fasttext_detector import FastTextDetector, default_model_path, features, train_fasttext
from detectors.inputs import HUMAN, in_holdout, load_labelled

DATA = Path(__file__).resolve().parents[1] / "data" / "detect"
MAIN = sorted((DATA / "exp_main").glob("*.raw_data.json"))
GPT34 = sorted((DATA / "exp_gpt3to4").glob("*.raw_data.json"))


def _auroc(det, items):
    scores = det.score([it.text for it in items])
    neg = [s.value for it, s in zip(items, scores) if it.label == HUMAN]
    pos = [s.value for it, s in zip(items, scores) if it.label != HUMAN]
    return auroc(neg, pos)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    items = [it for p in MAIN for it in load_labelled(p)]
    train = [it for it in items if not in_holdout(it.doc, 0.25)]
    held = [it for it in items if in_holdout(it.doc, 0.25)]
    out = tmp_path_factory.mktemp("ft")
    info_a = train_fasttext(train, out / "a.ftz", epoch=15, cutoff=20_000)
    info_b = train_fasttext(train[::-1], out / "b.ftz", epoch=15, cutoff=20_000)  # input order must not matter
    return train, held, out, info_a, info_b


def test_split_is_by_source_document(trained):
    train, held, _, _, _ = trained
    assert 0.15 < len(held) / (len(held) + len(train)) < 0.35
    assert not {it.doc for it in train} & {it.doc for it in held}
    # Each machine text shares its document with its human counterpart, so pairs never straddle the split.
    assert {it.doc for it in held if it.label == HUMAN} == {it.doc for it in held if it.label != HUMAN}


def test_training_is_deterministic_and_model_small(trained):
    _, _, out, a, b = trained
    assert a["sha256"] == b["sha256"]
    assert (out / "a.ftz").read_bytes() == (out / "b.ftz").read_bytes()
    assert a["bytes"] < 3_000_000 and a["quantized"]


def test_held_out_documents_are_detected_above_chance(trained):
    _, held, out, _, _ = trained
    det = FastTextDetector(out / "a.ftz")
    assert det.model_ids[0].startswith("fasttext:a.ftz@sha256:")
    assert _auroc(det, held) > 0.6


def test_features_ignore_formatting_artefacts():
    """Newlines and typographic quotes separate the fast-detect-gpt classes by construction; never use them."""
    assert features("One line.\n\nAnother \u201cquoted\u201d line\u2026")[0] == \
        features("one line. another \"quoted\" line...")[0]
    assert features("wh\u200bat")[0] == ["what"] and features("wh\u200bat")[2]


def test_shipped_model_loads_offline_and_scores_unseen_generators():
    path = default_model_path()
    assert path.name == "fasttext_detector.ftz" and path.stat().st_size < 5_000_000
    assert (path.parent / "NOTICE").read_text().count("971b05202bac2bb504d60c0ac0812fea7a8f7c82") == 1
    det = FastTextDetector()
    out = det.score(["", "   ", "A perfectly ordinary sentence written by a person."])
    assert [s.reason for s in out[:2]] == ["empty", "empty"]
    assert 0.0 <= out[2].value <= 1.0 and out[2].tokens == 9
    # GPT-3.5/GPT-4 texts from documents excluded from its training: weak but above chance (see docs).
    items = [it for p in GPT34 for it in load_labelled(p) if "pubmed" not in p.name]
    assert _auroc(det, items) > 0.55


def test_jsonl_labels_and_errors(tmp_path):
    good = tmp_path / "l.jsonl"
    good.write_text("\n".join(json.dumps(r) for r in [{"text": "a b", "label": "human"},
                                                      {"text": "c d", "label": 1, "doc": "x"}]) + "\n")
    items = load_labelled(good)
    assert [it.label for it in items] == [0, 1] and items[1].doc == "x"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "a", "label": "maybe"}) + "\n")
    with pytest.raises(ValueError, match="line 1: unknown label"):
        load_labelled(bad)


def test_both_classes_required(tmp_path):
    items = [it for it in load_labelled(MAIN[0]) if it.label == HUMAN][:20]
    with pytest.raises(ValueError, match="both human and machine"):
        train_fasttext(items, tmp_path / "m.ftz")


def test_scores_are_probabilities():
    det = FastTextDetector()
    items = load_labelled(GPT34[0])[:40]
    values = np.array([s.value for s in det.score([it.text for it in items])])
    # Strictly inside (0, 1): confident texts keep their order instead of tying at a rounded 1.0.
    assert np.all((values > 0) & (values < 1)) and values.std() > 0
    assert len(np.unique(values)) == len(values)
