"""The vectorised MinHash is datasketch's, bit for bit, and its signatures work in datasketch's LSH."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH
from datasketch.hashfunc import sha1_hash32 as ds_sha1_hash32

from pipeline.dedup.minhash import MinHasher, band_keys, estimated_jaccard, optimal_bands, sha1_hash32
from pipeline.dedup.normalize import normalize_text, text_hash, text_words, word_shingles

EDGE_TEXTS = [
    "",  # empty
    "one two three",  # shorter than one shingle
    "exactly five words here now",  # one shingle
    "x" * 300 + " long word makes a two block message",  # SHA-1 messages of 2+ blocks
    "y" * 1000 + " a b c d e f",  # many blocks
    "broken \udc80 surrogate from a lenient decoder in the text",  # non-UTF-8 remnant
    "ﬁne ligatures Ⅻ and ß and Straße and ＦＵＬＬＷＩＤＴＨ text",  # NFKC and casefold territory
    "中文没有空格的句子也能切成词的五元组",  # CJK: one character per word
    "mixed 中文 and english 文本 together in one line",
]


def _datasketch(shingles: list[bytes], num_perm: int, scheme: str) -> np.ndarray:
    m = MinHash(num_perm=num_perm, seed=1, scheme=scheme)
    m.update_batch(shingles)
    return m.hashvalues


@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
@pytest.mark.parametrize("num_perm,ngram", [(128, 5), (64, 3)])
def test_signatures_equal_datasketch(aut_pages, cc_pages, scheme, num_perm, ngram):
    texts = [p["text"] for p in aut_pages[:25] + cc_pages] + EDGE_TEXTS
    sigs, ok = MinHasher(num_perm, ngram, scheme=scheme).signatures(texts)
    checked = 0
    for text, sig, has in zip(texts, sigs, ok):
        shingles = word_shingles(text, ngram)
        assert has == bool(shingles)
        if shingles:
            np.testing.assert_array_equal(sig, _datasketch(shingles, num_perm, scheme))
            checked += 1
    assert checked >= len(texts) - 2  # all but the empty and the 3-word text


def test_default_scheme_is_datasketch_default(aut_pages):
    text = aut_pages[0]["text"]
    m = MinHash(num_perm=128)  # datasketch's defaults: seed 1, its default scheme
    m.update_batch(word_shingles(text, 5))
    np.testing.assert_array_equal(MinHasher().signature(text), m.hashvalues)


def test_sha1_hash32_matches_datasketch_on_random_lengths():
    rng = random.Random(7)
    msgs = [bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 55, 56, 63, 64, 119, 120, 300])))
            for _ in range(200)]
    joined = b"".join(msgs)
    starts = np.cumsum([0] + [len(m) for m in msgs[:-1]])
    buf = np.frombuffer(joined + bytes(128), dtype=np.uint8)
    got = sha1_hash32(buf, starts, np.array([len(m) for m in msgs]))
    assert got.tolist() == [ds_sha1_hash32(m) for m in msgs]


def test_batch_does_not_change_a_documents_signature(aut_pages, monkeypatch):
    from pipeline.dedup import minhash

    hasher = MinHasher()
    texts = [p["text"] for p in aut_pages[:12]] + ["short"]
    together, ok = hasher.signatures(texts)
    for i, text in enumerate(texts[:-1]):
        np.testing.assert_array_equal(together[i], hasher.signature(text))
    monkeypatch.setattr(minhash, "_MAX_BATCH_CHARS", 3000)  # bounded memory: several sub-batches, same result
    split, split_ok = hasher.signatures(texts)
    np.testing.assert_array_equal(split, together)
    assert split_ok.tolist() == ok.tolist() == [True] * 12 + [False]


def test_signatures_work_as_leanminhash_in_minhashlsh(aut_pages, mutator):
    rng = random.Random(3)
    hasher = MinHasher(128, 5)
    originals = [p["text"] for p in aut_pages if len(p["text"].split()) > 300][:10]
    copies = [mutator(t, 2, rng) for t in originals]
    sigs, ok = hasher.signatures(originals + copies)
    assert ok.all()
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    for i in range(len(originals)):
        lsh.insert(f"orig{i}", hasher.lean(sigs[i]))
    assert (lsh.b, lsh.r) == optimal_bands(0.8, 128)
    for i in range(len(originals)):
        copy = hasher.lean(sigs[len(originals) + i])
        assert f"orig{i}" in lsh.query(copy)
        # a datasketch-built sketch of the same text compares equal to ours
        m = MinHash(num_perm=128, seed=1)
        m.update_batch(word_shingles(originals[i], 5))
        assert m.jaccard(hasher.lean(sigs[i])) == 1.0


def test_band_keys_collide_exactly_when_bands_equal(aut_pages):
    hasher = MinHasher()
    a = hasher.signature(aut_pages[0]["text"])
    b = a.copy()
    b[0] ^= 1  # differs in band 0 only
    bands, rows = optimal_bands(0.8, 128)
    ka, kb = band_keys(a, bands, rows), band_keys(b, bands, rows)
    assert len(ka) == bands and len(set(ka)) == bands
    assert ka[0] != kb[0] and ka[1:] == kb[1:]
    assert ka[0][:2] == (0).to_bytes(2, "big")
    assert ka[0][2:] == hashlib.blake2b(a[:rows].astype("<u4").tobytes(), digest_size=8).digest()


def test_estimated_jaccard_tracks_true_jaccard(aut_pages, mutator):
    rng = random.Random(11)
    hasher = MinHasher(256, 5)
    text = max((p["text"] for p in aut_pages), key=len)
    for changes in (5, 40, 200):
        other = mutator(text, changes, rng)
        a, b = set(word_shingles(text, 5)), set(word_shingles(other, 5))
        true = len(a & b) / len(a | b)
        est = estimated_jaccard(hasher.signature(text), hasher.signature(other))
        assert abs(est - true) < 0.1, (changes, true, est)


def test_fold_is_nfkc_then_casefold():
    """fold() takes shortcuts (ASCII, no-break spaces first); they must not change the result."""
    import unicodedata

    from pipeline.dedup.normalize import fold

    rng = random.Random(0)
    pool = [chr(c) for c in (0xA0, 0x20, 0x301, 0x308, 0x338, 0x41, 0x61, 0x65, 0x3D, 0xDF, 0xE9, 0x3A3, 0x3C2,
                             0x1100, 0x1161, 0x11A8, 0xAC00, 0x304B, 0x3099, 0x1E9E, 0x2026, 0x2122, 0xFB01, 0xFF1A)]
    for _ in range(5000):
        s = "".join(rng.choice(pool) for _ in range(rng.randint(1, 12)))
        assert fold(s) == unicodedata.normalize("NFKC", s).casefold(), repr(s)


def test_normalisation():
    assert normalize_text("  Hello\u00a0 WORLD\n\tagain ") == "hello world again"
    assert normalize_text("ＦＵＬＬ ﬁ") == "full fi"
    assert normalize_text("Straße") == normalize_text("STRASSE")
    assert text_hash("Hello  world") == text_hash("hello\nWORLD ") != text_hash("hello world!")
    assert text_hash(" \n\t ") == ""
    assert text_hash("bad \udc80 bytes")  # does not raise
    assert text_words("Hello, world! It's 2020.") == ["hello", "world", "it", "s", "2020"]
    assert text_words("中文abc") == ["中", "文", "abc"]


def test_vectorised_words_equal_the_regex_words(aut_pages, cc_pages):
    """joined_words (numpy, what MinHasher uses) and text_words (regex, what word_shingles uses) agree."""
    from pipeline.dedup.normalize import joined_words

    rng = random.Random(1)
    alphabet = [chr(c) for c in [*range(32, 127), 10, 0xA0, 0xB2, 0xE9, 0x663, 0x200B, 0x2019, 0x201C, 0x2014,
                                 0x3000, 0x3001, 0x30FB, 0x4E00, 0x4E8C, 0xDC80, 0xFF76, 0x1F600, 0x20000]]
    texts = [p["text"] for p in aut_pages[:20] + cc_pages] + EDGE_TEXTS
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(300)]
    buf, starts, lengths, counts = joined_words(texts, pad=128)
    want = [text_words(t) for t in texts]
    assert counts.tolist() == [len(w) for w in want]
    flat = [w.encode("utf-8", "surrogatepass") for ws in want for w in ws]
    assert [bytes(buf[s:s + n]) for s, n in zip(starts, lengths)] == flat
    total = int(lengths.sum()) + len(flat) - 1
    assert bytes(buf[:total]) == b" ".join(flat) and not buf[total:].any() and len(buf) == total + 128
