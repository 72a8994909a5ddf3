import pyarrow.parquet as pq
import pytest

from pipeline.cli import main as lowbg
from tests.pipeline.conftest import DATA, curate


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
    assert ta.keys() == tb.keys() and {k.split("/")[0] for k in ta} == {"curated", "errors"}
    for name in ta:
        assert ta[name].equals(tb[name]), name


def test_wet_conversion_records_are_documents(tmp_path):
    out = tmp_path / "out"
    manifest = curate(out, str(DATA / "cc-main-2024-22.warc.wet.gz"))
    assert manifest["counts"]["curated"] == 1 and manifest["counts"]["skipped"] == {"warcinfo": 1}


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
