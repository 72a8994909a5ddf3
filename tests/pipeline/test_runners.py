import dataclasses
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main as lowbg
from tests.pipeline.conftest import DATA, curate, read_kind


def _shard_tables(out):
    return {p.relative_to(out).as_posix(): pq.read_table(p) for p in sorted(out.rglob("*.parquet"))}


def test_in_memory_and_multi_processing_write_identical_shards(tmp_path):
    inputs = (str(DATA / "cc-main-2020-34.warc.gz"), str(DATA / "clueweb09-invalid-date.warc.gz"),
              str(DATA / "malformed" / "clipped.warc.gz"), str(DATA / "cc-main-2024-22.warc.wet.gz"))
    a, b = tmp_path / "in_memory", tmp_path / "multi"
    ma = curate(a, *inputs, extra=("--direct_running_mode=in_memory",))
    mb = curate(b, *inputs, extra=("--direct_running_mode=multi_processing", "--direct_num_workers=2"))
    assert ma["counts"] == mb["counts"] and ma["balanced"]
    ta, tb = _shard_tables(a), _shard_tables(b)
    assert ta.keys() == tb.keys() and {"curated", "errors"} <= {k.split("/")[0] for k in ta}
    for name in ta:
        assert ta[name].equals(tb[name]), name


def test_wet_conversion_records_are_documents(tmp_path):
    out = tmp_path / "out"
    manifest = curate(out, str(DATA / "cc-main-2024-22.warc.wet.gz"))
    assert manifest["counts"]["skipped"] == {"warcinfo": 1} and manifest["balanced"]
    (doc,) = read_kind(out, "curated").to_pylist() + read_kind(out, "rejected").to_pylist()
    assert doc["warc_record_type"] == "conversion" and doc["content_type"] == "text/plain"
    assert doc["url"] == "https://an.wikipedia.org/wiki/Escopete" and "Escopete" in doc["text"]
    # The capture time of a WET record is the original fetch, not the extraction run of 2024-05-31.
    assert doc["warc_date_raw"] == "2024-05-18T01:58:10Z" and doc["provenance"] == "post_cutoff"


