"""The PortableRunner path: Beam's local job service and an EXTERNAL worker pool as separate processes.

This is the Fn API and job-submission path Flink and Dataflow use: every DoFn, coder and side input of the
pipeline must survive cross-process serialization for the shards to match the DirectRunner's.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.pipeline.conftest import DATA, curate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


@pytest.fixture
def portable_services(tmp_path):
    env = dict(os.environ)
    # The worker pool starts SDK harnesses with `python` from PATH: make that this interpreter.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    job_port, worker_port = _free_port(), _free_port()
    logs = [open(tmp_path / "job_service.log", "wb"), open(tmp_path / "worker_pool.log", "wb")]
    procs = [
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                          f"--port={job_port}"], env=env, stdout=logs[0], stderr=subprocess.STDOUT,
                         start_new_session=True),
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                          f"--service_port={worker_port}"], env=env, stdout=logs[1], stderr=subprocess.STDOUT,
                         start_new_session=True),
    ]
    try:
        _wait_for_port(job_port, procs[0])
        _wait_for_port(worker_port, procs[1])
        yield job_port, worker_port
    finally:
        for proc in procs:  # by pid, with the harness processes the pool started (same session)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for log in logs:
            log.close()


def test_portable_runner_shards_equal_direct_runner(tmp_path, portable_services):
    job_port, worker_port = portable_services
    inputs = (str(DATA / "cc-main-2020-34.warc.gz"), str(DATA / "cc-main-2024-22.warc.gz"),
              str(DATA / "malformed" / "clipped.warc.gz"), str(DATA / "clueweb09-invalid-date.warc.gz"))
    portable = curate(tmp_path / "portable", *inputs, extra=(
        "--runner=PortableRunner", f"--job_endpoint=localhost:{job_port}", "--environment_type=EXTERNAL",
        f"--environment_config=localhost:{worker_port}"))
    direct = curate(tmp_path / "direct", *inputs)
    assert portable["balanced"] and portable["counts"] == direct["counts"]
    assert portable["counts"]["curated"] > 0 and portable["counts"]["errors"] > 0
    files = sorted(p.relative_to(tmp_path / "direct") for p in (tmp_path / "direct").rglob("*.parquet"))
    assert files == sorted(p.relative_to(tmp_path / "portable") for p in (tmp_path / "portable").rglob("*.parquet"))
    for name in files:
        assert pq.read_table(tmp_path / "direct" / name).equals(pq.read_table(tmp_path / "portable" / name)), name


def test_index_build_on_the_portable_runner_equals_the_direct_runner(tmp_path, portable_services):
    """`lowbg index build` is a Beam pipeline like curate: the same files, byte for byte, on either runner."""
    import datetime as dt
    import json

    import schemas
    from pipeline.dedup.index_build import build_index
    from pipeline.document import Document

    job_port, worker_port = portable_services
    lines = (Path(__file__).resolve().parents[1] / "data" / "dedup" / "aut-2008.jsonl").read_text().splitlines()
    texts = [json.loads(line)["text"] for line in lines[:40]]
    rows = [Document(id=f"d{i:03d}", warc_file="w.warc.gz", text=texts[i % 30] if i % 4 else "short text",
                     warc_date=dt.datetime(2019 + i % 5, 1, 1, tzinfo=dt.UTC), provenance="pre_cutoff",
                     processed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), pipeline_version="test").to_row()
            for i in range(40)]
    schemas.write_shard(rows, "curated", str(tmp_path / "shard.parquet"))
    portable = build_index([str(tmp_path / "shard.parquet")], str(tmp_path / "portable"), partitions=3, beam_args=(
        "--runner=PortableRunner", f"--job_endpoint=localhost:{job_port}", "--environment_type=EXTERNAL",
        f"--environment_config=localhost:{worker_port}"))
    direct = build_index([str(tmp_path / "shard.parquet")], str(tmp_path / "direct"), partitions=3)
    assert portable["counts"]["bands"] == direct["counts"]["bands"] > 0
    files = sorted(p.relative_to(tmp_path / "direct") for p in (tmp_path / "direct").rglob("*.parquet"))
    assert len(files) == 9
    for name in files:
        assert (tmp_path / "direct" / name).read_bytes() == (tmp_path / "portable" / name).read_bytes(), name
