"""The container layer: the decompressed bytes of an archive file, with its gzip members and its damage.

Contract of :class:`GzipStream` (and of :class:`PlainStream`, the same interface over an uncompressed file):

- Reads gzip members one at a time with its own ``zlib.decompressobj(wbits=31)``: it sees every member boundary
  and its file offset, and every zlib error itself. A CRC or length check that fails, a deflate data error, a member
  cut by the end of the file, and bytes between members that are not a gzip member raise :class:`Damage` (with the
  offset of the damaged member) at the point where they are found; nothing turns them into an end of file.
  Trailing NUL padding after the last member is the only thing skipped quietly (it is noted).
- Decompressed output is produced in bounded pieces (``max_length``), so a member that inflates to gigabytes is
  never held in memory; callers read with :meth:`read_some` (at most what is buffered).
- Members are transparent when a record continues across them, but the stream *stops* at a member boundary when
  the new member begins with a record header (for the format in :attr:`fmt`): a record's block can never swallow
  the next record's member, and a record that ends at a member's end is only complete once that member's CRC and
  length have been checked. Damage found when crossing into the next member is held back and raised by the next
  :meth:`begin_record`, so it is charged to the stretch it belongs to, not to the record before it.
- :meth:`scan` moves forward to the next record header (for the damaged stretch a caller is skipping);
  :meth:`resync` finds the next gzip member that decompresses to a record header after a damaged member;
  :meth:`rewind` goes back to a position not before the current record (to rescan a block that ran too long).
- Positions: ``tell()`` is a logical position (decompressed bytes); :meth:`offset_of` turns it into the offset
  users see: the member's file offset for a record at the start of its member (as in CDX indexes and Common
  Crawl's tables), or the member's offset plus the position inside the member's decompressed data for a record
  that shares a member with others.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

from pipeline.archive import formats
from pipeline.archive.source import HashingSource

GZIP_MAGIC = b"\x1f\x8b\x08"
READ_SIZE = 1 << 18  # compressed bytes read at a time
FEED_SIZE = 1 << 14  # compressed bytes handed to zlib at a time (bounds the copies zlib makes of unused input)
OUT_SIZE = 1 << 20  # most decompressed bytes produced by one zlib call
PLAIN_READ = 1 << 20
VALIDATE_INPUT = 1 << 16  # compressed bytes decompressed to check that a candidate member holds a record
CHECKPOINT_EVERY = 8 << 20  # decompressed bytes between saved decompressor states (bounds the cost of a rewind)
_NON_BLANK = re.compile(rb"[^\r\n]")
_HEADER_END = re.compile(rb"\n\r?\n")


class Damage(Exception):
    """Bytes the container cannot read: a damaged or truncated gzip member, or stray bytes between members."""

    def __init__(self, offset: int, message: str, kind: str):
        super().__init__(message)
        self.offset = offset  # file offset of the damaged member, or of the stray bytes
        self.kind = kind  # crc | data | truncated | garbage


@dataclass
class Member:
    offset: int  # file offset of the member (of the file start, for an uncompressed file)
    logical_start: int
    lead_blank: int = -1  # CR/LF bytes the member's data begins with (-1: not seen yet)
    end_offset: int | None = None
    # (logical position, file offset of the next compressed byte, decompressor state) every CHECKPOINT_EVERY bytes
    checkpoints: list = field(default_factory=list)


class ArchiveStream:
    """The logical (decompressed) byte stream of one file; see the module docstring for the contract."""

    compressed = False

    def __init__(self, source: HashingSource):
        self.source = source
        self.fmt: str | None = None  # record format once known: boundaries and scans look for it only
        self.notes: list[str] = []
        self._buf = b""
        self._i = 0
        self._base = 0  # logical position of _buf[0]
        self._prev = b"\n"  # the byte before _buf[0] (the start of the file counts as a line start)
        self._limit: int | None = None  # logical position reads stop at (a member that begins a record)
        self._deferred: Damage | None = None  # damage found past _limit, raised when the reader gets there
        self._eof = False
        self.members: list[Member] = []

    # ---- positions
    def tell(self) -> int:
        return self._base + self._i

    def _member_at(self, logical: int) -> Member:
        for member in reversed(self.members):
            if member.logical_start <= logical:
                return member
        return self.members[0]

    def offset_of(self, logical: int) -> int:
        member = self._member_at(logical)
        inner = logical - member.logical_start
        return member.offset if inner <= max(member.lead_blank, 0) else member.offset + inner

    def member_offset_of(self, logical: int) -> int | None:
        """The offset of the member holding ``logical`` when that is not where the record starts, else None."""
        member = self._member_at(logical)
        return None if self.offset_of(logical) == member.offset else member.offset

    def end_offset(self) -> int:
        """Offset of the end of the file (for a stretch that runs to it): the bytes read so far, all of them
        once the stream has met the end of the file."""
        return self.source.size_so_far()

    # ---- buffer
    def _end(self) -> int:
        """Index in _buf where reads must stop (the limit, or the end of what is buffered)."""
        if self._limit is None:
            return len(self._buf)
        return max(self._i, min(len(self._buf), self._limit - self._base))

    def _append(self, data: bytes) -> None:
        buf, i = self._buf, self._i
        if i >= len(buf):
            if buf:
                self._prev = buf[-1:]
            self._base += len(buf)
            self._buf, self._i = data, 0
        else:
            if i:
                self._prev = buf[i - 1:i]
            self._base += i
            self._buf, self._i = buf[i:] + data, 0

    def _more(self) -> bool:
        """Buffer more bytes before the limit; False when none can come (end of file, limit, held-back damage)."""
        raise NotImplementedError

    def _available(self) -> int:
        return self._end() - self._i

    # ---- reading
    def read_some(self, n: int) -> bytes:
        """Up to ``n`` bytes (at most what one fill buffers); b"" at the end of the file or at a record boundary."""
        if self._end() <= self._i and not self._more():
            return b""
        end = min(self._end(), self._i + n)
        data = self._buf[self._i:end] if (self._i or end != len(self._buf)) else self._buf
        self._i = end
        return data

    def peek(self, n: int) -> bytes:
        while self._available() < n and self._more():
            pass
        return self._buf[self._i:min(self._end(), self._i + n)]

    def peek_line(self, max_bytes: int) -> bytes:
        """The next line (newline included), or what there is of it within ``max_bytes``; nothing is consumed.
        Reads no further than that line, so damage after it is not met yet."""
        while True:
            end = self._end()
            j = self._buf.find(b"\n", self._i, min(end, self._i + max_bytes))
            if j >= 0:
                return self._buf[self._i:j + 1]
            if end - self._i >= max_bytes or not self._more():
                return self._buf[self._i:min(self._end(), self._i + max_bytes)]

    def skip_blank(self) -> int:
        """Skip CR/LF bytes; returns how many line feeds were skipped."""
        newlines = 0
        while True:
            end = self._end()
            m = _NON_BLANK.search(self._buf, self._i, end)
            stop = m.start() if m else end
            newlines += self._buf.count(b"\n", self._i, stop)
            self._i = stop
            if m or not self._more():
                return newlines

    def at_end(self) -> bool:
        """No byte left before the end of the file or the next record boundary."""
        return self._end() <= self._i and not self._more()

    def at_member_start(self) -> bool:
        """At the start of a gzip member's data (after its leading blank lines), whatever the data is."""
        position = self.tell()
        member = self._member_at(position)
        return position > 0 and position - member.logical_start <= max(member.lead_blank, 0) \
            and member.logical_start > 0

    def at_boundary(self) -> bool:
        """At a member boundary where a new record begins (or held-back damage sits), or at the end of the file."""
        return self._end() <= self._i and not self._more() and (self._limit is None or self.tell() == self._limit)

    def read_header_block(self, max_bytes: int) -> tuple[bytes | None, bool]:
        """(bytes up to and including the first blank line, False); (None, ended) if there is none within
        ``max_bytes`` (``ended``: the data ends first). Nothing is consumed when there is none."""
        while True:
            end = self._end()
            m = _HEADER_END.search(self._buf, self._i, min(end, self._i + max_bytes))
            if m:
                block = self._buf[self._i:m.end()]
                self._i = m.end()
                return block, False
            if end - self._i >= max_bytes:
                return None, False
            if not self._more():
                return None, True

    def readline(self, max_bytes: int) -> bytes:
        while True:
            end = self._end()
            j = self._buf.find(b"\n", self._i, min(end, self._i + max_bytes))
            if j >= 0 or end - self._i >= max_bytes or not self._more():
                stop = j + 1 if j >= 0 else min(self._end(), self._i + max_bytes)
                line = self._buf[self._i:stop]
                self._i = stop
                return line

    def at_eof(self) -> bool:
        """Nothing left to read in the file (a record boundary is not an end)."""
        return self._end() <= self._i and not self._more() and self._limit is None

    def begin_record(self) -> int:
        """Called where a record should start: skips blank lines (across a record boundary), raises damage held
        back for this point, and returns the position of the record's first byte."""
        while True:
            self.skip_blank()
            if self._limit is not None and self.tell() >= self._limit:
                if self._deferred is not None:
                    raise self._deferred
                self._limit = None
                continue
            break
        keep_from = self.tell()
        while len(self.members) > 1 and self.members[1].logical_start <= keep_from:
            del self.members[0]
        checkpoints = self.members[0].checkpoints  # never needed before the current record's start
        while len(checkpoints) > 1 and checkpoints[1][0] <= keep_from:
            del checkpoints[0]
        return keep_from

    # ---- damage handling
    def scan(self) -> str | None:
        """Skip forward to the next record header (of :attr:`fmt`, or of either format while it is unknown).

        Returns the format of the header now at the read position, or None at the end of the file (everything
        read was skipped). Raises :class:`Damage` if the container breaks on the way.
        """
        while True:
            if self._limit is not None and self.tell() >= self._limit:
                if self._deferred is not None:
                    raise self._deferred
                self._limit = None
                self.skip_blank()
                head = self.peek_line(formats.MAX_LINE)
                found = formats.record_start(head, self.fmt, complete=True)
                if found:
                    return found
            end = self._end()
            line_start = self._i if (self._i == 0 and self._prev == b"\n") else None
            data = self._buf if end == len(self._buf) else self._buf[:end]
            index, fmt = formats.find_header(data, self._i, self.fmt, line_start)
            if index >= 0 and fmt is not None:
                self._i = index
                return fmt
            if index >= 0:  # a candidate whose line is not complete yet
                self._i = index
                if self._more():
                    continue
                index, fmt = formats.find_header(self._buf[:self._end()], self._i, self.fmt, line_start,
                                                 complete=True)
                if index >= 0 and fmt is not None:
                    self._i = index
                    return fmt
                self._i += 1
                continue
            self._i = max(self._i, end - 5)  # keep what may be the start of a "WARC/" split by the fill
            if not self._more():
                if self._limit is not None and self.tell() < self._limit:
                    self._i = self._end()
                    continue
                if self._limit is not None:
                    continue
                self._i = self._end()
                return None

    def rewind(self, logical: int) -> None:
        """Go back to ``logical`` (not before the current record's start) to read it again."""
        if self._base <= logical <= self._base + len(self._buf):
            self._i = logical - self._base
            return
        self._rewind_slow(logical)

    def _rewind_slow(self, logical: int) -> None:
        raise NotImplementedError

    def resync(self, after: int) -> int | None:
        """After :class:`Damage`: position at the next member (file offset > ``after``) that holds a record."""
        raise NotImplementedError


