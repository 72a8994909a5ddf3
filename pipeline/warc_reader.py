"""Read one WARC/WET/ARC file with warcio, losing nothing silently (no Beam here; ingest.py wraps it).

Yields, in file order:
- :class:`WarcRecord` for every ``response``/``resource``/``conversion`` record (a document candidate);
- :class:`Skipped` for every other record (warcinfo, request, metadata, revisit, ...), by type;
- :class:`ErrorRecord` for a record or part of a file that could not be read, with the cause;
- one :class:`InputStats` at the end (size, sha256, records read).

Robustness rules: a record whose block is shorter than its Content-Length (a clipped gzip member, which warcio
accepts silently) is an error, not a document; after a damaged record the reader looks for the next gzip member
(or ``WARC/`` header line in an uncompressed file) and carries on; a gzip file that is one member holding many
records (not per-record gzip) is re-read as a single decompressed stream.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from pipeline.crawls import Crawl, crawl_from_is_part_of, crawl_from_path
from pipeline.document import (
    ERROR_BAD_GZIP,
    ERROR_EMPTY_FILE,
    ERROR_NOT_AN_ARCHIVE,
    ERROR_OPEN,
    ERROR_PARSE,
    ERROR_TRUNCATED,
    ErrorRecord,
)

DOCUMENT_TYPES = frozenset({"response", "resource", "conversion"})
STAGE = "read"
_GZIP_MAGIC = b"\x1f\x8b\x08"
_SCAN_CHUNK = 1 << 20


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


@dataclass
class Skipped:
    warc_file: str
    record_type: str


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

    @property
    def units(self) -> int:
        """Outcome units this file contributes to records_in: each record, plus each unreadable stretch."""
        return self.documents + sum(self.skipped.values()) + self.errors


class _HashingReader(io.RawIOBase):
    """Pass-through reader that hashes every byte read, so the input's sha256 costs no second pass."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.sha = hashlib.sha256()
        self.pos = 0
        self.seeked = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if not self.seeked:
            self.sha.update(data)
        self.pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.seeked = True
        self.pos = self.raw.seek(offset, whence)
        return self.pos

    def finish(self) -> str | None:
        """Hash the rest of the file; None if the reader seeked (the caller hashes in a separate pass)."""
        if self.seeked:
            return None
        while self.read(_SCAN_CHUNK):
            pass
        return self.sha.hexdigest()


def _header(headers, name: str) -> str | None:
    if headers is None:
        return None
    value = headers.get_header(name)
    return value if value not in (None, "") else None


