"""The `lowbg` command line: unknown flags named with their closest match before any work, values checked
against their ranges and the language model's labels, and one error shape for every sub-command (one line on
stderr, exit 2 for bad input; exit 1 and a --debug hint for a bug; the traceback with --debug)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline.decide
from pipeline.cli import main as lowbg
from pipeline.options import parse_curate_args
from schemas.run import IncompleteRun
from tests.pipeline.conftest import DATA, curate

REPO = Path(__file__).resolve().parents[2]
ONE_WARC = str(DATA / "cc-main-2020-34.warc.gz")


def exit_code(argv: list[str]) -> int:
    """`lowbg argv` in-process: its return value, or the code of the SystemExit a parser raised."""
    try:
        return lowbg(argv)
    except SystemExit as exc:
        return exc.code


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    curate(out, ONE_WARC, extra=("--dedup", "none"))
    return out


# --- unknown flags -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, suggestion", [
    (["--langauges", "en"], "did you mean --languages?"),
    (["--min-langauge-score=0.5"], "did you mean --min-language-score?"),
    (["--direct-num-workers", "2"], "did you mean --direct_num_workers?"),  # Beam's spelling
    (["--out", "x"], "did you mean --output?"),  # no abbreviations: a prefix could match the wrong flag
    (["--runer=DirectRunner"], "did you mean --runner?"),
])
def test_an_unknown_flag_is_refused_with_the_closest_match_before_any_work(tmp_path, capsys, flag, suggestion):
    out = tmp_path / "out"
    assert exit_code(["curate", "--input", ONE_WARC, "--output", str(out), *flag]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("lowbg curate: unknown flag ") and suggestion in line
    assert not out.exists()


def test_beam_options_of_every_runner_pass_and_bad_values_for_them_do_not(capsys):
    beam = ["--runner=FlinkRunner", "--flink_master=localhost:8081", "--environment_type=EXTERNAL",
            "--environment_config=localhost:50000", "--project", "p", "--temp_location=gs://b/t",
            "--experiments=use_runner_v2", "--no_use_public_ips", "--sdk_container_image=img",
            "--max_num_workers=3", "--save_main_session"]
    args = parse_curate_args(["--input", "x", "--output", "y", *beam])
    assert list(args.beam_args) == beam
    with pytest.raises(SystemExit) as exc:
        parse_curate_args(["--input", "x", "--output", "y", "--autoscaling_algorithm", "SOMETIMES"])
    assert exc.value.code == 2 and "invalid choice: 'SOMETIMES'" in one_line(capsys.readouterr().err)
    with pytest.raises(SystemExit):
        parse_curate_args(["--input", "x", "--output", "y", "stray-word"])
    assert "unexpected argument 'stray-word'" in one_line(capsys.readouterr().err)


def test_a_mistyped_flag_in_a_real_process_is_one_line_and_nothing_else(tmp_path):
    """The real command: one line on stderr (Beam's import-time apitools warning included in "nothing else")."""
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "curate", "--input", ONE_WARC, "--output",
                           str(tmp_path / "out"), "--langauges", "en"], env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert "did you mean --languages?" in one_line(done.stderr)


# --- values: ranges and language labels --------------------------------------------------------------------------

