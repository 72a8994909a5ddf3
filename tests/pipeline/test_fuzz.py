"""Seeded mutation fuzzing of the reader, checked against an independent count (issue 10).

Base files are built from the bundled real fixtures in every layout the reader meets: per-record gzip, plain, and
one gzip member holding everything; WARC 1.0 (Common Crawl WARC and WET), WARC 0.17 (Heritrix 2008), WARC 0.18
(ClueWeb09), ARC v1. This module knows each base's records from how it built it (gzip members split with zlib
here, record byte ranges from construction), never from the reader. Each mutant damages a known byte range
(truncations, bit flips in gzip data and headers, members cut, cut short mid-file or duplicated, stray bytes,
Content-Length wrong / not a number / negative / missing / huge, HTTP status lines with huge numbers, bad chunked
framing, bodies declared gzip or br that are not, a chunked gzip bomb), so the records it did not touch are known.

For every mutant, read directly with :class:`WarcFileReader` under a per-mutant timeout (a hang fails), the rules:
the reader ends; its stats balance (one outcome per output, the file's real size and sha256); document ids are
unique and record offsets only increase; error byte ranges do not overlap; every untouched record comes out as a
document or a skipped record at its own offset (with its own WARC-Record-ID); every touched record that does not
come out lies in the byte range of an error row. A sample of mutants then goes through ``lowbg curate`` end to end
(a folder of mutants per run): exit 0, a balanced manifest, no duplicate ids, and the same ledger on the shards.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import re
import signal
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from pipeline.document import ErrorRecord
from pipeline.extract import document_id
from pipeline.warc_reader import InputStats, Skipped, WarcFileReader, WarcRecord
from tests.pipeline.conftest import DATA, curate, read_kind

SEED = 20241010
DIRECT_MUTANTS = 1200
E2E_ROUNDS = 3
PER_MUTANT_SECONDS = 10
MAX_PAYLOAD = 1 << 20
INF = float("inf")
_RECORD_ID = re.compile(rb"^WARC-Record-ID:[ \t]*(\S+)", re.M | re.I)
_CONTENT_LENGTH = re.compile(rb"^Content-Length:[^\r\n]*", re.M | re.I)
_DIGEST = re.compile(rb"^WARC-(?:Block|Payload)-Digest:[^\r\n]*\r?\n", re.M | re.I)


# ---------------------------------------------------------------------------------------------- base files
def split_members(data: bytes) -> list[tuple[int, int, bytes]]:
    """(start, end, decompressed data) of each gzip member, with zlib alone."""
    members, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        out = d.decompress(data[pos:])
        assert d.eof, "base fixtures are whole gzip files"
        end = len(data) - len(d.unused_data)
        members.append((pos, end, out))
        pos = end
    return members


@dataclass
class Rec:
    start: int  # offset of the record (file offset, or position in the decompressed data for "single")
    end: int  # end of its bytes (gzip member end, or the next record's start)
    key: str  # WARC-Record-ID, or "" (ARC)
    first_line_end: int  # end of its first line (where a reader knows a record begins there)


@dataclass
class Base:
    name: str
    source: str  # the fixture it comes from: no two bases of one source go into one end-to-end run
    layout: str  # members | plain | single
    fmt: str  # warc | arc
    data: bytes
    records: list[Rec]
    raw: list[bytes]  # each record's uncompressed bytes (members/plain), for record-level mutations
    plain: bytes = b""  # single: the decompressed data


def _key(record: bytes) -> str:
    m = _RECORD_ID.search(record[:4096])
    return m.group(1).decode() if m else ""


def _records_from(raws: list[bytes], starts: list[int], ends: list[int]) -> list[Rec]:
    return [Rec(s, e, _key(r), s + r.index(b"\n") + 1) for r, s, e in zip(raws, starts, ends)]


def _members_base(name, source, fmt, data: bytes) -> tuple[Base, Base]:
    members = split_members(data)
    raws = [out for _, _, out in members]
    gz = Base(name + ".gz", source, "members", fmt, data,
              _records_from(raws, [s for s, _, _ in members], [e for _, e, _ in members]), raws)
    starts, pos = [], 0
    for raw in raws:
        starts.append(pos)
        pos += len(raw)
    plain = Base(name, source, "plain", fmt, b"".join(raws),
                 _records_from(raws, starts, starts[1:] + [pos]), raws)
    return gz, plain


def _first_members(data: bytes, n: int) -> bytes:
    members = split_members(data)
    return data[:members[min(n, len(members)) - 1][1]]


def _arc_from_http(responses: list[tuple[str, bytes]]) -> bytes:
    """An ARC v1 file (per-record gzip) of real HTTP responses, written as ARC writers did."""
    version = b"1 0 lowbackground-test\nURL IP-address Archive-date Content-type Archive-length\n\n"
    records = [b"filedesc://built.arc 0.0.0.0 20080430204825 text/plain %d\n%s\n" % (len(version), version)]
    for i, (url, block) in enumerate(responses):
        line = b"%s 207.241.229.%d 200804302048%02d text/html %d\n" % (url.encode(), 10 + i, i % 60, len(block))
        records.append(line + block + b"\n")
    return b"".join(gzip.compress(r, mtime=0) for r in records)


def _http_responses(data: bytes, limit: int) -> list[tuple[str, bytes]]:
    out = []
    for _, _, record in split_members(data):
        head_end = record.find(b"\r\n\r\n")
        header = record[:head_end]
        if b"WARC-Type: response" not in header or b"Target-URI: http" not in header:
            continue
        url = re.search(rb"WARC-Target-URI: (\S+)", header).group(1).decode()
        length = int(re.search(rb"Content-Length: (\d+)", header).group(1))
        out.append((url, record[head_end + 4:head_end + 4 + length]))
        if len(out) == limit:
            break
    return out


def build_bases() -> list[Base]:
    cc = (DATA / "cc-main-2020-34.warc.gz").read_bytes()
    heritrix = (DATA / "ia-2008-heritrix.warc.gz").read_bytes()
    bases: list[Base] = []
    bases += _members_base("cc2020.warc", "cc2020", "warc", cc)
    bases += _members_base("wet.warc", "wet", "warc", (DATA / "cc-main-2024-22.warc.wet.gz").read_bytes())
    bases += _members_base("heritrix-0.17.warc", "heritrix", "warc", _first_members(heritrix, 40))
    bases += _members_base("clueweb-0.18.warc", "clueweb", "warc",
                           _first_members((DATA / "clueweb09-invalid-date.warc.gz").read_bytes(), 6))
    bases += _members_base("example.arc", "example-arc", "arc", (DATA / "malformed" / "example.arc.gz").read_bytes())
    bases += _members_base("built.arc", "built-arc", "arc", _arc_from_http(_http_responses(heritrix, 12)))
    # One gzip member holding a dozen records.
    plain_cc = next(b for b in bases if b.name == "cc2020.warc")
    cut = plain_cc.records[12].start
    single_plain = plain_cc.data[:cut]
    recs = [r for r in plain_cc.records[:12]]
    bases.append(Base("single-cc2020.warc.gz", "cc2020", "single", "warc", gzip.compress(single_plain, mtime=0),
                      recs, plain_cc.raw[:12], plain=single_plain))
    return bases


# ---------------------------------------------------------------------------------------------- mutations
@dataclass
class Mutant:
    base: Base
    kind: str
    data: bytes
    edits: list[tuple[int, int, int]]  # (start, end, new length) in the base's coordinates, in order
    touched: set[int] = field(default_factory=set)  # indexes of base records the damage touches
    removed: set[int] = field(default_factory=set)  # records cut out whole: gone, and nothing in the file says so

    @property
    def name(self) -> str:
        return self.base.name


def _garbage(rng: random.Random, n: int) -> bytes:
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 <>/=;:-_\t"
    return bytes(rng.choice(alphabet) for _ in range(n))


def _touched_by(base: Base, a: int, b: int) -> set[int]:
    return {i for i, r in enumerate(base.records) if (a < r.end and b > r.start) or (a == b and r.start < a < r.end)}


def _splice(base: Base, a: int, b: int, new: bytes, kind: str, touched: set[int] | None = None) -> Mutant:
    data = base.data[:a] + new + base.data[b:]
    removed = set() if new or base.layout == "single" else \
        {i for i, r in enumerate(base.records) if a <= r.start and r.end <= b}
    touched = _touched_by(base, a, b) if touched is None else touched
    return Mutant(base, kind, data, [(a, b, len(new))], touched - removed, removed)


def _replace_record(base: Base, index: int, record: bytes, kind: str) -> Mutant:
    rec = base.records[index]
    new = gzip.compress(record, mtime=0) if base.layout == "members" else record
    return _splice(base, rec.start, rec.end, new, kind, {index})


def _set_length(record: bytes, fmt: str, value: bytes | None) -> bytes:
    """The record with its Content-Length (ARC: the header line's last field) set to ``value`` (None: no field)."""
    if fmt == "arc":
        line_end = record.index(b"\n")
        tokens = record[:line_end].split(b" ")
        tokens = tokens[:-1] + ([value] if value is not None else [])
        return b" ".join(tokens) + record[line_end:]
    head_end = record.index(b"\r\n\r\n")
    head = record[:head_end]
    m = _CONTENT_LENGTH.search(head)
    new_field = b"Content-Lenght: 0" if value is None else b"Content-Length: " + value
    return head[:m.start()] + new_field + head[m.end():] + record[head_end:]


def _length_of(record: bytes, fmt: str) -> int:
    if fmt == "arc":
        return int(record[:record.index(b"\n")].split()[-1])
    return int(_CONTENT_LENGTH.search(record[:record.index(b"\r\n\r\n")]).group(0).split(b":")[1])


def _http_parts(record: bytes, fmt: str) -> tuple[bytes, bytes, bytes] | None:
    """(record header, HTTP head, HTTP body) of a response with an HTTP block, else None."""
    if fmt == "arc":
        line_end = record.index(b"\n") + 1
        header, block = record[:line_end], record[line_end:-1]
        if not header.startswith(b"http"):
            return None
    else:
        head_end = record.index(b"\r\n\r\n") + 4
        header = record[:head_end]
        if b"WARC-Type: response" not in header or b"Target-URI: http" not in header:
            return None
        block = record[head_end:head_end + _length_of(record, fmt)]
    split = block.find(b"\r\n\r\n")
    if not block.startswith(b"HTTP/") or split < 0:
        return None
    return header, block[:split + 4], block[split + 4:]


def _rebuild(header: bytes, head: bytes, body: bytes, fmt: str, keep_digests: bool) -> bytes:
    block = head + body
    if fmt == "arc":
        return _set_length(header, fmt, str(len(block)).encode()) + block + b"\n"
    if not keep_digests:
        header = _DIGEST.sub(b"", header)
    return _set_length(header, fmt, str(len(block)).encode()) + block + b"\r\n\r\n"


def _with_header(head: bytes, name: bytes, value: bytes) -> bytes:
    lines = [ln for ln in head[:-4].split(b"\r\n") if not ln.lower().startswith(name.lower() + b":")]
    return b"\r\n".join(lines + [name + b": " + value]) + b"\r\n\r\n"


def _chunked(body: bytes, rng: random.Random, bad: bool) -> bytes:
    pieces, pos = [], 0
    while pos < len(body):
        n = rng.randint(1, 4000)
        pieces.append(body[pos:pos + n])
        pos += n
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    if not bad:
        return out
    how = rng.choice(["size", "hex", "crlf"])
    if how == "size":  # a size that does not match its chunk
        return b"%x\r\n" % (len(pieces[0]) + rng.randint(1, 9)) + out[out.index(b"\r\n") + 2:]
    if how == "hex":
        return b"zz\r\n" + out[out.index(b"\r\n") + 2:]
    return out.replace(b"\r\n", b"\r\nX", 2)


MUTATION_KINDS = ("truncate", "flip", "flip_gzip_header", "flip_trailer", "stray_bytes", "content_length",
                  "status_line", "chunked", "content_encoding", "bomb", "cut_member", "member_cut_short",
                  "duplicate_member")


def mutate(base: Base, rng: random.Random) -> Mutant:
    data, recs = base.data, base.records
    gz = base.layout != "plain"
    kinds = ["truncate", "flip"]
    if base.layout == "single":
        kinds += ["flip_gzip_header", "flip_trailer"]
    else:
        kinds += ["stray_bytes", "content_length", "status_line", "chunked", "content_encoding", "bomb"]
        if base.layout == "members":
            kinds += ["flip_gzip_header", "cut_member", "member_cut_short", "duplicate_member"]
    kind = rng.choice(kinds)
    index = rng.randrange(len(recs))
    rec = recs[index]
    if kind == "truncate":
        cut = rng.randrange(1, len(data))
        return _splice(base, cut, len(data), b"", kind)
    if kind == "flip":
        at = rng.randrange(len(data))
        return _splice(base, at, at + 1, bytes([data[at] ^ (1 << rng.randrange(8))]), kind)
    if kind == "flip_gzip_header":
        start = 0 if base.layout == "single" else rec.start
        at = start + rng.randrange(10)
        return _splice(base, at, at + 1, bytes([data[at] ^ (1 << rng.randrange(8))]), kind)
    if kind == "flip_trailer":
        at = len(data) - 1 - rng.randrange(8)
        return _splice(base, at, at + 1, bytes([data[at] ^ (1 << rng.randrange(8))]), kind)
    if kind == "cut_member":
        size = rec.end - rec.start
        a = rec.start + rng.randrange(10, max(11, size - 8))
        return _splice(base, a, min(rec.end - 1, a + rng.randint(1, 200)), b"", kind)
    if kind == "member_cut_short":
        a = rec.start + rng.randrange(1, rec.end - rec.start)
        return _splice(base, a, rec.end, b"", kind)
    if kind == "duplicate_member":
        return _splice(base, rec.end, rec.end, data[rec.start:rec.end], kind, set())
    if kind == "stray_bytes":
        at = rec.end
        # ARC separates records with one newline: stray bytes after it cannot be told from a block longer than
        # its length, and they join the next record's header line, so both records count as touched (WARC's
        # blank line and version line tell them apart).
        touched = {index, index + 1} & set(range(len(recs))) if base.fmt == "arc" and not gz else set()
        return _splice(base, at, at, _garbage(rng, rng.randint(1, 300)), kind, touched)
    raw = base.raw[index]
    if kind == "content_length":
        length = _length_of(raw, base.fmt)
        more, less = length + rng.randint(1, 80), max(0, length - rng.randint(1, 80))
        value = rng.choice([b"abc", b"-5", b"", None, b"0", b"99999999999999999999", b"1e3", b"+12",
                            str(more).encode(), str(less).encode(), str(length * 3 + 1000).encode()])
        return _replace_record(base, index, _set_length(raw, base.fmt, value), kind)
    parts = _http_parts(raw, base.fmt)
    if parts is None:  # not an HTTP response: damage its length instead
        return _replace_record(base, index, _set_length(raw, base.fmt, b"xyz"), "content_length")
    header, head, body = parts
    keep = rng.random() < 0.3
    if kind == "status_line":
        line = rng.choice([b"HTTP/1.1 3000000000 OK", b"HTTP/1.1 99999999999999999999 Huge", b"HTTP/1.1 abc",
                           b"HTTP/1.0 -200 Negative", b"HTP/1.1 200 OK", b"HTTP/1.1 2000 OK"])
        head = line + head[head.index(b"\r\n"):]
    elif kind == "chunked":
        head = _with_header(head, b"Transfer-Encoding", b"chunked")
        body = _chunked(body, rng, bad=True)
    elif kind == "content_encoding":
        coding = rng.choice([b"gzip", b"deflate", b"br", b"x-gzip"])
        head = _with_header(head, b"Content-Encoding", coding)
        body = b"\x00\x01" + body[:2000]  # not compressed, and not plain markup either
    elif kind == "bomb":  # a small chunked gzip body that inflates to 8 MiB of zeros (kept small on disk)
        head = _with_header(_with_header(head, b"Content-Encoding", b"gzip"), b"Transfer-Encoding", b"chunked")
        body = _chunked(gzip.compress(b"\0" * (8 << 20), mtime=0), rng, bad=False)
    return _replace_record(base, index, _rebuild(header, head, body, base.fmt, keep), kind)


# ---------------------------------------------------------------------------------------------- checking
class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: int):
    def _raise(signum, frame):
        raise Hang(f"no result within {seconds}s")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def read_directly(name: str, data: bytes) -> list:
    return list(WarcFileReader(name, lambda _path: io.BytesIO(data), len(data), MAX_PAYLOAD))


