"""Vectorised MinHash over word shingles, bit-for-bit datasketch's ``MinHash(num_perm, seed=1)``.

datasketch hashes every shingle with ``sha1_hash32`` (the first four bytes of its SHA-1, little-endian) one
Python call at a time, then applies ``num_perm`` permutations. Here the shingles of many documents are cut out
of one byte buffer with numpy, SHA-1 runs as numpy operations over all of them at once (one lane per shingle),
and the permutations and the per-document minimum are one broadcast and one ``minimum.reduceat`` per chunk.
The permutation parameters are taken from a datasketch ``MinHash`` built with the same seed and scheme, so the
signatures are datasketch's: ``LeanMinHash(seed=seed, hashvalues=sig, scheme=scheme)`` goes into
``MinHashLSH`` and compares with datasketch-built sketches.

Schemes: ``affine32`` is datasketch 2.x's default (MurmurHash3 finalizer, then ``a*h + b mod 2**32``);
``legacy`` is datasketch < 2.0 (``(a*h + b) % (2**61 - 1) & (2**32 - 1)``), kept for old indexes.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pipeline.dedup.normalize import joined_words
from pipeline.settings import MinHashSettings

if TYPE_CHECKING:
    from datasketch import LeanMinHash

SCHEMES = ("affine32", "legacy")
DEFAULT_SCHEME = "affine32"
DEFAULT_SEED = 1
BAND_HASH_VERSION = "blake2b8-le32-v1"  # how a band of a signature becomes a key; part of the index metadata

_MERSENNE = np.uint64((1 << 61) - 1)
_MAX32 = np.uint64((1 << 32) - 1)
_SHA1_H = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)
_SHA1_KW = np.repeat(np.array([0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6], dtype=np.uint32), 20)[:, None]
_SHA1_CHUNK = 16384  # shingles per SHA-1 lane batch: big enough to amortise numpy's per-call cost
_PERM_CHUNK = 8192  # shingles per permutation chunk (fewer, larger reduceat calls win over cache locality)
_MAX_BATCH_CHARS = 8_000_000  # text per vectorised call (a single longer document still goes alone)
_PAD = 128  # zero bytes after the buffer: a message gather reads up to 72 bytes past its end


@functools.lru_cache(maxsize=32)
def optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) as ``MinHashLSH(threshold, num_perm)`` picks them (equal false-positive/negative weights)."""
    from datasketch.lsh import _optimal_param  # private but stable in datasketch 1.x-2.x; the pin is <3

    return tuple(_optimal_param(threshold, num_perm, 0.5, 0.5))


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """datasketch's ``MinHash.jaccard``: the fraction of equal hash values."""
    return float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One 10-byte key per band: the band index (2 bytes, big-endian) + BLAKE2b-64 of the band's values.

    The bands are the first ``bands * rows`` values in ``rows``-sized slices, as in ``MinHashLSH``.
    """
    le = np.ascontiguousarray(sig[: bands * rows], dtype="<u4").tobytes()
    width = 4 * rows
    return [i.to_bytes(2, "big") + hashlib.blake2b(le[i * width:(i + 1) * width], digest_size=8).digest()
            for i in range(bands)]


def _sha1_schedule(block: np.ndarray) -> np.ndarray:
    """The 80-word message schedule of a (16, C) block, a few rows per numpy call, without temporaries.

    Rows 16..31 use the standard recurrence three at a time; rows 32..79 the equivalent
    w[t] = rotl(w[t-6] ^ w[t-16] ^ w[t-28] ^ w[t-32], 2), six at a time (fewer, larger numpy calls).
    """
    w = np.empty((80, block.shape[1]), dtype=np.uint32)
    w[:16] = block
    x = np.empty((6, block.shape[1]), dtype=np.uint32)
    y = np.empty_like(x)
    for t, k, taps, rot in [(t, min(3, 32 - t), (3, 8, 14, 16), 1) for t in range(16, 32, 3)] + \
                           [(t, 6, (6, 16, 28, 32), 2) for t in range(32, 80, 6)]:
        xs, ys = x[:k], y[:k]
        np.bitwise_xor(w[t - taps[0]:t - taps[0] + k], w[t - taps[1]:t - taps[1] + k], out=xs)
        xs ^= w[t - taps[2]:t - taps[2] + k]
        xs ^= w[t - taps[3]:t - taps[3] + k]
        np.left_shift(xs, np.uint32(rot), out=ys)
        xs >>= np.uint32(32 - rot)
        np.bitwise_or(xs, ys, out=w[t:t + k])
    return w


def _sha1_compress(state: list[np.ndarray], block: np.ndarray) -> None:
    """One SHA-1 compression of a (16, C) block of words, lane-wise (one message per column), into ``state``.

    Every step is an in-place numpy call on preallocated arrays: the cost is the number of calls.
    """
    w = _sha1_schedule(block)
    w += _SHA1_KW  # the round constants, added once per block instead of once per round
    a, b, c, d, e = (v.copy() for v in state)
    f, g, free = (np.empty_like(a) for _ in range(3))
    two, five, k27, k30 = (np.uint32(v) for v in (2, 5, 27, 30))
    for t in range(80):
        tmp = free
        np.left_shift(a, five, out=tmp)  # rotl(a, 5)
        np.right_shift(a, k27, out=g)
        tmp |= g
        if t < 20:  # Ch(b, c, d) = d ^ (b & (c ^ d))
            np.bitwise_xor(c, d, out=f)
            f &= b
            f ^= d
        elif 40 <= t < 60:  # Maj(b, c, d) = (b & c) | (d & (b | c))
            np.bitwise_or(b, c, out=f)
            f &= d
            np.bitwise_and(b, c, out=g)
            f |= g
        else:  # parity
            np.bitwise_xor(b, c, out=f)
            f ^= d
        tmp += f
        tmp += e
        tmp += w[t]
        np.left_shift(b, k30, out=g)  # b <- rotl(b, 30) in place: it becomes c
        b >>= two
        b |= g
        free = e  # e is dead after this round: its array holds the next round's new a
        a, b, c, d, e = tmp, a, b, c, d
    for s, v in zip(state, (a, b, c, d, e)):
        s += v


def _padding_tables() -> tuple[np.ndarray, np.ndarray]:
    """For every one-block message length n < 56: a byte mask keeping n bytes, and the SHA-1 padding bytes."""
    mask = np.zeros((56, 64), dtype=np.uint8)
    pad = np.zeros((56, 64), dtype=np.uint8)
    for n in range(56):
        mask[n, :n] = 0xFF
        pad[n, n] = 0x80
        pad[n, 56:] = np.frombuffer((8 * n).to_bytes(8, "big"), dtype=np.uint8)
    return mask, pad


_ONE_BLOCK_MASK, _ONE_BLOCK_PAD = _padding_tables()


def _pad_messages(buf: np.ndarray, starts: np.ndarray, n: np.ndarray, nb: int) -> np.ndarray:
    """The padded messages ``buf[start:start + n]`` as a (16 * nb, C) array of big-endian-decoded words."""
    width = 64 * nb
    msg = np.lib.stride_tricks.sliding_window_view(buf, width)[starts]  # (C, width) copy, one row per message
    if nb == 1:  # the common case, by table: two row gathers instead of a compare and two scatters
        msg &= _ONE_BLOCK_MASK[n]
        msg |= _ONE_BLOCK_PAD[n]
    else:
        msg *= np.arange(width) < n[:, None]
        msg[np.arange(len(n)), n] = 0x80
        msg[:, width - 8:] = (n * 8).astype(">u8").view(np.uint8).reshape(-1, 8)
    return np.ascontiguousarray(msg.view(">u4").T, dtype=np.uint32)


def sha1_hash32(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """datasketch's ``sha1_hash32`` of every ``buf[starts[i]:starts[i] + lengths[i]]``, as uint32.

    ``buf`` must be followed by at least 72 spare bytes (the message gather reads past short messages).
    """
    out = np.empty(len(starts), dtype=np.uint32)
    nblocks = (lengths + 8) // 64 + 1
    if not len(nblocks) or nblocks.max() == 1:  # the usual case: a 5-word shingle is < 56 bytes
        groups = [(1, np.arange(len(nblocks)))]
    else:
        groups = [(int(nb), np.flatnonzero(nblocks == nb)) for nb in np.unique(nblocks)]
    for nb, sel in groups:
        for lo in range(0, len(sel), _SHA1_CHUNK):
            part = sel[lo:lo + _SHA1_CHUNK]
            w = _pad_messages(buf, starts[part], lengths[part], nb)
            state = [np.full(len(part), h, dtype=np.uint32) for h in _SHA1_H]
            for blk in range(nb):
                _sha1_compress(state, w[16 * blk:16 * (blk + 1)])
            out[part] = state[0].byteswap()  # digest bytes 0..3 read little-endian
    return out


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


class MinHasher:
    """Word n-gram MinHash signatures for many texts per call.

    ``signatures(texts)`` returns ``(sigs, ok)``: ``sigs[i]`` is datasketch's ``hashvalues`` for the shingle set
    of ``texts[i]`` (see :func:`pipeline.dedup.normalize.word_shingles`), ``ok[i]`` is False for a text with
    fewer than ``ngram`` words (its row is left at the empty-sketch value and must not be indexed).
    """

    def __init__(self, num_perm: int = MinHashSettings.num_perm, ngram: int = MinHashSettings.ngram,
                 seed: int = DEFAULT_SEED, scheme: str = DEFAULT_SCHEME):
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        self.num_perm, self.ngram, self.seed, self.scheme = num_perm, ngram, seed, scheme
        # The permutations datasketch draws for this seed and scheme, taken from datasketch itself.
        from datasketch import MinHash  # imports scipy (~0.3 s, ~20 MB): only when signatures are computed

        a, b = MinHash(num_perm=num_perm, seed=seed, scheme=scheme).permutations
        self.dtype = np.uint32 if scheme == "affine32" else np.uint64
        self._a: np.ndarray = np.asarray(a, dtype=self.dtype)
        self._b: np.ndarray = np.asarray(b, dtype=self.dtype)
        self.empty_value = self.dtype(np.iinfo(np.uint32).max)

    def __repr__(self) -> str:
        return f"MinHasher(num_perm={self.num_perm}, ngram={self.ngram}, seed={self.seed}, scheme={self.scheme!r})"

    def lean(self, sig: np.ndarray) -> LeanMinHash:
        """A datasketch ``LeanMinHash`` of one signature row."""
        from datasketch import LeanMinHash

        return LeanMinHash(seed=self.seed, hashvalues=sig, scheme=self.scheme)

    def _shingle_spans(self, texts: Sequence[str], folded: bool = False):
        """The byte buffer of all texts' words, each shingle's (start, length) in it, and its document row."""
        n = self.ngram
        buf, wstart, wlen, counts = joined_words(texts, _PAD, folded)
        ok = counts >= n
        m = np.where(ok, counts - n + 1, 0)  # shingles per document
        first_word = np.cumsum(counts) - counts
        total = int(m.sum())
        # global index of each shingle's first word: documents' words are consecutive in the buffer
        sw = np.arange(total) - np.repeat(np.cumsum(m) - m - first_word, m)
        starts = wstart[sw]
        lengths = wstart[sw + n - 1] + wlen[sw + n - 1] - starts
        rows = np.repeat(np.arange(len(texts)), m)
        return buf, starts, lengths, rows, ok

    def hash_values(self, hv: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The permuted values, shape (num_perm, len(hv)), of 32-bit shingle hashes."""
        if self.scheme == "affine32":
            out = np.multiply(self._a[:, None], _fmix32(hv)[None, :], out=out)
            out += self._b[:, None]
            return out
        phv = (self._a[:, None] * hv.astype(np.uint64)[None, :] + self._b[:, None]) % _MERSENNE
        return phv & _MAX32

    def signatures(self, texts: Sequence[str], folded: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Signatures of ``texts`` (``folded``: already through :func:`~pipeline.dedup.normalize.fold`)."""
        sigs = np.full((len(texts), self.num_perm), self.empty_value, dtype=self.dtype)
        ok = np.zeros(len(texts), dtype=bool)
        # Sub-batches of bounded text size: the numpy tokeniser needs ~20 bytes of scratch per input byte.
        lo = 0
        while lo < len(texts):
            hi, size = lo, 0
            while hi < len(texts) and (hi == lo or size + len(texts[hi]) <= _MAX_BATCH_CHARS):
                size += len(texts[hi])
                hi += 1
            sigs[lo:hi], ok[lo:hi] = self._signatures(texts[lo:hi], folded)
            lo = hi
        return sigs, ok

    def _signatures(self, texts: Sequence[str], folded: bool) -> tuple[np.ndarray, np.ndarray]:
        buf, starts, lengths, rows, ok = self._shingle_spans(texts, folded)
        sigs = np.full((len(texts), self.num_perm), self.empty_value, dtype=self.dtype)
        if not len(starts):
            return sigs, ok
        hv = sha1_hash32(buf, starts, lengths)
        scratch = np.empty((self.num_perm, _PERM_CHUNK), dtype=self.dtype)
        for lo in range(0, len(hv), _PERM_CHUNK):
            part = hv[lo:lo + _PERM_CHUNK]
            phv = self.hash_values(part, out=scratch[:, :len(part)] if self.scheme == "affine32" else None)
            r = rows[lo:lo + _PERM_CHUNK]
            seg = np.flatnonzero(np.concatenate(([True], r[1:] != r[:-1])))  # a document's shingles are contiguous
            mins = np.minimum.reduceat(phv, seg, axis=1).T
            docs = r[seg]
            sigs[docs] = np.minimum(sigs[docs], mins)
        return sigs, ok

    def signature(self, text: str) -> np.ndarray | None:
        sigs, ok = self.signatures([text])
        return sigs[0] if ok[0] else None
