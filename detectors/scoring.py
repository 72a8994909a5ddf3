"""The batching engine shared by the zero-shot scorers (Binoculars, Fast-DetectGPT, likelihood, ...).

Each scorer states two small things: `token_stats`, the per-position quantities its formula needs, computed
from fp32 logits of one chunk of positions, and `finalize`, which turns a text's sums of those quantities into
its score. The engine does the rest, once, for all of them:

* texts are normalised, tokenised, truncated to `max_length` (flagged), sorted by length and packed into batches
  of at most `max_tokens` padded tokens, so padding waste is small and long texts do not share a batch with
  short ones;
* every model runs once per batch with `use_cache=False` under `torch.inference_mode()`;
* the vocabulary projection is applied only to real (non-padding) positions, a chunk of positions at a time,
  so at most `chunk_elements` fp32 logits per model exist at once instead of a [batch, length, vocab] copy;
* per-text sums are accumulated in float64, so batching and order do not change a score beyond float noise.
"""

from __future__ import annotations

import torch

from detectors.base import DEFAULT_MAX_TOKENS, Score, estimate_tokens, unscorable
from detectors.lm import LoadedLM, check_same_tokenizer
from detectors.normalize import normalize_text

# fp32 logits per model per chunk: 64 MiB on CPU (cache-friendly), 512 MiB on GPU (large lm-head matmuls).
DEFAULT_CHUNK_ELEMENTS = {"cpu": 1 << 24, "cuda": 1 << 27}