def _intact_prefix(original: bytes, mutant: bytes) -> tuple[int, bool]:
    """(bytes of ``original`` that the mutant's gzip data decompresses to before it differs or fails, whether the
    mutant is one whole valid member with exactly that output)."""
    d = zlib.decompressobj(31)
    out = bytearray()
    try:
        for i in range(0, len(mutant), 64):
            out += d.decompress(mutant[i:i + 64])
            if d.eof:
                break
    except zlib.error:
        pass
    n = min(len(out), len(original))
    common = next((i for i in range(n) if out[i] != original[i]), n)
    whole = d.eof and bytes(out) == original and not d.unused_data.strip(b"\0")
    return common, whole


def expected(m: Mutant) -> tuple[dict[int, int], set[int]]:
    """({base record index: offset in the mutant} of untouched records, indexes of touched ones)."""
    base = m.base
    if base.layout == "single":
        common, whole = _intact_prefix(base.plain, m.data)
        if whole:
            return {i: r.start for i, r in enumerate(base.records)}, set()
        # A record is intact once the next record's first line is (the reader cannot know it ended before); the
        # last one ends with the member, whose check failed.
        intact = {i: r.start for i, r in enumerate(base.records[:-1]) if base.records[i + 1].first_line_end <= common}
        return intact, set(range(len(base.records))) - set(intact)
    return ({i: moved(m, i) for i in range(len(base.records)) if i not in m.touched | m.removed},
            set(m.touched))


