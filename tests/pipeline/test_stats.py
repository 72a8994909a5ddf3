"""The run statistics (stats/) agree with an independent count of the shards, whatever the runner's bundling."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter

import pytest

from pipeline.decision import flags
from pipeline.document import Document, ErrorRecord
from pipeline.stats import (
    SIGNAL_SCALES,
    WORD_CHARS,
    RunStatsAccumulator,
    score_scale,
    stats_of_documents,
)
from tests.pipeline.conftest import DATA, curate, read_kind

FASTTEXT = ("--target-fpr", "0.05", "--min-calibration-docs", "50")


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory):
    """The bundled real WARC files, with language ID, near dedup and the fastText detector (as `make demo`)."""
    out = tmp_path_factory.mktemp("stats") / "run"
    manifest = curate(out, str(DATA / "*.warc.gz"), str(DATA / "malformed" / "clipped.warc.gz"),
                      detectors="fasttext", extra=FASTTEXT + ("--direct_running_mode=in_memory",))
    rows = read_kind(out, "curated").to_pylist() + read_kind(out, "rejected").to_pylist()
    stats = json.loads((out / "stats" / "stats.json").read_text())
    words = json.loads(gzip.decompress((out / "stats" / "words.json.gz").read_bytes()))
    return out, manifest, rows, stats, words


def _era(row: dict) -> str:
    # Restated from the docs, not imported: the count must not share code with what it checks.
    if row["provenance"] == "pre_cutoff":
        return "pre_cutoff"
    if row["provenance"] == "post_cutoff":
        return "post_cutoff_old_content" if row["content_provenance"] == "pre_cutoff" else "post_cutoff"
    return "unknown"


def _table(stats: dict, name: str) -> Counter:
    return Counter({tuple(r[:-1]): r[-1] for r in stats["counts"][name]["rows"]})


def test_counts_match_the_shards_and_the_manifest(fixture_run):
    out, manifest, rows, stats, _ = fixture_run
    assert stats["format"] == "lowbackground.run-stats/1" and stats["run"]["processed_at"] == manifest["processed_at"]
    assert stats["documents"] == len(rows) == manifest["counts"]["curated"] + manifest["counts"]["rejected"]
    outcome = lambda r: "rejected" if r.get("reason") else "curated"  # noqa: E731
    assert _table(stats, "outcome") == Counter((_era(r), outcome(r), r.get("reason")) for r in rows)
    assert _table(stats, "crawl") == Counter((r["crawl_id"], _era(r), outcome(r)) for r in rows)
    assert _table(stats, "language") == Counter((r["language"], _era(r), outcome(r)) for r in rows)
    assert _table(stats, "provenance") == Counter((r["provenance"], r["provenance_rule"]) for r in rows)
    assert _table(stats, "capture_year") == Counter(
        (r["warc_date"].year if r["warc_date"] else None, r["provenance"]) for r in rows)
    errors = read_kind(out, "errors").to_pylist()
    assert errors and Counter({(s, r): n for s, r, n in stats["errors"]["rows"]}) == Counter(
        (e["stage"], e["reason"]) for e in errors)
    by_reason = Counter()
    for (_, o, reason), n in _table(stats, "outcome").items():
        if o == "rejected":
            by_reason[reason] += n
    assert dict(by_reason) == manifest["counts"]["rejected_by_reason"]


def test_histograms_match_the_shards(fixture_run):
    _, manifest, rows, stats, _ = fixture_run
    for name, scale in SIGNAL_SCALES.items():
        for o in ("curated", "rejected"):
            expected = Counter(scale.index(r[name]) for r in rows if r[name] is not None
                               and bool(r.get("reason")) == (o == "rejected"))
            got = stats["signals"][name][o]
            assert dict(zip(got["index"], got["count"])) == expected, (name, o)
    sizes = stats["dedup"]["cluster_sizes"]
    assert dict(zip(sizes["size"], sizes["count"])) == Counter(r["dup_cluster_size"] for r in rows
                                                               if r["dup_cluster_size"] is not None)
    assert max(sizes["size"]) > 1  # the fixtures hold copies
    # Detector groups: documents, flags at the run's own thresholds and the histogram, per era.
    thresholds = manifest["thresholds"]
    entry = thresholds["fasttext"]
    det = stats["detectors"]["fasttext"]
    assert det["direction"] == "higher_is_machine" and det["scale"]["kind"] == "logit"
    for group in (g for g in det["groups"] if g["by"] == "era"):
        scored = [r for r in rows if _era(r) == group["era"] and r["scores"] and r["scores"][0]["value"] is not None]
        values = [r["scores"][0]["value"] for r in scored]
        t = {r["id"]: (entry["languages"].get(r["language"]) or entry)["threshold"] for r in scored}
        assert group["n"] == len(scored)
        assert group["flagged"] == sum(r["scores"][0]["value"] > t[r["id"]] for r in scored)
        assert dict(zip(group["index"], group["count"])) == Counter(score_scale("fasttext").index(v) for v in values)
    pre = next(g for g in det["groups"] if g["by"] == "era" and g["era"] == "pre_cutoff")
    assert 0 < pre["flagged"] <= 0.05 * entry["n_human"] + 1  # calibration holds on its own sample
    for by in ("era+crawl", "era+language", "era+year"):
        assert sum(g["n"] for g in det["groups"] if g["by"] == by) == sum(
            g["n"] for g in det["groups"] if g["by"] == "era")


def test_word_frequencies_are_exact_below_capacity(fixture_run):
    _, _, rows, stats, words = fixture_run
    pre = next(t for t in words["tables"] if t["era"] == "pre_cutoff" and t["language"] == "en")
    docs = [r for r in rows if _era(r) == "pre_cutoff" and r["language"] == "en"
            and r.get("reason") in (None, "machine_generated", "uncertain")]
    assert pre["documents"] == len(docs) and pre["df_decrement"] == 0
    df = Counter()
    for r in docs:
        df.update(set(re.findall(r"\w+", r["text"][:WORD_CHARS].lower())))
    assert {w: n for w, n, _ in pre["words"]} == dict(df)
    assert pre["marker_documents"] == sum(bool(set(re.findall(r"\w+", r["text"][:WORD_CHARS].lower()))
                                               & set(stats["words"]["markers"])) for r in docs)


def test_partial_aggregates_merge_to_the_single_pass(fixture_run):
    _, manifest, rows, _, _ = fixture_run
    docs = [Document.from_row(r) for r in rows]
    thresholds = manifest["thresholds"]
    whole = stats_of_documents(docs, thresholds).to_json({}, thresholds, "test")
    parts = [stats_of_documents(docs[i::3], thresholds) for i in range(3)]
    merged = RunStatsAccumulator()
    for p in reversed(parts):
        merged.merge(p)
    merged = merged.to_json({}, thresholds, "test")
    for out in (whole, merged):
        out[0].pop("written_at")
    assert merged == whole
    assert flags(docs[0], {}) == {}


def test_statistics_from_worker_processes_equal_a_recount_of_the_shards(tmp_path):
    """Two worker processes, partial aggregates merged across them: stats/ equal the same accumulator run over the
    rows read back from the shards (errors included)."""
    out = tmp_path / "multi"
    inputs = [str(DATA / n) for n in ("cc-main-2020-34.warc.gz", "clueweb09-invalid-date.warc.gz",
                                      "cc-main-2024-22.warc.gz", "malformed/clipped.warc.gz")]
    manifest = curate(out, *inputs, detectors="fasttext",
                      extra=("--direct_running_mode=multi_processing", "--direct_num_workers=2"))
    stats = json.loads((out / "stats" / "stats.json").read_text())
    words = json.loads(gzip.decompress((out / "stats" / "words.json.gz").read_bytes()))
    rows = read_kind(out, "curated").to_pylist() + read_kind(out, "rejected").to_pylist()
    acc = stats_of_documents((Document.from_row(r) for r in rows), manifest["thresholds"])
    for e in read_kind(out, "errors").to_pylist():
        acc.add((ErrorRecord(**e), None))
    recount, recount_words = acc.to_json(stats["run"], manifest["thresholds"], "lowbg curate")
    stats.pop("written_at"), recount.pop("written_at")
    assert stats["errors"]["rows"] and stats["detectors"]["fasttext"]["groups"]
    assert stats == recount and words == recount_words