def _http_status(http_headers) -> int | None:
    if http_headers is None:
        return None
    try:
        return int(http_headers.get_statuscode())
    except (TypeError, ValueError):
        return None


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
            hashing = _HashingReader(raw)
            head = hashing.raw.read(8)
            hashing.raw.seek(0)
            if not head:
                stats.errors += 1
                yield ErrorRecord(warc_file=self.path, stage=STAGE, reason=ERROR_EMPTY_FILE, warc_offset=0,
                                  message="empty file")
                stats.sha256 = hashlib.sha256(b"").hexdigest()
                yield stats
                return
            yield from self._read_from(hashing, 0, stats, compressed=head.startswith(b"\x1f\x8b"))
            stats.sha256 = hashing.finish()
            if stats.size == 0:
                stats.size = hashing.pos
        if stats.sha256 is None:
            stats.sha256 = self._sha256_separately()
        yield stats

    def _sha256_separately(self) -> str:
        sha = hashlib.sha256()
        with self.opener(self.path) as raw:
            while chunk := raw.read(_SCAN_CHUNK):
                sha.update(chunk)
        return sha.hexdigest()

    def _read_from(self, stream: _HashingReader, start: int, stats: InputStats, compressed: bool):
        """Iterate records from ``start``; on damage, emit an error and resume at the next record boundary."""
        position = start
        while position is not None:
            iterator = ArchiveIterator(stream, arc2warc=True)
            if position:
                iterator.offset = position
            record_offset = position
            try:
                for record in iterator:
                    record_offset = iterator.offset
                    stats.records += 1
                    yield from self._one_record(record, record_offset, stats)
                leftover = self._trailing_garbage(stream, iterator.offset, compressed)
                if leftover:
                    stats.errors += 1
                    yield ErrorRecord(warc_file=self.path, stage=STAGE, reason=ERROR_TRUNCATED,
                                      warc_offset=iterator.offset, message=leftover)
                return
            except ArchiveLoadFailed as exc:
                exc_name, message = type(exc).__name__, " ".join(str(exc).split())
                if "non-chunked gzip" in message and record_offset == 0 and position == 0:
                    # One gzip member holding the whole file: valid gzip, just not per-record. Read it as a stream.
                    stats.notes.append("single-member gzip: read as one decompressed stream; offsets are "
                                       "uncompressed offsets")
                    yield from self._read_single_member(stats)
                    return
                reason = ERROR_NOT_AN_ARCHIVE if stats.records == 0 and record_offset == 0 else ERROR_PARSE
                error_offset = iterator.offset if iterator.offset is not None else record_offset
            except Exception as exc:  # warcio raises more than its own exceptions on garbage input
                exc_name, message = type(exc).__name__, str(exc)
                reason = ERROR_BAD_GZIP if compressed else ERROR_PARSE
                error_offset = iterator.offset
            stats.errors += 1
            yield ErrorRecord(warc_file=self.path, stage=STAGE, reason=reason, warc_offset=error_offset,
                              exception_type=exc_name,
                              message=message[:2000])
            position = self._next_boundary(stream, (error_offset or 0) + 1, compressed)
            if position is not None:
                stats.notes.append(f"resumed at offset {position} after damage at {error_offset}")

    def _trailing_garbage(self, stream: _HashingReader, end: int | None, compressed: bool) -> str | None:
        """warcio ends quietly on a record cut after its headers; bytes left after the last record say so."""
        if end is None or compressed:  # a compressed file ends cleanly or raises a gzip error
            return None
        saved = stream.raw.tell()
        try:
            stream.raw.seek(end)
            tail = stream.raw.read(_SCAN_CHUNK)
        finally:
            stream.raw.seek(saved)
        if not tail.strip():
            return None
        first = tail.split(b"\n", 1)[0][:80].decode("utf-8", "replace")
        return (f"{len(tail)} bytes after the last complete record do not form a record (header-only or clipped "
                f"record?): {first!r}")

    def _read_single_member(self, stats: InputStats):
        already = stats.records  # records the per-member pass yielded before it noticed
        with self.opener(self.path) as raw, gzip.GzipFile(fileobj=raw) as plain:
            iterator = ArchiveIterator(plain, arc2warc=True)
            try:
                for index, record in enumerate(iterator):
                    if index < already:
                        continue
                    stats.records += 1
                    yield from self._one_record(record, iterator.offset, stats)
            except Exception as exc:  # damage inside the single member: keep what was read before it
                stats.errors += 1
                yield ErrorRecord.from_exception(exc, warc_file=self.path, stage=STAGE, reason=ERROR_BAD_GZIP,
                                                 warc_offset=iterator.offset)

    def _next_boundary(self, stream: _HashingReader, start: int, compressed: bool) -> int | None:
        """Offset of the next plausible record start at or after ``start`` (a gzip member or a WARC/ line)."""
        needle = _GZIP_MAGIC if compressed else b"WARC/1."
        offset = start
        carry = b""
        stream.seek(start)
        while True:
            chunk = stream.raw.read(_SCAN_CHUNK)
            if not chunk:
                return None
            data = carry + chunk
            base = offset - len(carry)
            index = data.find(needle)
            while index != -1:
                candidate = base + index
                if compressed and not self._gzip_member_is_warc(stream, candidate):
                    index = data.find(needle, index + 1)
                    continue
                if not compressed and index > 0 and data[index - 1:index] not in (b"\n",):
                    index = data.find(needle, index + 1)
                    continue
                stream.seek(candidate)
                return candidate
            carry = data[-(len(needle) - 1):]
            offset += len(chunk)
            stream.raw.seek(offset)

    def _gzip_member_is_warc(self, stream: _HashingReader, offset: int) -> bool:
        saved = stream.raw.tell()
        try:
            stream.raw.seek(offset)
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(stream.raw.read(4096), 16)
            return head.startswith((b"WARC/", b"filedesc:", b"http", b"dns:"))
        except zlib.error:
            return False
        finally:
            stream.raw.seek(saved)

    def _one_record(self, record, offset: int | None, stats: InputStats):
        headers = record.rec_headers
        # WARC-Type is matched case-insensitively, as readers of WARC 1.1 do ("RESPONSE" is a response).
        record_type = (record.rec_type or "").strip().lower() or "unknown"
        if record_type == "warcinfo":
            self._note_warcinfo(record)
        if record_type not in DOCUMENT_TYPES:
            stats.skipped[record_type] += 1
            yield Skipped(self.path, record_type)
            return
        record_id = _header(headers, "WARC-Record-ID")
        try:
            item = self._document_record(record, offset, record_id, record_type)
        except Exception as exc:  # bad chunking, bad content-encoding, broken gzip inside the record
            stats.errors += 1
            yield ErrorRecord.from_exception(exc, warc_file=self.path, stage=STAGE, reason=ERROR_PARSE,
                                             warc_offset=offset, warc_record_id=record_id,
                                             url=_header(headers, "WARC-Target-URI"))
            return
        # A block without a usable Content-Length has no LimitReader: nothing to check it against.
        missing = getattr(record.raw_stream, "limit", 0)
        if missing > 0:
            stats.errors += 1
            yield ErrorRecord(warc_file=self.path, stage=STAGE, reason=ERROR_TRUNCATED, warc_offset=offset,
                              warc_record_id=record_id, url=item.target_uri, exception_type=None,
                              message=f"record block ends {missing} bytes short of its Content-Length "
                              f"{getattr(record.raw_stream, '_orig_limit', '?')} (clipped file or gzip member)")
            return
        stats.documents += 1
        yield item

    def _note_warcinfo(self, record) -> None:
        try:
            body = record.content_stream().read(64 * 1024).decode("utf-8", "replace")
        except Exception:  # an unreadable warcinfo only costs us its crawl id
            return
        for line in body.splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "ispartof":
                crawl = crawl_from_is_part_of(value)
                if crawl:
                    self.file_crawl = crawl
                return

    def _document_record(self, record, offset: int | None, record_id: str | None, record_type: str) -> WarcRecord:
        headers, http = record.rec_headers, record.http_headers
        crawl, rule = (self.file_crawl, "warcinfo") if self.file_crawl else (self.path_crawl, self.path_crawl_rule)
        stream = record.content_stream()
        payload = stream.read(self.max_payload_bytes + 1)
        too_large = len(payload) > self.max_payload_bytes
        length = len(payload)
        if too_large:
            payload = b""
            while chunk := stream.read(_SCAN_CHUNK):  # count, don't keep: size limits on decompressed data
                length += len(chunk)
        while record.raw_stream.read(_SCAN_CHUNK):  # drain what the HTTP decoder did not need
            pass
        return WarcRecord(
            warc_file=self.path, offset=offset, record_type=record_type, record_id=record_id,
            target_uri=_header(headers, "WARC-Target-URI"), warc_date_raw=headers.get_header("WARC-Date"),
            warc_content_type=_header(headers, "Content-Type"),
            identified_payload_type=_header(headers, "WARC-Identified-Payload-Type"),
            payload_digest=_header(headers, "WARC-Payload-Digest") or _header(headers, "WARC-Block-Digest"),
            warc_truncated=_header(headers, "WARC-Truncated"),
            crawl_id=crawl.id if crawl else None, crawl_rule=rule if crawl else None,
            http_status=_http_status(http), http_content_type=_header(http, "Content-Type"),
            http_date_raw=_header(http, "Date"), http_last_modified_raw=_header(http, "Last-Modified"),
            payload=payload, payload_length=length, payload_too_large=too_large,
        )
