"""Reference-index benchmark: `lowbg index build` (a Beam pipeline) against the in-process build it replaced,
on the same curated shards, in the same run; then `index extend` against a rebuild, and point lookups.

Corpus: ``--docs`` documents of ~``--words`` words (bench/dedup.py's generator: real page sentences recombined),
a quarter of them exact copies of others, pre-cutoff capture dates, written as ``--shards`` curated Parquet shards.

Measured, each in its own child process (so its peak RSS is its own), interleaved over ``--rounds`` rounds, the
best round of each kept:

* ``baseline``: the in-process build of lowbackground before the Beam pipeline (commit 21c8fe2,
  ``pipeline.dedup.reference.build_reference_index``, reproduced below): reads every shard, holds every signature
  and band hash in memory, sorts, writes two files;
* ``beam``: ``build_index`` on the DirectRunner (one in-process worker), every curated document (``--documents
  all``), exact + band keys, ``--partitions`` range-partitioned sorted files;
* ``beam-2w`` (``--workers 2``): the same with ``--direct_num_workers 2 --direct_running_mode multi_processing``;
* ``extend``: an index of the first half of the shards extended with the second half (the time of the extension
  alone), against ``beam`` over all of them.

The ratio printed is documents/s of each against the baseline's, and peak RSS. Point lookups: exact-hash lookups/s
through :class:`pipeline.dedup.reference.IndexReader` and the row groups they read.

    python bench/index.py [--docs 6000] [--words 400] [--shards 6] [--rounds 2] [--workers 2]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, whatever numpy links
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_corpus(folder: Path, docs: int, words: int, shards: int) -> int:
    import schemas
    from bench.dedup import build_documents
    from pipeline.document import Document

    texts = build_documents(docs - docs // 4, words, seed=3)
    rng = random.Random(3)
    texts += [rng.choice(texts) for _ in range(docs // 4)]  # exact copies
    rng.shuffle(texts)
    folder.mkdir(parents=True, exist_ok=True)
    per = -(-len(texts) // shards)
    for s in range(shards):
        rows = [Document(id=f"<urn:uuid:bench-{i:08d}>", warc_file=f"bench-{s}.warc.gz", text=texts[i],
                         warc_date=dt.datetime(2015, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=i),
                         provenance="pre_cutoff", processed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                         pipeline_version="bench").to_row()
                for i in range(s * per, min(len(texts), (s + 1) * per))]
        schemas.write_shard(rows, "curated", str(folder / f"part-{s:05d}.parquet"))
    return len(texts)


def old_in_process_build(shard_paths: list[str], output_dir: str) -> dict:
    """The build of commit 21c8fe2 (pipeline/dedup/reference.py), condensed: one process, everything in memory."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.dedup.cluster import to_us
    from pipeline.dedup.minhash import MinHasher, band_keys, optimal_bands

    bands, rows = optimal_bands(0.8, 128)
    hasher = MinHasher(128, 5)
    ids, firsts, sigs = [], [], []
    for path in shard_paths:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=1024, columns=["id", "text", "warc_date", "provenance"]):
            cols = batch.to_pydict()
            b_ids = [i for i, p in zip(cols["id"], cols["provenance"]) if p == "pre_cutoff"]
            b_texts = [t for t, p in zip(cols["text"], cols["provenance"]) if p == "pre_cutoff"]
            b_first = [to_us(d) for d, p in zip(cols["warc_date"], cols["provenance"]) if p == "pre_cutoff"]
            values, ok = hasher.signatures(b_texts)
            for i in np.flatnonzero(ok):
                ids.append(b_ids[i])
                firsts.append(b_first[i])
            sigs.append(values[ok])
    sig = np.concatenate(sigs)
    n = len(ids)
    band_hash = np.zeros((n, bands), dtype=np.uint64)
    for i in range(n):
        band_hash[i] = [int.from_bytes(k[2:], "big") for k in band_keys(sig[i], bands, rows)]
    id_rank = np.argsort(np.argsort(np.array(ids, dtype=object), kind="stable"), kind="stable")
    doc = np.repeat(np.arange(n), bands)
    band = np.tile(np.arange(bands, dtype=np.int16), n)
    hashes = band_hash.reshape(-1)
    first_arr = np.array(firsts, dtype=np.int64)
    order = np.lexsort((id_rank[doc], first_arr[doc], hashes, band))
    band, hashes, doc = band[order], hashes[order], doc[order]
    head = np.ones(len(doc), dtype=bool)
    head[1:] = (band[1:] != band[:-1]) | (hashes[1:] != hashes[:-1])
    band, hashes, doc = band[head], hashes[head], doc[head]
    used = np.unique(doc)
    ts = pa.timestamp("us", tz="UTC")
    pq.write_table(pa.table({"band": pa.array(band), "band_hash": pa.array(hashes),
                             "ref_id": pa.array([ids[i] for i in doc]),
                             "first_seen": pa.array(first_arr[doc]).cast(ts)}),
                   os.path.join(output_dir, "bands.parquet"), compression="zstd")
    sig_le = sig.astype("<u4")
    pq.write_table(pa.table({"ref_id": pa.array([ids[i] for i in used]),
                             "first_seen": pa.array(first_arr[used]).cast(ts),
                             "signature": pa.array([sig_le[i].tobytes() for i in used], pa.binary())}),
                   os.path.join(output_dir, "signatures.parquet"), compression="zstd")
    size = sum(os.path.getsize(os.path.join(output_dir, f)) for f in ("bands.parquet", "signatures.parquet"))
    return {"band_keys": int(len(doc)), "bytes_per_band_key": round(size / max(1, len(doc)), 1)}


