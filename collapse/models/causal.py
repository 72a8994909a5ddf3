"""What the GPT-from-scratch and the fine-tuned Hugging Face models share: training, scoring and sampling.

Training is a plain torch loop (AdamW, linear warmup then cosine decay, gradient clipping) over fixed-length blocks
of the concatenated documents, each document framed as [bos] tokens [eos]. Scoring and training run with
use_cache=False; only generation uses the KV cache, batched.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers.utils import logging as hf_logging

from collapse.models.base import LogProb, NonFiniteLoss, SamplingOptions


@dataclass(frozen=True)
class TrainOptions:
    epochs: float = 3.0
    lr: float = 2e-3
    batch_size: int = 16
    block_size: int = 256
    warmup: float = 0.05  # fraction of the steps
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    max_steps: int | None = None
    sample_batch_size: int = 64
    score_batch_size: int = 16

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def make_blocks(docs: list[list[int]], block_size: int) -> list[list[int]]:
    """Concatenate the framed documents and cut the stream into blocks of block_size.

    The last block is completed with the stream's first tokens, so every block is full: no padding, hence no
    attention mask, which keeps torch's fused causal attention (several times faster on CPU than a masked one).
    """
    stream = [t for d in docs for t in d]
    if len(stream) <= block_size:
        return [stream] if len(stream) > 1 else []
    blocks = [stream[i: i + block_size] for i in range(0, len(stream), block_size)]
    if len(blocks[-1]) < block_size:
        blocks[-1] = (blocks[-1] + stream)[:block_size]
    return blocks


def pad_batch(seqs: list[list[int]], pad_id: int, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if left:
            ids[i, width - len(s):] = torch.tensor(s)
            mask[i, width - len(s):] = 1
        else:
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
    return ids, mask


def lr_lambda(warmup_steps: int, total_steps: int):
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return f


class CausalLM:
    """A transformers causal LM plus its tokenizer behind the harness interface."""

    name = "causal"

    def __init__(self, model: torch.nn.Module, tokenizer, train: TrainOptions | None = None,
                 sampling: SamplingOptions | None = None, seed: int = 0, device: str = "auto") -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.tok = tokenizer
        self.train_opts = train or TrainOptions()
        self.sampling = sampling or SamplingOptions()
        self.seed = seed
        self.eos = tokenizer.eos_token_id
        self.bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else self.eos
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos
        self.max_len = int(getattr(model.config, "n_positions", None) or model.config.max_position_embeddings)
        self.last_train_stats: dict[str, float] = {}
        self.step_times: list[float] = []
        self.progress = False  # a per-step training bar (the protocol turns it on with its own bars)

    # ---- tokens --------------------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        return self.tok(list(texts), add_special_tokens=False)["input_ids"]

    def framed(self, texts: Sequence[str]) -> list[list[int]]:
        return [[self.bos, *ids, self.eos] for ids in self.encode(texts)]

    def token_lengths(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([len(x) for x in self.encode(texts)], dtype=np.int64)

    # ---- training ------------------------------------------------------------------------------------------------
    def fit(self, texts: Sequence[str]) -> None:
        opts = self.train_opts
        block = min(opts.block_size, self.max_len)
        blocks = make_blocks(self.framed(texts), block)
        if not blocks:
            raise ValueError("no training blocks: the training texts are empty")
        steps_per_epoch = math.ceil(len(blocks) / opts.batch_size)
        total = opts.max_steps or max(1, math.ceil(opts.epochs * steps_per_epoch))
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        decay = [p for n, p in self.model.named_parameters() if p.requires_grad and p.dim() >= 2]
        no_decay = [p for n, p in self.model.named_parameters() if p.requires_grad and p.dim() < 2]
        groups = [{"params": decay, "weight_decay": opts.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        try:  # one fused kernel per step instead of one per parameter (what Trainer's default optimizer uses)
            optim = torch.optim.AdamW(groups, lr=opts.lr, fused=True)
        except (RuntimeError, ValueError):
            optim = torch.optim.AdamW(groups, lr=opts.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda(max(1, int(opts.warmup * total)), total))
        self.model.train()
        step, tokens, losses = 0, 0, []
        self.step_times = [time.perf_counter()]  # for tokens/s in bench/collapse.py
        bar = tqdm(total=total, desc="training", unit="step", leave=False, disable=not self.progress)
        try:
            while step < total:
                order = torch.randperm(len(blocks), generator=gen).tolist()
                for i in range(0, len(order), opts.batch_size):
                    if step >= total:
                        break
                    ids = torch.tensor([blocks[j] for j in order[i: i + opts.batch_size]], device=self.device)
                    loss = self.model(input_ids=ids, labels=ids, use_cache=False).loss
                    if not torch.isfinite(loss):
                        raise NonFiniteLoss(f"training loss is {loss.item()} at step {step + 1} of {total}")
                    loss.backward()
                    if opts.grad_clip:
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), opts.grad_clip, foreach=True)
                    optim.step()
                    sched.step()
                    optim.zero_grad(set_to_none=True)
                    step += 1
                    tokens += ids.numel()
                    losses.append(loss.item())
                    self.step_times.append(time.perf_counter())
                    bar.update(1)
        finally:
            bar.close()
        self.model.eval()
        self.last_train_stats = {"train_steps": step, "train_tokens": tokens,
                                 "train_loss": float(np.mean(losses[-10:]))}

    # ---- scoring -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def log_prob(self, texts: Sequence[str]) -> LogProb:
        """Each token predicted exactly once: long documents are cut into windows that overlap by one token."""
        self.model.eval()
        docs = self.framed(texts)
        width = self.max_len
        windows: list[tuple[int, list[int]]] = []
        for d, ids in enumerate(docs):
            for start in range(0, max(len(ids) - 1, 1), width - 1):
                windows.append((d, ids[start: start + width]))
        windows.sort(key=lambda w: len(w[1]))
        nats = np.zeros(len(docs))
        tokens = np.zeros(len(docs), dtype=np.int64)
        bs = self.train_opts.score_batch_size
        for i in range(0, len(windows), bs):
            chunk = windows[i: i + bs]
            ids, mask = pad_batch([w for _, w in chunk], self.pad)
            ids, mask = ids.to(self.device), mask.to(self.device)
            # Right padding needs no attention mask under causal attention: real tokens never see later pads.
            logits = self.model(input_ids=ids, use_cache=False).logits[:, :-1].float()
            lp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
            lp = (lp * mask[:, 1:]).sum(dim=1).cpu().numpy()
            for (d, w), v in zip(chunk, lp):
                nats[d] += v
                tokens[d] += len(w) - 1
        if not np.all(np.isfinite(nats)):
            raise NonFiniteLoss("scoring produced a non-finite log-probability")
        return LogProb(nats, tokens)

    # ---- sampling ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, prompts: Sequence[str] | None = None) -> list[str]:
        """n texts, batched with the KV cache; with prompts, the continuation of each prompt's first tokens."""
        self.model.eval()
        opts = self.sampling
        if prompts is not None:
            if len(prompts) != n:
                raise ValueError(f"got {len(prompts)} prompts for {n} samples")
            starts = [[self.bos, *ids[: opts.prompt_tokens]] for ids in self.encode(prompts)]
        else:
            starts = [[self.bos] for _ in range(n)]
        torch.manual_seed(self.seed + 1)
        out: list[str] = []
        bs = max(1, self.train_opts.sample_batch_size // opts.num_beams)
        for i in range(0, n, bs):
            batch = starts[i: i + bs]
            ids, mask = pad_batch(batch, self.pad, left=True)
            new = min(opts.max_new_tokens, self.max_len - ids.shape[1])
            if new <= 0:
                out.extend("" for _ in batch)
                continue
            kwargs = dict(max_new_tokens=new, pad_token_id=self.pad, eos_token_id=self.eos, use_cache=True)
            if opts.num_beams > 1:
                kwargs.update(do_sample=False, num_beams=opts.num_beams, early_stopping=True)
            else:
                kwargs.update(do_sample=True, temperature=opts.temperature, top_p=opts.top_p, top_k=0)
            gen = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kwargs)
            for row in gen[:, ids.shape[1]:].tolist():
                cut = row.index(self.eos) if self.eos in row else len(row)
                out.append(self.tok.decode(row[:cut], skip_special_tokens=True))
        return out

    # ---- persistence ---------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """safetensors weights + tokenizer files (never pickle)."""
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # one "Writing model shards" bar per generation is noise
        try:
            self.model.save_pretrained(str(path))
            self.tok.save_pretrained(str(path))
        finally:
            if bars:
                hf_logging.enable_progress_bar()