def moved(m: Mutant, i: int) -> int:
    """Where base record ``i`` starts in the mutant (the offsets of one gzip member's data do not move)."""
    start = m.base.records[i].start
    if m.base.layout == "single":
        return start
    return start + sum(new - (b - a) for a, b, new in m.edits if b <= start)


def check(m: Mutant, items: list) -> dict:
    """The rules of the module docstring on one mutant's direct read; returns a summary."""
    assert items and isinstance(items[-1], InputStats), "the reader ends with its stats"
    stats = items[-1]
    outputs = items[:-1]
    assert stats.units == len(outputs) and stats.size == len(m.data)
    assert stats.sha256 == hashlib.sha256(m.data).hexdigest()
    docs = [o for o in outputs if isinstance(o, WarcRecord)]
    errors = [o for o in outputs if isinstance(o, ErrorRecord)]
    records = [o for o in outputs if isinstance(o, WarcRecord | Skipped)]
    ids = [document_id(d) for d in docs]
    assert len(ids) == len(set(ids)), "duplicate document ids"
    offsets = [o.offset for o in records]
    assert offsets == sorted(offsets) and len(offsets) == len(set(offsets)), "a record read twice or out of order"
    # An end of None: the stretch runs to the end of a gzip member shared by several records (its size unknown).
    spans = sorted((e.warc_offset, e.warc_offset_end if e.warc_offset_end is not None else INF) for e in errors)
    for (_, b), (c, _) in zip(spans, spans[1:]):
        assert b <= c, f"overlapping error ranges {spans}"
    for e in errors:
        assert e.warc_offset is not None and e.warc_offset <= (e.warc_offset_end or INF)
        assert e.reason and e.message and e.warc_file == m.name
        assert e.reason != "record_parse_failed", f"the reader itself failed: {e.message}"  # its safety net
    out_at = {o.offset: o for o in records}
    intact, touched = expected(m)
    for i, offset in intact.items():
        key = m.base.records[i].key
        got = out_at.get(offset)
        assert got is not None, f"untouched record {i} at {offset} ({key}) lost; errors: {spans}"
        assert not key or got.record_id == key, (i, offset, key, got.record_id)
    lost = 0
    for i in touched:
        start = moved(m, i)
        # Bytes inserted right before a record may have joined its header: it then starts where they do.
        starts = {start} | {start - new for a, b, new in m.edits if a == b == m.base.records[i].start}
        if any(s in out_at for s in starts):  # out, with whatever the damage made of it (its id, say)
            continue
        lost += 1
        covered = any(a <= start and (start < b or b >= len(m.data)) for a, b in spans)
        assert covered, f"touched record {i} at {start} lost without an error row covering it: {spans}"
    return {"documents": len(docs), "errors": len(errors), "lost": lost}


