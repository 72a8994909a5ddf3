"""Helpers for pipeline tests: run `lowbg curate` for real and read back what it wrote."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pyarrow as pa
import pytest

import schemas
from pipeline.cli import main as lowbg

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
