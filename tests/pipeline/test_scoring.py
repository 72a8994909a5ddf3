"""AI-text scoring inside the pipeline: cascade, calibration on the run's own pre-cutoff text, decisions."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from detectors.registry import build_detector
from pipeline.cli import main as lowbg
from pipeline.decide import decide
from tests.pipeline.conftest import PROCESSED_AT, curate, read_kind

DETECT = Path(__file__).resolve().parents[1] / "data" / "detect"
PRE, POST = "2020-08-08T17:27:41Z", "2024-05-18T01:58:10Z"


def pairs(name: str) -> dict:
    return json.loads((DETECT / name).read_text(encoding="utf-8"))


def write_warc(path: Path, docs: list[tuple[str, str, str]]) -> None:
    """(url, text, WARC-Date) as plain-text HTTP responses, so the stored text is the planted text."""
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for url, text, date in docs:
            body = text.encode("utf-8")
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/plain; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body),
                                                          http_headers=http, warc_headers_dict={"WARC-Date": date}))


def planted_corpus() -> tuple[list, list, list]:
    """Human/machine pairs the shipped detector never saw (exp_gpt3to4), split by source document: the first
    100 pairs of each file give pre-cutoff human text (calibration), the last 50 post-cutoff human text (held
    aside) and post-cutoff machine text (planted)."""
    calibration, held_human, planted = [], [], []
    for name in ("xsum_gpt-4", "writing_gpt-3.5-turbo", "pubmed_gpt-4"):
        data = pairs(f"exp_gpt3to4/{name}.raw_data.json")
        for i, (human, machine) in enumerate(zip(data["original"], data["sampled"])):
            if i < 100:
                calibration.append((f"http://pre.example/{name}/{i}", human, PRE))
            else:
                held_human.append((f"http://human.example/{name}/{i}", human, POST))
                planted.append((f"http://machine.example/{name}/{i}", machine, POST))
    return calibration, held_human, planted


def wilson_interval(k: int, n: int, z: float = 2.576) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_planted_machine_text_is_rejected_at_the_detectors_measured_rate(tmp_path):
    calibration, held_human, planted = planted_corpus()
    warc = tmp_path / "planted.warc.gz"
    write_warc(warc, calibration + held_human + planted)
    out = tmp_path / "out"
    target = 0.05
    manifest = curate(out, str(warc), detectors="fasttext",
                      extra=("--target-fpr", str(target), "--dedup", "none", "--min-calibration-docs", "100",
                             "--on-machine", "reject"))
    assert manifest["balanced"]
    rows = read_kind(out, "curated").to_pylist() + read_kind(out, "rejected").to_pylist()
    by_url = {r["url"]: r for r in rows}
    kept_human_era = [u for u, _, _ in calibration if by_url[u].get("reason") is None]
    assert len(kept_human_era) >= 0.95 * len(calibration)  # a few may fail language ID
    entry = manifest["thresholds"]["fasttext"]
    assert entry["source"].startswith("calibrated") and entry["n_human"] == len(kept_human_era)
    lo, hi = entry["ci"]
    assert lo <= entry["threshold"] <= hi
    machine_rejected = [by_url[u].get("reason") == "machine_generated" for u, _, _ in planted]
    human_rejected = [by_url[u].get("reason") == "machine_generated" for u, _, _ in held_human]
    assert not any(by_url[u].get("reason") == "machine_generated" for u, _, _ in calibration)  # human-era: never judged

    # The detector's own TPR at the run's threshold, measured directly with the library on the same texts.
    detector = build_detector("fasttext")
    scores = detector.score([by_url[u]["text"] for u, _, _ in planted])
    measured_tpr = sum(s.value is not None and s.value > entry["threshold"] for s in scores) / len(planted)
    pipeline_tpr = sum(machine_rejected) / len(planted)
    fpr = sum(human_rejected) / len(held_human)
    print(f"\nplanted machine text rejected: {pipeline_tpr:.3f} (library TPR at threshold {measured_tpr:.3f}); "
          f"held-aside human rejected: {fpr:.3f} (target {target})")
    # The pipeline rejects exactly what the detector flags at that threshold. Whether that is much: the supervised
    # detector is near chance on generators it was not trained on, and the test reports it rather than hide it.
    assert pipeline_tpr == pytest.approx(measured_tpr, abs=1e-12)
    low, high = wilson_interval(sum(human_rejected), len(held_human))
    assert low <= target <= high, f"held-aside FPR {fpr} inconsistent with target {target}: [{low:.3f}, {high:.3f}]"
    for u, _, _ in planted:
        row = by_url[u]
        assert row["scores"][0]["detector"] == "fasttext" and row["scores"][0]["models"] == detector.model_ids

    # `lowbg decide` re-splits the same shards under another FPR, without re-scoring, and balances.
    redecided = decide(out, tmp_path / "decided", target_fpr=0.2)
    assert redecided["balanced"] and redecided["counts"]["records_in"] == manifest["counts"]["curated"] + \
        manifest["counts"]["rejected"]
    new_entry = redecided["thresholds"]["fasttext"]
    assert new_entry["threshold"] < entry["threshold"]
    assert redecided["counts"]["rejected_by_reason"]["machine_generated"] > \
        manifest["counts"]["rejected_by_reason"]["machine_generated"]
    rows2 = read_kind(tmp_path / "decided", "curated").to_pylist() + \
        read_kind(tmp_path / "decided", "rejected").to_pylist()
    assert {r["id"]: r["scores"] for r in rows2} == {r["id"]: r["scores"] for r in rows}


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory) -> tuple[Path, Path]:
    from tests.detectors.conftest import make_model, make_tokenizer

    root = tmp_path_factory.mktemp("tiny_pair")
    texts = pairs("exp_main/xsum_gpt-neo-2.7B.raw_data.json")["original"]
    tok = make_tokenizer(texts, 512)
    dirs = []
    for seed in (0, 1):
        d = root / f"lm{seed}"
        make_model(tok, seed=seed, n_layer=1, n_embd=32).save_pretrained(d)
        tok.save_pretrained(d)
        dirs.append(d)
    return dirs[0], dirs[1]


def test_cascade_sends_only_the_band_to_the_lm_and_matches_direct_scores(tmp_path, tiny_pair):
    observer, performer = tiny_pair
    data = pairs("exp_gpt3to4/writing_gpt-3.5-turbo.raw_data.json")
    texts = data["original"][:20] + data["sampled"][:20]
    fast = build_detector("fasttext")
    values = sorted(s.value for s in fast.score(texts))
    band = (values[10], values[29])  # about half of the documents fall inside
    docs = [(f"http://post.example/{i}", t, POST) for i, t in enumerate(texts)]
    docs += [(f"http://pre.example/{i}", t, PRE) for i, t in enumerate(data["original"][20:26])]
    warc = tmp_path / "cascade.warc.gz"
    write_warc(warc, docs)
    out = tmp_path / "out"
    manifest = curate(out, str(warc), detectors="fasttext,binoculars", extra=(
        "--observer", str(observer), "--performer", str(performer), "--device", "cpu", "--dedup", "none",
        "--cascade-band", f"{band[0]},{band[1]}", "--max-tokens", "2048"))
    assert manifest["balanced"]
    rows = read_kind(out, "curated").to_pylist() + read_kind(out, "rejected").to_pylist()
    post = [r for r in rows if r["url"].startswith("http://post.")]
    pre = [r for r in rows if r["url"].startswith("http://pre.")]
    in_band = [r for r in post if band[0] <= r["scores"][0]["value"] <= band[1]]
    assert 0 < len(in_band) < len(post)
    assert manifest["metrics"]["score:binoculars"]["routed"] == len(in_band)
    assert manifest["metrics"]["score:fasttext"]["routed"] == len(post) + len(pre)  # the cheap one scores everyone
    for r in post:
        names = [s["detector"] for s in r["scores"]]
        if r in in_band:
            assert names == ["fasttext", "binoculars"]
        else:
            assert names == ["fasttext"] and r["not_scored_reason"] == "binoculars:outside_cascade_band"
    for r in pre:
        assert [s["detector"] for s in r["scores"]] == ["fasttext"]
        assert r["not_scored_reason"] == "binoculars:pre_cutoff"
    direct = build_detector("binoculars", observer=str(observer), performer=str(performer), device="cpu")
    expected = direct.score([r["text"] for r in in_band])
    for r, e in zip(in_band, expected):
        assert r["scores"][1]["value"] == pytest.approx(e.value, abs=1e-5)
        assert r["scores"][1]["tokens"] == e.tokens and r["scores"][1]["truncated"] == e.truncated
    assert manifest["thresholds"]["binoculars"]["source"] != "calibrated on this run's pre-cutoff documents"


class _ExplodingDetector:
    """Wraps a real detector and raises on any batch holding a marked text (a detector bug on one batch)."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.direction = inner.name, inner.direction
        self.model_ids, self.published_thresholds = inner.model_ids, inner.published_thresholds

    def count_tokens(self, text):
        return self.inner.count_tokens(text)

    def score(self, texts):
        if any("EXPLODE" in t for t in texts):
            raise RuntimeError("detector failed on this batch")
        return self.inner.score(texts)