@pytest.mark.parametrize("flag, message", [
    (["--min-language-score", "7"], "must be within [0, 1]: 7"),
    (["--min-language-score", "abc"], "not a number: 'abc'"),
    (["--min-language-score", "nan"], "not a finite number"),
    (["--sample-files", "1.5"], "must be within [0, 1]"),
    (["--max-files", "0"], "must be > 0"),
    (["--min-words", "-1"], "must be >= 0"),
    (["--target-fpr", "-0.1"], "must be within (0, 1), ends excluded"),
    (["--cascade-band", "0.8,0.2"], "LOW > HIGH"),
    (["--languages", ","], "expected a comma-separated list"),
])
def test_values_out_of_range_are_refused(tmp_path, capsys, flag, message):
    assert exit_code(["curate", "--input", ONE_WARC, "--output", str(tmp_path / "o"), *flag]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("lowbg curate: argument ") and message in line


def test_languages_must_be_labels_of_the_language_model(tmp_path, capsys):
    base = ["curate", "--input", ONE_WARC, "--output", str(tmp_path / "o"), "--detectors", "none"]
    for codes, message in (("xx", "'xx' is not a label of the language model bundled lid.176.ftz (176 labels"),
                           ("en,eng", "'eng' is not a label"), ("EN", "did you mean en?"),
                           ("zh-CN", "did you mean zh?")):
        assert exit_code(base + ["--languages", codes]) == 2
        assert message in one_line(capsys.readouterr().err)
    assert not list((tmp_path / "o").glob("*/*.parquet"))


def test_a_custom_language_model_has_its_own_labels(tmp_path, capsys):
    """Any fastText classifier with __label__ labels loads as a language model: the bundled AI-text detector
    (labels human, machine) stands in for a custom one. Its labels, not lid.176's, are what --languages is
    checked against."""
    model = REPO / "detectors" / "data" / "fasttext_detector.ftz"
    base = ["curate", "--input", ONE_WARC, "--output", str(tmp_path / "o"), "--detectors", "none",
            "--language-model", str(model)]
    assert exit_code(base + ["--languages", "en"]) == 2
    assert f"'en' is not a label of the language model {model} (2 labels, e.g. human, machine)" in one_line(
        capsys.readouterr().err)
    assert exit_code(base + ["--languages", "humans"]) == 2
    assert "did you mean human?" in one_line(capsys.readouterr().err)
    assert exit_code(base + ["--languages", "human", "--dedup", "none", "--min-language-score", "0"]) == 0


# --- one error shape for every sub-command -----------------------------------------------------------------------

def bad_inputs(tmp: Path, run: Path) -> list[tuple[list[str], str]]:
    garbage = tmp / "garbage.json"
    garbage.write_text("{not json")
    not_run = tmp / "not-a-run"
    not_run.mkdir(exist_ok=True)
    return [
        (["curate", "--input-list", str(tmp / "missing.paths"), "--output", str(tmp / "o1")], "no such file"),
        (["curate", "--input", ONE_WARC, "--output", str(tmp / "o2"), "--language-model", str(tmp / "nope.bin")],
         "does not exist"),
        (["curate", "--input", ONE_WARC, "--output", str(tmp / "o3"), "--thresholds", str(garbage)],
         "--thresholds"),
        (["curate", "--input", ONE_WARC, "--output", str(run)], "already holds a run"),
        (["curate", "--output", str(tmp / "o4")], "give at least one --input"),
        (["decide", "--input", str(tmp / "missing-run"), "--output", str(tmp / "d1")], "has no manifest.json"),
        (["decide", "--input", str(run), "--output", str(tmp / "d2"), "--thresholds", str(garbage)],
         "not a readable thresholds JSON file"),
        (["decide", "--input", str(run), "--output", str(tmp / "d3"), "--on-machine", "reject"], "was not scored"),
        (["decide", "--input", str(run), "--output", str(tmp / "d4"), "--target-fpr", "2"], "must be within"),
        (["decide", "--inptu", str(run), "--output", str(tmp / "d5")], "did you mean --input?"),
        (["index", "build", "--input", str(tmp / "missing-*.parquet"), "--output", str(tmp / "i1")],
         "no file matches"),
        (["index", "build", "--input", str(garbage), "--output", str(tmp / "i2")], "not a readable Parquet file"),
        (["index", "build", "--input", str(run), "--output", str(tmp / "i3"), "--minhash-num-perm", "0"],
         "must be > 0"),
        (["manifest", str(not_run)], "has no _inputs.jsonl"),
        (["manifest"], "required: output"),
        (["detect", "score", "--detector", "fasttext", "--input", str(tmp / "missing.jsonl"), "--output",
          str(tmp / "s.jsonl")], "no such file"),
        (["detect", "score", "--detector", "fasttext", "--max-tokens", "many"], "not a whole number"),
        (["collapse", "run", "--shards", str(tmp / "missing"), "--output", str(tmp / "c1")], "no Parquet"),
        (["collapse", "run", "--shards", str(run)], "--output"),
        (["detect", "score", "--detector", "fasttext", "--device", "tpu"], "expected auto, cpu, cuda, cuda:N or mps"),
        (["detect", "score", "--detector", "gpt-zero", "--input", ONE_WARC, "--output", str(tmp / "s.jsonl")],
         "unknown detector 'gpt-zero'"),
        (["detect", "score", "--detector", "fasttext", "--max-words", "0"], "must be > 0"),
        (["detect", "evaluate", "--detector", "fasttext", "--data", str(tmp / "missing.jsonl")], "no such file"),
        (["detect", "calibrate", "--output", str(tmp / "t.json")], "give either --scores"),
        (["detect", "calibrate", "--scores", str(garbage), "--target-fpr", "1", "--output", str(tmp / "t.json")],
         "must be within (0, 1)"),
        (["detect", "calibrate", "--scores", str(garbage), "--output", str(tmp / "t.json")], "not valid JSON"),
        (["detect", "train-fasttext", "--data", str(garbage), "--holdout", "2", "--output", str(tmp / "m.ftz")],
         "must be within [0, 1]"),
        (["detect", "--scoring-modle", "x"], "invalid choice"),
        (["collapse", "run", "--shards", str(run), "--output", str(tmp / "c2"), "--device", "gpu"],
         "expected auto, cpu"),
        (["collapse", "run", "--shards", str(run), "--output", str(tmp / "c3"), "--heldout-fraction", "1"],
         "must be within (0, 1)"),
        (["collapse", "web", "--shards", str(run), "--output", str(tmp / "c4"), "--contamination", "0.5",
          "--filters", "none", "--target-fpr", "0"], "must be within (0, 1)"),
        (["collapse", "run", "--shards", str(run), "--output", str(tmp / "c5"), "--filter-fpr", "0.05"],
         "applies to the web regime only"),
        (["collapse", "report", str(tmp / "missing")], "neither a collapse run"),
        (["report", str(tmp / "missing-run")], "has no manifest.json"),
        (["report", str(run), "--min-group", "0"], "must be > 0"),
        (["report", str(run), str(run)], "several runs need --output"),
        (["report", str(run), "--tpr", "1.5"], "expected a TPR in (0, 1]"),
        (["manifest", str(run), "--job-finsihed"], "did you mean --job-finished?"),
        (["index", "build", "--input", str(run), "--output", str(tmp / "i4"), "--minhash-threshold", "1.5"],
         "must be within [0, 1]"),
        (["curat", "--input", ONE_WARC], "did you mean curate?"),
    ]


def test_every_command_answers_bad_input_with_one_line_and_exit_2(finished_run, tmp_path, capsys):
    commands = set()
    for argv, message in bad_inputs(tmp_path, finished_run):
        assert exit_code(argv) == 2, argv
        err = capsys.readouterr().err
        if "--filter-fpr" in argv:  # a former spelling: its deprecation line, then the error
            assert err.startswith("lowbg collapse run: --filter-fpr is deprecated; use --target-fpr\n"), err
            err = err.split("\n", 1)[1]
        line = one_line(err)
        command = argv[0] if argv[0] != "curat" else ""
        assert line.startswith(f"lowbg {command}".rstrip()) and message in line, (argv, line)
        commands.add(command)
    assert commands >= {"curate", "decide", "index", "manifest", "report", "detect", "collapse"}


@pytest.mark.parametrize("argv, module, name", [
    (["decide", "--input", "RUN", "--output", "OUT/d"], "pipeline.decide", "decide"),
    (["report", "RUN", "--output", "OUT/r"], "pipeline.report", "report"),
    (["manifest", "RUN"], "pipeline.curate", "read_run_manifest"),
    (["index", "build", "--input", "RUN", "--output", "OUT/i"], "pipeline.dedup.index_build", "run_index_pipeline"),
    (["detect", "score", "--detector", "fasttext", "--input", __file__, "--output", "OUT/s.jsonl"], "detectors.cli",
     "build_detector"),
    (["collapse", "report", "RUN"], "collapse.cli", "_report"),
    (["curate", "--input", ONE_WARC, "--output", "OUT/c"], "pipeline.curate", "run_curate"),
])
def test_a_bug_in_any_command_is_exit_1_with_one_line_and_a_debug_hint(argv, module, name, finished_run, tmp_path,
                                                                        monkeypatch, capsys):
    import importlib

    def bug(*args, **kwargs):
        return {}["a key that is not there"]

    monkeypatch.setattr(importlib.import_module(module), name, bug)
    argv = [a.replace("RUN", str(finished_run)).replace("OUT", str(tmp_path)) for a in argv]
    assert exit_code(argv) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"lowbg {argv[0]}") and ": failed: KeyError" in line and "--debug" in line, line
    with pytest.raises(KeyError):
        lowbg(["--debug", *argv])


