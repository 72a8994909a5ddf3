"""Text normalisation shared by exact dedup (text_hash) and near dedup (word shingles).

Both stages see the same normalised text, so two documents with one text_hash always get the same MinHash
signature. Non-UTF-8 remnants (lone surrogates left by a lenient decoder) are kept as they are and encoded
with ``surrogatepass``: hashing never raises on a bad document.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

import numpy as np

# Scripts written without spaces between words: each character is a word of its own, so that Chinese or
# Japanese pages get word n-grams of a useful length instead of one "word" per sentence.
_NO_SPACE_SCRIPTS = (
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0002ffff"  # CJK extensions B-F and supplement
)
# A word: one character of a no-space script, or a run of letters/digits (``\w``) outside those scripts.
_WORD_RE = re.compile(rf"[{_NO_SPACE_SCRIPTS}]|[^\W{_NO_SPACE_SCRIPTS}]+")
_PLAIN_WORD_RE = re.compile(r"\w+")  # the same words on text without those scripts, about 1.3x faster
_NO_SPACE_RE = re.compile(f"[{_NO_SPACE_SCRIPTS}]")  # a search is cheaper than max(text) or the slow regex


def fold(text: str) -> str:
    """NFKC, then case folding (the character-level part of the normalisation)."""
    if text.isascii():  # NFKC is the identity on ASCII and casefold() is lower()
        return text.lower()
    # NFKC maps a no-break space to a space, and a space never composes: replacing it first is exact, and lets
    # NFKC's quick check accept most web text (where &nbsp; is the usual non-NFKC character) without work.
    return unicodedata.normalize("NFKC", text.replace("\xa0", " ")).casefold()


def normalize_text(text: str) -> str:
    """NFKC, case-folded, whitespace runs (``str.split``) collapsed to one space, stripped."""
    return " ".join(fold(text).split())


def text_hash(text: str, folded: bool = False) -> str:
    """Hex SHA-1 of the normalised text (the exact-dedup key); '' for a text that normalises to nothing."""
    norm = " ".join((text if folded else fold(text)).split())
    if not norm:
        return ""
    return hashlib.sha1(norm.encode("utf-8", "surrogatepass")).hexdigest()


def words(normalized: str) -> list[str]:
    """Words of an already normalised text: punctuation dropped, CJK characters one word each."""
    if normalized.isascii() or _NO_SPACE_RE.search(normalized) is None:
        return _PLAIN_WORD_RE.findall(normalized)
    return _WORD_RE.findall(normalized)


def text_words(text: str) -> list[str]:
    """``words(normalize_text(text))`` without the whitespace pass it does not need."""
    return words(fold(text))


def word_shingles(text: str, n: int) -> list[bytes]:
    """The word n-grams of ``text`` as datasketch would be fed them: UTF-8 of n words joined by one space.

    A text with fewer than ``n`` words has no shingle (near dedup skips it; exact dedup still applies).
    This is the reference definition; :mod:`pipeline.dedup.minhash` computes the same bytes vectorised.
    """
    toks = text_words(text)
    return [" ".join(toks[i:i + n]).encode("utf-8", "surrogatepass") for i in range(len(toks) - n + 1)]


# --- the same words, for many texts at once, without a Python object per word --------------------------------

_BYTE_WORD, _BYTE_OTHER, _BYTE_NON_ASCII = 1, 0, 2
_BYTE_CLASS = np.array([_BYTE_WORD if _PLAIN_WORD_RE.fullmatch(chr(b)) else _BYTE_OTHER for b in range(128)]
                       + [_BYTE_NON_ASCII] * 128, dtype=np.uint8)
_CHAR_WORD, _CHAR_SOLO = 1, 3
_BMP_CLASS: np.ndarray | None = None  # class of every code point below 0x10000, built on first use (~50 ms)


def _char_class(cp: int) -> int:
    ch = chr(cp)
    if _NO_SPACE_RE.fullmatch(ch):  # _WORD_RE's first branch: a word on its own, \w or not
        return _CHAR_SOLO
    return _CHAR_WORD if _PLAIN_WORD_RE.fullmatch(ch) else _BYTE_OTHER


def _classes(cp: np.ndarray) -> np.ndarray:
    global _BMP_CLASS
    if _BMP_CLASS is None:
        _BMP_CLASS = np.array([_char_class(c) for c in range(0x10000)], dtype=np.uint8)
    out = _BMP_CLASS[np.minimum(cp, 0xFFFF)]
    astral = np.flatnonzero(cp > 0xFFFF)
    if astral.size:
        out[astral] = [_char_class(int(c)) for c in cp[astral]]
    return out


def _decode_leads(arr: np.ndarray, lead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Code points and byte counts of the UTF-8 characters starting at ``lead`` (multi-byte leads only)."""
    b0 = arr[lead].astype(np.int32)
    b1, b2, b3 = (arr[np.minimum(lead + k, len(arr) - 1)].astype(np.int32) & 0x3F for k in (1, 2, 3))
    nbytes = np.where(b0 < 0xE0, 2, np.where(b0 < 0xF0, 3, 4))
    cp = np.where(nbytes == 2, ((b0 & 0x1F) << 6) | b1,
                  np.where(nbytes == 3, ((b0 & 0x0F) << 12) | (b1 << 6) | b2,
                           ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3))
    return cp, nbytes


