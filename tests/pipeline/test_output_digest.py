"""What `lowbg curate` writes, byte for byte, against digests stored before issue 11's refactor.

The refactor (typed settings, one stage contract, one run layout, scoring apart from deciding) must not change a
single output byte. Three runs, each compared with its stored digest in ``tests/data/digests/<case>.json``:

* ``demo``: ``scripts/demo.sh``'s curate run over the bundled fixtures (``tests/data/warc/*.warc.gz``: fastText
  scores, thresholds calibrated on the run's own pre-cutoff pages at a 5% FPR, near dedup);

* ``malformed``: every damaged fixture of ``tests/data/warc/malformed`` (error rows of every kind, not-an-archive
  inputs, duplicate inputs, the machine-text decision under the fallback threshold);
* ``bench``: 300 records of ``bench/ingest.py``'s seeded corpus (generated at test time, never committed) with
  the FineWeb quality preset, ``--min-words``, exact + near dedup, several buckets and
  chunks per bucket, and every page post-cutoff (``--cutoff`` before the capture date) so that the
  machine-text decision runs on every kept page with a thresholds file (``--thresholds``) and
  ``--on-uncertain reject``.

Every run passes ``--on-machine reject``: the code the digests were recorded with rejected machine text whenever
a detector ran, which since issue 11 is no longer the default with the fastText detector alone.

What is compared (the digest):

* every shard: the sha256 of the file's bytes (pyarrow writes deterministically: same rows, same bytes);
* ``_inputs.jsonl``, ``_thresholds.json`` and ``stats/words.json.gz``: the sha256 of the bytes;
  ``stats/stats.json``: the sha256 of its JSON (sorted keys) without ``written_at`` and ``pipeline_version``;
* the manifest, field by field, except what describes the software or the moment rather than the run
  (``pipeline_version``, ``versions``): ``schema_version``, ``counts``, ``balanced``, ``inputs``, ``shards``,
  ``thresholds``, ``processed_at``, ``num_buckets``; of Beam's counters (``metrics``), those that make the
  ledger (``rejected_<reason>``, ``error_<reason>``, ``skipped_<type>``, totals by name whether the manifest
  reports them flat or by stage: the other counters are diagnostics whose names the refactor standardises); and
  the options by what they MEAN (:func:`options_meaning`).

Options by meaning: a manifest records the options a run used, and the refactor changes how (typed settings per
stage instead of one flat namespace). :func:`options_meaning` reads either form and returns one flat mapping:
every setting under its ``lowbg curate`` flag name (``--min-language-score`` -> ``min_language_score``), with the
value as JSON; the output folder and ``--overwrite`` (where a run was written, not what it did) are left out.
A setting that a later version adds is only accepted here at the value that does what the old code did (the
test asserts it), so a new default can never slip into these runs unnoticed.

Runs and paths are made reproducible: ``--processed-at`` fixed, inputs given relative to the working folder
(the shards store the input path), the bench corpus written with deterministic record ids.

Never regenerate the digests to make this test pass: when an output changes, find out why. (The generator,
``python tests/pipeline/test_output_digest.py --write``, exists to record the digests before a change.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIGESTS = ROOT / "tests" / "data" / "digests"
PROCESSED_AT = "2026-01-01T00:00:00Z"
BENCH_RECORDS, BENCH_FILES = 300, 3
# (name of the manifest field, whether it is compared): everything but the software's versions
MANIFEST_FIELDS = ("schema_version", "counts", "balanced", "inputs", "shards", "thresholds", "processed_at",
                   "num_buckets")
LEDGER_METRICS = ("rejected_", "error_", "skipped_")
WHERE_NOT_WHAT = frozenset({"output", "overwrite"})


def _demo(work: Path) -> tuple[Path, list[str]]:
    # scripts/demo.sh's options, with a fixed processing time
    return ROOT, ["--input", "tests/data/warc/*.warc.gz", "--detectors", "fasttext", "--target-fpr", "0.05",
                  "--min-calibration-docs", "50", "--on-machine", "reject", "--direct_running_mode=in_memory"]


def _malformed(work: Path) -> tuple[Path, list[str]]:
    return ROOT, ["--input", "tests/data/warc/malformed/*", "--input", "tests/data/warc/malformed/jhove/*",
                  "--detectors", "fasttext", "--on-machine", "reject", "--direct_running_mode=in_memory"]


def _bench(work: Path) -> tuple[Path, list[str]]:
    sys.path.insert(0, str(ROOT))
    from bench.ingest import build_corpus
    from detectors.calibration import calibrate, save_thresholds
    from detectors.registry import build_detector

    corpus = work / "corpus"
    corpus.mkdir(parents=True)
    build_corpus(corpus, BENCH_RECORDS, BENCH_FILES, seed=0)
    # A thresholds file as `lowbg detect calibrate` writes it (its creation time is not read by the pipeline)
    detector = build_detector("fasttext")
    human = [i / 400 for i in range(400)]
    save_thresholds(calibrate(human, detector="fasttext", models=detector.model_ids,
                              direction=detector.direction, target_fpr=0.05, n_bootstrap=50),
                    work / "thresholds.json")
    return work, ["--input", "corpus/*.warc.gz", "--cutoff", "2019-01-01T00:00:00Z",
                  "--min-words", "50", "--quality-preset", "fineweb", "--dedup", "near", "--detectors", "fasttext",
                  "--thresholds", "thresholds.json", "--on-uncertain", "reject", "--on-machine", "reject",
                  "--num-buckets", "3",
                  "--shard-size", "40", "--direct_running_mode=in_memory"]


CASES: dict[str, Callable[[Path], tuple[Path, list[str]]]] = {
    "demo": _demo, "malformed": _malformed, "bench": _bench}


# Typed settings (issue 11) record the options by stage: (stage, field) -> the flag name they were recorded under.
_FLAG_OF = {
    ("ingest", "inputs"): "input", ("ingest", "input_lists"): "input_list", ("ingest", "input_base"): "input_base",
    ("ingest", "max_files"): "max_files", ("ingest", "sample_files"): "sample_files",
    ("ingest", "max_payload_bytes"): "max_payload_bytes", ("provenance", "cutoff"): "cutoff",
    ("language", "languages"): "languages", ("language", "min_score"): "min_language_score",
    ("language", "model"): "language_model", ("quality", "preset"): "quality_preset",
    ("quality", "signals"): "quality_signals", ("quality", "min_words"): "min_words", ("dedup", "mode"): "dedup",
    ("dedup", "reference_index"): "reference_index", ("scoring", "lm_model"): "lm",
    ("sinks", "output"): "output", ("sinks", "shard_size"): "shard_size", ("sinks", "num_buckets"): "num_buckets",
    ("sinks", "overwrite"): "overwrite",
}
# Settings added after the digests were recorded, with the value that does what the code did then.
_ADDED = {("decision", "on_machine"): lambda flat: "reject" if flat["detectors"] else "keep",
          ("ingest", "input_slice"): lambda flat: None, ("dedup", "on_reference_match"): lambda flat: "keep"}


def _flat(options: dict) -> dict:
    """Typed settings (one object per stage) -> the flat flag-name form of the manifests the digests hold."""
    flat, added = {}, {}
    for stage, value in options.items():
        if not isinstance(value, dict):
            flat[stage] = value  # processed_at, beam_args
            continue
        for name, item in value.items():
            if stage == "dedup" and name == "minhash":
                flat.update({f"minhash_{k}": v for k, v in item.items()})
            elif stage == "language" and name == "enabled":
                flat["skip_language_id"] = not item
            elif (stage, name) in _ADDED:
                added[(stage, name)] = item
            else:
                flat[_FLAG_OF.get((stage, name), name)] = item
    for key, value in added.items():
        assert value == _ADDED[key](flat), f"{key} = {value!r} does not do what the recorded runs did"
    return flat


def options_meaning(manifest: dict) -> dict:
    """The options of a run by what they mean (module docstring): one flat mapping, flag names as keys."""
    options = manifest["options"]
    if any(isinstance(v, dict) for v in options.values()):
        options = _flat(options)
    flat = {k: v for k, v in options.items() if k not in WHERE_NOT_WHAT}
    return json.loads(json.dumps(flat, sort_keys=True))


def _flat_metrics(metrics: dict) -> dict:
    """Counters by name. Since issue 11 the manifest reports them by stage ({stage: {name: n}}); a reason code is
    owned by one stage (two, for record_parse_failed: the reader's and the extractor's), so the totals by name
    are what the flat form held."""
    flat: dict[str, int] = {}
    for key, value in metrics.items():
        for name, n in (value.items() if isinstance(value, dict) else [(key, value)]):
            flat[name] = flat.get(name, 0) + n
    return flat


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(output: Path) -> dict:
    manifest = json.loads((output / "manifest.json").read_text())
    shards = {p.relative_to(output).as_posix(): _sha256(p.read_bytes())
              for kind in ("curated", "rejected", "errors") for p in sorted((output / kind).glob("*.parquet"))}
    files = {}
    for name in ("_inputs.jsonl", "_thresholds.json", "stats/words.json.gz"):
        if (output / name).exists():
            files[name] = _sha256((output / name).read_bytes())
    stats = json.loads((output / "stats" / "stats.json").read_text())
    for volatile in ("written_at", "pipeline_version"):
        stats.pop(volatile, None)
    files["stats/stats.json"] = _sha256(json.dumps(stats, sort_keys=True).encode())
    fields = {name: manifest.get(name) for name in MANIFEST_FIELDS}
    fields["metrics"] = {k: v for k, v in sorted(_flat_metrics(manifest.get("metrics", {})).items())
                         if k.startswith(LEDGER_METRICS)}
    fields["options"] = options_meaning(manifest)
    return json.loads(json.dumps({"shards": shards, "files": files, "manifest": fields}, sort_keys=True))


@contextlib.contextmanager
def _cwd(path: Path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_case(name: str, work: Path) -> dict:
    from pipeline.cli import main as lowbg

    cwd, argv = CASES[name](work)
    output = work / "out"
    with _cwd(cwd):
        code = lowbg(["curate", "--output", str(output), "--processed-at", PROCESSED_AT, *argv])
    assert code == 0, f"lowbg curate exited {code}"
    return digest(output)


def _differences(want: dict, got: dict, where: str = "") -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        out = []
        for key in sorted(set(want) | set(got)):
            if key not in got:
                out.append(f"{where}/{key}: missing (stored {json.dumps(want[key])[:200]})")
            elif key not in want:
                out.append(f"{where}/{key}: new (now {json.dumps(got[key])[:200]})")
            else:
                out += _differences(want[key], got[key], f"{where}/{key}")
        return out
    return [] if want == got else [f"{where}: stored {json.dumps(want)[:300]}, now {json.dumps(got)[:300]}"]


@pytest.mark.parametrize("name", list(CASES))
def test_outputs_match_the_stored_digest(name, tmp_path):
    stored = json.loads((DIGESTS / f"{name}.json").read_text())
    got = run_case(name, tmp_path)
    differences = _differences(stored, got)
    assert not differences, f"{name}: outputs differ from the stored digest:\n" + "\n".join(differences[:40])


def main(argv: list[str]) -> int:
    """``--write``: record the digests of the code as it is now (before a change, never to make the test pass)."""
    import tempfile

    if argv != ["--write"]:
        print(__doc__)
        return 2
    DIGESTS.mkdir(parents=True, exist_ok=True)
    for name in CASES:
        with tempfile.TemporaryDirectory() as work:
            got = run_case(name, Path(work))
        (DIGESTS / f"{name}.json").write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        print(f"{name}: {len(got['shards'])} shards, counts {got['manifest']['counts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