@pytest.fixture(scope="module")
def mutants() -> list[Mutant]:
    rng = random.Random(SEED)
    bases = build_bases()
    return [mutate(bases[i % len(bases)], rng) for i in range(DIRECT_MUTANTS)]


def test_bases_are_read_whole_without_damage():
    """The baseline: every base file reads to exactly its records, no error (so any loss below is the damage)."""
    for base in build_bases():
        items = read_directly(base.name, base.data)
        summary = check(Mutant(base, "none", base.data, []), items)
        assert summary["errors"] == 0 and summary["lost"] == 0, base.name
        assert items[-1].units == len(base.records), base.name


def test_every_mutant_keeps_the_ledger(mutants):
    kinds, losses = {}, 0
    for n, m in enumerate(mutants):
        try:
            with time_limit(PER_MUTANT_SECONDS):
                items = read_directly(m.name, m.data)
        except Hang:
            pytest.fail(f"mutant {n} ({m.kind} of {m.name}) did not finish within {PER_MUTANT_SECONDS}s")
        try:
            summary = check(m, items)
        except AssertionError as exc:
            raise AssertionError(f"mutant {n} ({m.kind} of {m.name}): {exc}") from exc
        kinds[m.kind] = kinds.get(m.kind, 0) + 1
        losses += summary["lost"] > 0
    # The fuzzer reached every kind of damage it lists, and damage that costs records.
    assert set(kinds) == set(MUTATION_KINDS) and losses > DIRECT_MUTANTS // 10, (kinds, losses)


