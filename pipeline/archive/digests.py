"""WARC-Block-Digest / WARC-Payload-Digest, checked on bytes as they stream past.

Contract: :class:`DigestCheck` takes a header value as crawlers write it (``sha1:`` + base32 as in the WARC
standard and Common Crawl; also hex or base64, and ``sha256``/``sha512``/``md5``), hashes what it is fed, and
:meth:`DigestCheck.mismatch` returns None when the digest matches or cannot be checked (an algorithm hashlib does
not know is left unchecked, and said so in :attr:`DigestCheck.unchecked`), else a message naming the declared and
the computed value. A declared value that decodes to no digest of its algorithm (a 32-hex-digit "sha1") is a
mismatch: the header is damaged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

# RFC 4648 base32 -> the "base32hex" digits int(x, 32) reads: a declared value is decoded in C, not base64's loop.
_B32_TO_INT_DIGITS = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHIJKLMNOPQRSTUV")
_ALGORITHMS = {"sha1": "sha1", "sha-1": "sha1", "sha256": "sha256", "sha-256": "sha256", "sha512": "sha512",
               "sha-512": "sha512", "md5": "md5"}
_CONSTRUCTORS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512, "md5": hashlib.md5}


class DigestCheck:
    def __init__(self, field: str, value: str):
        self.field = field
        self.declared = value.strip()
        name, _, self.encoded = self.declared.partition(":")
        self.algorithm = _ALGORITHMS.get(name.strip().lower())
        self.unchecked = None if self.algorithm else f"{field} algorithm {name.strip()[:20]!r} is not one we check"
        self._hash = _CONSTRUCTORS[self.algorithm]() if self.algorithm else None
        self.update = self._hash.update if self._hash else _ignore

    def mismatch(self) -> str | None:
        if self._hash is None:
            return None
        raw = self._hash.digest()
        value = self.encoded.strip()
        if _base32_equals(value, raw) or value.lower() == raw.hex():
            return None
        try:
            padded = value + "=" * (-len(value) % 4)
            if binascii.a2b_base64(padded.encode("ascii"), strict_mode=True) == raw:
                return None
        except (binascii.Error, ValueError, UnicodeEncodeError):
            pass
        return (f"{self.field} {self.declared[:120]!r} does not match the bytes read "
                f"({self.algorithm}:{base64.b32encode(raw).decode()})")


def _base32_equals(value: str, raw: bytes) -> bool:
    """Whether ``value`` is ``raw`` in RFC 4648 base32 (any case, padding optional)."""
    digits = value.rstrip("=").upper()
    if not digits or len(digits) != (len(raw) * 8 + 4) // 5:
        return False
    try:
        number = int(digits.encode("ascii").translate(_B32_TO_INT_DIGITS), 32)
    except (ValueError, UnicodeEncodeError):
        return False
    spare = len(digits) * 5 - len(raw) * 8  # padding bits at the end of the last character
    return number >> spare == int.from_bytes(raw, "big") and not number & ((1 << spare) - 1)


def _ignore(data) -> None:
    pass
