"""A run without a language-model detector never imports torch, transformers or Beam's RunInference.

``apache_beam.ml.inference`` imports torch (seconds of start-up and hundreds of MB on every worker), so
:mod:`pipeline.scoring` imports it (through :mod:`pipeline.inference`) only when a language-model detector is in
the cascade. Checked in a fresh interpreter: ``sys.modules`` after importing the CLI modules, and after building
the whole `lowbg curate` graph (and running it, for fastText) with the fastText detector alone, with no detector,
and (the control that shows the check can fail) with a language-model detector.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "apache_beam.ml.inference")

_SCRIPT = """
import datetime as dt, json, sys
HEAVY = {heavy!r}

def heavy():
    return sorted(m for m in sys.modules if m in HEAVY or m.startswith(tuple(h + "." for h in HEAVY)))[:3]

out = {{}}
import pipeline.cli, pipeline.curate, pipeline.decide, pipeline.decision, pipeline.scoring  # noqa: E401
out["imported"] = heavy()
import apache_beam as beam
from pipeline.curate import build
from pipeline.dedup import Dedup
from pipeline.options import parse_curate_args
from pipeline.scoring import detector_specs
settings = parse_curate_args(["--input", "in/*.warc.gz", "--output", {output!r}, *{detectors!r}])
pipeline = beam.Pipeline()
build(pipeline, settings, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 2, detector_specs(settings.scoring),
      Dedup(settings.dedup))
out["built"] = heavy()
if {run!r}:
    from pipeline.cli import main
    assert main(["curate", "--input", {run!r}, "--output", {output!r} + "-run", *{detectors!r},
                 "--direct_running_mode=in_memory"]) == 0
    out["ran"] = heavy()
print(json.dumps(out))
"""


def _modules_after(tmp_path: Path, detectors: list[str], run: str = "") -> dict:
    script = _SCRIPT.format(heavy=HEAVY, output=str(tmp_path / "out"), detectors=detectors, run=run)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_fasttext_run_never_imports_torch(tmp_path):
    warc = str(ROOT / "tests" / "data" / "warc" / "cc-main-2020-34.warc.gz")
    found = _modules_after(tmp_path, ["--detectors", "fasttext"], run=warc)
    assert found == {"imported": [], "built": [], "ran": []}


def test_no_detector_no_torch(tmp_path):
    assert _modules_after(tmp_path, ["--detectors", "none"]) == {"imported": [], "built": []}


def test_a_language_model_in_the_cascade_brings_run_inference(tmp_path):
    model = tmp_path / "lm"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"")  # described, never loaded: building the graph loads nothing
    found = _modules_after(tmp_path, ["--detectors", "fasttext,likelihood", "--lm-model", str(model)])
    assert found["imported"] == []
    assert "apache_beam.ml.inference" in found["built"] or any(m.startswith("torch") for m in found["built"])
