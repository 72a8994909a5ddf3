"""Record headers of WARC (0.17, 0.18, 1.0, 1.1) and ARC (v1 and v2), and how to find the next one in damaged data.

Contract:
- :func:`version_of` recognises a WARC version line; :func:`parse_fields` reads the ``Name: value`` lines after it
  (folded lines joined, names case-insensitive, the first of a repeated field wins, lines without a colon ignored,
  as warcio does).
- :func:`parse_arc_header` reads an ARC record header line. ``strict=True`` (used when *searching* damaged data)
  also demands a dotted-quad IP and a 14-digit date, so that CDX/CDXJ lines, logs or HTML are never taken for
  records; ``strict=False`` (used where a header must stand, right after the previous record) accepts the odd
  values real ARC writers produced (a ``null`` date).
- :func:`record_start` says whether bytes begin with a record header (after blank lines), and :func:`find_header`
  finds the first header that starts a line in a buffer. Both only ever look for the format given (``warc`` or
  ``arc``), or for both while the format of a file is not known yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WARC = "warc"
ARC = "arc"
WARC_VERSIONS = frozenset({"0.17", "0.18", "1.0", "1.1"})
MAX_LINE = 64 * 1024  # an ARC header line (URL included) or a WARC version line longer than this is not a header
_WARC_LINE = re.compile(rb"WARC/(\d\.\d{1,2})[ \t]*\r?\n")
_DOTTED_QUAD = re.compile(rb"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_DATE14 = re.compile(rb"\d{14}")
_DIGITS = re.compile(rb"\d{1,15}")
_URL_START = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*:")
_URL_SCHEME = re.compile(rb"(?:https?|ftp|dns|filedesc|whois|rtsp|mms)://?", re.I)
# Where an ARC header may be hiding: " <ip> <14-digit date> " anywhere; the line around it is then checked whole.
_ARC_ANCHOR = re.compile(rb" \d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3} \d{14} ")


def version_of(line: bytes) -> str | None:
    """The WARC version of a version line such as ``b"WARC/1.0\\r\\n"``, or None."""
    m = _WARC_LINE.fullmatch(line)
    if m is None:
        return None
    version = m.group(1).decode()
    return version if version in WARC_VERSIONS else None


def decode_header_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("iso-8859-1")


def parse_fields(block: bytes) -> dict[str, str]:
    """``Name: value`` lines (CRLF or LF) into a dict keyed by lower-case name; continuation lines are joined."""
    text = decode_header_text(block)
    fields: dict[str, str] = {}
    if "\n " in text or "\n\t" in text:  # folded values: join them to their field first
        text = _FOLD.sub(" ", text)
    for name, value in _FIELD.findall(text):
        name = name.strip().lower()
        if name not in fields:
            fields[name] = value.strip()
    return fields


_FOLD = re.compile(r"\r?\n[ \t]+")
_FIELD = re.compile(r"^([^:\r\n]*):([^\r\n]*)", re.M)


@dataclass(frozen=True)
class ArcHeader:
    url: str
    ip: str
    date: str
    content_type: str
    length: int
    line_length: int  # bytes of the header line, newline included


def parse_arc_header(line: bytes, version: int | None = None, strict: bool = True) -> ArcHeader | None:
    """An ARC record header line (with its newline), v1 (5 fields) or v2 (10 fields), or None.

    The URL may contain spaces (real ARC writers did not escape them): the fields are counted from the right.
    """
    if not line.endswith(b"\n") or len(line) > MAX_LINE:
        return None
    tokens = line.split()
    counts = (5,) if version == 1 else (10,) if version == 2 else (5, 10)
    for count in counts:
        if len(tokens) < count or not _DIGITS.fullmatch(tokens[-1]):
            continue
        url_tokens = tokens[:len(tokens) - count + 1]
        ip, date, mime = tokens[-count + 1], tokens[-count + 2], tokens[-count + 3]
        if strict:
            if not (_DOTTED_QUAD.fullmatch(ip) and _DATE14.fullmatch(date) and _URL_START.match(url_tokens[0])):
                continue
        elif version is None and count == 5 and len(tokens) >= 10 and _DATE14.fullmatch(tokens[-8]):
            continue  # a v2 line read with the v1 field count: try 10
        url = decode_header_text(b" ".join(url_tokens))
        return ArcHeader(url=url, ip=ip.decode("latin-1"), date=date.decode("latin-1"),
                         content_type=mime.decode("latin-1"), length=int(tokens[-1]), line_length=len(line))
    return None


_DAMAGED_ARC = re.compile(rb"[^\s]+ [^\n]*?(?:\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b|\b\d{14}\b)")


def looks_like_damaged_arc_header(line: bytes) -> bool:
    """A line that is not an ARC header but has the look of one (an IP address or a 14-digit date after a first
    field): a damaged header rather than the rest of a record's block."""
    return _DAMAGED_ARC.match(line) is not None


