"""What filtering costs a web-regime generation: the share of its time spent scoring the crawl (and, for a detector
over the harness's own model, calibrating it), for the n-gram setting of the test and demo and for the `small` GPT;
and, as the baseline measured in the same run, the same scorer called one text at a time.

    .venv/bin/python bench/collapse_web.py [--skip gpt] [--threads N] [--json out.json]

Figures:
1. n-gram (order 3, the setting of tests/collapse/test_web.py, 1 seed): per arm, the mean over generations 1..3 of
   filter_seconds / generation_seconds (generation_seconds = crawl + filter + fit + sample + metrics), and each
   detector arm's generation time over the `none` arm's;
2. the white-box n-gram scorer and the library's FastDetectGPT over the toy/small GPT: texts/s batched (one call
   for the pool) against one text per call;
3. `small` GPT (the CPU default, 3 epochs): one web generation with detector:fast-detectgpt:gen0, its filter share.
No network: the corpus is the bundled real fixture (tests/data/collapse).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.collapse import machine  # noqa: E402
from collapse.experiment import arm_dirs, run_web  # noqa: E402
from collapse.protocol import RunConfig, load_model, run  # noqa: E402

FIXTURE = ROOT / "tests" / "data" / "collapse" / "human.parquet"
NGRAM = dict(shards=str(FIXTURE), regime="web", contamination="0.2,0.5,0.5", generations=3, seeds=1, order=3,
             crawl_factor=2.0, synthetic_from="last", real_pool_use="consume", filter_fpr=0.05,
             calibration_fraction=0.15, progress=False)
ARMS = ["none", "detector:fast-detectgpt:last", "detector:fast-detectgpt:gen0", "detector:likelihood:gen0"]


def _rows(run_dir: Path) -> list[dict]:
    return [r for r in pq.read_table(run_dir / "metrics.parquet").to_pylist() if r["generation"] > 0]


def _texts_of(run_dir: Path, g: int) -> list[str]:
    train = pq.read_table(run_dir / "seed_0" / f"gen_{g:03d}" / "train.parquet").column("text").to_pylist()
    samples = pq.read_table(run_dir / "seed_0" / f"gen_{g:03d}" / "samples.parquet").column("text").to_pylist()
    return [t for t in train + samples if t.strip()]


def batched_vs_single(scorer, texts: list[str]) -> dict:
    scorer.score(texts[:4])  # warm-up: first-call costs belong to neither side
    t0 = time.perf_counter()
    batched = scorer.score(texts)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = [scorer.score([t])[0] for t in texts]
    t_single = time.perf_counter() - t0
    a = np.array([np.nan if s.value is None else s.value for s in batched])
    b = np.array([np.nan if s.value is None else s.value for s in single])
    return {"texts": len(texts), "batched_texts_per_s": len(texts) / t_batched,
            "single_texts_per_s": len(texts) / t_single, "speedup": t_single / t_batched,
            "max_abs_difference": float(np.nanmax(np.abs(a - b)))}


def bench_ngram(workdir: Path) -> dict:
    out = workdir / "ngram"
    t0 = time.perf_counter()
    run_web(RunConfig(**NGRAM), ARMS, out, log=lambda *a: None)
    wall = time.perf_counter() - t0
    arms = arm_dirs(out)
    base = np.mean([r["generation_seconds"] for r in _rows(arms["none"])])
    result = {"setting": NGRAM, "wall_seconds": wall, "none_generation_seconds": float(base), "arms": {}}
    for arm in ARMS[1:]:
        rows = _rows(arms[arm])
        result["arms"][arm] = {
            "filter_share": float(np.mean([r["filter_share"] for r in rows])),
            "filter_seconds": float(np.mean([r["filter_seconds"] for r in rows])),
            "generation_seconds": float(np.mean([r["generation_seconds"] for r in rows])),
            "generation_time_vs_none": float(np.mean([r["generation_seconds"] for r in rows]) / base),
            # the rest of the generation differs from the none arm's too: its models write different samples
            "rest_of_generation_vs_none": float(np.mean([r["generation_seconds"] - r["filter_seconds"]
                                                         for r in rows]) / base),
            "texts_scored_per_generation": float(np.mean([r["filter_texts_scored"] for r in rows])),
        }
    from collapse.whitebox import NGramDetector

    cfg = RunConfig(**{**NGRAM, "filter": ARMS[1]})
    from collapse.models.base import SamplingOptions
    from collapse.tokenizer import CachedEncoder, load_tokenizer

    enc = CachedEncoder(load_tokenizer(arms[ARMS[1]] / "tokenizer.json"))
    model = load_model(cfg, arms[ARMS[1]] / "seed_0" / "gen_001" / "model", SamplingOptions(), 0, enc)
    result["ngram_scorer_batched_vs_single"] = batched_vs_single(
        NGramDetector(model, "fast-detectgpt", "bench"), _texts_of(arms[ARMS[1]], 2)[:200])
    return result


def bench_gpt(workdir: Path, size: str) -> dict:
    out = workdir / f"gpt_{size}"
    cfg = RunConfig(shards=str(FIXTURE), model="gpt", gpt_size=size, regime="web", contamination=0.5, generations=1,
                    seeds=1, max_docs=500, sample_size=100, filter="detector:fast-detectgpt:gen0", filter_fpr=0.05,
                    max_new_tokens=256, device="cpu", progress=False)
    t0 = time.perf_counter()
    run(cfg, out, log=lambda *a: None)
    wall = time.perf_counter() - t0
    row = _rows(out)[0]
    from collapse.models.base import SamplingOptions
    from detectors.fast_detectgpt import FastDetectGPT
    from detectors.lm import wrap_model

    model = load_model(cfg, out / "seed_0" / "gen_000" / "model", SamplingOptions(), 0)
    scorer = FastDetectGPT(wrap_model(model.model, model.tok, "bench"))
    return {"model": f"gpt {size}", "wall_seconds": wall, "filter_share": row["filter_share"],
            "filter_seconds": row["filter_seconds"], "generation_seconds": row["generation_seconds"],
            "texts_scored": row["filter_texts_scored"], "train_steps": row.get("train_steps"),
            "library_scorer_batched_vs_single": batched_vs_single(scorer, _texts_of(out, 1)[:120])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--skip", action="append", default=[], choices=["ngram", "gpt"])
    p.add_argument("--gpt-size", default="small", choices=["toy", "tiny", "small"])
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--json", help="write the figures here too")
    args = p.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    results = {"machine": machine(), "command": " ".join(sys.argv)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "ngram" not in args.skip:
            results["ngram"] = r = bench_ngram(work)
            print(f"n-gram web generation (order 3, {NGRAM['contamination']}, crawl factor 2; 'none' arm "
                  f"{r['none_generation_seconds']:.2f} s per generation):")
            for arm, a in r["arms"].items():
                print(f"  {arm:32s} filter share {100 * a['filter_share']:5.1f}% of the generation "
                      f"({a['filter_seconds']:.2f} of {a['generation_seconds']:.2f} s, "
                      f"{a['texts_scored_per_generation']:.0f}"
                      f" texts); generation time {a['generation_time_vs_none']:.2f}x the none arm's "
                      f"({a['rest_of_generation_vs_none']:.2f}x without the filter)")
            b = r["ngram_scorer_batched_vs_single"]
            print(f"  white-box scorer, batched vs one text per call: {b['speedup']:.1f}x "
                  f"({b['batched_texts_per_s']:.0f} vs {b['single_texts_per_s']:.0f} texts/s, "
                  f"max |diff| {b['max_abs_difference']:.1e})")
        if "gpt" not in args.skip:
            results["gpt"] = g = bench_gpt(work, args.gpt_size)
            b = g["library_scorer_batched_vs_single"]
            print(f"{g['model']} web generation with detector:fast-detectgpt:gen0: filter share "
                  f"{100 * g['filter_share']:.1f}% ({g['filter_seconds']:.1f} of {g['generation_seconds']:.1f} s, "
                  f"{g['texts_scored']:.0f} texts)")
            print(f"  library FastDetectGPT over the harness GPT, batched vs one text per call: {b['speedup']:.1f}x "
                  f"({b['batched_texts_per_s']:.1f} vs {b['single_texts_per_s']:.1f} texts/s, "
                  f"max |diff| {b['max_abs_difference']:.1e})")
    print(results["machine"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
