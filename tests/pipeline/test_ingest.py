"""pipeline/ingest.py on the bundled WARC fixtures: path lists, each distinct input read once (a path listed twice,
the same bytes under two names), a pattern that matches nothing as an error row, and every record of a file in
exactly one of ExtractText's outputs; record counts against warcio's, an independent reader."""

from __future__ import annotations

import gzip
import pickle
import shutil
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that
from warcio.archiveiterator import ArchiveIterator

from pipeline.document import Document, ErrorRecord
from pipeline.ingest import ExtractText, ReadWarc, fingerprint, full_sha256, join_base, read_path_list
from pipeline.reasons import ERROR_OPEN, LIST_STAGE, REJECT_REASONS
from pipeline.settings import IngestSettings, ProvenanceSettings
from tests.pipeline.conftest import DATA

CC_2020 = DATA / "cc-main-2020-34.warc.gz"
IA_2008 = DATA / "ia-2008-heritrix.warc.gz"
PROCESSED_AT = ProvenanceSettings().cutoff  # any fixed time


def warcio_documents(path: Path) -> int:
    """Document candidates (response, resource and conversion records) as warcio counts them."""
    with open(path, "rb") as fh:
        return sum(r.rec_type in ("response", "resource", "conversion") for r in ArchiveIterator(fh))


def test_a_path_list_plain_or_gzipped_with_a_base_and_a_limit(tmp_path):
    lines = "crawl-data/a.warc.gz\n\n  crawl-data/b.warc.gz \ns3://other/c.warc.gz\n/local/d.warc.gz\n"
    (tmp_path / "warc.paths").write_text(lines)
    (tmp_path / "warc.paths.gz").write_bytes(gzip.compress(lines.encode()))
    expected = ["s3://commoncrawl/crawl-data/a.warc.gz", "s3://commoncrawl/crawl-data/b.warc.gz",
                "s3://other/c.warc.gz", "/local/d.warc.gz"]
    for name in ("warc.paths", "warc.paths.gz"):
        assert read_path_list(str(tmp_path / name), "s3://commoncrawl/") == expected
        assert read_path_list(str(tmp_path / name), "s3://commoncrawl", limit=2) == expected[:2]
    assert read_path_list(str(tmp_path / "warc.paths"))[0] == "crawl-data/a.warc.gz"
    assert join_base("https://data.commoncrawl.org/", "crawl-data/x") == "https://data.commoncrawl.org/crawl-data/x"


def test_fingerprints_are_equal_for_copies_and_differ_for_a_changed_tail(tmp_path):
    data = CC_2020.read_bytes()
    assert len(data) > 2 * 64 * 1024  # head and tail are both read
    copy, changed = tmp_path / "copy.warc.gz", tmp_path / "changed.warc.gz"
    copy.write_bytes(data)
    changed.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert fingerprint(str(copy), None) == fingerprint(str(CC_2020), len(data))
    assert fingerprint(str(changed), None) != fingerprint(str(CC_2020), None)
    assert full_sha256(str(copy)) == full_sha256(str(CC_2020)) != full_sha256(str(changed))
    missing = str(tmp_path / "missing.warc.gz")
    assert fingerprint(missing, None) == ("path", missing) and full_sha256(missing) is None


def _run_ingest(settings: IngestSettings, tmp_path: Path) -> dict[str, list]:
    """ReadWarc, then ExtractText on its records, on the DirectRunner: every output, as lists."""
    names = ("records", "read_errors", "inputs", "kept", "rejected", "extract_errors")

    def capture(name):
        def write(actual):
            with open(tmp_path / f"{name}.pkl", "wb") as fh:
                pickle.dump(list(actual), fh)
        return write

    with beam.Pipeline(runner="DirectRunner", options=PipelineOptions([])) as p:
        read = p | "Read" >> ReadWarc(settings)
        extracted = read["records"] | "Extract" >> ExtractText(ProvenanceSettings(), PROCESSED_AT, "test")
        outputs = [read["records"], read["errors"], read["inputs"], extracted["kept"], extracted["rejected"],
                   extracted["errors"]]
        for name, pcoll in zip(names, outputs):
            assert_that(pcoll, capture(name), label=f"Capture_{name}")
    result = {}
    for name in names:
        with open(tmp_path / f"{name}.pkl", "rb") as fh:
            result[name] = pickle.load(fh)
    return result


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> tuple[Path, dict[str, list]]:
    folder = tmp_path_factory.mktemp("ingest")
    shutil.copy(CC_2020, folder / "a.warc.gz")
    shutil.copy(CC_2020, folder / "b-copy.warc.gz")  # the same bytes under another name
    shutil.copy(IA_2008, folder / "c.warc.gz")
    settings = IngestSettings(inputs=(str(folder / "*.warc.gz"), str(folder / "a.warc.gz"),
                                      str(folder / "nothing-*.warc.gz")))
    return folder, _run_ingest(settings, folder)


def test_each_distinct_input_is_read_once_and_copies_get_a_manifest_entry(ingested):
    folder, out = ingested
    inputs = {Path(e["path"]).name: e for e in out["inputs"]}
    assert set(inputs) == {"a.warc.gz", "b-copy.warc.gz", "c.warc.gz"}
    assert inputs["a.warc.gz"]["listed"] == 2 and "listed 2 times: read once" in inputs["a.warc.gz"]["notes"]
    copy = inputs["b-copy.warc.gz"]
    assert copy["duplicate_of"] == str(folder / "a.warc.gz") and copy["records"] == 0
    assert copy["sha256"] == full_sha256(str(CC_2020))
    by_file: dict[str, int] = {}
    for record in out["records"]:
        by_file[Path(record.warc_file).name] = by_file.get(Path(record.warc_file).name, 0) + 1
    assert by_file == {"a.warc.gz": warcio_documents(CC_2020), "c.warc.gz": warcio_documents(IA_2008)}
    assert inputs["a.warc.gz"]["documents"] == by_file["a.warc.gz"]


def test_a_pattern_that_matches_nothing_is_an_error_row_not_a_silent_no_op(ingested):
    folder, out = ingested
    assert [(e.warc_file, e.stage, e.reason, e.message) for e in out["read_errors"]] == [
        (str(folder / "nothing-*.warc.gz"), LIST_STAGE, ERROR_OPEN, "pattern matched no file")]


def test_every_record_leaves_extract_text_once_kept_rejected_or_as_an_error(ingested):
    _, out = ingested
    kept, rejected, errors = out["kept"], out["rejected"], out["extract_errors"]
    assert len(kept) + len(rejected) + len(errors) == len(out["records"])
    assert all(isinstance(d, Document) and not d.rejected for d in kept)  # empty text: the content policy's
    assert all(isinstance(d, Document) and d.reason in REJECT_REASONS for d in rejected)
    assert all(isinstance(e, ErrorRecord) for e in errors)
    assert {d.id for d in kept}.isdisjoint({d.id for d in rejected})
    assert sum(bool(d.text) for d in kept) > 0.5 * len(out["records"])  # most captures are pages with text
    assert {d.provenance for d in kept} == {"pre_cutoff"}  # 2008 and 2020 captures
