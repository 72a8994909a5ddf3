"""Shared fixtures: the bundled real human corpus (see tests/data/collapse/NOTICE) and small shard writers."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "collapse" / "human.parquet"


@pytest.fixture(scope="session")
def human_parquet() -> Path:
    return FIXTURE


@pytest.fixture(scope="session")
def human_texts() -> list[str]:
    return pq.read_table(FIXTURE, columns=["text"]).column("text").to_pylist()


def _write_shard(path: Path, texts: list[str], ids: list[str] | None = None, **extra) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = {"text": texts, **extra}
    if ids is not None:
        cols = {"id": ids, **cols}
    pq.write_table(pa.table(cols), path)
    return path


@pytest.fixture()
def write_shard():
    """write_shard(path, texts, ids=None, **other_columns) -> path"""
    return _write_shard
