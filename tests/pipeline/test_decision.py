"""pipeline/decision.py directly: thresholds and their fallbacks, the record round trip, and the decision rule."""

from __future__ import annotations

import datetime as dt

import pytest

from detectors.calibration import calibrate, save_thresholds
from detectors.registry import DetectorSpec
from pipeline.decision import (
    ALL_LANGUAGES,
    CALIBRATED,
    MachinePolicy,
    calibration_keys,
    check_thresholds_file,
    compute_thresholds,
    flags,
    thresholds_from_record,
    thresholds_record,
)
from pipeline.document import Document, ScoreRecord
from pipeline.settings import DecisionSettings

FAST = DetectorSpec("fasttext", "higher_is_machine", ("ft@sha256:1",))
BINO = DetectorSpec("binoculars", "lower_is_machine", ("obs", "perf"), (("low-fpr", 0.85),))
LM = DetectorSpec("likelihood", "higher_is_machine", ("lm",))


def doc(provenance: str, scores: dict[str, float | None], language: str = "en", content: str | None = None):
    return Document(id=f"{provenance}-{sorted(scores.items())}-{language}", warc_file="f", text="t",
                    provenance=provenance, content_provenance=content, language=language,
                    processed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                    scores=[ScoreRecord(name, ("m",), value) for name, value in scores.items()])


def test_thresholds_calibrate_per_language_or_fall_back_and_say_which(tmp_path):
    samples = {("fasttext", ALL_LANGUAGES): [i / 100 for i in range(100)],
               ("fasttext", "en"): [i / 100 for i in range(60)], ("fasttext", "de"): [0.5] * 10}
    settings = DecisionSettings(target_fpr=0.1, min_calibration_docs=50)
    got = compute_thresholds(samples, [FAST, BINO, LM], settings)
    fast = got["fasttext"]
    assert fast.source == CALIBRATED and fast.n_human == 100 and set(fast.languages) == {"en"}
    assert sum(v > fast.threshold for v in samples[("fasttext", ALL_LANGUAGES)]) <= 10
    assert fast.threshold_for("en") == fast.languages["en"].threshold and fast.threshold_for("de") == fast.threshold
    assert (got["binoculars"].threshold, got["binoculars"].source) == (0.85, "published default (low-fpr)")
    assert got["likelihood"].threshold is None and "no default exists" in got["likelihood"].note

    # A `lowbg detect calibrate` file for a detector that cannot calibrate on the run, and one for another model.
    path = tmp_path / "bino.json"
    save_thresholds(calibrate([0.1 * i for i in range(200)], detector="binoculars", models=["obs", "perf"],
                              direction="lower_is_machine", target_fpr=0.05, n_bootstrap=10), path)
    from_file = compute_thresholds(samples, [FAST, BINO], DecisionSettings(thresholds=str(path)))["binoculars"]
    assert from_file.source == f"file {path}" and from_file.target_fpr == 0.05 and from_file.n_human == 200
    check_thresholds_file(str(path), [FAST, BINO])
    with pytest.raises(ValueError, match="calibrated with models"):
        check_thresholds_file(str(path), [DetectorSpec("binoculars", "lower_is_machine", ("a", "b"))])
    with pytest.raises(ValueError, match="does not use"):
        check_thresholds_file(str(path), [FAST])

    # The record (manifest, _thresholds.json) reads back to the same typed thresholds, and compares frozen.
    record = thresholds_record(got)
    back = thresholds_from_record(record)
    assert thresholds_record(back) == record
    assert back["fasttext"].threshold_for("en") == fast.threshold_for("en")
    with pytest.raises(ValueError, match="lowbg curate"):
        thresholds_from_record({"fasttext": {"detector": "fasttext"}})


def test_the_last_usable_detector_decides_only_outside_the_human_era():
    thresholds = thresholds_from_record(thresholds_record(compute_thresholds(
        {("fasttext", ALL_LANGUAGES): [0.1] * 90 + [0.9] * 10}, [FAST, BINO],
        DecisionSettings(target_fpr=0.1, min_calibration_docs=50))))
    t = thresholds["fasttext"].threshold
    reject = MachinePolicy(["fasttext", "binoculars"], DecisionSettings(on_machine="reject"))
    keep = MachinePolicy(["fasttext", "binoculars"], DecisionSettings(on_machine="keep", on_uncertain="reject"))

    machine_by_fast = doc("post_cutoff", {"fasttext": 0.99})
    assert reject.decide(machine_by_fast, thresholds)[0] == "machine_generated"
    assert f"> {t:.4f}" in reject.decide(machine_by_fast, thresholds)[1]
    assert keep.decide(machine_by_fast, thresholds) is None and flags(machine_by_fast, thresholds) == \
        {"fasttext": True}
    # binoculars (last in the cascade, lower is machine, published 0.85) overrules fastText when it scored
    assert reject.decide(doc("post_cutoff", {"fasttext": 0.99, "binoculars": 0.95}), thresholds) is None
    assert reject.decide(doc("post_cutoff", {"fasttext": 0.0, "binoculars": 0.5}), thresholds)[0] == \
        "machine_generated"
    # human era: captured before the cutoff, or its content seen before it: never judged, always calibrated on
    assert reject.decide(doc("pre_cutoff", {"fasttext": 0.99}), thresholds) is None
    assert reject.decide(doc("post_cutoff", {"fasttext": 0.99}, content="pre_cutoff"), thresholds) is None
    assert calibration_keys(doc("pre_cutoff", {"fasttext": 0.3}, "de"))[1][:2] == ("fasttext", "de")
    assert calibration_keys(doc("post_cutoff", {"fasttext": 0.3})) == []
    # no usable score: kept, or uncertain
    unscored = doc("unknown", {"fasttext": None})
    assert reject.decide(unscored, thresholds) is None and keep.decide(unscored, thresholds)[0] == "uncertain"
