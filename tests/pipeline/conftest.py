"""Helpers for pipeline tests: run `lowbg curate` for real and read back what it wrote; real pages, Document
factories and a Beam runner for the tests of single stages (language ID, quality, dedup)."""

from __future__ import annotations

import datetime as dt
import glob
import json
import pickle
import random
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that

import schemas
from pipeline.cli import main as lowbg
from pipeline.document import Document

DATA = Path(__file__).resolve().parents[1] / "data" / "warc"
PROCESSED_AT = "2026-01-01T00:00:00Z"


def curate(output: Path, *inputs: str, extra: tuple[str, ...] = (), detectors: str = "none") -> dict:
    argv = ["curate", "--output", str(output), "--processed-at", PROCESSED_AT, "--detectors", detectors]
    for item in inputs:
        argv += ["--input", item]
    code = lowbg(argv + list(extra))
    assert code == 0, f"lowbg curate exited {code}"
    return json.loads((output / "manifest.json").read_text())


def read_kind(output: Path, kind: str) -> pa.Table:
    paths = sorted(glob.glob(str(output / kind / "*.parquet")))
    tables = [schemas.read_shard(p, kind) for p in paths]
    return pa.concat_tables(tables) if tables else schemas.schema_for(kind).empty_table()


@pytest.fixture(scope="session")
def real_run(tmp_path_factory) -> tuple[Path, dict]:
    """One run over the real Common Crawl / IA / ClueWeb fixtures, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("real") / "out"
    manifest = curate(out, str(DATA / "*.warc.gz"), extra=("--dedup", "none"))
    return out, manifest


# --- single stages on real pages (language ID, quality, dedup) ------------------------------------------------

DEDUP_DATA = Path(__file__).resolve().parents[1] / "data" / "dedup"
CUTOFF = dt.datetime(2022, 11, 30, tzinfo=dt.UTC)


def _load(name: str) -> list[dict]:
    with open(DEDUP_DATA / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="session")
def cc_pages() -> list[dict]:
    """Pages of the CC-MAIN-2020-34 WARC (chatnoir-resiliparse fixture), with a person-read ``lang``."""
    return _load("cc-main-2020-34.jsonl")


@pytest.fixture(scope="session")
def aut_pages() -> list[dict]:
    """Pages of the 2008 archive.org crawl (aut fixture)."""
    return _load("aut-2008.jsonl")


def make_doc(doc_id: str, text: str, when: dt.datetime | None, **kw) -> Document:
    """A kept document as the spine would hand it over: capture time, cutoff and capture provenance."""
    if when is None:
        prov = "unknown"
    else:
        prov = "pre_cutoff" if when < CUTOFF else "post_cutoff"
    return Document(id=doc_id, warc_file=kw.pop("warc_file", "test.warc.gz"), text=text, warc_date=when,
                    cutoff=CUTOFF, provenance=kw.pop("provenance", prov), **kw)


@pytest.fixture(scope="session")
def doc_factory():
    return make_doc


def utc(year: int, month: int = 1, day: int = 1) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def at():
    return utc


def run_transform(docs: list[Document], transform: beam.PTransform, tmp_path: Path) -> tuple[list[Document], dict]:
    """Run ``docs | transform`` on the DirectRunner; return the output documents (a stage's kept and rejected
    ones, :mod:`pipeline.steps`) and the lowbackground counters by name (every stage's)."""
    out_file = tmp_path / f"out-{random.getrandbits(32):08x}.pkl"

    def capture(actual):  # assert_that hands the whole output to one call
        with open(out_file, "wb") as fh:
            pickle.dump(list(actual), fh)

    p = beam.Pipeline(runner="DirectRunner", options=PipelineOptions([]))
    out = p | "Create" >> beam.Create(docs, reshuffle=False) | "UnderTest" >> transform
    if isinstance(out, dict):  # a stage: {kept, rejected}
        out = [out[k] for k in ("kept", "rejected") if k in out] | "Outputs" >> beam.Flatten()
    assert_that(out, capture)
    result = p.run()
    result.wait_until_finish()
    counters: dict[str, int] = {}
    for r in result.metrics().query(MetricsFilter())["counters"]:
        if (r.key.metric.namespace or "").startswith("lowbackground."):
            counters[r.key.metric.name] = counters.get(r.key.metric.name, 0) + r.committed
    with open(out_file, "rb") as fh:
        return pickle.load(fh), counters


@pytest.fixture
def run(tmp_path):
    return lambda docs, transform: run_transform(docs, transform, tmp_path)


def mutate(text: str, changes: int, rng: random.Random) -> str:
    """Replace ``changes`` distinct words of ``text`` by made-up words (a "few words changed" copy)."""
    words = text.split(" ")
    slots = [i for i, w in enumerate(words) if w.strip()]
    for i in rng.sample(slots, min(changes, len(slots))):
        words[i] = f"zq{rng.getrandbits(40):x}"
    return " ".join(words)


@pytest.fixture(scope="session")
def mutator():
    return mutate


@pytest.fixture
def fakefs(tmp_path):
    """``fakefs://`` (tests/pipeline/fake_fs.py): an object store kept in a local folder, for this test."""
    from tests.pipeline.fake_fs import FakeFileSystem

    FakeFileSystem.root, FakeFileSystem.full_disk = tmp_path / "store", None
    FakeFileSystem.root.mkdir()
    yield FakeFileSystem
    FakeFileSystem.root, FakeFileSystem.full_disk = None, None
