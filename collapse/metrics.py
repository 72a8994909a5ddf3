"""What a generation forgets: held-out perplexity, and the diversity and support of what it writes.

Diversity and support are measured on lower-cased word tokens (\\w+ runs and single punctuation marks), not on a
model's tokenizer, so they compare across models. Every function returns NaN, never raises, on empty input: a
generation that writes nothing is recorded, not divided by.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from collapse.models.base import LogProb

_WORD = re.compile(r"\w+|[^\w\s]")
NAN = float("nan")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1)]


def ngram_set(docs: Sequence[Sequence[str]], n: int) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for d in docs:
        out.update(zip(*(d[i:] for i in range(n))))
    return out


# ---- perplexity ------------------------------------------------------------------------------------------------------
def perplexity(lp: LogProb) -> float:
    """Token-weighted: exp(total NLL / total predicted tokens)."""
    tokens = float(np.sum(lp.tokens))
    return float(np.exp(-np.sum(lp.nats) / tokens)) if tokens > 0 else NAN


def sequence_perplexities(lp: LogProb) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(lp.tokens > 0, np.exp(-lp.nats / np.maximum(lp.tokens, 1)), np.nan)


def perplexity_metrics(lp: LogProb, texts: Sequence[str], prefix: str) -> dict[str, float]:
    per = sequence_perplexities(lp)
    per = per[np.isfinite(per)]
    chars = sum(len(t) for t in texts)
    q = np.quantile(per, [0.5, 0.9, 0.99]) if len(per) else [NAN] * 3
    return {
        f"{prefix}_ppl": perplexity(lp),
        f"{prefix}_ppl_p50": float(q[0]),
        f"{prefix}_ppl_p90": float(q[1]),
        f"{prefix}_ppl_p99": float(q[2]),
        # Bits per character does not depend on the tokenizer, so it compares the n-gram and GPT runs too.
        f"{prefix}_bits_per_char": float(-np.sum(lp.nats) / math.log(2) / chars) if chars else NAN,
    }


# ---- diversity -------------------------------------------------------------------------------------------------------
_BASE = np.uint64(1 << 21)  # word ids below 2**21 make trigram keys fit in 63 bits


class WordIndex:
    """Word -> integer id, shared by the real data and every generation's samples, so n-grams become integer keys
    and support, survival and distinct-n are numpy set operations instead of Python sets of tuples."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(word ids of all texts concatenated, number of words per text)."""
        ids: list[int] = []
        lengths = np.zeros(len(texts), dtype=np.int64)
        table = self.ids
        for i, t in enumerate(texts):
            ws = words(t)
            lengths[i] = len(ws)
            for w in ws:
                j = table.get(w)
                if j is None:
                    j = table[w] = len(table)
                ids.append(j)
        return np.array(ids, dtype=np.uint64) % _BASE, lengths


def ngram_keys(ids: np.ndarray, lengths: np.ndarray, n: int) -> np.ndarray:
    """Integer key of every n-gram that lies inside one document."""
    total = len(ids)
    if total < n:
        return np.zeros(0, dtype=np.uint64)
    doc = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.arange(total - n + 1)
    starts = starts[doc[starts] == doc[starts + n - 1]]
    keys = ids[starts].copy()
    for j in range(1, n):
        keys = keys * _BASE + ids[starts + j]
    return keys


def distinct_n(docs: Sequence[Sequence[str]], n: int) -> float:
    """Distinct n-grams / all n-grams over the corpus (Li et al. 2016)."""
    total = sum(max(len(d) - n + 1, 0) for d in docs)
    return len(ngram_set(docs, n)) / total if total else NAN


def _values(counts: Counter | np.ndarray) -> np.ndarray:
    return np.array(list(counts.values()) if isinstance(counts, dict) else counts, dtype=np.float64)


def unigram_entropy(counts: Counter | np.ndarray) -> float:
    """Shannon entropy of the word distribution, in bits."""
    c = np.sort(_values(counts))  # sorted: the same counts give the same bits whatever their order
    if c.sum() == 0:
        return NAN
    p = c[c > 0] / c.sum()
    return float(-(p * np.log2(p)).sum())


def zipf_slope(counts: Counter | np.ndarray, max_rank: int = 1000) -> float:
    """Least-squares slope of log frequency on log rank over the top `max_rank` types (about -1 for text)."""
    f = np.sort(_values(counts))[::-1][:max_rank]
    f = f[f > 0]
    if len(f) < 3:
        return NAN
    r = np.arange(1, len(f) + 1)
    return float(np.polyfit(np.log(r), np.log(f), 1)[0])


