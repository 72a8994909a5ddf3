"""Scoring benchmark, in one run:

1. pipeline documents/s with the fastText detector over the same pipeline without scoring (target: scoring costs
   <= 15% of throughput), on the ingest benchmark's corpus of real pages;
2. tokens/s of Binoculars wrapped in Beam (RunInference inside `lowbg curate`) over direct `detectors` scoring
   of the same texts outside Beam (target >= 0.8x), with a pair of tiny GPT-2 models built here from configs.
   Like for like: the Beam figure is a pipeline's time minus the same pipeline's without the detector, which
   includes importing torch and transformers and loading the models (a run without a language model imports
   neither); the direct figure is, the same way, a fresh process that imports, loads and scores minus one that
   only imports the library. The warm direct rate (models loaded, in this process) is printed beside it.

    python bench/pipeline_scoring.py [--records 4000] [--rounds 3] [--lm-docs 300] [--device cpu] [--skip-lm]

``--skip-lm`` runs [1] only (no torch, no models built): for iterating on the cheap detector's cost.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import build_corpus  # noqa: E402


def curate(paths: list[Path], output: Path, extra: list[str]) -> tuple[float, dict]:
    argv = [sys.executable, "-m", "pipeline.cli", "curate", "--output", str(output), "--overwrite", "--dedup",
            "none", "--direct_running_mode=in_memory", "--direct_num_workers=1", *extra]
    for p in paths:
        argv += ["--input", str(p)]
    start = time.perf_counter()
    subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    return elapsed, json.loads((output / "manifest.json").read_text())


DIRECT_SCRIPT = """
import json, sys
from detectors.registry import build_detector
if sys.argv[1] == "score":
    texts = [json.loads(line)["text"] for line in open(sys.argv[2], encoding="utf-8")]
    detector = build_detector("binoculars", observer=sys.argv[3], performer=sys.argv[4], device=sys.argv[5],
                              max_tokens=8192)
    detector.score(texts)
"""


def direct_cold(texts: Path, observer: Path, performer: Path, device: str) -> float:
    """Seconds a fresh process takes to import the inference stack, load the pair and score ``texts``, minus a
    fresh process that imports only the detectors library: what the Beam run's difference also includes."""
    def timed(*argv: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", DIRECT_SCRIPT, *argv], check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return time.perf_counter() - start
    return timed("score", str(texts), str(observer), str(performer), device) - timed("noop")


def tiny_pair(folder: Path) -> tuple[Path, Path]:
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    texts = [json.loads(line)["text"] for line in open(folder / "texts.jsonl", encoding="utf-8")]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=2048, min_frequency=2, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    dirs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        cfg = GPT2Config(n_layer=4, n_embd=256, n_head=4, n_positions=512, vocab_size=len(tok))
        d = folder / f"lm{seed}"
        GPT2LMHeadModel(cfg).save_pretrained(d)
        tok.save_pretrained(d)
        dirs.append(d)
    return dirs[0], dirs[1]


def write_text_warc(path: Path, texts: list[str]) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for i, text in enumerate(texts):
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/plain; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(
                f"http://lm.example/{i}", "response", payload=io.BytesIO(text.encode()), http_headers=http,
                warc_headers_dict={"WARC-Date": "2024-05-18T01:58:10Z"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--lm-docs", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds of [1] (the median is the figure)")
    parser.add_argument("--skip-lm", action="store_true", help="run [1] only, not the Binoculars part [2]")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lowbg-bench-scoring-"))
    try:
        paths = build_corpus(work, args.records, 2)
        costs = []
        for r in range(args.rounds):  # alternating which goes first: a neighbour's load hits both alike
            order = [("base", "none"), ("ft", "fasttext")]
            timed = {}
            for label, detectors in (order if r % 2 == 0 else order[::-1]):
                timed[label] = curate(paths, work / label, ["--detectors", detectors])
            (base_s, base), ft_s = timed["base"], timed["ft"][0]
            docs = base["counts"]["curated"]
            costs.append(1 - base_s / ft_s)
            print(f"    round {r + 1}: without scoring {docs / base_s:.0f} docs/s ({base_s:.1f} s); with fastText "
                  f"{docs / ft_s:.0f} docs/s ({ft_s:.1f} s) -> {100 * costs[-1]:.1f}%")
        print(f"[1] {args.records} real-page records, {docs} documents kept")
        print(f"    scoring costs {100 * statistics.median(costs):.1f}% of throughput, median of {args.rounds} rounds "
              f"(target <= 15%)")
        if args.skip_lm:
            print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
            return

        # [2] the same texts through Binoculars in Beam and directly.
        from pipeline.document import Document  # noqa: F401  (import cost outside the timings)
        rows = []
        import pyarrow.parquet as pq
        for shard in sorted((work / "base" / "curated").glob("*.parquet")):
            rows += pq.read_table(shard, columns=["text"]).column("text").to_pylist()
        texts = [t for t in rows if len(t.split()) > 30][: args.lm_docs]
        with open(work / "texts.jsonl", "w", encoding="utf-8") as fh:
            for t in texts:
                fh.write(json.dumps({"text": t}) + "\n")
        observer, performer = tiny_pair(work)
        from detectors.registry import build_detector
        detector = build_detector("binoculars", observer=str(observer), performer=str(performer),
                                  device=args.device, max_tokens=8192)
        detector.score(texts[:4])  # warm-up
        start = time.perf_counter()
        direct = detector.score(texts)
        warm_s = time.perf_counter() - start
        tokens = sum(s.tokens for s in direct)
        cold_s = direct_cold(work / "texts.jsonl", observer, performer, args.device)
        write_text_warc(work / "lm.warc.gz", texts)
        # Pipeline time minus the same pipeline without the LM: the Beam-wrapped scoring's own cost.
        lm_base_s, _ = curate([work / "lm.warc.gz"], work / "lm_base", ["--detectors", "none"])
        lm_s, lm = curate([work / "lm.warc.gz"], work / "lm", [
            "--detectors", "binoculars", "--observer", str(observer), "--performer", str(performer),
            "--device", args.device, "--max-tokens", "8192", "--on-uncertain", "keep"])
        beam_scoring_s = max(1e-9, lm_s - lm_base_s)
        print(f"[2] Binoculars, tiny GPT-2 pair (4 layers, d=256), {len(texts)} texts, {tokens} tokens")
        print(f"    direct library, fresh process (imports, model load, scoring): {tokens / cold_s:.0f} tokens/s; "
              f"in Beam (pipeline time minus the same pipeline without scoring): {tokens / beam_scoring_s:.0f} "
              f"tokens/s -> {cold_s / beam_scoring_s:.2f}x the direct library (target >= 0.8x)")
        print(f"    direct library, warm (models loaded, scoring only): {tokens / warm_s:.0f} tokens/s; "
              f"import + load: {cold_s - warm_s:.1f} s of the fresh process's {cold_s:.1f} s")
        scored = lm["metrics"].get("score:binoculars", {}).get("kept", 0)  # counters by stage (pipeline/steps.py)
        print(f"    (Beam run scored {scored} documents)")
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
