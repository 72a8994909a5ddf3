"""The run's tokenizer: byte-level BPE trained on generation 0's training text and frozen for the whole run.

Byte level, so every later generation's text (and the held-out text) encodes without unknown tokens, and the
smoothed n-gram model gives it a finite perplexity. One special token serves as document start (context padding)
and end (a predicted target), as in GPT-2.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

EOS = "<|endoftext|>"


def train_tokenizer(texts: list[str], vocab_size: int = 4096) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tok


def eos_id(tok: Tokenizer) -> int:
    i = tok.token_to_id(EOS)
    if i is None:
        raise ValueError(f"tokenizer has no {EOS!r} token")
    return i


def encode(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)] if texts else []


class CachedEncoder:
    """encode() with a memo: under `accumulate` the same texts are re-encoded every generation.

    Token ids are kept as int32 arrays, up to `max_tokens` in all (then new texts are encoded but not kept).
    """

    def __init__(self, tok: Tokenizer, max_tokens: int = 50_000_000) -> None:
        self.tok, self.max_tokens, self.size = tok, max_tokens, 0
        self.cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> list[np.ndarray]:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        fresh = {t: np.asarray(ids, dtype=np.int32) for t, ids in zip(missing, encode(self.tok, missing))}
        for t, ids in fresh.items():
            if self.size + len(ids) <= self.max_tokens:
                self.cache[t] = ids
                self.size += len(ids)
        return [self.cache[t] if t in self.cache else fresh[t] for t in texts]


def auto_vocab_size(texts: list[str]) -> int:
    """A power of two near sqrt(tokens) (chars / 4), in [384, 8192]: dense enough bigram statistics on small
    corpora (V**2 ~ tokens), a useful vocabulary on large ones."""
    tokens = max(sum(len(t) for t in texts) / 4, 1.0)
    return int(min(8192, max(384, 2 ** round(math.log2(math.sqrt(tokens))))))


def decode(tok: Tokenizer, ids: list[list[int]]) -> list[str]:
    return tok.decode_batch(ids, skip_special_tokens=True) if ids else []


def save_tokenizer(tok: Tokenizer, path: str | Path) -> None:
    tok.save(str(path))


def load_tokenizer(path: str | Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))