def plan_batches(lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Indices grouped into batches, longest first, each with len(batch) * longest <= max_tokens (min. 1 text)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and (len(current) + 1) * longest > max_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class LMScorer:
    """Base class of the language-model scorers. Subclasses set name/direction and define the formula."""

    name = "lm"
    direction = "higher_is_machine"
    published_thresholds: dict[str, float] = {}

    def __init__(self, lms: list[LoadedLM], *, max_length: int | None = None, max_tokens: int = DEFAULT_MAX_TOKENS,
                 min_tokens: int = 2, chunk_elements: int | None = None) -> None:
        if not lms:
            raise ValueError("need at least one model")
        for other in lms[1:]:
            check_same_tokenizer(lms[0], other)
        self.lms = lms
        # The first model's tokenizer is used (the reference implementations do the same; they are identical).
        self.tokenizer = lms[0].tokenizer
        context = min(lm.context_length for lm in lms)
        self.max_length = min(max_length, context) if max_length else context
        self.max_tokens = max(int(max_tokens), self.max_length)
        self.min_tokens = max(2, int(min_tokens))  # every formula needs at least one next-token prediction
        self.chunk_elements = int(chunk_elements or DEFAULT_CHUNK_ELEMENTS.get(lms[0].device.type, 1 << 24))
        # When two models' output layers differ in size (padding rows), compare the common vocabulary, as
        # Fast-DetectGPT's reference code does.
        self.vocab = min(lm.vocab_size for lm in lms)
        self.model_ids = [lm.model_id for lm in lms]

    # -- to be defined by each scorer -------------------------------------------------------------------------
    def token_stats(self, logits: list[torch.Tensor], labels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Per-position quantities, shape [n, k]. logits[m] is model m's fp32 logits [n, vocab] at n positions;
        labels[i] is the next token (-1 at a text's last position, which has none); ids[i] is the token at i."""
        raise NotImplementedError

    def finalize(self, sums: list[float]) -> float | None:
        """Score of one text from the column sums of its token_stats; None when the formula is undefined."""
        raise NotImplementedError

    # -- shared machinery --------------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text, self.max_length)

    def encode(self, texts: list[str]) -> list[tuple[list[int], bool]]:
        """Token ids (special tokens included, as the reference implementations do) and a truncated flag."""
        # Bound tokenisation cost on huge texts: beyond 64 characters per allowed token the text is certainly
        # being truncated, and the first max_length tokens of the cut text are those of the full text.
        limit = self.max_length * 64
        cut = [t[:limit] for t in texts]
        # Tokenise with one token of slack: a text that fills it is longer than max_length, and is then
        # re-tokenised with the tokenizer's own truncation so special tokens are placed as the reference's are.
        first = self.tokenizer(cut, truncation=True, max_length=self.max_length + 1)["input_ids"]
        out = []
        for text, c, ids in zip(texts, cut, first):
            if len(ids) > self.max_length:
                ids = self.tokenizer(c, truncation=True, max_length=self.max_length)["input_ids"]
                out.append((list(ids), True))
            else:
                out.append((list(ids), len(c) < len(text)))
        return out

    @torch.inference_mode()
    def score(self, texts: list[str]) -> list[Score]:
        results: list[Score | None] = [None] * len(texts)
        pending: list[int] = []
        prepared: list[str] = []
        flags: list[bool] = []
        for i, text in enumerate(texts):
            norm, changed = normalize_text(text if isinstance(text, str) else "")
            flags.append(changed)
            if not norm.strip():
                results[i] = unscorable("empty", normalized=changed)
            else:
                pending.append(i)
                prepared.append(norm)
        encoded = self.encode(prepared) if prepared else []
        work: list[tuple[int, list[int], bool]] = []
        for i, (ids, truncated) in zip(pending, encoded):
            if len(ids) < self.min_tokens:
                results[i] = unscorable("too_short", len(ids), truncated, flags[i])
            else:
                work.append((i, ids, truncated))
        for batch in plan_batches([len(w[1]) for w in work], self.max_tokens):
            items = [work[b] for b in batch]
            sums = self._batch_sums([ids for _, ids, _ in items])
            for (i, ids, truncated), row in zip(items, sums):
                value = self.finalize(row)
                if value is None:
                    results[i] = unscorable("degenerate", len(ids), truncated, flags[i])
                else:
                    results[i] = Score(value=float(value), tokens=len(ids), truncated=truncated,
                                       normalized=flags[i])
        return results  # type: ignore[return-value]

    def _batch_sums(self, seqs: list[list[int]]) -> list[list[float]]:
        lengths = [len(s) for s in seqs]
        n_rows, width = len(seqs), max(lengths)
        dev = self.lms[0].device
        input_ids = torch.zeros((n_rows, width), dtype=torch.long)
        attention = torch.zeros((n_rows, width), dtype=torch.long)
        for r, s in enumerate(seqs):
            input_ids[r, : len(s)] = torch.tensor(s)
            attention[r, : len(s)] = 1
        # Right padding: real tokens keep positions 0..len-1 and never attend to padding, so their logits are
        # those of the unpadded text (what the reference implementations score one text at a time).
        valid = attention.bool()
        flat_ids = torch.tensor([t for s in seqs for t in s], device=dev)
        flat_labels = torch.tensor([t for s in seqs for t in s[1:] + [-1]], device=dev)
        segment = torch.repeat_interleave(torch.arange(n_rows), torch.tensor(lengths)).to(dev)

        # Per model: hidden states (or logits when the head cannot be split off) at real positions only.
        features = []
        for lm in self.lms:
            ids_d, att_d = input_ids.to(lm.device), attention.to(lm.device)
            if lm.split_head:
                out = lm.model.base_model(input_ids=ids_d, attention_mask=att_d, use_cache=False).last_hidden_state
            else:
                out = lm.model(input_ids=ids_d, attention_mask=att_d, use_cache=False).logits
            features.append(out[valid.to(lm.device)])
            del out

        n = flat_ids.shape[0]
        step = max(1, self.chunk_elements // max(self.vocab, 1))
        sums: torch.Tensor | None = None
        for start in range(0, n, step):
            stop = min(n, start + step)
            logits = []
            for lm, feat in zip(self.lms, features):
                chunk = feat[start:stop]
                if lm.split_head:
                    chunk = lm.model.get_output_embeddings()(chunk)
                logits.append(chunk[:, : self.vocab].float().to(dev))
            stats = self.token_stats(logits, flat_labels[start:stop], flat_ids[start:stop]).double()
            if sums is None:
                sums = torch.zeros((n_rows, stats.shape[1]), dtype=torch.float64, device=dev)
            sums.index_add_(0, segment[start:stop], stats)
        if sums is None:  # no tokens at all: too-short texts never get here
            return [[] for _ in range(n_rows)]
        return sums.cpu().tolist()


def label_log_probs(log_probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(label) with 0 where there is no label, mask of positions that have a label) as fp32 [n]."""
    has = labels >= 0
    lp = log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(has, lp, torch.zeros_like(lp)), has.to(log_probs.dtype)


def load_models(ids: list[str], device: str = "auto", dtype: str | None = None) -> list[LoadedLM]:
    """Load each distinct model once (a one-model variant passes the same id twice)."""
    from detectors.lm import load_causal_lm

    cache: dict[str, LoadedLM] = {}
    for i in ids:
        if i not in cache:
            cache[i] = load_causal_lm(i, device, dtype)
    return [cache[i] for i in ids]


class SingleModelScorer(LMScorer):
    """A scorer over one model's statistics (likelihood, log-rank, entropy, LRR): only the formula differs."""

    def __init__(self, model: LoadedLM, **kwargs) -> None:
        super().__init__([model], **kwargs)

    @classmethod
    def from_pretrained(cls, model: str, device: str = "auto", dtype: str | None = None, **kwargs):
        return cls(load_models([model], device, dtype)[0], **kwargs)
