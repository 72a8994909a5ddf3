"""pipeline/layout.py, on a local folder and on ``fakefs://`` (an object store without directories, like gs://):
joining refuses to leave the run folder, a file is complete under its final name or absent, listing is sorted,
an output folder holding a run is refused unless replaced, and a run is never written into the one it reads."""

from __future__ import annotations

import pytest

from common.cli import UsageError
from pipeline.layout import (
    OutputNotEmpty,
    OutputNotWritable,
    check_separate,
    check_writable,
    join,
    list_files,
    match_files,
    prepare_output,
    read_bytes,
    temporaries,
    write_atomically,
    write_bytes,
)
from schemas.run import MANIFEST_FILE, TMP_PREFIX


@pytest.fixture(params=["local", "fakefs"])
def folder(request, tmp_path) -> str:
    if request.param == "local":
        (tmp_path / "run").mkdir()
        return str(tmp_path / "run")
    request.getfixturevalue("fakefs")
    return "fakefs://bucket/run"


@pytest.mark.parametrize("name", ["../outside.parquet", "curated/../../x", "/etc/passwd", ".."])
def test_join_refuses_a_name_that_leaves_the_run_folder(name, fakefs):
    with pytest.raises(ValueError, match="outside the output folder"):
        join("fakefs://bucket/run", name)


def test_join_nests_names_under_the_run_folder(fakefs, tmp_path):
    expected = "fakefs://bucket/run/curated/part-00000-0000.parquet"
    assert join("fakefs://bucket/run", "curated/part-00000-0000.parquet") == expected
    assert join(str(tmp_path), "stats/./stats.json") == str(tmp_path / "stats" / "stats.json")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(folder):
    path = join(folder, "stats/stats.json")
    write_bytes(path, b"first")

    def half_then_fail(fh):
        fh.write(b"half of the new")
        raise OSError("the network went away")

    with pytest.raises(OSError, match="network"):
        write_atomically(path, half_then_fail)
    assert read_bytes(path) == b"first"
    assert temporaries(folder) == []
    write_bytes(path, b"second")
    assert read_bytes(path) == b"second" and temporaries(folder) == []


def test_a_full_disk_leaves_no_file_under_its_final_name(fakefs):
    fakefs.full_disk = (lambda path: True, 10)
    path = "fakefs://bucket/run/_thresholds.json"
    with pytest.raises(OSError):
        write_bytes(path, b"x" * 100)
    assert list_files("fakefs://bucket/run/*") == []
    with pytest.raises(OutputNotWritable, match="No space left on device"):
        check_writable("fakefs://bucket/run")


def test_listing_is_sorted_with_sizes_and_a_pattern_that_matches_nothing_is_an_error(folder):
    for name, size in (("b.warc.gz", 3), ("a.warc.gz", 5), ("c.txt", 1)):
        write_bytes(join(folder, name), b"x" * size)
    found = list_files(join(folder, "*.warc.gz"))
    assert [(f.path.rsplit("/", 1)[1], f.size) for f in found] == [("a.warc.gz", 5), ("b.warc.gz", 3)]
    assert match_files([join(folder, "c.*"), join(folder, "a.*")]) == [join(folder, "c.txt"), join(folder, "a.warc.gz")]
    with pytest.raises(FileNotFoundError, match="no file matches"):
        match_files([join(folder, "*.parquet")])


def test_an_output_holding_a_run_is_refused_unless_replaced_and_other_files_stay(folder):
    prepare_output(folder, overwrite=False)  # empty: fine
    for name in (MANIFEST_FILE, "curated/part-00000-0000.parquet", f"{TMP_PREFIX}abc-x.parquet", "notes.txt"):
        write_bytes(join(folder, name), b"x")
    with pytest.raises(OutputNotEmpty, match="already holds a run \\(3 files\\)"):
        prepare_output(folder, overwrite=False)
    prepare_output(folder, overwrite=True)
    assert [f.path for f in list_files(join(folder, "*"))] == [join(folder, "notes.txt")]


@pytest.mark.parametrize("source, output, message", [
    ("/data/run", "/data/run/", "is the --input folder"),
    ("/data/run", "/data/run/decided", "is inside the --input run"),
    ("/data/run", "/data", "contains the --input run"),
    ("gs://b/runs/a", "gs://b/runs//a/", "is the --input folder"),
    ("gs://b/runs/a", "gs://b/runs/a/x/..", "is the --input folder"),
])
def test_a_run_is_never_written_into_the_run_it_reads(source, output, message):
    with pytest.raises(UsageError, match=message):
        check_separate(source, output)


@pytest.mark.parametrize("source, output", [("/data/run", "/data/run2"), ("gs://b/runs/a", "gs://b/runs/ab"),
                                            ("gs://b/runs/a", "s3://b/runs/a/x")])
def test_sibling_folders_are_separate(source, output):
    check_separate(source, output)