def joined_words(texts: Sequence[str], pad: int = 128,
                 folded: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``text_words`` of every text, as numpy: (buffer, word starts, word byte lengths, words per text).

    The buffer holds all words, UTF-8, separated by one space (so the bytes of a run of words are the shingle
    datasketch is fed), followed by ``pad`` zero bytes: ``b" ".join(" ".join(text_words(t)).encode() ...)``.
    ``folded``: the texts are already through :func:`fold`. Bytes are classified with numpy: ASCII by table,
    other characters by a table of the very regexes :func:`words` uses.
    """
    encoded = [(t if folded else fold(t)).encode("utf-8", "surrogatepass") for t in texts]
    src = b"\n".join(encoded) + b"\n"  # texts end in a non-word byte: no word spans two texts
    arr = np.frombuffer(src, dtype=np.uint8)
    cls = _BYTE_CLASS[arr]
    solo_at = solo_after = None
    hi = np.flatnonzero(arr >= 0xC0)  # UTF-8 lead bytes of multi-byte characters
    if hi.size:
        cp, nbytes = _decode_leads(arr, hi)
        char_cls = _classes(cp)
        for k in range(4):  # every byte of a character gets the character's class
            sel = nbytes > k
            cls[hi[sel] + k] = char_cls[sel]
        solo = char_cls == _CHAR_SOLO
        if solo.any():
            solo_at, solo_after = hi[solo], hi[solo] + nbytes[solo]
    w = cls != _BYTE_OTHER
    edges = np.diff(w.view(np.int8), prepend=np.int8(0))  # +1: a word starts, -1: the byte after a word
    starts_mask, ends_mask = edges == 1, edges == -1
    if solo_at is not None and solo_after is not None:
        # a CJK character is a word on its own: boundaries before and after it
        starts_mask[solo_at] = True
        starts_mask[solo_after[w[solo_after]]] = True
        ends_mask[solo_at[w[solo_at - 1] & (solo_at > 0)]] = True
        ends_mask[solo_after] |= w[solo_after - 1]
    starts = np.flatnonzero(starts_mask)
    ends = np.flatnonzero(ends_mask)
    lengths = ends - starts
    text_ends = np.cumsum([len(e) + 1 for e in encoded]) - 1  # text i ends before text_ends[i]
    counts = np.diff(np.searchsorted(starts, text_ends), prepend=0)
    new_start = np.cumsum(lengths + 1) - (lengths + 1)
    total = int(lengths.sum() + max(len(lengths) - 1, 0))
    out = np.zeros(total + pad, dtype=np.uint8)
    if solo_at is None:
        # Keep each word and the one (non-word) byte after it, which becomes the separating space.
        keep = w.copy()
        keep[ends] = True
        out[:total] = np.where(w, arr, np.uint8(0x20))[keep][:total]
    else:  # adjacent words without a byte between them: move every word to its place
        out[:total] = 0x20
        word_bytes = np.flatnonzero(w)
        out[word_bytes + np.repeat(new_start - starts, lengths)] = arr[word_bytes]
    return out, new_start, lengths, counts