def test_a_failing_batch_goes_to_errors_and_the_rest_continue(tmp_path, monkeypatch):
    import pipeline.scoring

    real = pipeline.scoring.build_detector
    monkeypatch.setattr(pipeline.scoring, "build_detector", lambda name, **kw: _ExplodingDetector(real(name, **kw)))
    texts = pairs("exp_gpt3to4/xsum_gpt-4.raw_data.json")["original"][:12]
    docs = [(f"http://ok.example/{i}", t, POST) for i, t in enumerate(texts)]
    docs.append(("http://bad.example/", "EXPLODE " + texts[0], POST))
    warc = tmp_path / "x.warc.gz"
    write_warc(warc, docs)
    out = tmp_path / "out"
    manifest = curate(out, str(warc), detectors="fasttext",
                      extra=("--dedup", "none", "--max-batch-size", "1", "--direct_running_mode=in_memory"))
    assert manifest["balanced"]
    errors = read_kind(out, "errors").to_pylist()
    assert [(e["url"], e["stage"], e["reason"]) for e in errors] == [("http://bad.example/", "score:fasttext",
                                                                     "scoring_failed")]
    assert "detector failed on this batch" in errors[0]["message"] and errors[0]["document_id"]
    assert manifest["counts"]["curated"] + manifest["counts"]["rejected"] == len(texts)


