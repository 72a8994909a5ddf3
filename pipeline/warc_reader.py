"""Read one WARC/WET/ARC file, plain or gzip, losing nothing silently (no Beam here; ingest.py wraps it).

Yields, in file order:
- :class:`WarcRecord` for every ``response``/``resource``/``conversion`` record (a document candidate);
- :class:`Skipped` for every other record (warcinfo, request, metadata, revisit, ...), by type;
- :class:`ErrorRecord` for each damaged stretch of the file: exactly one row, naming the file, the byte range
  (``warc_offset`` to ``warc_offset_end``: the next record read after it, or the end of the file: its size, or
  null when the stretch starts inside a gzip member shared by several records and runs to the end) and the cause;
- one :class:`InputStats` at the end (size, sha256, records read, outcome counts, notes).

This module frames records; the layers under it (:mod:`pipeline.archive`) each see their own damage. Rules:

- Formats: WARC 0.17, 0.18, 1.0, 1.1 and ARC v1/v2 (``filedesc://`` header, 5- or 10-field record lines), plain
  or gzip (per-record members, a single member holding everything, or records split over members). The format is
  the one of the first record header found; a file with no record header anywhere is one ``not_an_archive`` row,
  a file with no bytes (or none after decompression, or only blank lines) one ``empty_file`` row.
- Progress: the read position only moves forward between records. Each stretch of damage is skipped by scanning
  forward to the next record header (or, for gzip damage, to the next gzip member that holds one), so no record
  is read twice and no input can make the reader loop. A record's block is checked against its
  ``Content-Length`` both ways: the file or member ends first (``truncated_record``), or what follows the block is
  not the blank line and the next header (``content_length_mismatch``); a missing, non-numeric or negative
  ``Content-Length`` is ``bad_content_length``. In each case the stretch from the record's start to the next
  header found *after the record's header* is one error row, so records its block would have swallowed are read.
- Integrity: ``WARC-Block-Digest`` is checked on every record that has one; ``WARC-Payload-Digest`` on records
  with no block digest (it matches if it is the digest of the raw, de-chunked or decoded body: writers differ).
  A mismatch is a ``digest_mismatch`` error row, not a document: the bytes are not the ones the crawler wrote. A
  second record with a WARC-Record-ID already read in the file is a ``duplicate_record`` row.
- HTTP: response bodies are de-chunked and decoded under ``max_payload_bytes`` of output (see
  :mod:`pipeline.archive.http`); a body that does not decode, or a response whose status line is not HTTP with a
  3-digit code, is passed on with a reject reason (``reject_reason``/``reject_detail``), never as text.
- Offsets: a record's ``offset`` is its gzip member's file offset (or its file offset, uncompressed). A record
  that shares a member with others (a single-member gzip file) gets the member's offset plus its position in the
  member's decompressed data, and ``member_offset`` says so; ids of records without a WARC-Record-ID (ARC
  records) are built from the file and this position, so they are the same on every run.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from pipeline.archive import formats
from pipeline.archive.digests import DigestCheck
from pipeline.archive.http import MAX_HEAD, BodyDecoder, HttpHead, parse_response_head
from pipeline.archive.source import HashingSource
from pipeline.archive.streams import (
    GZIP_MAGIC,
    VALIDATE_INPUT,
    ArchiveStream,
    Damage,
    GzipStream,
    PlainStream,
    member_holds_record,
)
from pipeline.crawls import Crawl, crawl_from_is_part_of, crawl_from_path
from pipeline.document import ErrorRecord
from pipeline.reasons import (
    ERROR_BAD_GZIP,
    ERROR_BAD_HEADER,
    ERROR_BAD_LENGTH,
    ERROR_DIGEST,
    ERROR_DUPLICATE_RECORD,
    ERROR_EMPTY_FILE,
    ERROR_LENGTH_MISMATCH,
    ERROR_NOT_AN_ARCHIVE,
    ERROR_OPEN,
    ERROR_PARSE,
    ERROR_TRUNCATED,
    READ,
    REASON_BAD_HTTP,
)

DOCUMENT_TYPES = frozenset({"response", "resource", "conversion"})
STAGE = READ
MAX_HEADER = 256 * 1024  # a WARC header (all fields) longer than this is damage
BLOCK_PIECE = 1 << 20
WARCINFO_KEEP = 64 * 1024
COUNT_FACTOR = 32  # decoded bytes are counted up to this many times --max-payload-bytes, then counting stops
SNIFF_SIZE = 1 << 20
_LENGTH = re.compile(r"\d{1,15}", re.A)
_HTTP_SCHEMES = ("http:", "https:")


@dataclass
class WarcRecord:
    """A document candidate as read from the archive: headers that matter plus the decoded payload."""

    warc_file: str
    offset: int | None
    record_type: str
    record_id: str | None
    target_uri: str | None
    warc_date_raw: str | None
    warc_content_type: str | None
    identified_payload_type: str | None
    payload_digest: str | None
    warc_truncated: str | None
    crawl_id: str | None
    crawl_rule: str | None
    http_status: int | None = None
    http_content_type: str | None = None
    http_date_raw: str | None = None
    http_last_modified_raw: str | None = None
    payload: bytes = b""
    payload_length: int = 0
    payload_too_large: bool = False
    payload_length_exact: bool = True  # False: decoding stopped counting (a bomb); payload_length is a lower bound
    member_offset: int | None = None  # set when the record shares its gzip member with others (see offset)
    reject_reason: str | None = None  # decided while reading: the HTTP response or its body does not decode
    reject_detail: str | None = None


@dataclass
class Skipped:
    warc_file: str
    record_type: str
    offset: int | None = None
    record_id: str | None = None


@dataclass
class InputStats:
    path: str
    size: int
    sha256: str | None
    records: int = 0
    skipped: Counter = field(default_factory=Counter)
    errors: int = 0
    documents: int = 0
    notes: list[str] = field(default_factory=list)
    duplicate_of: str | None = None  # another input with the same bytes, read instead of this one
    listed: int = 1  # how many times the input was given

    @property
    def units(self) -> int:
        """Outcome units this file contributes to records_in: each record, plus each unreadable stretch."""
        return self.documents + sum(self.skipped.values()) + self.errors


@dataclass
class _Stretch:
    """A damaged stretch whose end is not known yet."""

    start: int
    reason: str
    message: str
    record_id: str | None = None
    url: str | None = None
    inner: bool = False  # start is a position inside a gzip member shared by several records

    def end_at_eof(self, stream: ArchiveStream) -> int | None:
        """The end of the file, in the same terms as the start: the file's size, or None (unknown: the stretch runs
        to the end of a gzip member whose decompressed size cannot be known) for a position inside a member."""
        return None if self.inner else max(self.start, stream.end_offset())


def _nonempty(value: str | None) -> str | None:
    return value if value else None


def _target_uri(value: str | None) -> str | None:
    if not value:
        return None
    if value.startswith("<") and value.endswith(">"):  # wget 1.19 wrote <uri>
        value = value[1:-1]
    return value.replace(" ", "%20")


def _arc_date(value: str) -> str:
    if len(value) == 14 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:8]}T{value[8:10]}:{value[10:12]}:{value[12:14]}Z"
    return value


def _show(data: bytes, n: int = 60) -> str:
    return repr(data[:n])


class _Block:
    """Everything done to a record's block as it streams past: digests, HTTP head, body decoding, warcinfo."""

    def __init__(self, kind: str, fields: dict[str, str], http: bool, max_payload: int, truncated: bool):
        self.kind = kind  # document | warcinfo | skip
        block_digest = fields.get("warc-block-digest")
        payload_digest = fields.get("warc-payload-digest")
        self.block_check = DigestCheck("WARC-Block-Digest", block_digest) if block_digest else None
        self.payload_checks: list[DigestCheck] = []
        # A payload digest is checked only where nothing better is: no block digest, a document record (a revisit's
        # refers to another record), not one segment of a record split over several (it covers all of them).
        segmented = fields.get("warc-segment-number") is not None
        self.payload_value = payload_digest if (payload_digest and not block_digest and kind == "document"
                                                and not segmented) else None
        self.http = http
        self.max_payload, self.truncated = max_payload, truncated
        self.head_bytes = bytearray()
        self.head: HttpHead | None = None
        self.decoder: BodyDecoder | None = None
        self.body_length = 0
        self.kept = bytearray() if kind == "warcinfo" else None
        if kind == "document" and not http:
            self._start_body(None)

    @property
    def body(self) -> BodyDecoder:
        """The body decoder of a document block: there once its HTTP head has been read (at once without one)."""
        if self.decoder is None:
            raise RuntimeError("the body of a block whose HTTP head has not been read")
        return self.decoder

    def _start_body(self, head: HttpHead | None) -> None:
        self.head = head
        usable = head if (head is not None and head.problem is None) else None
        self.decoder = BodyDecoder(usable, self.max_payload, self.max_payload * COUNT_FACTOR, self.truncated)
        if head is not None and head.problem is not None:
            self.decoder.stopped = True  # nothing to decode: the response itself is rejected
        if self.payload_value:
            raw = DigestCheck("WARC-Payload-Digest", self.payload_value)
            self.payload_checks = [raw]
            for index in range(1, len(self.decoder.stages) + 1):
                check = DigestCheck("WARC-Payload-Digest", self.payload_value)
                self.decoder.taps[index] = check.update
                self.payload_checks.append(check)

    def feed(self, piece: bytes) -> None:
        if self.block_check is not None:
            self.block_check.update(piece)
        if self.kind == "document":
            if self.decoder is None:
                self._feed_head(piece)
            else:
                self._feed_body(piece)
        elif self.kind == "warcinfo" and self.kept is not None and len(self.kept) < WARCINFO_KEEP:
            self.kept += piece[:WARCINFO_KEEP - len(self.kept)]

    def _feed_head(self, piece: bytes) -> None:
        if not self.head_bytes:  # the usual case: the whole head is in the block's first piece, no copy needed
            m = _HEAD_END.search(piece, 0, MAX_HEAD)
            if m is not None:
                self._start_body(parse_response_head(piece[:m.end()]))
                self._feed_body(piece[m.end():])
                return
        searched = max(0, len(self.head_bytes) - 3)
        self.head_bytes += piece
        m = _HEAD_END.search(self.head_bytes, searched, MAX_HEAD)
        if m is None:
            if len(self.head_bytes) >= MAX_HEAD:
                head = HttpHead(status_line=formats.decode_header_text(bytes(self.head_bytes[:200])),
                                problem=f"no end of the HTTP header section within {MAX_HEAD} bytes")
                self._start_body(head)
                self._feed_body(bytes(self.head_bytes))
                self.head_bytes = bytearray()
            return
        head = parse_response_head(bytes(self.head_bytes[:m.end()]))
        body = bytes(self.head_bytes[m.end():])
        self.head_bytes = bytearray()
        self._start_body(head)
        self._feed_body(body)

    def _feed_body(self, data: bytes) -> None:
        if not data:
            return
        self.body_length += len(data)
        if self.payload_checks:
            self.payload_checks[0].update(data)
        self.body.feed(data)

    def finish(self) -> None:
        if self.kind == "document":
            if self.decoder is None:  # the block ended inside the HTTP head: it is all head, the body is empty
                self._start_body(parse_response_head(bytes(self.head_bytes)))
            self.body.finish()

    def digest_problem(self) -> str | None:
        if self.block_check is not None:
            return self.block_check.mismatch()
        if not self.payload_checks:
            return None
        decoded_ok = self.body.failure is None and not self.body.stopped
        usable = self.payload_checks if decoded_ok else self.payload_checks[:1]
        problems = [check.mismatch() for check in usable]
        return None if any(p is None for p in problems) else problems[0]


