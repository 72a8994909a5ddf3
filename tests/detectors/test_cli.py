"""`lowbg detect ...` through detectors.cli.main, on the tiny local models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from detectors.calibration import load_thresholds
from detectors.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "detect"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_score_binoculars_keeps_order_and_reports_unscorable(tiny, tmp_path):
    texts = [tiny.human_texts[0], "", "   ", tiny.machine_texts[0], " ".join(tiny.human_texts[:5]),
             "wh\u200bat a zero\u200bwidth text this is", "x"]
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": t, "id": i, "language": "en"} for i, t in enumerate(texts)])
    out = tmp_path / "scores.jsonl"
    rc = main(["score", "--detector", "binoculars", "--observer", str(tiny.observer_dir), "--performer",
               str(tiny.performer_dir), "--device", "cpu", "--max-tokens", "600", "--batch-lines", "3",
               "--input", str(inp), "--output", str(out)])
    assert rc == 0
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == list(range(len(texts)))
    assert {"score", "detector", "models", "tokens", "truncated", "version"} <= set(rows[0])
    assert rows[0]["detector"] == "binoculars" and rows[0]["version"] == version("lowbackground")
    assert rows[0]["models"] == [str(tiny.observer_dir), str(tiny.performer_dir)]
    assert [(r["score"], r.get("reason")) for r in rows[1:3]] == [(None, "empty"), (None, "empty")]
    assert rows[6]["score"] is None and rows[6]["reason"] == "too_short"
    assert rows[4]["truncated"] and rows[4]["tokens"] == 256
    assert rows[5]["normalized"] and isinstance(rows[5]["score"], float)
    assert rows[3]["score"] < rows[0]["score"]  # sampled text is more machine-like (lower) than human text


def test_score_refuses_non_utf8_line_and_leaves_no_output(tmp_path, capsys):
    inp = tmp_path / "bad.jsonl"
    inp.write_bytes(b'{"text": "fine"}\n{"text": "also fine"}\n{"text": "caf\xe9"}\n')
    out = tmp_path / "out.jsonl"
    assert main(["score", "--detector", "fasttext", "--input", str(inp), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "line 3 is not valid UTF-8" in err
    assert not out.exists() and not (tmp_path / "out.jsonl.tmp").exists()


def test_score_refuses_mismatched_tokenizers_and_pickles(tiny, tmp_path, capsys):
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": "hello there"}])
    args = ["score", "--detector", "binoculars", "--device", "cpu", "--input", str(inp), "--output",
            str(tmp_path / "o.jsonl")]
    assert main(args + ["--observer", str(tiny.observer_dir), "--performer", str(tiny.other_tokenizer_dir)]) == 2
    assert "do not tokenise identically" in capsys.readouterr().err
    assert main(args + ["--observer", str(tiny.pickle_only_dir), "--performer", str(tiny.performer_dir)]) == 2
    assert "only pickle weights" in capsys.readouterr().err
    assert main(["score", "--detector", "likelihood", "--input", str(inp), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "needs option(s) ['model']" in capsys.readouterr().err


def test_score_watermark_writes_p_values(tiny, tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in tiny.human_texts[:3]])
    out = tmp_path / "wm.jsonl"
    assert main(["score", "--detector", "watermark", "--tokenizer", str(tiny.tokenizer_dir), "--gamma", "0.25",
                 "--input", str(inp), "--output", str(out)]) == 0
    rows = read_jsonl(out)
    assert all(0 < r["p_value"] < 1 and r["tokens_tested"] > 0 for r in rows)


def test_evaluate_then_calibrate(tiny, tmp_path, capsys):
    labelled = write_jsonl(tmp_path / "labelled.jsonl",
                           [{"text": t, "label": "human"} for t in tiny.human_texts[:30]]
                           + [{"text": t, "label": "machine"} for t in tiny.machine_texts[:20]])
    outdir = tmp_path / "eval"
    assert main(["evaluate", "--detector", "likelihood", "--model", str(tiny.performer_dir), "--device", "cpu",
                 "--data", str(labelled), str(DATA / "exp_gpt3to4" / "pubmed_gpt-4.raw_data.json"),
                 "--output-dir", str(outdir), "--n-bootstrap", "100"]) == 0
    printed = capsys.readouterr().out
    assert "| labelled.jsonl | 30 | 20 |" in printed and "| overall | 180 | 170 |" in printed
    metrics = json.loads((outdir / "metrics.json").read_text())
    assert metrics["files"][0]["auroc"]["value"] > 0.9  # the model's own samples vs human text
    assert not metrics["overall"]["tpr_at_fpr"]["0.001"]["measurable"]
    assert (outdir / "roc.png").stat().st_size > 10_000

    # Calibrate on the human texts' scores from `detect score`, with a language column.
    human = write_jsonl(tmp_path / "human.jsonl", [{"text": t, "language": "en" if i % 2 else "fr"}
                                                   for i, t in enumerate(tiny.human_texts)])
    scores = tmp_path / "human_scores.jsonl"
    assert main(["score", "--detector", "likelihood", "--model", str(tiny.performer_dir), "--device", "cpu",
                 "--input", str(human), "--output", str(scores)]) == 0
    th_path = tmp_path / "thresholds.json"
    assert main(["calibrate", "--scores", str(scores), "--target-fpr", "0.05", "--n-bootstrap", "200",
                 "--output", str(th_path)]) == 0
    th = load_thresholds(th_path, "likelihood", [str(tiny.performer_dir)])
    assert th.direction == "higher_is_machine" and th.n_human == 100 and set(th.languages) == {"en", "fr"}
    values = [r["score"] for r in read_jsonl(scores)]
    assert sum(v > th.threshold for v in values) <= 5

    # The same calibration straight from texts gives the same threshold.
    th2_path = tmp_path / "thresholds2.json"
    assert main(["calibrate", "--detector", "likelihood", "--model", str(tiny.performer_dir), "--device", "cpu",
                 "--input", str(human), "--target-fpr", "0.05", "--n-bootstrap", "200",
                 "--output", str(th2_path)]) == 0
    assert json.loads(th2_path.read_text())["threshold"] == pytest.approx(th.threshold)


def test_train_fasttext_cli_excludes_evaluation_documents(tmp_path, capsys):
    main_file = DATA / "exp_main" / "xsum_gpt-neo-2.7B.raw_data.json"
    eval_file = DATA / "exp_gpt3to4" / "xsum_gpt-4.raw_data.json"
    model = tmp_path / "m.ftz"
    assert main(["train-fasttext", "--data", str(main_file), "--exclude-docs-of", str(eval_file),
                 "--holdout", "0.2", "--holdout-output", str(tmp_path / "held.jsonl"), "--output", str(model),
                 "--epoch", "5", "--cutoff", "10000"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["texts_read"] == 400 and info["held_out"] > 0 and model.exists()
    from detectors.inputs import load_labelled

    eval_docs = {it.doc for it in load_labelled(eval_file)}
    held = load_labelled(tmp_path / "held.jsonl")
    assert not {it.doc for it in held} & eval_docs
    assert info["n_train"] + info["held_out"] + info["excluded_by_document"] <= 400


def test_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "detectors.cli", "score", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--max-tokens" in proc.stdout and "--observer" in proc.stdout


def test_a_local_run_prints_its_summary_line_and_no_library_noise(tiny, tmp_path):
    """`lowbg detect score` in a real process, stderr a log (not a terminal): transformers' load progress bar and
    advice, torch's notices and Beam's apitools warning stay out; the one line is the command's own."""
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in tiny.human_texts[:3]])
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "detect", "score", "--detector", "likelihood",
                           "--lm-model", str(tiny.performer_dir), "--device", "cpu", "--input", str(inp),
                           "--output", str(tmp_path / "s.jsonl")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(repo)})
    assert done.returncode == 0 and done.stdout == ""
    summary = f"scored 3 texts with likelihood ({tiny.performer_dir}) -> {tmp_path / 's.jsonl'}"
    assert done.stderr.splitlines() == [summary]