def self_bleu(docs: Sequence[Sequence[str]], max_n: int = 4, limit: int = 100,
              rng: np.random.Generator | None = None) -> float:
    """Mean BLEU-4 of each document against all the others as references (Zhu et al. 2018, Texygen).

    Sentence BLEU with uniform weights, clipped counts against the per-n-gram maximum over the other documents,
    closest-reference brevity penalty and epsilon smoothing (0.1) of zero higher-order matches, like NLTK's
    method1. On a random `limit` documents (the cost is quadratic).
    """
    docs = [list(d) for d in docs if len(d) > 0]
    if len(docs) > limit:
        rng = rng or np.random.default_rng(0)
        docs = [docs[i] for i in sorted(rng.choice(len(docs), size=limit, replace=False).tolist())]
    if len(docs) < 2:
        return NAN
    counters = [[Counter(ngrams(d, n)) for n in range(1, max_n + 1)] for d in docs]
    # Per n-gram the two largest counts and the holder of the largest: max over "all docs but i" in O(1).
    best: list[dict[tuple, tuple[int, int, int]]] = [{} for _ in range(max_n)]
    for i, cs in enumerate(counters):
        for n, c in enumerate(cs):
            table = best[n]
            for g, k in c.items():
                top, holder, second = table.get(g, (0, -1, 0))
                if k > top:
                    table[g] = (k, i, top)
                elif k > second:
                    table[g] = (top, holder, k)
    lengths = np.array([len(d) for d in docs])
    scores = []
    for i, cs in enumerate(counters):
        log_p = 0.0
        for n, c in enumerate(cs):
            total = max(len(docs[i]) - n, 0)
            match = 0
            for g, k in c.items():
                top, holder, second = best[n][g]
                match += min(k, second if holder == i else top)
            if match == 0 and n == 0:
                log_p = -math.inf
                break
            log_p += math.log((match if match else 0.1) / max(total, 1))
        if log_p == -math.inf:
            scores.append(0.0)
            continue
        others = np.delete(lengths, i)
        hyp = len(docs[i])
        ref = int(others[np.lexsort((others, np.abs(others - hyp)))[0]])  # closest, shorter on ties
        bp = 1.0 if hyp > ref else math.exp(1 - ref / hyp)
        scores.append(bp * math.exp(log_p / max_n))
    return float(np.mean(scores))


class Support:
    """The word types and bigrams of a reference corpus (the real training data), for survival."""

    def __init__(self, texts: Sequence[str], index: WordIndex | None = None) -> None:
        self.index = index or WordIndex()
        ids, lengths = self.index.encode(texts)
        self.types = np.unique(ids)
        self.bigrams = np.unique(ngram_keys(ids, lengths, 2))


def sample_metrics(samples: Sequence[str], reference: Support, self_bleu_docs: int = 100,
                   rng: np.random.Generator | None = None) -> dict[str, float]:
    """Diversity and support of one generation's samples; survival is relative to `reference`."""
    ids, lengths = reference.index.encode(samples)
    types, counts = np.unique(ids, return_counts=True)
    bigrams = np.unique(ngram_keys(ids, lengths, 2))
    trigrams = ngram_keys(ids, lengths, 3)
    n_tri = len(np.unique(trigrams))
    bleu_docs = [words(t) for t in samples] if len(samples) <= self_bleu_docs else None
    if bleu_docs is None:  # tokenise only the documents self-BLEU looks at
        rng = rng or np.random.default_rng(0)
        nonempty = np.nonzero(lengths > 0)[0]
        pick = np.sort(rng.choice(nonempty, size=min(self_bleu_docs, len(nonempty)), replace=False))
        bleu_docs = [words(samples[i]) for i in pick.tolist()]
    n_bigrams = max(int(np.sum(np.maximum(lengths - 1, 0))), 0)
    return {
        "sample_docs": len(samples),
        "sample_words": int(len(ids)),
        "empty_samples": int(np.sum(lengths == 0)),
        "distinct_1": len(types) / len(ids) if len(ids) else NAN,
        "distinct_2": len(bigrams) / n_bigrams if n_bigrams else NAN,
        "distinct_3": n_tri / len(trigrams) if len(trigrams) else NAN,
        "self_bleu": self_bleu(bleu_docs, limit=self_bleu_docs, rng=rng),
        "unigram_entropy": unigram_entropy(counts),
        "zipf_slope": zipf_slope(counts),
        "types": len(types),
        "bigrams": len(bigrams),
        "trigrams": n_tri,
        "type_survival": float(np.isin(reference.types, types).mean()) if len(reference.types) else NAN,
        "bigram_survival": float(np.isin(reference.bigrams, bigrams).mean()) if len(reference.bigrams) else NAN,
    }
