"""The run-completion contract (schemas/run.py) held for real: a run is finished only when its manifest, written
last and atomically, is valid; every command that reads a run refuses anything else unless told otherwise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import pipeline.ingest
from pipeline.cli import main as lowbg
from schemas.run import IncompleteRun, check_manifest, read_finished_manifest, run_root_of
from tests.pipeline import fake_fs  # noqa: F401 - registers the fakefs:// filesystem with Beam
from tests.pipeline.conftest import DATA, PROCESSED_AT, curate, read_kind

REPO = Path(__file__).resolve().parents[2]
ONE_WARC = str(DATA / "cc-main-2020-34.warc.gz")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def tmp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".tmp-*")]


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory) -> Path:
    """A finished, scored run (the bundled fastText detector) that the tests below only read."""
    out = tmp_path_factory.mktemp("scored") / "run"
    curate(out, ONE_WARC, extra=("--dedup", "none"), detectors="fasttext")
    return out


# --- the contract itself ---------------------------------------------------------------------------------------

def test_manifest_checks_catch_truncation_imbalance_and_changed_folders(scored_run, tmp_path):
    data = (scored_run / "manifest.json").read_bytes()
    assert check_manifest(data, "m")["balanced"]
    for cut in (1, len(data) // 2, len(data) - 2):
        with pytest.raises(IncompleteRun, match="not valid JSON"):
            check_manifest(data[:cut], "m")
    manifest = json.loads(data)
    manifest["counts"]["curated"] += 1  # says balanced, but the numbers do not add up
    with pytest.raises(IncompleteRun, match="did not balance"):
        check_manifest(json.dumps(manifest).encode(), "m")
    # The folder must hold exactly the shards the manifest names.
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(scored_run), str(copy)], check=True)
    assert read_finished_manifest(copy)["balanced"]
    extra = copy / "curated" / "part-09999-0000.parquet"
    extra.write_bytes((copy / "curated" / "part-00000-0000.parquet").read_bytes())
    with pytest.raises(IncompleteRun, match="not named in its manifest"):
        read_finished_manifest(copy)
    extra.unlink()
    (copy / "curated" / "part-00000-0000.parquet").unlink()
    with pytest.raises(IncompleteRun, match="are missing"):
        read_finished_manifest(copy)


def test_run_root_is_found_from_any_path_into_a_run_and_only_there(scored_run, tmp_path):
    for path in (scored_run, scored_run / "curated", scored_run / "curated" / "part-00000-0000.parquet",
                 scored_run / "curated" / "*.parquet", scored_run / "*" / "part-*.parquet"):
        assert run_root_of(path) == scored_run, path
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "a.parquet").write_bytes(b"")
    assert run_root_of(loose / "a.parquet") is None and run_root_of(loose / "*.parquet") is None


def test_a_failed_manifest_write_on_local_disk_leaves_the_old_manifest_or_none(scored_run, tmp_path):
    """A real write failure on local disk (the file-size limit, EFBIG, stands in for a full disk: it fails the
    same write(2) calls, as root too): never a truncated manifest.json, no temporary file left behind."""
    out = tmp_path / "run"
    subprocess.run(["cp", "-r", str(scored_run), str(out)], check=True)
    before = (out / "manifest.json").read_bytes()
    child = textwrap.dedent("""
        import json, resource, signal, sys
        from pipeline.manifest import write_manifest
        out, source = sys.argv[1], sys.argv[2]
        manifest = json.load(open(source))
        manifest["padding"] = "x" * 200_000  # far more than the limit below lets through
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            write_manifest(out, manifest)
        except OSError as exc:
            print("failed:", exc.strerror)
            sys.exit(3)
        sys.exit(0)
    """)
    for remove_first in (False, True):
        if remove_first:
            (out / "manifest.json").unlink()
        done = subprocess.run([sys.executable, "-c", child, str(out), str(scored_run / "manifest.json")],
                              env=_env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 3 and "File too large" in done.stdout, done.stdout + done.stderr
        assert tmp_files(out) == []
        if remove_first:
            assert not (out / "manifest.json").exists()
        else:
            assert (out / "manifest.json").read_bytes() == before


def test_a_full_disk_while_writing_the_manifest_leaves_an_unfinished_run(fakefs, tmp_path, capsys):
    """The whole `lowbg curate` on a Beam filesystem (an object store in a test folder) whose disk fills up in
    the middle of manifest.json: the run fails (exit 1), there is no manifest, readers refuse the folder; once
    there is room, `lowbg manifest` writes it and the readers accept the run, through the same filesystem."""
    fakefs.full_disk = (lambda path: path.endswith("manifest.json"), 100)
    out = "fakefs://runs/a"
    assert lowbg(["curate", "--input", ONE_WARC, "--output", out, "--processed-at", PROCESSED_AT,
                  "--dedup", "none"]) == 1
    assert "No space left on device" in one_line(capsys.readouterr().err)
    local = fakefs.root / "runs" / "a"
    assert not (local / "manifest.json").exists() and tmp_files(local) == []
    assert list((local / "curated").glob("part-*.parquet"))  # the job itself ran: only the manifest is missing

    assert lowbg(["decide", "--input", out, "--output", "fakefs://runs/decided"]) == 2
    assert "has no manifest.json" in one_line(capsys.readouterr().err)
    assert lowbg(["index", "build", "--input", out, "--output", str(tmp_path / "index")]) == 2
    assert "has no manifest.json" in one_line(capsys.readouterr().err)

    fakefs.full_disk = None
    assert lowbg(["manifest", out]) == 0
    manifest = json.loads((local / "manifest.json").read_text())
    assert manifest["balanced"] and manifest["counts"]["curated"] == read_kind(local, "curated").num_rows
    assert lowbg(["decide", "--input", out, "--output", "fakefs://runs/decided"]) == 0
    assert read_finished_manifest(fakefs.root / "runs" / "decided")["counts"]["records_in"] == (
        manifest["counts"]["curated"] + manifest["counts"]["rejected"])
    assert lowbg(["index", "build", "--input", out, "--output", "fakefs://index"]) == 0
    assert (fakefs.root / "index" / "index.json").exists()  # the manifest of the index, written last
    assert list((fakefs.root / "index" / "g00001" / "bands").glob("part-*.parquet"))


# --- a run killed for real --------------------------------------------------------------------------------------

def test_a_sigkilled_curate_leaves_a_folder_that_readers_refuse(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "pipeline.cli", "curate", "--input", str(DATA / "*.warc.gz"), "--output", str(out),
            "--processed-at", PROCESSED_AT, "--dedup", "none", "--shard-size", "1", "--num-buckets", "8"]
    proc = subprocess.Popen(argv, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        # Kill it as soon as it is visibly writing: calibrated, and the first curated shard in place.
        while not (list(out.glob("curated/part-*.parquet")) and (out / "_thresholds.json").exists()):
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "manifest.json").exists()
    # Every shard under its final name is complete (read and validated here); half-written ones are .tmp- files.
    present = read_kind(out, "curated").num_rows + read_kind(out, "rejected").num_rows

    assert lowbg(["index", "build", "--input", str(out), "--output", str(tmp_path / "index")]) == 2
    assert "has no manifest.json" in one_line(capsys.readouterr().err)
    assert lowbg(["index", "build", "--input", str(out / "curated" / "*.parquet"),
                  "--output", str(tmp_path / "index")]) == 2
    capsys.readouterr()
    assert lowbg(["decide", "--input", str(out), "--output", str(tmp_path / "decided")]) == 2
    assert "has no manifest.json" in one_line(capsys.readouterr().err)
    assert lowbg(["manifest", str(out)]) != 0 and not (out / "manifest.json").exists()
    capsys.readouterr()

    # Told that the run finished elsewhere, both read what is there.
    assert lowbg(["index", "build", "--input", str(out), "--output", str(tmp_path / "index"),
                  "--allow-incomplete"]) == 0
    assert lowbg(["decide", "--input", str(out), "--output", str(tmp_path / "decided"), "--allow-incomplete"]) == 0
    decided = read_finished_manifest(tmp_path / "decided")
    assert decided["source_complete"] is False and decided["counts"]["records_in"] == present


# --- decide's output, and outputs that cannot be written ---------------------------------------------------------

def test_decide_refuses_an_output_that_is_in_over_or_is_its_input(scored_run, tmp_path, capsys):
    before = (scored_run / "manifest.json").read_bytes()
    link = tmp_path / "link"
    link.symlink_to(scored_run)
    for output, message in ((scored_run, "is the --input folder"), (f"{scored_run}/", "is the --input folder"),
                            (link, "is the --input folder"), (scored_run / "sub", "is inside the --input run"),
                            (scored_run.parent, "contains the --input run")):
        assert lowbg(["decide", "--input", str(scored_run), "--output", str(output), "--target-fpr", "0.2"]) == 2
        assert message in one_line(capsys.readouterr().err)
    assert (scored_run / "manifest.json").read_bytes() == before and not (scored_run / "sub").exists()
    # A second decide into a folder that holds a run: refused unless --overwrite.
    argv = ["decide", "--input", str(scored_run), "--output", str(tmp_path / "d"), "--target-fpr", "0.2"]
    assert lowbg(argv) == 0
    capsys.readouterr()
    assert lowbg(argv) == 2 and "--overwrite" in one_line(capsys.readouterr().err)
    assert lowbg(argv + ["--overwrite"]) == 0


def _no_reading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("input was read before the output folder was checked")

    monkeypatch.setattr(pipeline.ingest, "open_read", refuse)
    monkeypatch.setattr(pipeline.ingest, "read_path_list", refuse)
    monkeypatch.setattr("pipeline.curate.read_path_list", refuse)
    monkeypatch.setattr("pipeline.decide._rows", refuse)
    monkeypatch.setattr("pipeline.decide.read_run_manifest", refuse)
    monkeypatch.setattr("pipeline.dedup.index_build.describe_input", refuse)


def test_an_unwritable_output_is_refused_before_any_input_is_read(scored_run, tmp_path, fakefs, monkeypatch,
                                                                   capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("a regular file: nothing can be created under it, as root neither")
    _no_reading(monkeypatch)
    paths = tmp_path / "warc.paths"
    paths.write_text(ONE_WARC + "\n")
    commands = [
        ["curate", "--input", ONE_WARC, "--output", str(blocker / "out")],
        ["curate", "--input-list", str(paths), "--max-files", "1", "--output", str(blocker / "out")],
        ["decide", "--input", str(scored_run), "--output", str(blocker / "out")],
        ["index", "build", "--input", str(scored_run), "--output", str(blocker / "out")],
    ]
    for argv in commands:
        assert lowbg(argv) == 2, argv
        assert f"cannot write to the output folder {blocker / 'out'}" in one_line(capsys.readouterr().err)
    # Through a Beam filesystem too: an object store whose every write fails.
    fakefs.full_disk = (lambda path: True, 0)
    assert lowbg(["curate", "--input", ONE_WARC, "--output", "fakefs://out"]) == 2
    assert "cannot write to the output folder fakefs://out: No space left on device" in one_line(
        capsys.readouterr().err)