@pytest.mark.parametrize("argv, message", [
    (["--runner=DataflowRunner", "--direct_num_workers=2"], "only apply to the DirectRunner"),
    (["--gpu-resource-hint", "type:nvidia-l4;count:1",
      "--dataflow_service_options=worker_accelerator=type:nvidia-l4;count:1"], "not both"),
])
def test_impossible_option_sets_are_refused_at_start(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        lowbg(["curate", "--input", str(DATA / "*.warc.gz"), "--output", str(tmp_path / "o")] + argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_an_existing_run_is_not_overwritten_silently(tmp_path, capsys):
    out = tmp_path / "out"
    curate(out, str(DATA / "cc-main-2024-22.warc.gz"))
    argv = ["curate", "--input", str(DATA / "cc-main-2024-22.warc.gz"), "--output", str(out), "--detectors", "none"]
    assert lowbg(argv) == 2 and "--overwrite" in capsys.readouterr().err
    assert lowbg(argv + ["--overwrite"]) == 0


def test_manifest_can_be_written_after_a_run_that_finished_elsewhere(tmp_path):
    out = tmp_path / "out"
    first = curate(out, str(DATA / "cc-main-2020-34.warc.gz"), str(DATA / "malformed" / "clipped.warc.gz"))
    (out / "manifest.json").unlink()
    assert lowbg(["manifest", str(out)]) == 0
    import json
    again = json.loads((out / "manifest.json").read_text())
    assert again["counts"] == first["counts"] and again["balanced"]
    assert [i["sha256"] for i in again["inputs"]] == [i["sha256"] for i in first["inputs"]]
    (out / "curated" / "part-00000-0000.parquet").unlink()  # a lost shard must not pass
    assert lowbg(["manifest", str(out)]) == 2  # the manifest names a shard that is gone: not a finished run
    (out / "manifest.json").unlink()
    assert lowbg(["manifest", str(out)]) == 1  # rebuilt from what is on disk, it does not balance: no manifest
    assert not (out / "manifest.json").exists()


def _run_files(out):
    """Every file of a run but the manifest, by name: shards, inputs record, statistics (their bytes)."""
    files = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            data = p.read_bytes()
            if p.name == "stats.json":  # the moment it was written is not part of the run
                import json
                doc = json.loads(data)
                doc.pop("written_at")
                data = json.dumps(doc, sort_keys=True).encode()
            files[p.relative_to(out).as_posix()] = data
    return files


@dataclasses.dataclass
class Staging:
    """Each local run's staging area, seen just before the launcher deletes it."""

    folders: list[set[str]] = dataclasses.field(default_factory=list)  # its folders (0, 1, ..., tail)
    rows: list[set[str]] = dataclasses.field(default_factory=list)  # its files of rows (runs, shards), relative


@pytest.fixture
def staging(monkeypatch):
    import pipeline.local_run

    seen = Staging()
    remove = pipeline.local_run._remove_tree

    def spy(path):
        seen.folders.append({p.name for p in Path(path).iterdir() if p.is_dir()})
        seen.rows.append({p.relative_to(path).as_posix() for p in Path(path).rglob("*")
                          if p.suffix in (".parquet", ".arrows")})
        remove(path)

    monkeypatch.setattr(pipeline.local_run, "_remove_tree", spy)
    return seen


def test_local_workers_write_what_one_worker_writes_byte_for_byte(tmp_path, staging):
    """`--local-workers 2`: workers over disjoint files, then one merge: the same shards, inputs record and
    statistics as one worker, byte for byte, and the same ledger; copies of one file (the same path twice, the
    same bytes under another name) are still recognised across what would be two workers' shares. Nothing
    crosses files (no dedup, no detector): one phase, no second pipeline."""
    copy = tmp_path / "copy-of-2020-34.warc.gz"
    copy.write_bytes((DATA / "cc-main-2020-34.warc.gz").read_bytes())
    inputs = (str(DATA / "cc-main-2020-34.warc.gz"), str(DATA / "clueweb09-invalid-date.warc.gz"),
              str(DATA / "malformed" / "clipped.warc.gz"), str(DATA / "cc-main-2024-22.warc.wet.gz"),
              str(DATA / "ia-2008-heritrix.warc.gz"), str(DATA / "cc-main-2020-34.warc.gz"), str(copy),
              str(tmp_path / "no-such-*.warc.gz"))
    extra = ("--dedup", "none", "--shard-size", "7", "--num-buckets", "3")
    a, b = tmp_path / "one", tmp_path / "local"
    ma = curate(a, *inputs, extra=extra)
    mb = curate(b, *inputs, extra=(*extra, "--local-workers", "2"))
    assert ma["counts"] == mb["counts"] and mb["balanced"] and ma["counts"]["errors"] > 0
    assert ma["shards"] == mb["shards"] and ma["inputs"] == mb["inputs"]
    assert any(i.get("duplicate_of") for i in mb["inputs"]) and any(i["listed"] == 2 for i in mb["inputs"])
    fa, fb = _run_files(a), _run_files(b)
    assert fa.keys() == fb.keys() and sum(k.startswith("curated/") for k in fa) > 3
    assert [k for k in fa if fa[k] != fb[k]] == []
    assert not list(b.glob(".tmp-*"))
    assert staging.folders == [{"0", "1"}]  # the workers' runs alone: no tail
    # the workers stop at their sorted runs (no Parquet of their own) and the merge deletes each run it merged
    assert staging.rows == [set()]


def _cross_file_inputs(tmp_path) -> tuple[Path, Path, dict]:
    """Two files whose pages are copies of each other's, exact and near, the earliest copy sometimes in one and
    sometimes in the other, and pre-cutoff human pages (calibration) and post-cutoff pages (human and machine)
    in both. Returns the files and, by URL, the URL of the page each copy copies."""
    from tests.pipeline.test_dedup_e2e import near_copy, real_pages
    from tests.pipeline.test_scoring import POST, PRE, pairs, write_warc

    pages = real_pages(6)
    docs: dict[str, list] = {"a": [], "b": []}
    copies = {}
    for i, text in enumerate(pages):
        home, away = ("a", "b") if i % 2 else ("b", "a")
        original = f"http://orig.example/{i}"
        docs[home].append((original, text, f"2019-0{i + 1}-15T00:00:00Z"))
        docs[away].append((f"http://exact.example/{i}", text, "2024-01-01T00:00:00Z"))
        docs[away].append((f"http://near.example/{i}", near_copy(text, i), "2023-06-01T00:00:00Z"))
        copies[f"http://exact.example/{i}"] = copies[f"http://near.example/{i}"] = original
    data = pairs("exp_gpt3to4/xsum_gpt-4.raw_data.json")
    for i, (human, machine) in enumerate(zip(data["original"][:40], data["sampled"][:40])):
        side = "ab"[i % 2]
        docs[side].append((f"http://pre.example/{i}", human, PRE))
        docs[side].append((f"http://machine.example/{i}", machine, POST))
    a, b = tmp_path / "a.warc.gz", tmp_path / "b.warc.gz"
    write_warc(a, docs["a"])
    write_warc(b, docs["b"])
    return a, b, copies


@pytest.mark.parametrize("dedup, detectors", [("near", "fasttext"), ("exact", "none"), ("none", "fasttext")])
def test_local_workers_split_at_what_crosses_files(tmp_path, staging, dedup, detectors):
    """Dedup (the earliest copy across all files) and run-calibrated thresholds (every pre-cutoff score of the
    run) with `--local-workers 2`: the workers run the stages before the first of those, and one pipeline runs
    the rest over every worker's kept documents: the same files as one worker, byte for byte, the same ledger
    and the same counters; copies whose survivor was read by the other worker are found, and the thresholds
    are calibrated on both workers' pages."""
    from pipeline.local_run import deal, plan
    from pipeline.options import parse_curate_args

    a, b, copies = _cross_file_inputs(tmp_path)
    inputs = (str(a), str(DATA / "malformed" / "clipped.warc.gz"), str(b))
    extra = ("--dedup", dedup, "--shard-size", "9", "--num-buckets", "3", "--min-calibration-docs", "10",
             "--on-machine", "reject", "--target-fpr", "0.2")
    argv = ["--output", str(tmp_path / "x"), "--detectors", detectors, *extra]
    shares = deal(plan(parse_curate_args(argv + [a for p in inputs for a in ("--input", p)])).groups, 2)
    worker_of = {path: i for i, share in enumerate(shares) for path, _ in share}
    assert worker_of[str(a)] != worker_of[str(b)]  # the copies cross workers

    one, local = tmp_path / "one", tmp_path / "local"
    ma = curate(one, *inputs, extra=extra, detectors=detectors)
    mb = curate(local, *inputs, extra=(*extra, "--local-workers", "2"), detectors=detectors)
    assert mb["balanced"] and ma["counts"] == mb["counts"] and ma["counts"]["errors"] > 0
    assert ma["metrics"] == mb["metrics"] and ma["shards"] == mb["shards"] and ma["inputs"] == mb["inputs"]
    assert ma["thresholds"] == mb["thresholds"]
    fa, fb = _run_files(one), _run_files(local)
    assert fa.keys() == fb.keys() and [k for k in fa if fa[k] != fb[k]] == []
    assert staging.folders == [{"0", "1", "tail"}]  # the workers' heads, and the tail
    # no Parquet but the final shards; what is left of the runs is the heads' staged (curated) runs, the tail's
    # input, which the deletion of the staging area removes
    (left,) = staging.rows
    assert left and {name.rsplit("/", 1)[0] for name in left} == {"0/curated", "1/curated"}
    assert all(re.fullmatch(r"[01]/curated/run-\d{5}-\d{4}\.arrows", name) for name in left)

    rows = {r["url"]: r for kind in ("curated", "rejected") for r in read_kind(local, kind).to_pylist()}
    if dedup != "none":
        crossed = [url for url, original in copies.items()
                   if rows[url].get("duplicate_of") == rows[original]["id"]
                   and worker_of[rows[url]["warc_file"]] != worker_of[rows[original]["warc_file"]]]
        expected = {u for u in copies if dedup == "near" or u.startswith("http://exact.")}
        assert set(crossed) == expected and rows[copies[crossed[0]]]["dup_cluster_size"] == len(expected) // 6 + 1
    if detectors != "none":
        entry = mb["thresholds"]["fasttext"]
        calibration = [r for r in rows.values() if r["provenance"] == "pre_cutoff" and r.get("reason") is None
                       and r["scores"][0]["value"] is not None]  # every pre-cutoff page that reached the decision
        assert entry["source"].startswith("calibrated") and entry["n_human"] == len(calibration)
        assert {worker_of[r["warc_file"]] for r in calibration} == {0, 1}
        assert mb["counts"]["rejected_by_reason"].get("machine_generated", 0) > 0


def test_local_workers_cut_the_same_slice_as_one_worker(tmp_path):
    """`--input-slice` with `--local-workers`: the launcher cuts the slice once and the workers share its files
    (a worker does not slice its share again): the same shards, inputs record and ledger as one worker."""
    inputs = [str(p) for p in (*sorted(DATA.glob("*.gz")), DATA / "malformed" / "clipped.warc.gz")]  # 6 files
    extra = ("--dedup", "none", "--shard-size", "7", "--num-buckets", "3", "--input-slice", "1/2")
    a, b = tmp_path / "one", tmp_path / "local"
    ma = curate(a, *inputs, extra=extra)
    mb = curate(b, *inputs, extra=(*extra, "--local-workers", "2"))
    assert ma["input_slice"] == mb["input_slice"] == {"index": 1, "count": 2, "files": 3}
    assert len(mb["inputs"]) == 3 and ma["inputs"] == mb["inputs"] and ma["counts"] == mb["counts"]
    fa, fb = _run_files(a), _run_files(b)
    assert fa.keys() == fb.keys() and [k for k in fa if fa[k] != fb[k]] == []


def test_local_workers_refuse_another_runner(tmp_path, capsys):
    argv = ["curate", "--input", str(DATA / "*.warc.gz"), "--output", str(tmp_path / "o"), "--detectors", "none",
            "--local-workers", "2", "--runner=PortableRunner"]
    assert lowbg(argv) == 2 and "drop --runner" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_progress_counts_every_record_and_file_and_draws_nothing_off_a_terminal(tmp_path, capsys):
    from pipeline.curate import run_curate
    from pipeline.options import parse_curate_args

    seen = {"files": 0, "records": 0}

    def sink(files, records):
        seen["files"] += files
        seen["records"] += records

    inputs = [str(DATA / "cc-main-2020-34.warc.gz"), str(DATA / "malformed" / "clipped.warc.gz")]
    argv = ["--output", str(tmp_path / "out"), "--detectors", "none", "--dedup", "none", "--skip-language-id"]
    manifest = run_curate(parse_curate_args(argv + [a for p in inputs for a in ("--input", p)]), progress_sink=sink)
    assert seen == {"files": 2, "records": sum(i["records_read"] for i in manifest["inputs"])}
    assert seen["records"] > 40
    curate(tmp_path / "plain", *inputs, extra=("--dedup", "none", "--skip-language-id"))
    assert "records/s" not in capsys.readouterr().err  # pytest's stderr is not a terminal: no bar


def test_sinks_write_the_same_shards_from_many_spilled_runs(tmp_path, monkeypatch):
    """The sinks' external merge sort: with a spill budget of one byte every row is its own sorted run, merged
    back into the same shards, byte for byte, as when each bucket fits in one run; and no run file is left."""
    import pipeline.sinks

    inputs = (str(DATA / "cc-main-2020-34.warc.gz"), str(DATA / "malformed" / "clipped.warc.gz"))
    extra = ("--dedup", "none", "--shard-size", "3", "--num-buckets", "2", "--direct_running_mode=in_memory")
    a, b = tmp_path / "one-run", tmp_path / "many-runs"
    curate(a, *inputs, extra=extra)
    monkeypatch.setattr(pipeline.sinks, "SPILL_BYTES", 1)
    curate(b, *inputs, extra=extra)
    fa, fb = _run_files(a), _run_files(b)
    assert fa.keys() == fb.keys() and sum(k.startswith("curated/") for k in fa) > 2  # chunks of one bucket
    assert [k for k in fa if fa[k] != fb[k]] == []
    assert not list(b.rglob(".tmp-*"))
