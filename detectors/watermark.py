"""Green-list watermark detection (Kirchenbauer et al. 2023, "A Watermark for Large Language Models").

Follows github.com/jwkirchenbauer/lm-watermarking (watermark_processor.py, extended_watermark_processor.py and
alternative_prf_schemes.py). For each scored token, a pseudo-random function of the previous `context_width`
token ids and the hash key seeds a torch.Generator; `torch.randperm(vocab_size)` under that seed puts its first
int(vocab_size * gamma) ids on the green list. With T scored tokens of which G are green:
    z = (G - gamma T) / sqrt(T gamma (1 - gamma)),   p = 1 - Phi(z)  (one-sided).
With `ignore_repeated_ngrams` (the reference detector's default) each distinct (context, token) n-gram counts once,
so repeated phrases cannot inflate z.

Seeding schemes: "simple_1"/"lefthash" (additive PRF over 1 previous token: seed = hash_key * prev_token),
"minhash" (context 4), "skipgram" (context 5), "selfhash"/"algorithm-3" (anchored min-hash over 4 tokens including the
scored one), and free-form "ff-<prf>-<width>-<self_salt>[-<hash_key>]". The permutation depends on torch's generator
for the device it runs on: detect on the same device type the text was generated on (CPU here by default).
Detection needs only the generating model's tokenizer and vocabulary size, no model.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import torch

from detectors.base import HIGHER_IS_MACHINE, Score, estimate_tokens, unscorable
from detectors.normalize import normalize_text

DEFAULT_HASH_KEY = 15485863  # the reference's default: a large prime


# -- pseudo-random functions of the context (alternative_prf_schemes.py) ---------------------------------------
_HASH_TABLE: torch.Tensor | None = None


def _hashint(x: torch.Tensor) -> torch.Tensor:
    global _HASH_TABLE
    if _HASH_TABLE is None:
        rng = torch.Generator(device="cpu")
        rng.manual_seed(2971215073)  # the reference's fixed permutation table
        _HASH_TABLE = torch.randperm(1_000_003, device="cpu", generator=rng)
    return _HASH_TABLE[x.cpu() % 1_000_003] + 1


PRFS = {
    "additive_prf": lambda ids, key: key * int(ids.sum()),
    "multiplicative_prf": lambda ids, key: key * int(ids.prod()),
    "minfunc_prf": lambda ids, key: key * int(ids.min()),
    "skipgram_prf": lambda ids, key: int(_hashint(key * ids[0])),
    "anchored_skipgram_prf": lambda ids, key: int(_hashint(key * ids[0]) * _hashint(key * ids[-1])),
    "minhash_prf": lambda ids, key: int(_hashint(key * ids).min()),
    "anchored_minhash_prf": lambda ids, key: int((key * _hashint(ids) * _hashint(ids[-1])).min()),
}


def seeding_scheme(name: str, hash_key: int | None = None) -> tuple[str, int, bool, int]:
    """(prf, context_width, self_salt, hash_key) for a scheme name, as the reference's seeding_scheme_lookup."""
    if name in ("simple_1", "lefthash"):
        prf, width, self_salt, key = "additive_prf", 1, False, DEFAULT_HASH_KEY
    elif name in ("algorithm-3", "selfhash"):
        prf, width, self_salt, key = "anchored_minhash_prf", 4, True, DEFAULT_HASH_KEY
    elif name == "minhash":
        prf, width, self_salt, key = "minhash_prf", 4, False, DEFAULT_HASH_KEY
    elif name == "skipgram":
        prf, width, self_salt, key = "skipgram_prf", 5, False, DEFAULT_HASH_KEY
    elif name.startswith("ff-"):
        parts = name.split("-")
        prf, width, self_salt = parts[1], int(parts[2]), parts[3] == "True"
        key = int(parts[4]) if len(parts) == 5 else DEFAULT_HASH_KEY
    else:
        raise ValueError(f"unknown seeding scheme {name!r}; try 'simple_1' (alias 'lefthash')")
    if prf not in PRFS:
        raise ValueError(f"unknown PRF {prf!r} in seeding scheme {name!r}; expected one of {sorted(PRFS)}")
    return prf, width, self_salt, key if hash_key is None else int(hash_key)


class GreenList:
    """The green list of a context: shared by the detector and by the logits processor that embeds the mark."""

    def __init__(self, vocab_size: int, gamma: float = 0.25, seeding: str = "simple_1", hash_key: int | None = None,
                 device: str = "cpu") -> None:
        if not 0 < gamma < 1:
            raise ValueError("gamma must be in (0, 1)")
        self.vocab_size, self.gamma = int(vocab_size), float(gamma)
        self.prf, self.context_width, self.self_salt, self.hash_key = seeding_scheme(seeding, hash_key)
        self.device = torch.device(device)
        self.rng = torch.Generator(device=self.device)
        self.size = int(self.vocab_size * self.gamma)

    def ids(self, context: list[int] | torch.Tensor) -> torch.Tensor:
        """Green token ids given the context (at least context_width tokens; the last ones are used)."""
        ctx = torch.as_tensor(context, dtype=torch.long)[-self.context_width:]
        if ctx.numel() < self.context_width:
            raise ValueError(f"seeding scheme needs {self.context_width} context tokens")
        seed = PRFS[self.prf](ctx, self.hash_key)
        self.rng.manual_seed(seed % (2**64 - 1))  # the reference's overflow guard
        return torch.randperm(self.vocab_size, device=self.device, generator=self.rng)[: self.size]

    @lru_cache(maxsize=1 << 16)  # noqa: B019 - instances live as long as the detector; the cache is the point
    def is_green(self, context: tuple[int, ...], token: int) -> bool:
        return bool((self.ids(list(context)) == token).any())