def test_a_sample_of_mutants_end_to_end(mutants, tmp_path):
    """Mutants of different sources (their record ids differ) in one folder per run, through `lowbg curate`."""
    by_source: dict[str, list[Mutant]] = {}
    for m in mutants:
        by_source.setdefault(m.base.source, []).append(m)
    for round_ in range(E2E_ROUNDS):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        chosen = {}
        for _, group in sorted(by_source.items()):
            m = group[round_ % len(group)]
            path = folder / f"{round_}-{m.kind}-{m.name}"
            path.write_bytes(m.data)
            chosen[str(path)] = m
        out = tmp_path / f"out{round_}"
        manifest = curate(out, str(folder / "*"), extra=("--dedup", "none"))
        assert manifest["balanced"]
        rows = read_kind(out, "curated").to_pylist() + read_kind(out, "rejected").to_pylist()
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids))
        errors = read_kind(out, "errors").to_pylist()
        inputs = {i["path"]: i for i in manifest["inputs"]}
        for path, m in chosen.items():
            direct = read_directly(m.name, m.data)
            assert inputs[path]["documents"] == direct[-1].documents
            assert inputs[path]["errors"] == direct[-1].errors
            docs = {r["warc_offset"]: r for r in rows if r["warc_file"] == path}
            spans = [(e["warc_offset"], e["warc_offset_end"] if e["warc_offset_end"] is not None else INF)
                     for e in errors if e["warc_file"] == path]
            intact, touched = expected(m)
            for i, offset in intact.items():
                if any(isinstance(o, WarcRecord) and o.offset == offset for o in direct):
                    assert offset in docs, (path, i, offset)
            for i in touched:
                start = moved(m, i)
                if start not in docs and not any(isinstance(o, Skipped) and o.offset == start for o in direct):
                    assert any(a <= start and (start < b or b >= len(m.data)) for a, b in spans), (path, i, start)
