"""Dedup benchmark: MinHash signatures/s of pipeline.dedup.minhash over datasketch's per-document loop, and the
end-to-end pipeline documents/s with language ID, quality signals and near dedup on vs the spine without them.

Signatures: the same documents (default 5,000 of ~500 words, made by recombining the sentences of the real pages
in tests/data/dedup) go through (a) ``MinHasher.signatures`` in batches of 512 and (b) the loop a datasketch
user writes: ``MinHash(num_perm=128, seed=1)`` + ``update_batch(word_shingles(text, 5))`` per document. Both
start from the text (tokenisation included, same tokeniser), run on one core, and must give identical hash
values (checked on every document; a sample also goes through ``MinHashLSH`` as ``LeanMinHash``). The rounds
are interleaved and the best of each is kept, so a noisy neighbour hurts both alike.

End to end: a generated WARC (real page texts, a quarter exact copies and a tenth near copies, capture dates on
both sides of the cutoff) runs through the spine's transforms (ReadWarc -> ExtractText -> ContentPolicy ->
Parquet sinks) on the DirectRunner, once as is and once with LanguageStep + QualityStep + Dedup (near) added.

    python bench/dedup.py [--docs 5000] [--words 500] [--rounds 3] [--e2e-records 10000 | --skip-e2e]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, whatever numpy links
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasketch import MinHash, MinHashLSH  # noqa: E402

from pipeline.dedup.minhash import MinHasher  # noqa: E402
from pipeline.dedup.normalize import word_shingles  # noqa: E402

DATA = ROOT / "tests" / "data" / "dedup"
BATCH = 512  # as the pipeline batches (pipeline.dedup.beam_dedup.FINGERPRINT_BATCH)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def page_texts() -> list[str]:
    texts = []
    for name in ("aut-2008.jsonl", "cc-main-2020-34.jsonl"):
        with open(DATA / name, encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in fh]
    return texts


def build_documents(n: int, words: int, seed: int = 0) -> list[str]:
    """``n`` documents of about ``words`` words: real sentences, shuffled and recombined."""
    rng = random.Random(seed)
    sentences = [s for t in page_texts() for s in _SENTENCE.split(t) if len(s.split()) >= 4]
    docs = []
    for _ in range(n):
        parts, count = [], 0
        while count < words:
            s = rng.choice(sentences)
            parts.append(s)
            count += len(s.split())
        docs.append(" ".join(parts))
    return docs


def ours(hasher: MinHasher, docs: list[str]) -> np.ndarray:
    return np.concatenate([hasher.signatures(docs[i:i + BATCH])[0] for i in range(0, len(docs), BATCH)])


def datasketch_loop(docs: list[str], num_perm: int, ngram: int) -> np.ndarray:
    out = np.empty((len(docs), num_perm), dtype=np.uint32)
    for i, text in enumerate(docs):
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch(word_shingles(text, ngram))
        out[i] = m.hashvalues
    return out


def bench_signatures(n_docs: int, words: int, rounds: int) -> dict:
    docs = build_documents(n_docs, words)
    n_shingles = sum(len(word_shingles(d, 5)) for d in docs)
    print(f"corpus: {len(docs)} documents, {sum(len(d.split()) for d in docs) / len(docs):.0f} words and "
          f"{n_shingles / len(docs):.0f} 5-word shingles each on average")
    hasher = MinHasher(128, 5)
    best = {"ours": float("inf"), "datasketch": float("inf")}
    ratios = []
    sig_ours = sig_ds = None
    for r in range(rounds):
        t = time.perf_counter()
        sig_ours = ours(hasher, docs)
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        sig_ds = datasketch_loop(docs, 128, 5)
        t_ds = time.perf_counter() - t
        best["ours"], best["datasketch"] = min(best["ours"], t_ours), min(best["datasketch"], t_ds)
        ratios.append(t_ds / t_ours)
        print(f"  round {r + 1}: ours {len(docs) / t_ours:,.0f} sig/s, datasketch {len(docs) / t_ds:,.0f} sig/s, "
              f"ratio {t_ds / t_ours:.2f}x")
    if not np.array_equal(sig_ours, sig_ds):
        raise SystemExit("signatures differ from datasketch's: the benchmark is void")
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    for i in range(200):
        lsh.insert(i, hasher.lean(sig_ours[i]))
    assert all(i in lsh.query(hasher.lean(sig_ours[i])) for i in range(200))
    result = {
        "docs": len(docs),
        "ours_sig_per_s": len(docs) / best["ours"],
        "datasketch_sig_per_s": len(docs) / best["datasketch"],
        "ratio_best": best["datasketch"] / best["ours"],
        "ratio_median": float(np.median(ratios)),
    }
    print(f"MinHash signatures/s per core (best of {rounds}): ours {result['ours_sig_per_s']:,.0f}, "
          f"datasketch update_batch loop {result['datasketch_sig_per_s']:,.0f} -> "
          f"{result['ratio_best']:.2f}x (median round {result['ratio_median']:.2f}x; target >= 3x); "
          f"identical hash values on all {len(docs)} documents, LeanMinHash/MinHashLSH check passed")
    return result


# ---------------------------------------------------------------------------------------------------------------
# End to end: two `lowbg curate` runs on the same WARC, the spine alone (`--dedup none --skip-language-id`)
# and with language ID, quality signals and near dedup (the defaults); no detectors in either.
# ---------------------------------------------------------------------------------------------------------------

def _mutate(text: str, changes: int, rng: random.Random) -> str:
    words = text.split(" ")
    for i in rng.sample(range(len(words)), min(changes, len(words))):
        words[i] = f"zq{rng.getrandbits(32):x}"
    return " ".join(words)


def build_warc(folder: Path, records: int, seed: int = 1) -> Path:
    """One WARC of HTML responses: real page texts, 25% exact and 10% near copies, 2019-2024 capture dates."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    rng = random.Random(seed)
    pool = build_documents(max(200, records // 2), 400, seed=seed)
    written: list[str] = []
    path = folder / "CC-MAIN-bench-dedup-00000.warc.gz"
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for i in range(records):
            roll = rng.random()
            if written and roll < 0.25:
                text = rng.choice(written)
            elif written and roll < 0.35:
                text = _mutate(rng.choice(written), 2, rng)
            else:
                text = pool[i % len(pool)]
            written.append(text)
            paragraphs = "".join(f"<p>{p}</p>" for p in _SENTENCE.split(text) if p)
            body = f"<html><head><title>page {i}</title></head><body>{paragraphs}</body></html>".encode()
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                               ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
            when = dt.datetime(2019, 1, 1) + dt.timedelta(hours=rng.randrange(6 * 365 * 24))
            record = writer.create_warc_record(f"http://site{i % 97}.example/page/{i}", "response",
                                               payload=io.BytesIO(body), http_headers=http,
                                               warc_headers_dict={"WARC-Date": when.strftime("%Y-%m-%dT%H:%M:%SZ")})
            writer.write_record(record)
    return path


def _pipeline(warc: Path, output: Path, with_stages: bool) -> int:
    """One `lowbg curate` run (DirectRunner, 1 worker); returns the documents it extracted."""
    stages = [] if with_stages else ["--dedup", "none", "--skip-language-id"]
    argv = [sys.executable, "-m", "pipeline.cli", "curate", "--input", str(warc), "--output", str(output),
            "--detectors", "none", "--direct_running_mode=in_memory", "--direct_num_workers=1", *stages]
    subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = json.loads((output / "manifest.json").read_text())
    extract = manifest["metrics"]["extract"]
    return int(extract.get("kept", 0) + sum(n for name, n in extract.items() if name.startswith("rejected_")))


def bench_end_to_end(records: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="lowbg-bench-dedup-"))
    try:
        warc = build_warc(work, records)
        out = {}
        for name, on in (("spine", False), ("with_langid_quality_dedup", True)):
            t = time.perf_counter()
            docs = _pipeline(warc, work / name, on)
            elapsed = time.perf_counter() - t
            out[name] = docs / elapsed
            print(f"end to end, {name}: {docs} documents in {elapsed:.1f}s = {docs / elapsed:,.0f} docs/s "
                  "(DirectRunner, 1 worker, start-up included)")
        out["ratio"] = out["with_langid_quality_dedup"] / out["spine"]
        print(f"end to end with language ID + quality + near dedup: {out['ratio']:.2f}x the spine's docs/s")
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--words", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--e2e-records", type=int, default=10_000)
    parser.add_argument("--skip-e2e", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    bench_signatures(args.docs, args.words, args.rounds)
    if not args.skip_e2e:
        bench_end_to_end(args.e2e_records)


if __name__ == "__main__":
    main()
