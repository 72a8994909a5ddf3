"""Interpolated Kneser-Ney n-gram LM over the run's byte-level BPE tokenizer: fast, CPU, the harness default.

Everything is vectorised with numpy: an order-k gram (t1..tk) is the int64 key sum(t_i * V**(k-i)), so the grams
of one context are a contiguous run of the sorted key array and a lookup is a `searchsorted`.

P_k(w | h) = (max(c_k(h w) - D_k, 0) + D_k * N1+(h .) * P_{k-1}(w | h')) / c_k(h), and P_0(w) = 1 / V, where c_k is
the raw count at the highest order and the continuation count N1+(. h w) below it (raw for grams that start with
the document-start padding, as in KenLM). Every token has probability > 0, so perplexity on unseen text is finite.

Sampling at temperature 1 without top-p draws exactly from this mixture: stay at order k with probability
1 - lambda(h) and pick among the seen continuations by discounted count, else back off. With a temperature or
top-p it builds the full next-token distribution instead (slower, still exact).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from collapse.models.base import LogProb, SamplingOptions
from collapse.tokenizer import CachedEncoder, decode, eos_id, load_tokenizer, save_tokenizer


@dataclass
class _Level:
    """Order-k statistics: grams (sorted keys, counts) and their contexts."""

    keys: np.ndarray  # int64, sorted
    counts: np.ndarray  # float64, raw (top order / BOS-initial) or continuation counts
    ctx_keys: np.ndarray  # int64, sorted unique contexts (keys // V)
    ctx_total: np.ndarray  # float64, sum of counts per context
    ctx_types: np.ndarray  # float64, N1+(h .)
    ctx_start: np.ndarray  # int64, first gram index of each context
    ctx_end: np.ndarray  # int64, one past the last
    discount: float
    cum: np.ndarray  # float64, cumsum(counts - discount), for sampling within a context


def _find(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(sorted_keys) == 0:
        return np.zeros(len(queries), dtype=np.int64), np.zeros(len(queries), dtype=bool)
    idx = np.searchsorted(sorted_keys, queries)
    idx = np.minimum(idx, len(sorted_keys) - 1)
    return idx, sorted_keys[idx] == queries


def _discount(counts: np.ndarray) -> float:
    """D = n1 / (n1 + 2 n2) (Ney et al. 1994), kept inside (0, 1) so every seen gram keeps positive mass."""
    n1 = float(np.sum(counts == 1))
    n2 = float(np.sum(counts == 2))
    if n1 + n2 == 0:
        return 0.5
    return float(np.clip(n1 / (n1 + 2 * n2), 0.05, 0.95))


def _level(keys: np.ndarray, counts: np.ndarray, V: int) -> _Level:
    counts = counts.astype(np.float64)
    ctx = keys // V
    ctx_keys, start, types = np.unique(ctx, return_index=True, return_counts=True)
    total = np.add.reduceat(counts, start) if len(counts) else np.zeros(0)
    d = _discount(counts)
    return _Level(
        keys=keys, counts=counts, ctx_keys=ctx_keys, ctx_total=total, ctx_types=types.astype(np.float64),
        ctx_start=start.astype(np.int64), ctx_end=(start + types).astype(np.int64), discount=d,
        cum=np.cumsum(counts - d),
    )


class NGramModel:
    """Interpolated Kneser-Ney LM. `fit` replaces any previous statistics (each generation trains from scratch)."""

    name = "ngram"
    SAMPLE_CHUNK = 4096  # sequences sampled at once: bounds the token buffer's memory

    def __init__(self, tokenizer: Tokenizer, order: int = 3, sampling: SamplingOptions | None = None,
                 seed: int = 0, encoder: CachedEncoder | None = None) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        self.tok = tokenizer
        self.order = order
        self.V = tokenizer.get_vocab_size()
        if float(self.V) ** order >= 2.0**62:
            raise ValueError(f"vocabulary {self.V} ** order {order} does not fit int64 keys")
        self.eos = eos_id(tokenizer)
        self.sampling = sampling or SamplingOptions()
        self.rng = np.random.default_rng(seed)
        self.levels: list[_Level] = []
        self.encode = encoder or CachedEncoder(tokenizer, max_tokens=0)

    # ---- token streams -------------------------------------------------------------------------------------------
    def _stream(self, ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Padded stream (n-1 starts, tokens, end) per doc; positions of predicted tokens; their doc index."""
        pad = self.order - 1
        lengths = np.array([len(x) + 1 for x in ids], dtype=np.int64)  # + end of document
        stream = np.full(int(lengths.sum()) + pad * len(ids), self.eos, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths + pad)[:-1]]).astype(np.int64)
        for off, x in zip(offsets, ids):
            stream[off + pad: off + pad + len(x)] = x
        doc = np.repeat(np.arange(len(ids)), lengths)
        first = np.repeat(offsets + pad, lengths)
        pos = first + (np.arange(len(doc)) - np.repeat(np.cumsum(lengths) - lengths, lengths))
        return stream, pos, doc

    def _gram_keys(self, stream: np.ndarray, pos: np.ndarray) -> list[np.ndarray]:
        """keys[k-1] = key of the order-k gram ending at each position."""
        keys = [stream[pos].copy()]
        for k in range(2, self.order + 1):
            keys.append(stream[pos - k + 1] * self.V ** (k - 1) + keys[-1])
        return keys

    # ---- fit -----------------------------------------------------------------------------------------------------
    def fit(self, texts: Sequence[str]) -> None:
        stream, pos, _ = self._stream(self.encode(list(texts)))
        grams = self._gram_keys(stream, pos)
        raw = [np.unique(g, return_counts=True) for g in grams]
        levels = []
        for k in range(1, self.order + 1):
            keys, counts = raw[k - 1]
            if k < self.order:
                # Continuation count: distinct left extensions, i.e. distinct order-(k+1) grams with this suffix.
                suffix_keys, cont = np.unique(raw[k][0] % self.V**k, return_counts=True)
                assert np.array_equal(suffix_keys, keys)
                if k >= 2:  # grams that start with the padding have only one left extension: use raw counts
                    bos_initial = (keys // self.V ** (k - 1)) == self.eos
                    cont = np.where(bos_initial, counts, cont)
                counts = cont
            levels.append(_level(keys, counts, self.V))
        self.levels = levels

    # ---- scoring -------------------------------------------------------------------------------------------------
    def _prob(self, grams: list[np.ndarray], orders: int | None = None) -> np.ndarray:
        """P(w | h) of each gram (grams[k-1]: its order-k keys); `orders` < order: the lower-order model P_orders."""
        p = np.full(len(grams[0]), 1.0 / self.V)
        for k, lv in enumerate(self.levels[:orders], start=1):
            gk = grams[k - 1]
            ci, cf = _find(lv.ctx_keys, gk // self.V)
            gi, gf = _find(lv.keys, gk)
            c = np.where(gf, lv.counts[gi], 0.0)
            total = np.where(cf, lv.ctx_total[ci], 1.0)
            new = (np.maximum(c - lv.discount, 0.0) + lv.discount * lv.ctx_types[ci] * p) / total
            p = np.where(cf, new, p)
        return p

    def log_prob(self, texts: Sequence[str]) -> LogProb:
        if not self.levels:
            raise RuntimeError("fit the model first")
        texts = list(texts)
        stream, pos, doc = self._stream(self.encode(texts))
        lp = np.log(self._prob(self._gram_keys(stream, pos)))
        nats = np.bincount(doc, weights=lp, minlength=len(texts))
        tokens = np.bincount(doc, minlength=len(texts)).astype(np.int64)
        return LogProb(nats, tokens)

    def next_token_probs(self, history: np.ndarray, orders: int | None = None) -> np.ndarray:
        """Full next-token distribution (rows x V) for histories (rows x order-1) of token ids; `orders` < order:
        the lower-order model P_orders (its histories need only the last orders-1 tokens)."""
        rows = history.shape[0]
        p = np.full((rows, self.V), 1.0 / self.V)
        for k, lv in enumerate(self.levels[:orders], start=1):
            ctx = np.zeros(rows, dtype=np.int64)
            for j in range(k - 1):  # the last k-1 tokens of the history
                ctx = ctx * self.V + history[:, history.shape[1] - (k - 1) + j]
            ci, cf = _find(lv.ctx_keys, ctx)
            r = np.nonzero(cf)[0]
            if len(r) == 0:
                continue
            ci = ci[r]
            total = lv.ctx_total[ci]
            p[r] *= (lv.discount * lv.ctx_types[ci] / total)[:, None]
            lengths = lv.ctx_end[ci] - lv.ctx_start[ci]
            rr = np.repeat(r, lengths)
            gi = np.repeat(lv.ctx_start[ci], lengths) + (np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths)
                                                                                             - lengths, lengths))
            p[rr, lv.keys[gi] % self.V] += (lv.counts[gi] - lv.discount) / np.repeat(total, lengths)
        return p

    # ---- sampling ------------------------------------------------------------------------------------------------
    def _draw_mixture(self, history: np.ndarray) -> np.ndarray:
        """One token per row, drawn exactly from the interpolated KN distribution as a mixture over orders."""
        rows = history.shape[0]
        out = self.rng.integers(0, self.V, size=rows)  # order 0: uniform
        undecided = np.ones(rows, dtype=bool)
        for k in range(self.order, 0, -1):
            lv = self.levels[k - 1]
            ctx = np.zeros(rows, dtype=np.int64)
            for j in range(k - 1):
                ctx = ctx * self.V + history[:, history.shape[1] - (k - 1) + j]
            ci, cf = _find(lv.ctx_keys, ctx)
            live = undecided & cf
            p_stay = np.where(live, (lv.ctx_total[ci] - lv.discount * lv.ctx_types[ci]) / lv.ctx_total[ci], 0.0)
            stay = live & (self.rng.random(rows) < p_stay)
            r = np.nonzero(stay)[0]
            if len(r):
                s, e = lv.ctx_start[ci[r]], lv.ctx_end[ci[r]]
                lo = np.where(s > 0, lv.cum[np.maximum(s - 1, 0)], 0.0)
                hi = lv.cum[e - 1]
                j = np.searchsorted(lv.cum, lo + self.rng.random(len(r)) * (hi - lo), side="right")
                out[r] = lv.keys[np.clip(j, s, e - 1)] % self.V
            undecided &= ~stay
        return out

    def _draw_full(self, history: np.ndarray) -> np.ndarray:
        p = self.next_token_probs(history)
        t, top_p = self.sampling.temperature, self.sampling.top_p
        if t != 1.0:
            logp = np.log(p) / t
            p = np.exp(logp - logp.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
        if top_p < 1.0:
            order = np.argsort(-p, axis=1)
            ps = np.take_along_axis(p, order, axis=1)
            keep = np.cumsum(ps, axis=1) - ps < top_p  # smallest prefix whose mass reaches top_p
            ps = np.where(keep, ps, 0.0)
            ps /= ps.sum(axis=1, keepdims=True)
            j = (np.cumsum(ps, axis=1) < self.rng.random((len(p), 1))).sum(axis=1)
            return order[np.arange(len(p)), np.minimum(j, self.V - 1)]
        j = (np.cumsum(p, axis=1) < self.rng.random((len(p), 1)) * p.sum(axis=1, keepdims=True)).sum(axis=1)
        return np.minimum(j, self.V - 1)

    def sample(self, n: int, prompts: Sequence[str] | None = None) -> list[str]:
        """n texts; with prompts, the continuation (only) of the first `prompt_tokens` tokens of each prompt."""
        if not self.levels:
            raise RuntimeError("fit the model first")
        opts = self.sampling
        if opts.num_beams > 1:
            raise ValueError("beam search is offered by the gpt and hf models, not the n-gram model")
        if prompts is not None and len(prompts) != n:
            raise ValueError(f"got {len(prompts)} prompts for {n} samples")
        out: list[str] = []
        for i in range(0, n, self.SAMPLE_CHUNK):
            m = min(self.SAMPLE_CHUNK, n - i)
            out.extend(self._sample_chunk(m, None if prompts is None else list(prompts[i: i + m])))
        return out

    def _sample_chunk(self, n: int, prompts: list[str] | None) -> list[str]:
        opts = self.sampling
        pad = max(self.order - 1, 1)
        history = np.full((n, pad), self.eos, dtype=np.int64)
        if prompts is not None:
            for i, ids in enumerate(self.encode(prompts)):
                ids = ids[: opts.prompt_tokens][-pad:]
                if len(ids):
                    history[i, pad - len(ids):] = ids
        exact = opts.temperature == 1.0 and opts.top_p == 1.0
        buf = np.zeros((n, opts.max_new_tokens), dtype=np.int32)
        lengths = np.zeros(n, dtype=np.int64)
        active = np.arange(n)
        for step in range(opts.max_new_tokens):
            if len(active) == 0:
                break
            h = history[active]
            tok = self._draw_mixture(h) if exact else self._draw_full(h)
            cont = tok != self.eos
            buf[active[cont], step] = tok[cont]
            lengths[active[cont]] += 1
            history[active] = np.concatenate([h[:, 1:], tok[:, None]], axis=1)
            active = active[cont]
        return decode(self.tok, [row[:k].tolist() for row, k in zip(buf, lengths)])

    # ---- persistence ---------------------------------------------------------------------------------------------
    def token_lengths(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([len(x) for x in self.encode(list(texts))], dtype=np.int64)

    def save(self, path: str | Path) -> None:
        """npz arrays + json metadata + tokenizer.json: no pickle anywhere."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for k, lv in enumerate(self.levels, start=1):
            arrays[f"keys_{k}"] = lv.keys
            arrays[f"counts_{k}"] = lv.counts
        np.savez_compressed(path / "ngram.npz", **arrays)
        meta = {"order": self.order, "vocab_size": self.V, "discounts": [lv.discount for lv in self.levels]}
        (path / "ngram.json").write_text(json.dumps(meta, indent=2))
        save_tokenizer(self.tok, path / "tokenizer.json")

    @classmethod
    def load(cls, path: str | Path, sampling: SamplingOptions | None = None, seed: int = 0,
             encoder: CachedEncoder | None = None) -> NGramModel:
        path = Path(path)
        meta = json.loads((path / "ngram.json").read_text())
        model = cls(load_tokenizer(path / "tokenizer.json"), order=meta["order"], sampling=sampling, seed=seed,
                    encoder=encoder)
        with np.load(path / "ngram.npz", allow_pickle=False) as z:
            model.levels = [_level(z[f"keys_{k}"], z[f"counts_{k}"], model.V) for k in range(1, model.order + 1)]
        for lv, d in zip(model.levels, meta["discounts"]):
            if abs(lv.discount - d) > 1e-12:
                raise ValueError(f"corrupt n-gram model at {path}: discount {lv.discount} != saved {d}")
        return model
