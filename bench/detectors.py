"""Binoculars throughput: our batched scorer against a straightforward implementation, same texts, one run.

    python bench/detectors.py                          # CPU, tiny models (target: ratio >= 1.5)
    python bench/detectors.py --device cuda --size 1b  # GPU, bf16, two ~1.2B-parameter GPT-2 models

"Straightforward" = what the reference code does: batches of a fixed number of texts in input order, padded to the
longest, full logits of both models, full fp32 softmax / log-softmax over the vocabulary. "Ours" =
detectors.binoculars.Binoculars: length-sorted batches under a token budget, vocabulary projection only at real
positions, chunked fp32 statistics. Models are built from configs with random weights (throughput does not depend
on the weights); the tokenizer is a byte-level BPE trained here on tests/data/detect. On a GPU the script also
measures the bf16 matmul rate (a large torch.matmul) and reports the fraction of it our scorer achieves.
Nothing is downloaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This script is named like the package it measures: keep its own folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from detectors.binoculars import Binoculars  # noqa: E402
from detectors.lm import resolve_device, resolve_dtype, wrap_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZES = {  # GPT-2 configs; "1b": ~1.2B parameters each (22 layers x 2048)
    "tiny": dict(n_layer=4, n_embd=256, n_head=4, vocab_size=8192),
    "1b": dict(n_layer=22, n_embd=2048, n_head=16, vocab_size=50304),
}
MAX_LENGTH = 512


def load_texts(n: int, seed: int) -> list[str]:
    """Mixed-length texts (a few words to well past 512 tokens) from the test data's human and machine texts."""
    pool = []
    for path in sorted((ROOT / "tests" / "data" / "detect").rglob("*.raw_data.json")):
        d = json.loads(path.read_text(encoding="utf-8"))
        pool += d["original"] + d["sampled"]
    rng = random.Random(seed)
    words = " ".join(pool).split()
    out = []
    for _ in range(n):
        length = int(round(2 ** rng.uniform(3, 9.5)))  # 8 .. ~720 words, log-uniform
        start = rng.randrange(0, len(words) - length)
        out.append(" ".join(words[start:start + length]))
    return out, pool


def make_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())  # byte-level BPE, as GPT-2's
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>", pad_token="<|endoftext|>")


def make_model(size: str, seed: int, device: torch.device, dtype: torch.dtype):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(n_positions=1024, bos_token_id=0, eos_token_id=0, **SIZES[size])
    with torch.device(device):
        model = GPT2LMHeadModel(cfg)
    return model.to(dtype).eval()


@torch.inference_mode()
def straightforward(observer, performer, tok, texts: list[str], batch_size: int) -> list[float]:
    """The reference implementation's computation (ahans30/Binoculars metrics.py), batch by batch."""
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tok(texts[i:i + batch_size], return_tensors="pt", padding="longest", truncation=True,
                  max_length=MAX_LENGTH, return_token_type_ids=False).to(observer.device)
        obs = observer(**enc).logits.float()
        perf = performer(**enc).logits.float()
        mask = enc.attention_mask[:, 1:].float()
        nll = F.cross_entropy(perf[:, :-1].transpose(1, 2), enc.input_ids[:, 1:], reduction="none")
        ppl = (nll * mask).sum(1) / mask.sum(1)
        x_ent = -(torch.softmax(obs, -1) * torch.log_softmax(perf, -1)).sum(-1)
        pad = (enc.input_ids != tok.pad_token_id).float()
        x_ppl = (x_ent * pad).sum(1) / pad.sum(1)
        out += (ppl / x_ppl).tolist()
    return out


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        name = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.machine()
    return f"{name}, {torch.get_num_threads()} torch threads"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 8192, reps: int = 20) -> float:
    """Measured dense matmul rate in FLOP/s (the 'peak' we compare against)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t)


def flops_per_token(model, mean_context: float) -> float:
    """Forward FLOPs per token of one model: 2 x matmul parameters (incl. the LM head) + causal attention."""
    cfg = model.config
    body = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "wte" not in n and "wpe" not in n)
    head = cfg.vocab_size * cfg.n_embd
    attention = 2 * 2 * cfg.n_layer * cfg.n_embd * mean_context / 2  # QK^T and AV over half the context on average
    return 2 * (body + head) + attention


def timed(fn, device):
    sync(device)
    t = time.perf_counter()
    result = fn()
    sync(device)
    return result, time.perf_counter() - t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--size", choices=sorted(SIZES), default="tiny")
    p.add_argument("--dtype", default=None, help="default: bf16 on GPU, fp32 on CPU")
    p.add_argument("--n-texts", type=int, help="default 256 (tiny) / 2048 (1b)")
    p.add_argument("--max-tokens", type=int, help="our token budget per batch (default 8192 / 32768)")
    p.add_argument("--batch-size", type=int, default=16, help="texts per batch of the straightforward version")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-baseline", action="store_true")
    args = p.parse_args(argv)

    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    n_texts = args.n_texts or (256 if args.size == "tiny" else 2048)
    max_tokens = args.max_tokens or (8192 if args.size == "tiny" else 32768)
    texts, pool = load_texts(n_texts, args.seed)
    tok = make_tokenizer(pool, 8192)
    observer = make_model(args.size, 1, device, dtype)
    performer = make_model(args.size, 2, device, dtype)
    det = Binoculars(wrap_model(observer, tok, "observer"), wrap_model(performer, tok, "performer"),
                     max_length=MAX_LENGTH, max_tokens=max_tokens)
    lengths = [len(ids) for ids, _ in det.encode(texts)]
    n_tokens = sum(lengths)
    n_params = sum(p.numel() for p in observer.parameters())
    print(f"device={device} ({machine(device)}) torch={torch.__version__} dtype={dtype} size={args.size} "
          f"({n_params / 1e6:.1f}M params "
          f"per model, vocab {observer.config.vocab_size}) texts={n_texts} tokens={n_tokens} (length "
          f"{min(lengths)}..{max(lengths)}, mean {n_tokens / n_texts:.0f}) max_tokens={max_tokens} "
          f"baseline batch={args.batch_size}")

    det.score(texts[:4])  # warm-up (kernels, allocator)
    ours, t_ours = timed(lambda: det.score(texts), device)
    tps_ours = n_tokens / t_ours
    print(f"ours:            {t_ours:8.2f} s  {tps_ours:10.0f} tokens/s")
    if not args.skip_baseline:
        straightforward(observer, performer, tok, texts[:4], args.batch_size)
        base, t_base = timed(lambda: straightforward(observer, performer, tok, texts, args.batch_size), device)
        tps_base = n_tokens / t_base
        diff = max(abs(a.value - b) for a, b in zip(ours, base))
        print(f"straightforward: {t_base:8.2f} s  {tps_base:10.0f} tokens/s")
        print(f"ratio ours/straightforward: {tps_ours / tps_base:.2f}x  (max |score difference| {diff:.2e})")
    if device.type == "cuda":
        peak = matmul_peak(device, dtype)
        mean_ctx = sum(n * n for n in lengths) / n_tokens
        achieved = tps_ours * 2 * flops_per_token(observer, mean_ctx)
        print(f"measured {dtype} matmul rate: {peak / 1e12:.1f} TFLOP/s; ours: {achieved / 1e12:.1f} TFLOP/s "
              f"= {achieved / peak:.1%} of it (model FLOPs of both forward passes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