_HEAD_END = re.compile(rb"\n\r?\n")


class WarcFileReader:
    """One pass over one input file. ``opener(path)`` returns a seekable binary stream of the raw bytes."""

    def __init__(self, path: str, opener: Callable[[str], BinaryIO], size: int | None = None,
                 max_payload_bytes: int = 8 * 1024 * 1024):
        self.path = path
        self.opener = opener
        self.size = size
        self.max_payload_bytes = max_payload_bytes
        self.path_crawl, self.path_crawl_rule = crawl_from_path(path)
        self.file_crawl: Crawl | None = None
        self.arc_version: int | None = None
        self.quirks: Counter = Counter()  # crawler quirks read as what they are, counted into the notes
        self.shared_member_records = 0

    def __iter__(self) -> Iterator[WarcRecord | Skipped | ErrorRecord | InputStats]:
        stats = InputStats(self.path, self.size or 0, None)
        try:
            raw = self.opener(self.path)
        except Exception as exc:  # missing file, permission, bad URL: one error unit for the file
            stats.errors += 1
            yield ErrorRecord.from_exception(exc, warc_file=self.path, stage=STAGE, reason=ERROR_OPEN)
            yield stats
            return
        with raw:
            source = HashingSource(raw)
            stream = self._open_stream(source)
            if stream is None:
                stats.errors += 1
                yield self._error(ERROR_EMPTY_FILE, 0, 0, "empty file")
            else:
                records = self._records(stream, stats)
                while True:
                    try:
                        item = next(records)
                    except StopIteration:
                        break
                    except Exception as exc:  # noqa: BLE001 - a reader bug costs the rest of this file, not the job
                        at = stream.offset_of(stream.tell())
                        item = ErrorRecord.from_exception(
                            exc, warc_file=self.path, stage=STAGE, reason=ERROR_PARSE, warc_offset=at,
                            warc_offset_end=max(at, stream.end_offset()))
                        item.message = f"the reader failed at offset {at}; the rest of the file is not read: " \
                                       f"{item.message}"
                        records = iter(())
                    if isinstance(item, ErrorRecord):
                        stats.errors += 1
                    elif isinstance(item, Skipped):
                        stats.skipped[item.record_type] += 1
                    else:
                        stats.documents += 1
                    yield item
                stats.notes.extend(stream.notes)
                if self.shared_member_records:
                    stats.notes.append(
                        f"{self.shared_member_records} record(s) share a gzip member with the record before them "
                        "(a single-member gzip file, or members not cut per record): their warc_offset is the "
                        "member's offset plus their position in its decompressed data")
                stats.notes.extend(f"{n} record(s): {quirk}" for quirk, n in sorted(self.quirks.items()))
            stats.sha256, stats.size = source.finish()
        yield stats

    # ---- container
    def _open_stream(self, source: HashingSource) -> ArchiveStream | None:
        """Plain or gzip, from the first bytes (a damaged first member header still reads as gzip)."""
        head = source.read(SNIFF_SIZE)
        source.seek(0)
        if not head:
            return None
        if head.startswith(GZIP_MAGIC):
            return GzipStream(source)
        if formats.record_start(head, None, complete=True) is not None:
            return PlainStream(source)
        plain_at, _ = formats.find_header(head, 0, None, 0, complete=True)
        member_at = head.find(GZIP_MAGIC)
        while member_at >= 0 and (plain_at < 0 or member_at < plain_at):
            if member_holds_record(head[member_at:member_at + VALIDATE_INPUT], None):
                return GzipStream(source)
            member_at = head.find(GZIP_MAGIC, member_at + 1)
        return PlainStream(source)

    # ---- records
    def _error(self, reason: str, start: int | None, end: int | None, message: str, record_id: str | None = None,
               url: str | None = None, exception_type: str | None = None) -> ErrorRecord:
        return ErrorRecord(warc_file=self.path, stage=STAGE, reason=reason, warc_offset=start, warc_offset_end=end,
                           warc_record_id=record_id, url=url, exception_type=exception_type,
                           message=message[:2000])

    def _records(self, stream: ArchiveStream, stats: InputStats) -> Iterator:
        pending: _Stretch | None = None  # a damaged stretch being skipped: its end is the next header found
        emitted = 0
        last_start = -1
        seen_ids: dict[str, int] = {}
        while True:
            current: _Stretch | None = None  # the record being read, for an error row if the container breaks
            try:
                if pending is not None:
                    fmt = stream.scan()
                    if fmt is None and stream.fmt is None:
                        emitted += 1
                        yield self._error(ERROR_NOT_AN_ARCHIVE, 0, stream.end_offset(),
                                          f"no WARC or ARC record header anywhere in the file ({pending.message})")
                        break
                    stream.fmt = stream.fmt or fmt
                    end = stream.offset_of(stream.tell()) if fmt else pending.end_at_eof(stream)
                    emitted += 1
                    yield self._error(pending.reason, pending.start, end, pending.message, pending.record_id,
                                      pending.url)
                    pending = None
                    if fmt is None:
                        break
                start = stream.begin_record()
                if stream.at_eof():
                    if stream.fmt is None and not emitted:
                        yield self._error(ERROR_EMPTY_FILE, 0, stream.end_offset(),
                                          "no bytes after decompression" if stream.compressed else
                                          "nothing but blank lines")
                    break
                if start <= last_start:  # cannot happen by construction; never loop on a bad file if it did
                    raise RuntimeError(f"the reader did not move forward at offset {stream.offset_of(start)}")
                last_start = start
                current = _Stretch(stream.offset_of(start), ERROR_BAD_GZIP, "",
                                   inner=stream.member_offset_of(start) is not None)
                if current.inner:
                    self.shared_member_records += 1
                items, pending = self._read_record(stream, start, current, stats, seen_ids)
                if pending is not None and pending.start == current.start:
                    pending.inner = current.inner
                emitted += len(items)
                yield from items
            except Damage as damage:
                if pending is not None:
                    stretch = pending
                    stretch.message = f"{pending.message}; then {damage}"
                elif current is not None:
                    stretch = current
                    stretch.message = f"{current.message}: {damage}" if current.message else str(damage)
                else:
                    stretch = _Stretch(damage.offset, ERROR_BAD_GZIP, str(damage))
                if stretch is not pending and damage.kind == "truncated":
                    stretch.reason = ERROR_TRUNCATED  # the file ends inside a gzip member: its record is cut
                pending = None
                resume = stream.resync(damage.offset)
                if resume is not None:
                    stretch.message += f"; reading resumed at the gzip member at offset {resume}"
                    stats.notes.append(f"resumed at offset {resume} after damage at {stretch.start}")
                end = resume if resume is not None else stretch.end_at_eof(stream)
                emitted += 1
                yield self._error(stretch.reason, stretch.start, end if end is None else max(end, stretch.start),
                                  stretch.message, stretch.record_id, stretch.url)
                if resume is None:
                    break

    def _read_record(self, stream: ArchiveStream, start: int, current: _Stretch, stats: InputStats,
                     seen_ids: dict[str, int]) -> tuple[list, _Stretch | None]:
        """Read the record at ``start``: (outputs, None) or (outputs, a damaged stretch to scan past)."""
        offset = current.start
        if stream.fmt is None:
            head = stream.peek_line(formats.MAX_LINE)
            stream.fmt = formats.record_start(head, None, complete=True)
            if stream.fmt is None:
                stream.rewind(start + 1)
                return [], _Stretch(offset, ERROR_BAD_HEADER,
                                    f"bytes at offset {offset} do not begin a WARC or ARC record: {_show(head)}")
        if stream.fmt == formats.WARC:
            parsed = self._warc_header(stream, start, offset)
        else:
            parsed = self._arc_header(stream, start, offset)
        if isinstance(parsed, _Stretch):
            return [], parsed
        stats.records += 1
        record_type, fields, http, record_id, url, length, arc = parsed
        current.record_id, current.url = record_id, url
        current.message = f"{record_type} record at offset {offset}"
        header_end = stream.tell()
        if length is None:
            raw = fields.get("content-length")
            message = "no Content-Length" if raw is None else f"Content-Length {raw[:40]!r} is not a byte count"
            return [], _Stretch(offset, ERROR_BAD_LENGTH, f"{record_type} record at offset {offset}: {message}",
                                record_id, url)
        kind = "document" if record_type in DOCUMENT_TYPES else "warcinfo" if record_type == "warcinfo" else "skip"
        block = _Block(kind, fields, http and length > 0, self.max_payload_bytes, bool(fields.get("warc-truncated")))
        remaining = length
        while remaining:
            piece = stream.read_some(min(remaining, BLOCK_PIECE))
            if not piece:
                break
            block.feed(piece)
            remaining -= len(piece)
        if remaining:
            where = "the end of the file" if stream.at_eof() else "a gzip member that begins a record"
            stream.rewind(header_end)  # rescan what the block took: records it swallowed are read
            return [], _Stretch(offset, ERROR_TRUNCATED,
                                f"{record_type} record at offset {offset}: the block ends {remaining} bytes short of "
                                f"its Content-Length {length} ({where} comes first: a clipped file or member, or a "
                                "Content-Length too large)", record_id, url)
        newlines = stream.skip_blank()
        stray: _Stretch | None = None
        # A block that ends where a gzip member ends is whole, whatever the next member holds.
        if not stream.at_boundary() and not (stream.at_member_start() and
                                             stream.offset_of(stream.tell()) != offset):
            follows = stream.peek_line(formats.MAX_LINE)
            if not (newlines and self._header_follows(follows, stream.fmt)):
                cut_short = not follows.endswith(b"\n") and len(follows) < formats.MAX_LINE  # the data ends in it
                if (stream.fmt == formats.WARC and newlines >= 2) or (stream.fmt == formats.ARC and newlines >= 1 and (
                        cut_short or formats.looks_like_damaged_arc_header(follows))):
                    # The block ends with the blank line WARC puts after every record (for ARC: its newline, and a
                    # line with the look of a damaged header follows): the record is whole, and what follows is a
                    # stretch of its own.
                    at = stream.offset_of(stream.tell())
                    stray = _Stretch(at, ERROR_TRUNCATED if cut_short else ERROR_BAD_HEADER,
                                     f"bytes at offset {at} after the {record_type} record "
                                     f"at offset {offset} do not begin a record: {_show(follows)}",
                                     inner=stream.member_offset_of(stream.tell()) is not None)
                else:
                    stream.rewind(header_end)
                    return [], _Stretch(offset, ERROR_LENGTH_MISMATCH,
                                        f"{record_type} record at offset {offset}: the block does not end where its "
                                        f"Content-Length {length} says ({_show(follows)} follows it)", record_id, url)
        block.finish()
        problem = block.digest_problem()
        if problem:
            # The block is not what the writer wrote, so its Content-Length cannot be trusted either: rescan it, so
            # that records a wrong length made it swallow are read.
            stream.rewind(header_end)
            return [], _Stretch(offset, ERROR_DIGEST, f"{record_type} record at offset {offset}: {problem}",
                                record_id, url)
        end = stream.offset_of(stream.tell())
        return [self._outcome(stream, start, offset, end, record_type, fields, record_id, url, block, arc,
                              seen_ids)], stray

    def _outcome(self, stream, start, offset, end, record_type, fields, record_id, url, block, arc, seen_ids):
        """The one output of a record read whole: a duplicate error, a skipped record, or a document."""
        if record_id:
            first = seen_ids.setdefault(record_id, offset)
            if first != offset:
                return self._error(ERROR_DUPLICATE_RECORD, offset, end,
                                   f"WARC-Record-ID {record_id[:120]} was already read at offset {first} of this "
                                   "file: the record is there twice", record_id, url)
        if block.kind == "warcinfo":
            self._note_warcinfo(bytes(block.kept), arc)
        if block.kind != "document":
            return Skipped(self.path, record_type, offset, record_id)
        return self._document(stream, start, offset, record_type, fields, record_id, url, block, arc)

    def _header_follows(self, data: bytes, fmt: str) -> bool:
        line_end = data.find(b"\n")
        if line_end < 0:
            return False
        line = data[:line_end + 1]
        if fmt == formats.WARC:
            return formats.version_of(line) is not None
        return formats.parse_arc_header(line, self.arc_version, strict=False) is not None

    def _warc_header(self, stream: ArchiveStream, start: int, offset: int):
        block, ended = stream.read_header_block(MAX_HEADER)
        if block is None:
            data = stream.peek(200)
            stream.rewind(start + 1)
            if ended and formats.version_of(data[:data.find(b"\n") + 1]):
                return _Stretch(offset, ERROR_TRUNCATED, f"record header at offset {offset} is cut short: "
                                f"{_show(data)} then the end of the data")
            return _Stretch(offset, ERROR_BAD_HEADER, f"record header at offset {offset} has no end within "
                            f"{MAX_HEADER} bytes: {_show(data)}")
        line_end = block.find(b"\n") + 1
        if formats.version_of(block[:line_end]) is None:
            stream.rewind(start + 1)
            return _Stretch(offset, ERROR_BAD_HEADER, f"bytes at offset {offset} do not begin a WARC record: "
                                                      f"{_show(block)}")
        fields = formats.parse_fields(block[line_end:])
        record_type = (fields.get("warc-type") or "").strip().lower() or "unknown"
        record_id = _nonempty(fields.get("warc-record-id"))
        url = _target_uri(fields.get("warc-target-uri"))
        raw_length = fields.get("content-length")
        length = int(raw_length) if raw_length is not None and _LENGTH.fullmatch(raw_length) else None
        http = record_type == "response" and url is not None and url.startswith(_HTTP_SCHEMES)
        return record_type, fields, http, record_id, url, length, None

    def _arc_header(self, stream: ArchiveStream, start: int, offset: int):
        line = stream.readline(formats.MAX_LINE)
        header = formats.parse_arc_header(line, self.arc_version, strict=False)
        if header is None:
            cut = not line.endswith(b"\n") and len(line) < formats.MAX_LINE
            stream.rewind(start + 1)
            if cut:
                return _Stretch(offset, ERROR_TRUNCATED, f"ARC record header at offset {offset} is cut short: "
                                                         f"{_show(line)}")
            return _Stretch(offset, ERROR_BAD_HEADER, f"bytes at offset {offset} do not begin an ARC record: "
                                                      f"{_show(line)}")
        record_type = "warcinfo" if header.url.startswith("filedesc:") else "response"
        fields = {"warc-date": _arc_date(header.date), "content-type": "application/http;msgtype=response",
                  "warc-identified-payload-type": header.content_type}
        http = record_type == "response" and header.url.startswith(_HTTP_SCHEMES)
        return record_type, fields, http, None, _target_uri(header.url), header.length, header

    def _note_warcinfo(self, body: bytes, arc: formats.ArcHeader | None) -> None:
        text = body.decode("utf-8", "replace")
        if arc is not None:  # an ARC file header: its first line says the ARC version (1 or 2)
            first = text.split("\n", 1)[0].split()
            if first and first[0] in ("1", "2"):
                self.arc_version = int(first[0])
            return
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "ispartof":
                crawl = crawl_from_is_part_of(value)
                if crawl:
                    self.file_crawl = crawl
                return

    def _document(self, stream: ArchiveStream, start: int, offset: int, record_type: str, fields: dict,
                  record_id: str | None, url: str | None, block: _Block, arc) -> WarcRecord:
        crawl, rule = (self.file_crawl, "warcinfo") if self.file_crawl else (self.path_crawl, self.path_crawl_rule)
        head, decoder = block.head, block.body
        if decoder.stages:
            self.quirks.update(decoder.quirks)
        reject_reason = reject_detail = None
        if head is not None and head.problem is not None:
            reject_reason, reject_detail = REASON_BAD_HTTP, head.problem
        elif decoder.failure is not None:
            reject_reason, reject_detail = decoder.failure
        too_large = decoder.too_large
        length = decoder.length if reject_reason is None else block.body_length
        return WarcRecord(
            warc_file=self.path, offset=offset, record_type=record_type, record_id=record_id, target_uri=url,
            warc_date_raw=fields.get("warc-date"), warc_content_type=_nonempty(fields.get("content-type")),
            identified_payload_type=_nonempty(fields.get("warc-identified-payload-type")),
            payload_digest=_nonempty(fields.get("warc-payload-digest")) or _nonempty(fields.get("warc-block-digest")),
            warc_truncated=_nonempty(fields.get("warc-truncated")),
            crawl_id=crawl.id if crawl else None, crawl_rule=rule if crawl else None,
            http_status=head.status if head is not None else None,
            http_content_type=head.get("content-type") if head is not None else None,
            http_date_raw=head.get("date") if head is not None else None,
            http_last_modified_raw=head.get("last-modified") if head is not None else None,
            payload=decoder.payload() if reject_reason is None and not too_large else b"",
            payload_length=length, payload_too_large=too_large and reject_reason is None,
            payload_length_exact=not decoder.stopped, member_offset=stream.member_offset_of(start),
            reject_reason=reject_reason, reject_detail=reject_detail,
        )