class PlainStream(ArchiveStream):
    """An uncompressed file: the logical position is the file offset."""

    def __init__(self, source: HashingSource):
        super().__init__(source)
        self.members = [Member(offset=0, logical_start=0, lead_blank=0)]

    def offset_of(self, logical: int) -> int:
        return logical

    def member_offset_of(self, logical: int) -> int | None:
        return None

    def _more(self) -> bool:
        if self._eof:
            return False
        data = self.source.read(PLAIN_READ)
        if not data:
            self._eof = True
            return False
        self._append(data)
        return True

    def _rewind_slow(self, logical: int) -> None:
        self.source.seek(logical)
        self._buf, self._i, self._base, self._prev, self._eof = b"", 0, logical, b"\n", False

    def resync(self, after: int) -> int | None:  # an uncompressed file has no container damage
        return None


class GzipStream(ArchiveStream):
    """A gzip file read member by member; see the module docstring."""

    compressed = True

    def __init__(self, source: HashingSource):
        super().__init__(source)
        self._d: zlib._Decompress | None = None  # decompressor of the current member; None between members
        self._held: Damage | None = None  # damage met after salvaging the output before it (raised next time)
        self._in = b""  # compressed bytes read from the source
        self._in_off = 0  # file offset of _in[0]
        self._in_pos = 0  # next byte of _in to hand to zlib
        self.members_read = 0
        self._boundary_open = False
        self._limit = 0  # the first member is a boundary like any other

    # ---- input
    def _next_input(self) -> bytes:
        if self._in_pos >= len(self._in):
            self._in_off = self.source.pos
            self._in = self.source.read(READ_SIZE)
            self._in_pos = 0
        return self._in[self._in_pos:self._in_pos + FEED_SIZE]

    def _ensure_input(self, n: int) -> int:
        """At least ``n`` unread compressed bytes in _in if the file has them; returns how many there are."""
        have = len(self._in) - self._in_pos
        while have < n:
            more = self.source.read(READ_SIZE) if self.source.pos == self._in_off + len(self._in) else b""
            if not more:
                break
            self._in = self._in[self._in_pos:] + more
            self._in_off += self._in_pos
            self._in_pos = 0
            have = len(self._in)
        return have

    # ---- members
    def _inflate(self) -> bytes:
        """Output of the current member (maybe b"" when it just ended); raises Damage."""
        if self._held is not None:
            raise self._held
        member = self.members[-1]
        d = self._d
        if d is None:  # the caller opens a member first
            raise RuntimeError("inflating between gzip members")
        while True:
            data = self._next_input()
            if not data:
                out = d.decompress(b"", OUT_SIZE)
                if out:
                    return out
                raise Damage(member.offset, f"the file ends inside the gzip member at offset {member.offset} "
                                            "(truncated member)", "truncated")
            call_start = self._in_off + self._in_pos
            self._in_pos += len(data)
            try:
                out = d.decompress(data, OUT_SIZE)
            except zlib.error as exc:
                kind = "crc" if "check" in str(exc) else "data"
                damage = Damage(member.offset, f"gzip member at offset {member.offset}: {exc}", kind)
                out = self._salvage(member, call_start, call_start + len(data))
                if not out:
                    raise damage from None
                self._held = damage
                return out
            if d.eof:
                self._in_pos -= len(d.unused_data)
                member.end_offset = self._in_off + self._in_pos
                self._d = None
                self.members_read += 1
                return out
            self._in_pos -= len(d.unconsumed_tail)
            if out:
                produced = self._base + len(self._buf) + len(out)
                last = member.checkpoints[-1][0] if member.checkpoints else member.logical_start
                if produced - last >= CHECKPOINT_EVERY:
                    member.checkpoints.append((produced, self._in_off + self._in_pos, d.copy()))
                return out

    def _salvage(self, member: Member, call_start: int, call_end: int) -> bytes:
        """zlib drops all output of a call that fails: decompress the member again, the failing call's input in
        small pieces, and return the output that came before the error (records that end there are intact)."""
        delivered = self._base + len(self._buf) - member.logical_start
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.source.seek(member.offset)
        position, produced, kept = member.offset, 0, []
        try:
            while position < call_end:
                size = FEED_SIZE if position + FEED_SIZE <= call_start else 64
                data = self.source.read(min(size, call_end - position))
                if not data:
                    break
                position += len(data)
                while data:
                    out = d.decompress(data, OUT_SIZE)
                    data = d.unconsumed_tail
                    if produced + len(out) > delivered:
                        kept.append(out[max(0, delivered - produced):])
                    produced += len(out)
                    if d.eof:
                        break
        except zlib.error:
            pass
        return b"".join(kept)

    def _start_member(self) -> bool:
        """Open the member at the current input position; False at the end of the file. Raises Damage."""
        have = self._ensure_input(len(GZIP_MAGIC))
        if have == 0:
            return False
        offset = self._in_off + self._in_pos
        if self._in[self._in_pos:self._in_pos + 3] != GZIP_MAGIC:
            if self._only_padding_left():
                self.notes.append(f"{self.source.size_so_far() - offset} NUL bytes of padding after the last "
                                  f"gzip member (offset {offset}) ignored")
                return False
            raise Damage(offset, f"bytes at offset {offset} between gzip members are not a gzip member", "garbage")
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.members.append(Member(offset=offset, logical_start=self._base + len(self._buf)))
        return True

    def _only_padding_left(self) -> bool:
        rest = self._in[self._in_pos:]
        if rest.strip(b"\0"):
            return False
        start = self._in_off + self._in_pos
        position = self._in_off + len(self._in)
        self.source.seek(position)
        while chunk := self.source.read(READ_SIZE):
            if chunk.strip(b"\0"):
                self.source.seek(start)
                return False
        self._in, self._in_off, self._in_pos = b"", self.source.pos, 0
        return True

    def _more(self) -> bool:
        if self._limit is not None and self._base + len(self._buf) >= self._limit and self._boundary_open:
            return False
        if self._deferred is not None:
            return False
        while True:
            if self._d is not None:
                out = self._inflate()
                if out:
                    self._note_lead(out)
                    self._append(out)
                    return True
                continue
            if self._eof:
                return False
            boundary = self._base + len(self._buf)
            try:
                started = self._start_member()
            except Damage as damage:
                self._limit, self._deferred = boundary, damage
                return False
            if not started:
                self._eof = True
                return False
            self._boundary_open = True
            try:
                begins_record = self._member_begins_record(boundary)
            except Damage as damage:
                self._buf = self._buf[:max(self._i, boundary - self._base)]
                self._limit, self._deferred = boundary, damage
                return False
            if begins_record:
                self._limit = boundary
                return self.tell() < boundary
            self._limit = None
            return True

    def _note_lead(self, out: bytes) -> None:
        member = self.members[-1]
        if member.lead_blank < 0:
            m = _NON_BLANK.search(out)
            member.lead_blank = m.start() if m else len(out)

    def _member_begins_record(self, boundary: int) -> bool:
        """Inflate the new member's first bytes into the buffer and say whether a record header begins there."""
        while True:
            head = self._buf[boundary - self._base:]
            try:
                return formats.record_start(head, self.fmt, complete=self._d is None) is not None
            except formats.NeedMore:
                pass
            if len(head) >= formats.MAX_LINE:
                return False
            out = self._inflate()
            if out:
                self._note_lead(out)
                self._append(out)

    # ---- damage handling
    def resync(self, after: int) -> int | None:
        self._held = None
        self._base += len(self._buf)
        self._buf, self._i, self._prev = b"", 0, b"\n"
        self._d, self._deferred, self._eof = None, None, False
        self.source.seek(after + 1)
        window, window_off = b"", after + 1
        while True:
            chunk = self.source.read(READ_SIZE)
            data = window + chunk if window else chunk
            if not data:
                break
            j = data.find(GZIP_MAGIC)
            while j >= 0:
                if len(data) - j < VALIDATE_INPUT and chunk:
                    break  # read on before judging a candidate near the end of what is buffered
                if self._holds_record(data[j:j + VALIDATE_INPUT]):
                    self._in, self._in_off, self._in_pos = data, window_off, j
                    self._limit = self._base  # the member is a record boundary: stop there
                    self._boundary_open = False
                    return window_off + j
                j = data.find(GZIP_MAGIC, j + 1)
            if not chunk:
                break
            keep = j if j >= 0 else max(0, len(data) - 2)
            window, window_off = data[keep:], window_off + keep
        self._in, self._in_off, self._in_pos = b"", self.source.pos, 0
        self._eof, self._limit = True, None
        return None

    def _holds_record(self, data: bytes) -> bool:
        return member_holds_record(data, self.fmt)

    def _rewind_slow(self, logical: int) -> None:
        """Decompress the member holding ``logical`` again, from its start or its last checkpoint before it."""
        member = self._member_at(logical)
        del self.members[self.members.index(member) + 1:]
        start, offset, state = member.logical_start, member.offset, None
        earlier = [c for c in member.checkpoints if c[0] <= logical]
        if earlier:
            start, offset, state = earlier[-1]
        member.checkpoints[:] = earlier  # the ones after are made again as the member is read again
        self.source.seek(offset)
        self._in, self._in_off, self._in_pos = b"", offset, 0
        self._d = state.copy() if state is not None else zlib.decompressobj(16 + zlib.MAX_WBITS)
        member.end_offset = None
        self._held = None
        self._buf, self._i, self._base, self._prev = b"", 0, start, b"\n"
        self._limit, self._deferred, self._eof, self._boundary_open = None, None, False, True
        while self._base + len(self._buf) < logical:
            if self._limit is not None and self._base + len(self._buf) >= self._limit:
                self._limit = None
            if not self._more():
                break
            self._i = min(len(self._buf), logical - self._base)
        self._i = min(len(self._buf), logical - self._base)


def member_holds_record(data: bytes, fmt: str | None) -> bool:
    """Whether ``data`` starts a gzip member whose decompressed data begins with a record header."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, 4 * formats.MAX_LINE)
    except zlib.error:
        return False
    return formats.record_start(out, fmt, complete=True) is not None
