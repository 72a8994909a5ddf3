"""A fixed, uniform number in [0, 1) per key: every deterministic sample and split of the project.

The first eight bytes of a hash of ``salt + key``, big-endian, over 2**64: the same on every run, runner,
machine and Python (no ``hash()`` randomisation), and uniform enough for sampling. Used for the
``--sample-files`` file sample and the per-document calibration sample and ``--score-pre-cutoff`` draw
(``sha1``, unsalted), for ``lowbg detect``'s held-out documents (``sha256``, salted with the seed) and for
``lowbg collapse``'s held-out and drawn documents (``sha256``, salted). The algorithm stays what each use has
always used, so samples drawn before are drawn again.
"""

from __future__ import annotations

import hashlib


def unit_fraction(key: str, *, salt: str = "", algorithm: str = "sha1") -> float:
    """``int(hash(salt + key)[:8]) / 2**64``: a deterministic pseudo-random number in [0, 1)."""
    digest = hashlib.new(algorithm, (salt + key).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_sample(key: str, fraction: float | None, *, salt: str = "", algorithm: str = "sha1") -> bool:
    """Whether ``key`` falls in the deterministic sample of this ``fraction`` (None: everything does)."""
    return fraction is None or unit_fraction(key, salt=salt, algorithm=algorithm) < fraction
