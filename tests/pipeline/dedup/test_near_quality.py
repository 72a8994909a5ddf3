"""Near-dup recall and precision on planted pairs (true Jaccard >= 0.9) among unrelated real text."""

from __future__ import annotations

import itertools
import random

from pipeline.dedup import NearDedup
from pipeline.dedup.normalize import word_shingles


def _shingles(text: str) -> set[bytes]:
    return set(word_shingles(text, 5))


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b)


def _windows(pages: list[dict], rng: random.Random) -> list[str]:
    """Disjoint 150-400-word windows of real pages, no two of them similar (J < 0.2)."""
    out: list[tuple[str, set]] = []
    for page in pages:
        words = page["text"].split()
        i = 0
        while i + 150 <= len(words):
            n = rng.randint(150, 400)
            text = " ".join(words[i:i + n])
            i += n
            sh = _shingles(text)
            if len(sh) >= 140 and all(_jaccard(sh, o) < 0.2 for _, o in out):
                out.append((text, sh))
    return [t for t, _ in out]


def test_recall_and_precision_on_planted_pairs(aut_pages, doc_factory, mutator, at, run):
    rng = random.Random(2024)
    windows = _windows(aut_pages, rng)
    assert len(windows) >= 80, len(windows)
    docs, positives, hard_negatives = [], set(), 0
    for i, text in enumerate(windows[:90]):
        orig = f"w{i:03d}"
        docs.append(doc_factory(orig, text, at(2015 + i % 10, 1 + i % 12)))
        base = _shingles(text)
        if i % 3 != 2:  # a near copy: a few words changed, true Jaccard >= 0.9
            for changes in (rng.randint(1, 4), 1):
                copy = mutator(text, changes, rng)
                if _jaccard(base, _shingles(copy)) >= 0.9:
                    break
            assert _jaccard(base, _shingles(copy)) >= 0.9
            docs.append(doc_factory(f"{orig}-near", copy, at(2016 + i % 9, 2)))
            positives.add(frozenset((orig, f"{orig}-near")))
        else:  # a hard negative: the same page much edited (0.4 <= J < 0.75), must stay apart
            changes = max(1, len(text.split()) // 25)
            copy = mutator(text, changes, rng)
            j = _jaccard(base, _shingles(copy))
            assert 0.4 <= j < 0.75, j
            docs.append(doc_factory(f"{orig}-edited", copy, at(2016, 3)))
            hard_negatives += 1
    assert len(positives) >= 55 and hard_negatives >= 25

    out, _ = run(docs, NearDedup())
    assert len(out) == len(docs)
    clusters: dict[str, list[str]] = {}
    for d in out:
        clusters.setdefault(d.duplicate_of or d.id, []).append(d.id)
    predicted = {frozenset(p) for ids in clusters.values() for p in itertools.combinations(ids, 2)}
    true_pos = len(predicted & positives)
    recall = true_pos / len(positives)
    precision = true_pos / len(predicted) if predicted else 0.0
    assert recall >= 0.95, (recall, sorted(map(sorted, positives - predicted)))
    assert precision >= 0.95, (precision, sorted(map(sorted, predicted - positives)))