def test_unloadable_model_fails_before_reading_input(tmp_path, capsys):
    out = tmp_path / "out"
    code = lowbg(["curate", "--input", str(tmp_path / "*.warc.gz"), "--output", str(out), "--processed-at",
                  PROCESSED_AT, "--detectors", "binoculars", "--observer", str(tmp_path / "missing"),
                  "--performer", str(tmp_path / "missing")])
    assert code == 2 and "cannot load detector" in capsys.readouterr().err
    assert not (out / "manifest.json").exists() and not (out / "curated").exists()


def test_thresholds_file_for_another_detector_is_refused(tmp_path, capsys):
    from detectors.calibration import calibrate, save_thresholds

    doc = calibrate([0.1 * i for i in range(100)], detector="binoculars", models=["a", "b"],
                    direction="lower_is_machine", target_fpr=0.05, n_bootstrap=10)
    path = tmp_path / "thresholds.json"
    save_thresholds(doc, path)
    warc = tmp_path / "one.warc.gz"
    write_warc(warc, [("http://a.example/", pairs("exp_gpt3to4/xsum_gpt-4.raw_data.json")["sampled"][0], POST)])
    code = lowbg(["curate", "--input", str(warc), "--output", str(tmp_path / "out"), "--detectors", "fasttext",
                  "--thresholds", str(path)])
    assert code == 2 and "calibrated for detector 'binoculars'" in capsys.readouterr().err
    assert not (tmp_path / "out" / "curated").exists()


def test_runinference_pools_are_full_size_from_the_first_batch():
    """Each RunInference batch is a pool of SORTING_POOL_PASSES forward passes' worth of text, from the first one
    on: Beam's adaptive sizing would start at the minimum and grow, padding a throughput job's passes."""
    from types import SimpleNamespace

    import apache_beam as beam
    from apache_beam.testing.util import assert_that

    from pipeline.inference import SORTING_POOL_PASSES, DetectorModelHandler, _text_cost

    max_tokens = 512
    kwargs = DetectorModelHandler("binoculars", {}, max_batch_tokens=max_tokens).batch_elements_kwargs()
    texts = [" ".join(f"w{i}x{j}" for j in range(20 + (i * 37) % 300)) for i in range(400)]
    elements = [(str(i), SimpleNamespace(text=t)) for i, t in enumerate(texts)]
    pool, cap = max_tokens * SORTING_POOL_PASSES, max_tokens // 2
    total = sum(_text_cost(e, cap) for e in elements)

    def check(batches):
        weights = sorted(w for batch in batches for w in batch)
        assert sum(weights) == total and all(0 < w <= pool for w in weights)
        assert len(weights) > 2 and all(w > pool - cap for w in weights[1:]), weights  # all full but one

    with beam.Pipeline() as p:
        weights = (p | beam.Create(elements, reshuffle=False) | beam.BatchElements(**kwargs)
                   | beam.Map(lambda batch: sum(kwargs["element_size_fn"](e) for e in batch)))
        assert_that(weights | beam.combiners.ToList(), check)
