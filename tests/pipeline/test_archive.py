"""Unit tests of the reader's layers (pipeline.archive): source, gzip/plain streams, formats, HTTP, digests."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import zlib

import pytest

from pipeline.archive import formats
from pipeline.archive.digests import DigestCheck
from pipeline.archive.http import OUT_PIECE, BodyDecoder, HttpHead, parse_response_head
from pipeline.archive.source import HashingSource
from pipeline.archive.streams import Damage, GzipStream, PlainStream
from tests.pipeline.conftest import DATA

RECORD = b"WARC/1.0\r\nWARC-Type: resource\r\nContent-Length: 5\r\n\r\nhello\r\n\r\n"


# ---- source
def test_source_hashes_every_byte_once_whatever_the_seeks():
    data = bytes(range(256)) * 1000
    source = HashingSource(io.BytesIO(data))
    source.read(1000)
    source.seek(10)  # back: allowed, not hashed twice
    source.read(5000)
    with pytest.raises(ValueError):
        source.seek(100_000)  # forward past what was read would leave a hole in the hash
    assert source.finish() == (hashlib.sha256(data).hexdigest(), len(data))


# ---- streams
def _members(*records: bytes) -> bytes:
    return b"".join(gzip.compress(r, mtime=0) for r in records)


def _drain(stream) -> bytes:
    out = bytearray()
    while True:
        stream.begin_record()
        if stream.at_eof():
            return bytes(out)
        while piece := stream.read_some(1 << 20):
            out += piece


def test_gzip_stream_knows_each_member_offset_and_stops_at_members_that_begin_a_record():
    data = _members(RECORD, RECORD.replace(b"hello", b"world"))
    stream = GzipStream(HashingSource(io.BytesIO(data)))
    stream.fmt = formats.WARC
    first = stream.begin_record()
    assert stream.offset_of(first) == 0 and stream.read_some(1 << 20) == RECORD
    assert stream.at_boundary() and stream.read_some(10) == b""  # no read runs into the next record's member
    second = stream.begin_record()
    assert stream.offset_of(second) == len(gzip.compress(RECORD, mtime=0))
    assert stream.read_some(1 << 20).startswith(b"WARC/1.0")


def test_gzip_stream_reads_a_record_split_over_members_as_one_stream():
    data = _members(RECORD[:20], RECORD[20:])  # the second member does not begin a record: crossed
    stream = GzipStream(HashingSource(io.BytesIO(data)))
    stream.fmt = formats.WARC
    assert _drain(stream) == RECORD


@pytest.mark.parametrize("damage, kind", [
    (lambda d: d[:-3], "truncated"),  # the file ends inside the member
    (lambda d: d[:-8] + bytes([d[-8] ^ 1]) + d[-7:], "crc"),  # CRC32 in the trailer
    (lambda d: d[:-2] + bytes([d[-2] ^ 1]) + d[-1:], "crc"),  # ISIZE in the trailer ("incorrect length check")
    (lambda d: d[:12] + b"\xff\xff\xff" + d[15:], "data"),  # deflate data
    (lambda d: b"junk" + d, "garbage"),  # bytes where a member should start
])
def test_gzip_stream_raises_each_kind_of_damage_instead_of_ending(damage, kind):
    data = damage(gzip.compress(RECORD * 50, mtime=0))
    stream = GzipStream(HashingSource(io.BytesIO(data)))
    with pytest.raises(Damage) as caught:
        _drain(stream)
    assert caught.value.kind == kind


def test_gzip_stream_salvages_the_output_before_a_data_error_and_resyncs_at_the_next_member():
    records = [RECORD.replace(b"hello", b"%05d" % i) for i in range(2000)]
    first = bytearray(gzip.compress(b"".join(records), mtime=0))
    first[len(first) * 3 // 4] ^= 0xFF
    good = gzip.compress(RECORD, mtime=0)
    stream = GzipStream(HashingSource(io.BytesIO(bytes(first) + b"noise" + good)))
    stream.fmt = formats.WARC
    out = bytearray()
    with pytest.raises(Damage):
        while True:
            stream.begin_record()
            piece = stream.read_some(1 << 20)
            if not piece:
                break
            out += piece
    # zlib drops the output of a failing call: it is decompressed again up to the error, so the records before the
    # damage come out (over half of them: the flip sits three quarters into the compressed data; after it, deflate
    # may produce wrong bytes for a while before zlib notices, which the record framing above then meets).
    original = b"".join(records)
    intact = next(i for i in range(len(out) + 1) if i == len(out) or out[i] != original[i])
    assert intact > len(original) // 2 and len(out) >= intact
    assert stream.resync(0) == len(first) + len(b"noise")
    assert _drain(stream) == RECORD


def test_gzip_stream_ignores_nul_padding_after_the_last_member_and_says_so():
    stream = GzipStream(HashingSource(io.BytesIO(_members(RECORD) + b"\0" * 512)))
    assert _drain(stream) == RECORD
    assert "512 NUL bytes of padding" in stream.notes[0]


def test_streams_bound_what_one_read_returns_and_can_rewind():
    bomb = gzip.compress(b"\0" * (64 << 20), mtime=0)  # 64 MiB of output from ~64 KB
    stream = GzipStream(HashingSource(io.BytesIO(bomb)))
    stream.begin_record()
    assert len(stream.read_some(1 << 30)) <= 1 << 20
    position = stream.tell()
    for _ in range(20):
        stream.read_some(1 << 20)
    stream.rewind(position)  # back over data no longer buffered: decompressed again from the member's start
    assert stream.tell() == position and stream.read_some(4) == b"\0\0\0\0"
    plain = PlainStream(HashingSource(io.BytesIO(RECORD * 3)))
    plain.begin_record()
    assert plain.read_some(len(RECORD)) == RECORD
    plain.rewind(5)
    assert plain.read_some(5) == RECORD[5:10]


# ---- formats
def test_warc_versions_and_fields():
    assert [formats.version_of(v) for v in (b"WARC/1.0\r\n", b"WARC/1.1\n", b"WARC/0.17\r\n", b"WARC/0.18\r\n")] == \
        ["1.0", "1.1", "0.17", "0.18"]
    assert [formats.version_of(v) for v in (b"WARC/0.16\r\n", b"WARC/2.0\r\n", b"WARC/1.0.1\r\n", b"WARC/1.0")] == \
        [None] * 4
    fields = formats.parse_fields(b"Content-Type: text/plain;\r\n  charset=utf-8\r\nwarc-type: response\r\n"
                                  b"WARC-Type: request\r\nno colon here\r\nContent-Length:  12 \r\n\r\n")
    assert fields == {"content-type": "text/plain; charset=utf-8", "warc-type": "response", "content-length": "12"}


def test_arc_header_lines_v1_v2_and_what_is_not_one():
    v1 = formats.parse_arc_header(b"http://example.com/a b.html 93.184.216.119 20140216050221 text/html 1591\n", 1)
    assert (v1.url, v1.ip, v1.date, v1.content_type, v1.length) == \
        ("http://example.com/a b.html", "93.184.216.119", "20140216050221", "text/html", 1591)
    v2 = formats.parse_arc_header(b"http://www.dryswamp.edu:80/index.html 127.10.100.2 19961104142103 text/html 200 "
                                  b"fac069150613fe55599cc7fa88aa089d - 209 IA-001102.arc 202\n")
    assert (v2.url, v2.length) == ("http://www.dryswamp.edu:80/index.html", 202)
    cdx = b"org,archive)/ 20080430204826 http://www.archive.org/ text/html 200 2WAX - - 1134 707 f.warc.gz\n"
    assert formats.parse_arc_header(cdx) is None
    assert formats.parse_arc_header(b"http://a/ 1.2.3.4 null text/html 680\n") is None  # strict: a search
    assert formats.parse_arc_header(b"http://a/ 1.2.3.4 null text/html 680\n", 1, strict=False).length == 680


def test_find_header_in_damaged_bytes():
    data = b"junk WARC/1.0 not a line\nmore junkWARC/1.1\r\nWARC-Type: x\r\n"
    assert formats.find_header(data, 0, formats.WARC) == (data.index(b"WARC/1.1"), formats.WARC)
    assert formats.find_header(b"xxWARC/1.", 0, formats.WARC) == (2, None)  # incomplete: read more
    assert formats.find_header(b"xxWARC/1.", 0, formats.WARC, complete=True) == (-1, None)
    arc = b"garbage\nstray byteshttp://a.example/ 10.0.0.1 20080430204826 text/html 5\nhello\n"
    assert formats.find_header(arc, 0, formats.ARC) == (arc.index(b"http://a"), formats.ARC)
    assert formats.find_header(arc, 0, formats.WARC) == (-1, None)
    assert formats.record_start(b"\r\n\r\nWARC/1.0\r\nx", None) == formats.WARC


# ---- HTTP
@pytest.mark.parametrize("line, status, problem", [
    (b"HTTP/1.1 200 OK", 200, None),
    (b"HTTP/1.0 404", 404, None),
    (b"HTTP/2 301 Moved", 301, None),
    (b"HTTP/1.1 3000000000 OK", None, "3-digit"),
    (b"HTTP/1.1 99999999999999999999 Huge", None, "3-digit"),
    (b"HTTP/1.1 abc", None, "3-digit"),
    (b"HTP/1.1 200 OK", None, "no HTTP status line"),
])
def test_status_lines_are_range_checked_and_kept_raw(line, status, problem):
    head = parse_response_head(line + b"\r\nContent-Type: text/html\r\n\r\n")
    assert head.status == status and head.get("content-type") == "text/html"
    assert (head.problem is None) if problem is None else (problem in head.problem and line.decode() in head.problem)


def _decode(headers: dict, body: bytes, pieces: int = 7, max_keep: int = 1 << 20, max_count: int = 1 << 24,
            truncated: bool = False) -> BodyDecoder:
    decoder = BodyDecoder(HttpHead(status=200, headers=headers), max_keep, max_count, truncated)
    step = max(1, len(body) // pieces)
    for i in range(0, len(body), step):
        decoder.feed(body[i:i + step])
    decoder.finish()
    return decoder


def _chunked(body: bytes, size: int = 100) -> bytes:
    return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\nTrailer: x\r\n\r\n"


TEXT = b"<html><body>" + b"Some words of a page, repeated. " * 300 + b"</body></html>"


@pytest.mark.parametrize("headers, body", [
    ({}, TEXT),
    ({"transfer-encoding": "chunked"}, _chunked(TEXT)),
    ({"content-encoding": "gzip"}, gzip.compress(TEXT)),
    ({"content-encoding": "x-gzip"}, gzip.compress(TEXT[:1000]) + gzip.compress(TEXT[1000:])),  # two members
    ({"content-encoding": "deflate"}, zlib.compress(TEXT)),
    ({"content-encoding": "deflate"}, zlib.compress(TEXT)[2:-4]),  # raw deflate, as some servers send it
    ({"transfer-encoding": "chunked", "content-encoding": "gzip"}, _chunked(gzip.compress(TEXT), 77)),
    ({"content-encoding": "utf-8"}, TEXT),  # a token that is no coding: identity
    ({"content-encoding": "gzip"}, TEXT),  # stored decoded with the header kept (ClueWeb09): identity, noted
])
def test_bodies_decode_piece_by_piece(headers, body):
    decoder = _decode(headers, body)
    assert decoder.failure is None and decoder.payload() == TEXT and decoder.length == len(TEXT)
    assert bool(decoder.quirks) == (headers.get("content-encoding") == "gzip" and body == TEXT)


def test_brotli_bodies_when_brotli_is_there():
    brotli = pytest.importorskip("brotli")
    assert _decode({"content-encoding": "br"}, brotli.compress(TEXT)).payload() == TEXT
    assert _decode({"content-encoding": "br"}, b"\xff\xfe" * 100).failure[0] == "bad_content_encoding"


@pytest.mark.parametrize("headers, body, reason", [
    ({"transfer-encoding": "chunked"}, b"zz\r\nhello\r\n0\r\n\r\n", "bad_transfer_encoding"),
    ({"transfer-encoding": "chunked"}, b"3\r\nhello\r\n0\r\n\r\n", "bad_transfer_encoding"),  # size too small
    ({"transfer-encoding": "chunked"}, b"0x5\r\nhello\r\n0\r\n\r\n", "bad_transfer_encoding"),  # not bare hex
    ({"transfer-encoding": "chunked"}, b"ff\r\nhello", "bad_transfer_encoding"),  # ends inside a chunk
    ({"content-encoding": "gzip"}, b"\x00\x01 not gzip at all " * 20, "bad_content_encoding"),
    ({"content-encoding": "gzip"}, gzip.compress(TEXT)[:-100], "bad_content_encoding"),  # ends early
    ({"content-encoding": "compress"}, b"\x1f\x9d\x90", "unsupported_content_encoding"),
])
def test_bodies_that_do_not_decode_fail_with_their_reason(headers, body, reason):
    decoder = _decode(headers, body)
    assert decoder.failure[0] == reason and decoder.payload() == b""


def test_a_truncated_record_may_end_inside_its_coding():
    assert _decode({"content-encoding": "gzip"}, gzip.compress(TEXT)[:-100], truncated=True).failure is None
    assert _decode({"transfer-encoding": "chunked"}, b"ff\r\nhello", truncated=True).payload() == b"hello"


def test_decoding_is_bounded_by_the_output_not_the_input():
    bomb = gzip.compress(b"\0" * (256 << 20), mtime=0)  # 256 KB -> 256 MiB
    seen = []
    decoder = BodyDecoder(HttpHead(headers={"content-encoding": "gzip"}), 1 << 20, 8 << 20)
    decoder.taps[1] = lambda piece: seen.append(len(piece))
    decoder.feed(bomb)  # one piece of input: the output still comes in bounded pieces
    decoder.finish()
    assert decoder.too_large and decoder.stopped and decoder.payload() == b""
    assert 8 << 20 < decoder.length <= (8 << 20) + OUT_PIECE and max(seen) <= OUT_PIECE


# ---- digests
def test_digests_in_every_encoding_and_algorithm_crawlers_write():
    data = b"the block"
    for algorithm in ("sha1", "sha256", "md5"):
        raw = hashlib.new(algorithm, data).digest()
        for value in (base64.b32encode(raw).decode(), base64.b32encode(raw).decode().lower().rstrip("="),
                      raw.hex(), base64.b64encode(raw).decode()):
            good, bad = DigestCheck("WARC-Block-Digest", f"{algorithm}:{value}"), \
                DigestCheck("WARC-Block-Digest", f"{algorithm}:{value}")
            good.update(data)
            bad.update(data + b".")
            assert good.mismatch() is None and "does not match" in bad.mismatch()
    sha1_of_md5_length = DigestCheck("WARC-Block-Digest", "sha1:" + hashlib.md5(data).hexdigest())
    sha1_of_md5_length.update(data)
    assert sha1_of_md5_length.mismatch()  # a value that is no sha1 at all is damage, not "unchecked"
    unknown = DigestCheck("WARC-Block-Digest", "crc32:1234")
    assert unknown.mismatch() is None and "not one we check" in unknown.unchecked


def test_the_bundled_fixtures_digests_all_check():
    """Every block digest of the real fixtures matches: a mismatch is damage, never a convention we misread."""
    from pipeline.warc_reader import WarcFileReader

    for path in sorted(DATA.glob("*.gz")):
        items = list(WarcFileReader(str(path), lambda p: open(p, "rb")))
        assert items[-1].errors == 0, path.name
