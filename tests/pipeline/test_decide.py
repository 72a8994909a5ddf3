"""`lowbg decide` re-makes every policy decision from the values stored on the rows, checked against an independent
computation over the stored columns; and it reads and writes runs on a non-local Beam filesystem, as `lowbg index
build` reads them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main as lowbg
from pipeline.decide import decide, source_settings
from pipeline.dedup.reference import BANDS
from schemas.run import read_finished_manifest
from tests.pipeline.conftest import DATA, curate, read_kind
from tests.pipeline.dedup.test_reference import index_content
from tests.pipeline.test_scoring import planted_corpus, write_warc

# The source run: lenient policies, every quality signal stored, fastText scores, machine text kept (the default).
SOURCE = ("--quality-signals", "all", "--dedup", "near", "--target-fpr", "0.05", "--min-calibration-docs", "50")
# The stricter policies `lowbg decide` applies to it.
STRICT = {"languages": ["en"], "min_language_score": 0.8, "min_words": 80, "quality_preset": "gopher-quality",
          "on_machine": "reject", "target_fpr": 0.2, "min_calibration_docs": 50}
STRICT_ARGV = ["--languages", "en", "--min-language-score", "0.8", "--min-words", "80", "--quality-preset",
               "gopher-quality", "--on-machine", "reject", "--target-fpr", "0.2", "--min-calibration-docs", "50"]

# Rae et al. 2021, appendix A, quality filters, written out from the paper (not read from pipeline/quality/).
GOPHER_QUALITY = (
    ("quality_gopher_word_count", lambda r: not 50 <= r["word_count"] <= 100_000),
    ("quality_gopher_mean_word_length", lambda r: not 3 <= r["mean_word_length"] <= 10),
    ("quality_gopher_symbol_word_ratio", lambda r: r["symbol_word_ratio"] > 0.1),
    ("quality_gopher_bullet_lines", lambda r: r["bullet_line_fraction"] > 0.9),
    ("quality_gopher_ellipsis_lines", lambda r: r["ellipsis_line_fraction"] > 0.3),
    ("quality_gopher_alpha_words", lambda r: r["alpha_word_fraction"] < 0.8),
    ("quality_gopher_stop_words", lambda r: r["distinct_stop_words"] < 2),
)
# How far a row went in the source run, by its reason: 0 language, 1 quality, 2 dedup, 3 the machine-text decision
# (curated rows went everywhere); rows rejected before language ID (HTTP, content, decoding) went nowhere.
DEDUP = {"duplicate_exact", "duplicate_near"}


def _level(reason: str | None) -> int:
    if reason is None or reason in ("machine_generated", "uncertain"):
        return 3
    if reason in DEDUP:
        return 2
    if reason.startswith("quality_"):
        return 1
    return 0 if reason == "language" else -1


def _before_decision(row: dict) -> str | None:
    """The stricter language and quality policies over the stored columns: a reason, or None."""
    level = _level(row.get("reason"))
    if level < 0:
        return row["reason"]
    if row["language"] != "en" or row["language_score"] < 0.8:
        return "language"
    if level >= 1:
        if row["word_count"] < 80:
            return "quality_min_words"
        for reason, fails in GOPHER_QUALITY:
            if fails(row):
                return reason
    if level == 2:
        return row["reason"]
    assert level == 3, row["reason"]  # the source passed language and quality: stricter ones only reject more
    return None


def _score(row: dict) -> float | None:
    return next((s["value"] for s in row["scores"] if s["detector"] == "fasttext"), None)


def _human_era(row: dict) -> bool:
    return row["provenance"] == "pre_cutoff" or row["content_provenance"] == "pre_cutoff"


@pytest.fixture(scope="module")
def source_run(tmp_path_factory) -> Path:
    """The bundled crawl fixtures (several languages, mostly pre-cutoff) and human/machine text pairs (English,
    pre-cutoff human text, post-cutoff human and machine text: tests/pipeline/test_scoring.py)."""
    work = tmp_path_factory.mktemp("decide")
    write_warc(work / "planted.warc.gz", [doc for part in planted_corpus() for doc in part])
    out = work / "source"
    manifest = curate(out, str(DATA / "*.warc.gz"), str(work / "planted.warc.gz"), extra=SOURCE,
                      detectors="fasttext")
    assert manifest["options"]["decision"]["on_machine"] == "keep"
    assert "machine_generated" not in manifest["counts"]["rejected_by_reason"]
    return out


def _rows(run: Path) -> dict[str, dict]:
    return {r["id"]: r for kind in ("curated", "rejected") for r in read_kind(run, kind).to_pylist()}


def test_stricter_policies_move_exactly_the_rows_an_independent_computation_says(source_run, tmp_path):
    before = _rows(source_run)
    manifest = decide(source_run, tmp_path / "strict", **STRICT)
    after = _rows(tmp_path / "strict")
    assert set(after) == set(before)
    assert manifest["balanced"] and manifest["counts"]["records_in"] == len(before)

    # The calibration population: pre-cutoff rows that reach the decision under the new policies, with a score.
    entry = manifest["thresholds"]["fasttext"]
    human = [_score(r) for r in before.values()
             if r["provenance"] == "pre_cutoff" and _before_decision(r) is None and _score(r) is not None]
    assert entry["source"].startswith("calibrated") and entry["n_human"] == len(human) >= 50
    assert entry["target_fpr"] == 0.2
    assert sum(v > entry["threshold"] for v in human) <= 0.2 * len(human)

    def threshold(row):
        return (entry["languages"].get(row["language"]) or entry)["threshold"]

    expected = {}
    for rid, row in before.items():
        reason = _before_decision(row)
        if reason is None and not _human_era(row) and _score(row) is not None and _score(row) > threshold(row):
            reason = "machine_generated"
        expected[rid] = reason
    got = {rid: row.get("reason") for rid, row in after.items()}
    assert got == expected
    moved = {(before[rid].get("reason"), got[rid]) for rid in got if got[rid] != before[rid].get("reason")}
    # every policy moved something, or the test proves little
    assert {new for _, new in moved} >= {"language", "quality_min_words", "machine_generated"}
    assert any(new.startswith("quality_gopher_") for _, new in moved)
    # what was not a policy stays as it was, text and scores untouched
    for rid, row in after.items():
        assert row["scores"] == before[rid]["scores"] and row["text"] == before[rid]["text"]

    # The manifest records the settings used, and counts agree with the shards.
    options = manifest["options"]
    assert options["language"]["languages"] == ["en"] and options["language"]["min_score"] == 0.8
    assert options["quality"] == {**options["quality"], "preset": "gopher-quality", "min_words": 80}
    assert options["decision"]["on_machine"] == "reject" and options["decision"]["target_fpr"] == 0.2
    assert options["dedup"] == json.loads((source_run / "manifest.json").read_text())["options"]["dedup"]
    counted = {}
    for reason in got.values():
        if reason:
            counted[reason] = counted.get(reason, 0) + 1
    assert manifest["counts"]["rejected_by_reason"] == dict(sorted(counted.items()))
    assert read_finished_manifest(tmp_path / "strict")["counts"] == manifest["counts"]


def test_the_same_settings_give_the_same_split_and_looser_ones_say_what_they_cannot_redo(source_run, tmp_path):
    before = {rid: r.get("reason") for rid, r in _rows(source_run).items()}
    same = decide(source_run, tmp_path / "same")
    assert {rid: r.get("reason") for rid, r in _rows(tmp_path / "same").items()} == before
    assert same["not_redecided"] == {}

    # Looser language policy: the rows the source rejected for language never went through dedup and scoring.
    loose = decide(source_run, tmp_path / "loose", min_language_score=0.0)
    n_language = sum(reason == "language" for reason in before.values())
    assert n_language and loose["not_redecided"] == {"language": n_language}
    assert {rid: r.get("reason") for rid, r in _rows(tmp_path / "loose").items()} == before


def test_a_preset_whose_signals_were_not_stored_is_refused(tmp_path, capsys):
    out = tmp_path / "plain"
    curate(out, str(DATA / "cc-main-2020-34.warc.gz"), extra=("--dedup", "none"))
    assert lowbg(["decide", "--input", str(out), "--output", str(tmp_path / "d"), "--quality-preset", "c4"]) == 2
    err = capsys.readouterr().err
    assert "c4_" in err and "--quality-signals" in err
    assert not (tmp_path / "d" / "manifest.json").exists()


def test_decide_and_index_build_on_a_run_in_an_object_store(source_run, fakefs, tmp_path):
    """The same run copied into a Beam filesystem that is not local (an object store without directories, in a
    test folder): `lowbg decide` reads it and writes its output there, `lowbg index build` reads it, and both
    give what they give on the local copy."""
    shutil.copytree(source_run, fakefs.root / "runs" / "source")
    argv = ["decide", "--input", "fakefs://runs/source", "--output", "fakefs://runs/strict", *STRICT_ARGV]
    assert lowbg(argv) == 0
    assert lowbg(["decide", "--input", str(source_run), "--output", str(tmp_path / "strict"), *STRICT_ARGV]) == 0
    remote = read_finished_manifest(fakefs.root / "runs" / "strict")
    local = read_finished_manifest(tmp_path / "strict")
    for key in ("counts", "shards", "thresholds", "not_redecided"):
        assert remote[key] == local[key]
    for kind in ("curated", "rejected"):
        for name in local["shards"][kind]:
            remote_rows = pq.read_table(fakefs.root / "runs" / "strict" / name)
            assert remote_rows.equals(pq.read_table(tmp_path / "strict" / name))

    # lowbg index build: a run folder URL (its manifest names the curated shards) and a pattern inside the run,
    # into an index on the object store too; the index holds what the one built from the local copy holds.
    assert lowbg(["index", "build", "--input", str(source_run), "--output", str(tmp_path / "index-local")]) == 0
    local_index = index_content(str(tmp_path / "index-local"))
    assert local_index[BANDS]
    for i, source in enumerate(("fakefs://runs/source", "fakefs://runs/source/curated/*.parquet")):
        assert lowbg(["index", "build", "--input", source, "--output", f"fakefs://index-{i}"]) == 0
        assert index_content(f"fakefs://index-{i}") == local_index


def test_settings_a_manifest_does_not_record_are_curates_defaults():
    """A manifest written afterwards by `lowbg manifest` records no settings: the machine-text decision is then
    `lowbg curate`'s default for the run's detectors (reject only with a language model); a manifest of the flat
    form written before typed settings rejected whenever it was scored, and says so."""
    fasttext, binoculars = {"fasttext": {"target_fpr": 0.05}}, {"binoculars": {"target_fpr": 0.01}}
    unrecorded = {"output": "gs://b/run", "note": "manifest written after the run"}
    assert source_settings(unrecorded, fasttext)[0].decision.on_machine == "keep"
    assert source_settings(unrecorded, fasttext)[0].decision.target_fpr == 0.05
    assert source_settings(unrecorded, binoculars)[0].decision.on_machine == "reject"
    flat = {"detectors": ["fasttext"], "languages": ["en"], "min_words": 40, "quality_preset": "c4"}
    legacy = source_settings(flat, fasttext)[0]
    assert legacy.decision.on_machine == "reject" and legacy.language.languages == ("en",)
    assert (legacy.quality.preset, legacy.quality.min_words) == ("c4", 40)
