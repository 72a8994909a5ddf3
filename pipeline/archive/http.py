"""HTTP responses inside WARC/ARC records: the status line and headers, and the body decoded as a stream.

Contract:
- :func:`parse_response_head` never raises: a head that is not an HTTP response (no ``HTTP/`` status line), or a
  status that is not a 3-digit code (``3000000000``, ``abc``), comes back with ``problem`` set and ``status`` None,
  so no out-of-range integer ever reaches a typed column; the raw status line is kept for the reason's detail.
- :class:`BodyDecoder` undoes the chunked transfer coding and the content codings (``gzip``/``x-gzip``,
  ``deflate`` zlib-wrapped or raw, ``br`` when a ``brotli`` module with bounded output is installed) on pieces of
  the body as they are read, never producing more than a bounded piece of output per step: at most
  ``max_keep`` decoded bytes are kept, and counting the decoded size stops at ``max_count`` (a decompression bomb
  costs bounded memory and bounded time). A body that does not decode (a chunk-size line that is not hex, a chunk
  not followed by CRLF, gzip that is not gzip, a stream that ends early) sets ``failure`` to a reject reason and a
  detail; a record the crawler marked ``WARC-Truncated`` may end early without failing. Unknown content-coding
  tokens (``utf-8``, ``none``: servers send them for plain bodies) are read as identity; ``compress``,
  ``zstd`` and (without brotli) ``br`` are ``unsupported_content_encoding``.
- One known crawler quirk is read as what it is: a ``gzip``/``deflate`` body that is plainly *uncompressed markup*
  (its first bytes are ``<`` after whitespace and hold no control bytes; ClueWeb09 stored every body decoded and
  kept the header) is passed through as identity and said so in :attr:`BodyDecoder.quirks`. Compressed data
  cannot look like that; anything else that does not decompress is ``bad_content_encoding``.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

from pipeline.archive.formats import decode_header_text, parse_fields
from pipeline.reasons import (
    REASON_BAD_CONTENT_ENCODING,
    REASON_BAD_TRANSFER_ENCODING,
    REASON_UNSUPPORTED_CONTENT_ENCODING,
)

try:  # an optional dependency (fastwarc brings it); only a version with bounded output is used
    import brotli as _brotli

    _brotli.Decompressor().process(b"", output_buffer_limit=1)
except Exception:  # noqa: BLE001 - absent, or too old to bound its output
    _brotli = None

REASON_BAD_CHUNKED, REASON_BAD_ENCODING = REASON_BAD_TRANSFER_ENCODING, REASON_BAD_CONTENT_ENCODING
REASON_UNSUPPORTED_ENCODING = REASON_UNSUPPORTED_CONTENT_ENCODING

MAX_HEAD = 256 * 1024  # an HTTP header section longer than this is not a response we read
OUT_PIECE = 1 << 20  # most decoded bytes produced by one decompressor call
_STATUS_LINE = re.compile(r"HTTP/\d+(?:\.\d+)?[ \t]+(\S+)(?:[ \t]+(.*))?$", re.I)
_CODE = re.compile(r"[1-9]\d\d", re.A)
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_IDENTITY = frozenset({"", "identity"})
_UNSUPPORTED = frozenset({"compress", "x-compress", "zstd", "sdch", "pack200-gzip", "exi", "aes128gcm"})
_MARKUP_START = re.compile(rb"[ \t\r\n]*<[!?a-zA-Z/][\t\r\n\x20-\x7e\x80-\xff]*")
QUIRK_STORED_DECODED = "Content-Encoding declared but the body stored uncompressed (markup): read as identity"


def _plain_markup(data: bytes) -> bool:
    """Whether a body that should be compressed starts as uncompressed HTML/XML (256 bytes of it, no controls)."""
    sample = data[:256]
    if len(sample) < 64:
        return False
    m = _MARKUP_START.match(sample)
    return m is not None and m.end() == len(sample)


@dataclass
class HttpHead:
    status: int | None = None
    status_line: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    problem: str | None = None

    def get(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value if value else None


def parse_response_head(head: bytes) -> HttpHead:
    """Status line and headers of an HTTP response head (up to and including its blank line)."""
    first, _, rest = head.partition(b"\n")
    status_line = decode_header_text(first.rstrip(b"\r"))
    result = HttpHead(status_line=status_line, headers=parse_fields(rest))
    m = _STATUS_LINE.match(status_line.strip())
    if m is None:
        result.problem = f"no HTTP status line: {status_line[:200]!r}"
    elif not _CODE.fullmatch(m.group(1)):
        result.problem = f"HTTP status {m.group(1)[:40]!r} is not a 3-digit code: {status_line[:200]!r}"
    else:
        result.status = int(m.group(1))
    return result


class DecodeError(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


class _Stop(Exception):
    """Enough decoded bytes counted: stop decoding."""


class _Dechunker:
    """The chunked transfer coding (RFC 9112 7.1), one state machine over pieces of input."""

    name = "chunked"

    def __init__(self):
        self.state = "size"
        self.line = bytearray()
        self.remaining = 0
        self.chunks = 0

    def feed(self, data: bytes):
        pos, n = 0, len(data)
        while pos < n:
            state = self.state
            if state == "data":
                k = min(self.remaining, n - pos)
                yield data[pos:pos + k]
                pos += k
                self.remaining -= k
                if not self.remaining:
                    self.state = "crlf"
            elif state in ("size", "trailer"):
                j = data.find(b"\n", pos)
                if j < 0:
                    self.line += data[pos:]
                    if len(self.line) > 4096:
                        raise DecodeError(REASON_BAD_CHUNKED, f"chunk {self.chunks}: no end of line within 4096 "
                                                              f"bytes: {bytes(self.line[:40])!r}")
                    return
                self.line += data[pos:j]
                pos = j + 1
                line = bytes(self.line).rstrip(b"\r")
                self.line.clear()
                if state == "trailer":
                    if not line.strip():
                        self.state = "done"
                    continue
                size_text = line.split(b";", 1)[0].strip()
                if not _HEX.fullmatch(size_text):
                    raise DecodeError(REASON_BAD_CHUNKED, f"chunk {self.chunks}: size line {line[:40]!r} is not "
                                                          "a hex number")
                self.chunks += 1
                self.remaining = int(size_text, 16)
                self.state = "data" if self.remaining else "trailer"
            elif state == "crlf":
                byte = data[pos]
                pos += 1
                if byte == 10:
                    self.state = "size"
                elif byte != 13:
                    raise DecodeError(REASON_BAD_CHUNKED, f"chunk {self.chunks} is not followed by CRLF "
                                                          "(its size is wrong)")
            else:  # done: what follows the last chunk is not part of the body
                return

    def finish(self, truncated: bool):
        if self.state == "done" or (self.state == "trailer" and not self.line):
            return ()
        if truncated:
            return ()
        where = f"{self.remaining} bytes into chunk {self.chunks}" if self.state == "data" else \
            f"after chunk {self.chunks}"
        raise DecodeError(REASON_BAD_CHUNKED, f"chunked body ends {where}, before its last (0-size) chunk")


class _Inflater:
    """gzip / deflate content coding with bounded output per call; concatenated gzip members are followed."""

    def __init__(self, name: str):
        self.name = name
        self.d: zlib._Decompress | None = None
        self.done = False
        self.seen = False
        self.passthrough = False  # the body turned out to be stored uncompressed (see the module docstring)

    def _new(self, first: bytes) -> zlib._Decompress:
        if self.name == "deflate":
            zlib_wrapped = len(first) >= 2 and (first[0] & 0x0F) == 8 and (first[0] << 8 | first[1]) % 31 == 0
            return zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip, or zlib sent as gzip

    def feed(self, data: bytes):
        if self.passthrough:
            yield data
            return
        if not self.seen and self.d is None and data and _plain_markup(data):
            self.passthrough = self.seen = self.done = True
            yield data
            return
        while not self.done:
            if not data:
                if self.d is None:
                    return
                out = self._inflate(b"")  # output zlib still holds for input it has consumed
                if out:
                    yield out
                if not self.d.eof:
                    if not out:
                        return
                    continue
            else:
                if self.d is None:
                    self.d = self._new(data)
                out = self._inflate(data)
                self.seen = True
                if out:
                    yield out
            if self.d.eof:
                rest = self.d.unused_data
                if self.name != "deflate" and rest.startswith(b"\x1f\x8b"):
                    self.d, data = None, rest  # another gzip member follows
                    continue
                self.done = True  # bytes after the end of the stream are not part of the content
                return
            data = self.d.unconsumed_tail

    def _inflate(self, data: bytes) -> bytes:
        if self.d is None:  # feed() makes the decompressor before it inflates
            raise RuntimeError("inflating without a decompressor")
        try:
            return self.d.decompress(data, OUT_PIECE)
        except zlib.error as exc:
            raise DecodeError(REASON_BAD_ENCODING, f"Content-Encoding {self.name}: {exc}") from None

    def finish(self, truncated: bool):
        if self.done or not self.seen or truncated:
            return ()
        raise DecodeError(REASON_BAD_ENCODING, f"Content-Encoding {self.name}: the compressed stream ends early")


class _Unbrotli:
    name = "br"

    def __init__(self):
        self.d = _brotli.Decompressor()
        self.seen = False

    def feed(self, data: bytes):
        self.seen = True
        try:
            out = self.d.process(data, output_buffer_limit=OUT_PIECE)
            while True:
                if out:
                    yield out
                if self.d.can_accept_more_data() or self.d.is_finished():
                    return
                out = self.d.process(b"", output_buffer_limit=OUT_PIECE)
        except _brotli.error as exc:
            raise DecodeError(REASON_BAD_ENCODING, f"Content-Encoding br: {exc}") from None

    def finish(self, truncated: bool):
        if self.d.is_finished() or not self.seen or truncated:
            return ()
        raise DecodeError(REASON_BAD_ENCODING, "Content-Encoding br: the compressed stream ends early")


def _codings(value: str | None) -> list[str]:
    return [t.strip().lower() for t in (value or "").split(",") if t.strip()]


class BodyDecoder:
    """An HTTP body, fed in pieces, decoded under a bound (see the module docstring)."""

    def __init__(self, head: HttpHead | None, max_keep: int, max_count: int, truncated: bool = False):
        self.max_keep, self.max_count, self.truncated = max_keep, max_count, truncated
        self.pieces: list[bytes] = []
        self.length = 0  # decoded bytes counted
        self.too_large = False
        self.stopped = False  # counting stopped at max_count: length is a lower bound
        self.failure: tuple[str, str] | None = None
        self.stages: list = []
        self.taps: dict = {}  # stage index -> callable seeing that stage's input (len(stages): the decoded output)
        if head is None:
            return
        transfer = _codings(head.get("transfer-encoding"))
        content = _codings(head.get("content-encoding"))
        applied = content  # content codings first, then transfer codings, each list in the order applied
        if transfer and transfer[-1] == "chunked":
            self.stages.append(_Dechunker())
            applied = content + transfer[:-1]
        for name in reversed(applied):
            if name in ("gzip", "x-gzip", "deflate"):
                self.stages.append(_Inflater("deflate" if name == "deflate" else "gzip"))
            elif name == "br" and _brotli is not None:
                self.stages.append(_Unbrotli())
            elif name == "br" or name in _UNSUPPORTED:
                self.failure = (REASON_UNSUPPORTED_ENCODING, f"Content-Encoding {name!r} is not one we decode")
            # anything else (identity, "utf-8", "none", ...) is read as identity

    @property
    def identity(self) -> bool:
        return not self.stages

    @property
    def quirks(self) -> list[str]:
        return [QUIRK_STORED_DECODED for stage in self.stages if getattr(stage, "passthrough", False)]

    def feed(self, data: bytes) -> None:
        if self.failure is not None or self.stopped or not data:
            return
        try:
            self._push(data, 0)
        except DecodeError as exc:
            self._fail(exc)
        except _Stop:
            self.stopped = True

    def finish(self) -> None:
        if self.failure is not None or self.stopped:
            return
        try:
            for index, stage in enumerate(self.stages):
                for out in stage.finish(self.truncated):
                    self._push(out, index + 1)
        except DecodeError as exc:
            self._fail(exc)
        except _Stop:
            self.stopped = True

    def payload(self) -> bytes:
        return b"".join(self.pieces)

    def _fail(self, exc: DecodeError) -> None:
        if not self.too_large:  # a body already too large is rejected for that, whatever follows
            self.failure = (exc.reason, str(exc))
        self.pieces = []

    def _push(self, data: bytes, index: int) -> None:
        if self.taps and index in self.taps:
            self.taps[index](data)
        if index == len(self.stages):
            self.length += len(data)
            if not self.too_large:
                if self.length <= self.max_keep:
                    self.pieces.append(data)
                else:
                    self.too_large, self.pieces = True, []
            if self.length > self.max_count and not self.identity:
                raise _Stop
            return
        for out in self.stages[index].feed(data):
            self._push(out, index + 1)