def child(variant: str, corpus: str, out: str, partitions: int, workers: int) -> None:
    """One measurement, in this (child) process: prints seconds and peak RSS as JSON."""
    from pipeline.dedup.index_build import build_index, extend_index

    shards = sorted(str(p) for p in Path(corpus).glob("part-*.parquet"))
    Path(out).mkdir(parents=True, exist_ok=True)
    beam_args = ["--direct_num_workers", str(workers), "--direct_running_mode", "multi_processing"] \
        if variant == "beam-2w" else []
    start = time.perf_counter()
    if variant == "baseline":
        result = old_in_process_build(shards, out)
    elif variant == "extend":
        half = len(shards) // 2
        build_index(shards[:half], out, partitions=partitions)
        start = time.perf_counter()  # the extension alone
        result = extend_index(out, shards[half:])["counts"]
    else:
        result = build_index(shards, out, partitions=partitions, beam_args=beam_args)["counts"]
    seconds = time.perf_counter() - start
    if variant == "beam":  # bytes on disk per row, by table
        for table in ("exact", "bands", "signatures"):
            size = sum(p.stat().st_size for p in Path(out).glob(f"g*/{table}/part-*.parquet"))
            result[f"{table}_bytes_per_row"] = round(size / max(1, result[table]), 1)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mb": max(rss, kids), "result": result}))


def measure(variant: str, corpus: Path, work: Path, partitions: int, workers: int) -> dict:
    out = work / f"{variant}-{time.monotonic_ns()}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, __file__, "--child", variant, "--corpus", str(corpus), "--out", str(out),
                           "--partitions", str(partitions), "--workers", str(workers)],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def lookups(corpus: Path, work: Path, partitions: int, n: int = 2000) -> dict:
    import pyarrow.parquet as pq

    from pipeline.dedup.index_build import build_index
    from pipeline.dedup.normalize import text_hash
    from pipeline.dedup.reference import IndexReader

    index = work / "lookup-index"
    build_index(sorted(str(p) for p in corpus.glob("part-*.parquet")), str(index), partitions=partitions)
    texts = pq.read_table(sorted(corpus.glob("part-*.parquet"))[0], columns=["text"]).column("text").to_pylist()
    wanted = [text_hash(t) for t in texts[:n]]
    reader = IndexReader(str(index))
    start = time.perf_counter()
    found = sum(len(reader.exact([h])) for h in wanted)  # one key per call: the worst case
    seconds = time.perf_counter() - start
    return {"lookups": len(wanted), "found": found, "per_s": len(wanted) / seconds,
            "row_groups_per_lookup": reader.row_groups_read / len(wanted)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=6000)
    ap.add_argument("--words", type=int, default=400)
    ap.add_argument("--shards", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="DirectRunner workers of the beam-2w variant (0: skip)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--corpus", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.corpus, args.out, args.partitions, args.workers)
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python "
          f"{platform.python_version()}; load average at start {os.getloadavg()[0]:.2f}")
    variants = ["baseline", "beam"] + (["beam-2w"] if args.workers > 1 else []) + ["extend"]
    with tempfile.TemporaryDirectory(prefix="lowbg-bench-index-") as tmp:
        work = Path(tmp)
        n = write_corpus(work / "corpus", args.docs, args.words, args.shards)
        print(f"corpus: {n} documents (~{args.words} words, a quarter exact copies) in {args.shards} shards")
        best: dict[str, dict] = {}
        for r in range(args.rounds):
            line = []
            for variant in variants:
                m = measure(variant, work / "corpus", work, args.partitions, args.workers)
                if variant not in best or m["seconds"] < best[variant]["seconds"]:
                    best[variant] = m
                line.append(f"{variant} {m['seconds']:.1f}s")
            print(f"  round {r + 1}: " + ", ".join(line) + f" (load {os.getloadavg()[0]:.2f})")
        base = best["baseline"]
        for variant in variants:
            m = best[variant]
            docs = n / 2 if variant == "extend" else n
            print(f"{variant:>9}: {docs / m['seconds']:,.0f} docs/s ({m['seconds']:.1f} s), peak RSS "
                  f"{m['rss_mb']:,.0f} MB, {(docs / m['seconds']) / (n / base['seconds']):.2f}x the in-process "
                  f"build's docs/s")
        print(f"   extend: the second half added to an index of the first in {best['extend']['seconds']:.1f} s, "
              f"{best['extend']['seconds'] / best['beam']['seconds']:.2f}x the time of a build over both")
        print(f"   result: baseline {base['result']}; beam {best['beam']['result']}")
        print(f"   old format on disk: {base['result'].get('bytes_per_band_key')} bytes per band key (bands + "
              "signatures files / band keys)")
        look = lookups(work / "corpus", work, args.partitions)
        print(f"point lookups (IndexReader.exact, one key per call): {look['per_s']:,.0f}/s, "
              f"{look['row_groups_per_lookup']:.2f} row groups read per lookup, {look['found']}/{look['lookups']} "
              "found")
        print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