def _first_line(data: bytes, start: int) -> bytes | None:
    end = data.find(b"\n", start, start + MAX_LINE)
    return None if end < 0 else data[start:end + 1]


def header_at(data: bytes, start: int, fmt: str | None) -> str | None:
    """The format (``warc``/``arc``) of a header line starting at ``data[start]``; None if there is none there.

    Raises :class:`NeedMore` when the line is not complete in ``data`` (the caller reads more and asks again).
    """
    if fmt != ARC and data.startswith(b"WARC/", start):
        line = _first_line(data, start)
        if line is None:
            if len(data) - start < 32:
                raise NeedMore
            return None
        return WARC if version_of(line) else None
    if fmt != WARC and data[start:start + 1].isalpha():
        line = _first_line(data, start)
        if line is None:
            if len(data) - start < MAX_LINE:
                raise NeedMore
            return None
        return ARC if parse_arc_header(line, strict=True) else None
    return None


class NeedMore(Exception):
    """The bytes seen so far end before the question can be answered."""


def record_start(data: bytes, fmt: str | None, complete: bool = False) -> str | None:
    """The format of the record header that ``data`` begins with, after blank lines; None if it does not.

    With ``complete=False`` raises :class:`NeedMore` when ``data`` ends too soon to tell.
    """
    start = 0
    while start < len(data) and data[start] in (13, 10):
        start += 1
    if start == len(data):
        if complete:
            return None
        raise NeedMore
    try:
        return header_at(data, start, fmt)
    except NeedMore:
        if complete:
            return None
        raise


def find_header(data: bytes, start: int, fmt: str | None, line_start_at: int | None = None,
                complete: bool = False) -> tuple[int, str | None]:
    """First header in ``data[start:]``: (index, format); (-1, None) if none.

    A WARC version line counts wherever it is; an ARC header line at a line start (the byte before it is a newline,
    or it sits at ``line_start_at``: the start of the stream or of a gzip member) or where a URL scheme begins on
    its line (stray bytes with no newline may come first). Unless ``complete`` (no more bytes will come), returns
    (index, None) for a candidate whose line is not complete yet: the caller keeps ``data[index:]`` and asks
    again with more bytes.
    """
    best = -1
    best_fmt = None
    if fmt != ARC:  # WARC version lines, wherever they are: stray bytes may sit right before one
        pos = start
        while (i := data.find(b"WARC/", pos)) >= 0:
            try:
                if header_at(data, i, WARC) == WARC:
                    best, best_fmt = i, WARC
                    break
            except NeedMore:
                if not complete:
                    best, best_fmt = i, None
                    break
            pos = i + 1
    if fmt != WARC:
        limit = best if best >= 0 else len(data)
        for i in _arc_candidates(data, start, limit, line_start_at):
            try:
                if header_at(data, i, ARC) == ARC:
                    return i, ARC
            except NeedMore:
                if not complete:
                    return i, None
    return best, best_fmt


def _arc_candidates(data: bytes, start: int, limit: int, line_start_at: int | None) -> list[int]:
    """Line starts in [start, limit) that may begin an ARC header, in order (checked by the caller)."""
    found = set()
    if line_start_at is not None and start <= line_start_at < limit:
        found.add(line_start_at)
    pos = start
    while (i := data.find(b"filedesc://", pos, limit)) >= 0:
        if i > 0 and data[i - 1] == 10:
            found.add(i)
        pos = i + 1
    for m in _ARC_ANCHOR.finditer(data, start, min(len(data), limit + MAX_LINE)):
        line_start = data.rfind(b"\n", max(0, m.start() - MAX_LINE), m.start()) + 1
        if start <= line_start < limit and (line_start == line_start_at or line_start > 0):
            found.add(line_start)
        # Stray bytes with no newline before the header: the URL starts at a scheme somewhere on the line.
        for scheme in _URL_SCHEME.finditer(data, max(start, line_start), m.start()):
            if scheme.start() < limit:
                found.add(scheme.start())
    # The last line, not complete yet, may be a header: the caller reads on before deciding.
    newline = data.rfind(b"\n", max(0, start - 1), len(data))
    tail = newline + 1 if newline >= 0 else (line_start_at if line_start_at is not None else -1)
    if start <= tail < limit and data[tail:tail + 1].isalpha() and len(data) - tail < MAX_LINE:
        found.add(tail)
    return sorted(found)
