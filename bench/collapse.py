"""Collapse harness benchmarks, in one run:

1. n-gram harness: seconds per generation per million training tokens (fit + sample + all metrics + checkpoint);
2. GPT training tokens/s: our plain torch loop vs transformers.Trainer, same model, data, optimizer and steps
   (target >= 1.0x; Trainer needs `accelerate`, the row is skipped without it);
3. GPT sampling tokens/s: batched with the KV cache vs a one-sequence-at-a-time loop (target >= 3x);
4. with --hf PATH_OR_ID (a GPU machine): the paper's fine-tune protocol's training and beam-search tokens/s.

    .venv/bin/python bench/collapse.py [--device cpu|cuda] [--threads N] [--hf facebook/opt-125m] [--json out.json]

No network: the corpus is the bundled real fixture (tests/data/collapse), replicated with fresh ids for scale.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collapse.data import load_corpus, split_corpus  # noqa: E402
from collapse.models.base import SamplingOptions  # noqa: E402
from collapse.protocol import RunConfig, run  # noqa: E402
from collapse.tokenizer import CachedEncoder, auto_vocab_size, train_tokenizer  # noqa: E402

FIXTURE = ROOT / "tests" / "data" / "collapse" / "human.parquet"


def machine() -> str:
    import os

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, load {load:.1f}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), {gpu}, Python {platform.python_version()}")


# ---- 1. n-gram harness ---------------------------------------------------------------------------------------------
def bench_ngram(shards: Path, scale: int, generations: int, workdir: Path) -> dict:
    texts = pq.read_table(shards, columns=["text"]).column("text").to_pylist()
    big = workdir / "scaled.parquet"
    # Fresh ids per copy: the split and the counts see scale x the corpus (timing only; duplicates cross the split).
    pq.write_table(pa.table({"id": [f"{k}-{i}" for k in range(scale) for i in range(len(texts))],
                             "text": texts * scale}), big)
    out = workdir / "ngram_run"
    cfg = RunConfig(shards=str(big), regime="replace", generations=generations, seeds=1, progress=False)
    t0 = time.perf_counter()
    run(cfg, out, log=lambda *a: None)
    wall = time.perf_counter() - t0
    rows = [json.loads(p.read_text()) for p in sorted((out / "seed_0").glob("gen_*/metrics.json"))]
    train, _ = split_corpus(load_corpus(big))
    tok = train_tokenizer(train.texts, auto_vocab_size(train.texts))
    enc = CachedEncoder(tok, max_tokens=0)
    tokens = [sum(len(x) for x in enc(pq.read_table(p).column("text").to_pylist()))
              for p in sorted((out / "seed_0").glob("gen_*/train.parquet"))]
    per_gen = [r["fit_sample_seconds"] + r["metric_seconds"] for r in rows]
    per_m = [s / (t / 1e6) for s, t in zip(per_gen, tokens)]
    return {"docs": len(texts) * scale, "generations": len(rows), "train_tokens_per_generation": tokens,
            "seconds_per_generation": per_gen, "seconds_per_generation_per_million_tokens": float(np.mean(per_m)),
            "wall_seconds_incl_tokenizer_and_report": wall}


# ---- 2. GPT training: our loop vs Trainer --------------------------------------------------------------------------
def gpt_blocks(size: str, device: str):
    from collapse.models.causal import TrainOptions, make_blocks
    from collapse.models.gpt import SIZES, GPTModel

    texts = pq.read_table(FIXTURE, columns=["text"]).column("text").to_pylist()
    tok = train_tokenizer(texts, 512)
    opts = TrainOptions(block_size=SIZES[size]["n_positions"], batch_size=16, lr=2e-3, warmup=0.1)
    model = GPTModel(tok, size, opts, seed=0, device=device)
    return model, make_blocks(model.framed(texts), opts.block_size), opts


def steady_tokens_per_s(times: list[float], tokens_per_step: int, skip: int = 2) -> float:
    return tokens_per_step * (len(times) - 1 - skip) / (times[-1] - times[skip])


def bench_train(size: str, steps: int, device: str, workdir: Path, rounds: int = 2) -> dict:
    """Steady-state tokens/s (steps 3..N) of both loops from the same initial weights, interleaved `rounds` times
    on a shared machine; the best round of each side counts."""
    import torch

    from collapse.models.causal import TrainOptions

    ours, blocks, opts = gpt_blocks(size, device)
    init = {k: v.detach().clone() for k, v in ours.model.state_dict().items()}
    texts = pq.read_table(FIXTURE, columns=["text"]).column("text").to_pylist()
    tps = opts.batch_size * opts.block_size
    ours.train_opts = TrainOptions(**{**opts.to_dict(), "max_steps": steps})
    ours.fit(["a short warm-up text"])  # so that neither side pays first-call costs in its timed steps
    result = {"model": size, "steps": steps, "tokens_per_step": tps, "rounds": rounds, "ours_tokens_per_s": 0.0}
    try:
        import accelerate  # noqa: F401
        from transformers import Trainer, TrainerCallback, TrainingArguments
    except ImportError as e:
        Trainer = None  # noqa: N806
        result["trainer"] = f"skipped: {e}"

    if Trainer is not None:
        class Clock(TrainerCallback):
            def __init__(self):
                self.times = []

            def on_step_begin(self, args, state, control, **kw):
                if not self.times:
                    self.times.append(time.perf_counter())

            def on_step_end(self, args, state, control, **kw):
                self.times.append(time.perf_counter())

        data = [{"input_ids": torch.tensor(b), "labels": torch.tensor(b)} for b in blocks]
        args = TrainingArguments(
            output_dir=str(workdir / "trainer"), per_device_train_batch_size=opts.batch_size, max_steps=steps,
            learning_rate=opts.lr, weight_decay=opts.weight_decay, warmup_steps=max(1, int(opts.warmup * steps)),
            lr_scheduler_type="cosine", max_grad_norm=opts.grad_clip, logging_strategy="no", save_strategy="no",
            report_to=[], use_cpu=device == "cpu", dataloader_num_workers=0, seed=0, disable_tqdm=True)
        result["trainer_tokens_per_s"] = 0.0
    for _ in range(rounds):
        ours.model.load_state_dict(init)
        ours.fit(texts)
        result["ours_tokens_per_s"] = max(result["ours_tokens_per_s"], steady_tokens_per_s(ours.step_times, tps))
        result["ours_final_loss"] = ours.last_train_stats["train_loss"]
        if Trainer is not None:
            ours.model.load_state_dict(init)  # same initial weights, same blocks
            clock = Clock()
            Trainer(model=ours.model, args=args, train_dataset=data, callbacks=[clock]).train()
            result["trainer_tokens_per_s"] = max(result["trainer_tokens_per_s"], steady_tokens_per_s(clock.times, tps))
    if Trainer is not None:
        result["ours_over_trainer"] = result["ours_tokens_per_s"] / result["trainer_tokens_per_s"]
    return result


# ---- 3. sampling: batched KV cache vs one sequence at a time -------------------------------------------------------
def bench_sampling(size: str, n: int, new_tokens: int, device: str) -> dict:
    import torch

    from collapse.models.causal import TrainOptions

    model, _, _ = gpt_blocks(size, device)  # untrained weights: the end token is rare, sequences run full length
    model.train_opts = TrainOptions(sample_batch_size=n)
    model.sampling = SamplingOptions(max_new_tokens=new_tokens)
    model.sample(2)  # warm-up
    t = time.perf_counter()
    texts = model.sample(n)
    batched_s = time.perf_counter() - t
    batched_tokens = sum(len(x) for x in model.encode(texts))

    m = model.model.eval()
    k = max(2, n // 16)
    t = time.perf_counter()
    loop_tokens = 0
    with torch.no_grad():
        for _ in range(k):  # the naive loop: one sequence, the whole prefix re-run at every step, no cache
            ids = torch.tensor([[model.bos]], device=model.device)
            for _ in range(new_tokens):
                logits = m(input_ids=ids, use_cache=False).logits[:, -1]
                nxt = torch.multinomial(torch.softmax(logits.float(), -1), 1)
                ids = torch.cat([ids, nxt], dim=1)
                loop_tokens += 1
                if nxt.item() == model.eos:
                    break
    loop_s = time.perf_counter() - t

    model.train_opts = TrainOptions(sample_batch_size=1)
    t = time.perf_counter()
    single = model.sample(k)  # one sequence at a time, with the KV cache
    single_s = time.perf_counter() - t
    single_tokens = sum(len(x) for x in model.encode(single))
    batched = batched_tokens / batched_s
    return {"model": size, "sequences": n, "max_new_tokens": new_tokens,
            "batched_kv_tokens_per_s": batched, "one_at_a_time_no_cache_tokens_per_s": loop_tokens / loop_s,
            "one_at_a_time_kv_tokens_per_s": single_tokens / single_s,
            "batched_over_one_at_a_time": batched / (loop_tokens / loop_s),
            "batched_over_one_at_a_time_kv": batched / (single_tokens / single_s)}


# ---- 4. the paper's fine-tune protocol (GPU) -----------------------------------------------------------------------
def bench_hf(path_or_id: str, device: str, steps: int) -> dict:
    from collapse.models.causal import TrainOptions
    from collapse.models.hf import PAPER_TRAIN, HFModel

    texts = pq.read_table(FIXTURE, columns=["text"]).column("text").to_pylist()
    opts = TrainOptions(**{**PAPER_TRAIN.to_dict(), "max_steps": steps, "sample_batch_size": 320})
    m = HFModel(path_or_id, opts, SamplingOptions(num_beams=5, max_new_tokens=64, prompt_tokens=64), device=device)
    m.fit(texts)
    tps = opts.batch_size * opts.block_size
    t = time.perf_counter()
    out = m.sample(256, prompts=texts[:256])
    s = time.perf_counter() - t
    return {"model": path_or_id, "train_tokens_per_s": steady_tokens_per_s(m.step_times, tps),
            "beam5_sampling_tokens_per_s": sum(len(x) for x in m.encode(out)) / s, "block": opts.block_size}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu | cuda: where the GPT / HF parts run")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--shards", default=str(FIXTURE))
    p.add_argument("--scale", type=int, default=4, help="replicate the corpus this many times (n-gram part)")
    p.add_argument("--generations", type=int, default=3)
    p.add_argument("--gpt-size", default="small")
    p.add_argument("--train-steps", type=int, default=12)
    p.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds of our loop and Trainer")
    p.add_argument("--sample-seqs", type=int, default=64)
    p.add_argument("--sample-tokens", type=int, default=128)
    p.add_argument("--hf", help="also time the paper's fine-tune protocol with this model (path or id)")
    p.add_argument("--hf-steps", type=int, default=50)
    p.add_argument("--skip", default="", help="comma list of parts to skip: ngram,train,sample")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    skip = set(filter(None, args.skip.split(",")))
    results: dict = {"machine": machine(), "command": " ".join(["bench/collapse.py", *sys.argv[1:]])}
    print(f"machine: {results['machine']}")
    work = Path(tempfile.mkdtemp(prefix="bench_collapse_"))
    try:
        if "ngram" not in skip:
            r = results["ngram"] = bench_ngram(Path(args.shards), args.scale, args.generations, work)
            mtok = np.mean(r["train_tokens_per_generation"]) / 1e6
            print(f"n-gram harness: {r['seconds_per_generation_per_million_tokens']:.2f} s per generation per "
                  f"million training tokens ({r['docs']} docs, ~{mtok:.2f}M tokens/generation, {r['generations']} "
                  f"generations, {r['wall_seconds_incl_tokenizer_and_report']:.1f} s wall in all)")
        if "train" not in skip:
            r = results["train"] = bench_train(args.gpt_size, args.train_steps, args.device, work, args.rounds)
            line = f"GPT-{args.gpt_size} training ({args.device}): ours {r['ours_tokens_per_s']:.0f} tokens/s"
            if "trainer_tokens_per_s" in r:
                line += (f", transformers.Trainer {r['trainer_tokens_per_s']:.0f} tokens/s -> "
                         f"{r['ours_over_trainer']:.2f}x (target >= 1.0x)")
            else:
                line += f"; Trainer {r['trainer']}"
            print(line)
        if "sample" not in skip:
            r = results["sample"] = bench_sampling(args.gpt_size, args.sample_seqs, args.sample_tokens, args.device)
            print(f"GPT-{args.gpt_size} sampling ({args.device}): batched+KV {r['batched_kv_tokens_per_s']:.0f} "
                  f"tokens/s, one-at-a-time loop {r['one_at_a_time_no_cache_tokens_per_s']:.0f} tokens/s -> "
                  f"{r['batched_over_one_at_a_time']:.1f}x (target >= 3x); one-at-a-time with KV cache "
                  f"{r['one_at_a_time_kv_tokens_per_s']:.0f} tokens/s -> {r['batched_over_one_at_a_time_kv']:.1f}x")
        if args.hf:
            r = results["hf"] = bench_hf(args.hf, args.device, args.hf_steps)
            print(f"HF fine-tune {args.hf} ({args.device}): training {r['train_tokens_per_s']:.0f} tokens/s "
                  f"(64-token blocks), beam-5 continuation {r['beam5_sampling_tokens_per_s']:.0f} tokens/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=lambda x: None if isinstance(x, float)
                                              and not math.isfinite(x) else x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