@dataclass(frozen=True)
class WatermarkResult:
    z: float | None
    p_value: float | None
    green: int
    scored: int  # T: tokens (or distinct n-grams) tested
    tokens: int
    reason: str | None = None
    normalized: bool = False


class WatermarkDetector:
    """Green-list z-test. Score.value is z (HIGH means watermarked, i.e. machine); `test` also gives p and counts."""

    name = "watermark"
    direction = HIGHER_IS_MACHINE
    published_thresholds = {"z=4": 4.0}  # the paper's default decision threshold (one-sided p ~ 3e-5)

    def __init__(self, tokenizer, *, vocab_size: int | None = None, gamma: float = 0.25,
                 seeding_scheme: str = "simple_1", hash_key: int | None = None,
                 ignore_repeated_ngrams: bool = True, device: str = "cpu", model_id: str = "") -> None:
        self.tokenizer = tokenizer
        # The reference builds its vocabulary as list(tokenizer.get_vocab().values()); pass vocab_size when the
        # generating model's output layer had a different size.
        self.green = GreenList(vocab_size or len(tokenizer.get_vocab()), gamma, seeding_scheme, hash_key, device)
        self.ignore_repeated_ngrams = ignore_repeated_ngrams
        self.model_ids = [f"{model_id or getattr(tokenizer, 'name_or_path', '')}|gamma={gamma}|{seeding_scheme}"
                          f"|key={self.green.hash_key}|vocab={self.green.vocab_size}"]

    @classmethod
    def from_pretrained(cls, tokenizer: str, **kwargs) -> WatermarkDetector:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer, trust_remote_code=False)
        return cls(tok, model_id=str(tokenizer), **kwargs)

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def token_ids(self, text: str) -> list[int]:
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        bos = getattr(self.tokenizer, "bos_token_id", None)
        if ids and bos is not None and ids[0] == bos:  # as the reference: a leading BOS is not scored
            ids = ids[1:]
        return ids

    def test_ids(self, ids: list[int]) -> tuple[int, int]:
        """(green count, tokens scored) for a token id sequence."""
        g = self.green
        width = g.context_width + 1 - int(g.self_salt)  # self-salted schemes include the token in its own context
        grams = [tuple(ids[i: i + width]) for i in range(len(ids) - width + 1)]
        if g.self_salt:
            verdict = {gram: g.is_green(gram, gram[-1]) for gram in set(grams)}
        else:
            verdict = {gram: g.is_green(gram[:-1], gram[-1]) for gram in set(grams)}
        if self.ignore_repeated_ngrams:
            counted = list(Counter(grams))
        else:
            counted = grams
        return sum(verdict[gram] for gram in counted), len(counted)

    def test(self, texts: list[str]) -> list[WatermarkResult]:
        from scipy.stats import norm

        out = []
        for text in texts:
            clean, changed = normalize_text(text if isinstance(text, str) else "")
            if not clean.strip():
                out.append(WatermarkResult(None, None, 0, 0, 0, "empty", changed))
                continue
            ids = self.token_ids(clean)
            if len(ids) - self.green.context_width < 1:
                out.append(WatermarkResult(None, None, 0, 0, len(ids), "too_short", changed))
                continue
            green, scored = self.test_ids(ids)
            gamma = self.green.gamma
            z = (green - gamma * scored) / math.sqrt(scored * gamma * (1 - gamma))
            out.append(WatermarkResult(z, float(norm.sf(z)), green, scored, len(ids), None, changed))
        return out

    def score(self, texts: list[str]) -> list[Score]:
        return [Score(r.z, r.tokens, False, None, r.normalized) if r.z is not None
                else unscorable(r.reason or "empty", r.tokens, False, r.normalized) for r in self.test(texts)]


class GreenListLogitsProcessor:
    """Adds `delta` to the green-list logits before sampling: embeds the watermark that WatermarkDetector tests.

    A transformers LogitsProcessor (callable (input_ids, scores) -> scores); self-salted schemes are not supported
    here (they need the reference's rejection sampling).
    """

    def __init__(self, vocab_size: int, gamma: float = 0.25, delta: float = 2.0, seeding_scheme: str = "simple_1",
                 hash_key: int | None = None, device: str = "cpu") -> None:
        self.green = GreenList(vocab_size, gamma, seeding_scheme, hash_key, device)
        if self.green.self_salt:
            raise ValueError("self-salted seeding schemes are not supported for generation here")
        self.delta = float(delta)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        bias = torch.zeros_like(scores)
        for row, seq in enumerate(input_ids):
            green = self.green.ids(seq.cpu())
            bias[row, green.to(scores.device)] = self.delta
        return cast(torch.FloatTensor, scores + bias)
