"""The raw bytes of one input file, read forward and hashed on the way.

Contract: :class:`HashingSource` feeds every byte of the file to a sha256 exactly once and in order, however the
readers above it move: they may seek back (to rescan a damaged stretch) but never forward past bytes not yet read,
so the file's hash costs no second pass. :meth:`HashingSource.finish` reads (and hashes) whatever is left.
"""

from __future__ import annotations

import hashlib
import io
from typing import BinaryIO

READ_SIZE = 1 << 20


class HashingSource:
    """Forward reader over a seekable binary stream that hashes each byte the first time it passes."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.sha = hashlib.sha256()
        self.pos = 0  # position of the next byte read
        self.hashed = 0  # bytes [0, hashed) went into the hash
        self.at_eof = False  # a read from the high-water mark returned nothing

    def read(self, size: int = READ_SIZE) -> bytes:
        data = self.raw.read(size)
        if not data:
            if self.pos >= self.hashed:
                self.at_eof = True
            return b""
        end = self.pos + len(data)
        if end > self.hashed:  # pos <= hashed always holds: new bytes follow the old ones without a gap
            self.sha.update(data[self.hashed - self.pos:] if self.pos < self.hashed else data)
            self.hashed = end
        self.pos = end
        return data

    def seek(self, pos: int) -> None:
        if pos > self.hashed:
            raise ValueError(f"seek to {pos} past the bytes read so far ({self.hashed}) would leave a hole in the hash")
        if pos != self.pos:
            self.raw.seek(pos, io.SEEK_SET)
            self.pos = pos

    def size_so_far(self) -> int:
        return self.hashed

    def finish(self) -> tuple[str, int]:
        """(sha256 hex, size) of the whole file, reading what was not read yet."""
        self.seek(self.hashed)
        while self.read(READ_SIZE):
            pass
        return self.sha.hexdigest(), self.hashed