def test_debug_shows_the_traceback_and_a_bug_is_exit_1_with_a_hint(tmp_path, monkeypatch, capsys):
    argv = ["decide", "--input", str(tmp_path / "missing-run"), "--output", str(tmp_path / "d")]
    with pytest.raises(IncompleteRun):
        lowbg(["--debug", *argv])
    with pytest.raises(IncompleteRun):
        lowbg([*argv, "--debug"])  # anywhere on the line
    assert "LOWBG_DEBUG" not in os.environ  # and only for that command
    assert lowbg(argv) == 2
    capsys.readouterr()

    def bug(*args, **kwargs):
        return {}["a key that is not there"]

    monkeypatch.setattr(pipeline.decide, "decide", bug)
    assert lowbg(argv) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith("lowbg decide: failed: KeyError") and "--debug" in line
    with pytest.raises(KeyError):
        lowbg(["--debug", *argv])

    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "--debug", *argv], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert done.returncode == 1 and "Traceback (most recent call last)" in done.stderr
    assert "schemas.run.IncompleteRun" in done.stderr


def test_local_worker_processes_are_told_to_keep_their_start_up_chatter_to_themselves(tmp_path):
    """--direct_running_mode=multi_processing: each worker is a process writing to our stderr. Beam's harness log
    options keep its INFO chatter and option notices out (what a worker logs while `import apache_beam` runs,
    before it reads any option, they cannot reach: at most two lines a worker)."""
    from pipeline.options import QUIET_WORKER_ARGS

    base = ["--input", ONE_WARC, "--output", str(tmp_path / "o")]
    multi = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    assert parse_curate_args(base + multi).beam_args == (*multi, *QUIET_WORKER_ARGS)
    own = [*multi, "--default_sdk_harness_log_level=DEBUG"]
    assert parse_curate_args(base + own).beam_args == tuple(own)  # the user's choice stands
    assert parse_curate_args(base + ["--direct_num_workers=2"]).beam_args == ("--direct_num_workers=2",)

    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "curate", *base, "--detectors", "none", "--dedup",
                           "none", *multi], env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    noise = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(noise) <= 2 * 2, noise
    assert not any("Pipeline_options" in line or "semi_persistent" in line or "Discarding" in line for line in noise)
