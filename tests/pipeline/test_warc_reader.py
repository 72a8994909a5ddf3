"""Direct tests of WarcFileReader (no Beam): what each kind of file and damage becomes, checked with zlib/hashlib."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import time
import tracemalloc
import zlib

import pytest

from pipeline.document import ErrorRecord
from pipeline.extract import document_id, record_to_document
from pipeline.warc_reader import InputStats, Skipped, WarcFileReader, WarcRecord
from tests.pipeline.conftest import DATA

MALFORMED = DATA / "malformed"
CUTOFF = __import__("datetime").datetime(2022, 11, 30, tzinfo=__import__("datetime").UTC)


def read(path, data: bytes | None = None, max_payload: int = 8 << 20) -> tuple[list, InputStats]:
    data = path.read_bytes() if data is None else data
    items = list(WarcFileReader(str(path), lambda _p: io.BytesIO(data), None, max_payload))
    stats = items.pop()
    assert isinstance(stats, InputStats) and stats.units == len(items)
    assert stats.sha256 == hashlib.sha256(data).hexdigest() and stats.size == len(data)
    return items, stats


def member_offsets(data: bytes) -> list[int]:
    """Offsets of the gzip members, with zlib; past a damaged one, the next magic that starts a whole member."""
    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        d = zlib.decompressobj(31)
        try:
            d.decompress(data[pos:])
            pos = len(data) - len(d.unused_data)
        except zlib.error:
            pos = data.find(b"\x1f\x8b\x08", pos + 1)
            while pos >= 0:
                try:
                    zlib.decompressobj(31).decompress(data[pos:])
                    break
                except zlib.error:
                    pos = data.find(b"\x1f\x8b\x08", pos + 1)
            if pos < 0:
                break
    return offsets


def kinds(items: list) -> list[str]:
    return [("E:" + i.reason) if isinstance(i, ErrorRecord) else ("S:" + i.record_type) if isinstance(i, Skipped)
            else ("D:" + i.record_type) for i in items]


def errors(items: list) -> list[tuple[str, int, int | None]]:
    return [(e.reason, e.warc_offset, e.warc_offset_end) for e in items if isinstance(e, ErrorRecord)]


@pytest.mark.parametrize("name", ["cc-main-2020-34.warc.gz", "cc-main-2024-22.warc.gz", "cc-main-2024-22.warc.wet.gz",
                                  "clueweb09-invalid-date.warc.gz", "ia-2008-heritrix.warc.gz"])
def test_good_files_read_whole_one_record_per_member_at_its_offset(name):
    data = (DATA / name).read_bytes()
    items, stats = read(DATA / name, data)
    assert stats.errors == 0 and [i.offset for i in items] == member_offsets(data)
    ids = [i.record_id for i in items]
    assert len(ids) == len(set(ids)) and all(ids)


def test_plain_and_gzip_of_the_same_records_give_the_same_records():
    data = (DATA / "ia-2008-heritrix.warc.gz").read_bytes()  # WARC/0.17
    gz_items, _ = read(DATA / "x.warc.gz", data)
    plain = gzip.decompress(data)
    plain_items, _ = read(DATA / "x.warc", plain)
    assert [(i.record_id, i.record_type) for i in gz_items] == [(i.record_id, i.record_type) for i in plain_items]
    assert [i.offset for i in plain_items] == [m.start() for m in re.finditer(rb"WARC/0\.17\r\n", plain)]
    docs = [(i.payload, i.http_status) for i in gz_items if isinstance(i, WarcRecord)]
    assert docs == [(i.payload, i.http_status) for i in plain_items if isinstance(i, WarcRecord)]


def test_records_sharing_a_member_have_positions_and_stable_ids():
    records = gzip.decompress((MALFORMED / "example.arc.gz").read_bytes())
    single = gzip.compress(records + records.replace(b"http://example.com/", b"http://example.org/"), mtime=0)
    items, stats = read(MALFORMED / "single.arc.gz", single)
    docs = [i for i in items if isinstance(i, WarcRecord)]
    assert [d.offset for d in docs] == [m.start() for m in re.finditer(rb"http://example\.(?:com|org)/ ", records * 2)]
    assert [d.member_offset for d in docs] == [0, 0]
    assert any("share a gzip member" in n for n in stats.notes)
    again, _ = read(MALFORMED / "single.arc.gz", single)
    ids = [document_id(d) for d in docs]
    assert ids == [document_id(d) for d in again if isinstance(d, WarcRecord)] and len(set(ids)) == 2


@pytest.mark.parametrize("name, expected", [
    # per-record gzip: the damaged member is one row from its offset to the next member's; the others are read
    ("cl-not-a-number.warc.gz", [("bad_content_length", 2, 3)]),
    ("cl-zero.warc.gz", [("content_length_mismatch", 2, 3)]),
    ("cl-too-small-member.warc.gz", [("content_length_mismatch", 2, 3)]),
    ("member-cut-mid-file.warc.gz", [("bad_gzip", 2, 3)]),
    ("flipped-bit.warc.gz", [("bad_gzip", 10, 11)]),
    ("digest-mismatch.warc.gz", [("digest_mismatch", 2, 3)]),
    ("duplicate-member.warc.gz", [("duplicate_record", 4, 5)]),
])
def test_damage_in_one_member_costs_that_member_only(name, expected):
    data = (MALFORMED / name).read_bytes()
    offsets = member_offsets(data) + [len(data)]
    items, stats = read(MALFORMED / name, data)
    assert errors(items) == [(reason, offsets[a], offsets[b]) for reason, a, b in expected]
    assert len(items) == len(offsets) - 1  # one outcome per member
    assert [i.offset for i in items if not isinstance(i, ErrorRecord)] == \
        [o for k, o in enumerate(offsets[:-1]) if k not in {a for _, a, _ in expected}]


@pytest.mark.parametrize("name, version", [("no-content-length.warc", b"WARC/1.0"), ("cl-negative.warc", b"WARC/1.0"),
                                           ("cl-not-a-number.warc", b"WARC/1.0"),
                                           ("warc-0.17-resync.warc", b"WARC/0.17"),
                                           ("warc-0.18-resync.warc", b"WARC/0.18")])
def test_uncompressed_files_resync_at_the_next_record_of_their_version(name, version):
    data = (MALFORMED / name).read_bytes()
    starts = [m.start() for m in re.finditer(re.escape(version) + rb"\r\n", data)]
    items, _ = read(MALFORMED / name, data)
    damaged = errors(items)
    assert damaged and all(end in starts + [len(data)] for _, _, end in damaged)  # each stretch ends at a record
    read_at = [i.offset for i in items if not isinstance(i, ErrorRecord)]
    lost = [s for s in starts if s not in read_at]
    assert all(any(a <= s < b for _, a, b in damaged) for s in lost)  # what is not read lies in an error row
    assert len(read_at) >= len(starts) - len(damaged)  # each stretch costs one record at most


def test_arc_files_resync_and_arc_ids_do_not_change():
    data = (MALFORMED / "arc-resync.arc").read_bytes()
    items, _ = read(MALFORMED / "arc-resync.arc", data)
    assert kinds(items) == ["S:warcinfo", "D:response", "D:response", "D:response", "E:bad_record_header",
                            "D:response", "D:response"]
    damaged = data.index(b" x")  # the record whose length field is not a number
    (_, start, end), = errors(items)
    assert start == data.rfind(b"\n", 0, damaged) + 1 and data[end:].startswith(b"http://")
    assert [document_id(d) for d in items if isinstance(d, WarcRecord)] == \
        [document_id(d) for d in read(MALFORMED / "arc-resync.arc", data)[0] if isinstance(d, WarcRecord)]
    v2, _ = read(MALFORMED / "hello-world2.arc")  # ARC v2: 10-field record lines
    assert kinds(v2) == ["E:content_length_mismatch", "D:response"]
    assert v2[1].target_uri == "http://www.dryswamp.edu:80/index.html" and v2[1].http_status == 200


@pytest.mark.parametrize("name, reason", [("index.cdx", "not_an_archive"), ("index.cdxj", "not_an_archive"),
                                          ("README.txt", "not_an_archive"), ("page.html", "not_an_archive"),
                                          ("empty.warc.gz", "empty_file"),
                                          ("path-list-not-an-archive.warc", "not_an_archive")])
def test_files_that_are_not_archives_are_one_row(name, reason):
    data = (MALFORMED / name).read_bytes()
    items, _ = read(MALFORMED / name, data)
    assert errors(items) == [(reason, 0, len(data))]


def test_responses_that_do_not_decode_are_rejected_with_their_reason():
    found = {}
    for name in ("status-out-of-range.warc.gz", "content-encoding-not-gzip.warc.gz", "chunked-bad-size.warc"):
        for item in read(MALFORMED / name)[0]:
            if isinstance(item, WarcRecord) and item.reject_reason:
                doc = record_to_document(item, CUTOFF, CUTOFF, "test")
                found.setdefault(doc.reason, []).append(doc)
                assert doc.text == "" and doc.http_status is None or doc.reason != "bad_http_response"
    assert {k: len(v) for k, v in found.items()} == {"bad_http_response": 2, "bad_content_encoding": 2,
                                                     "bad_transfer_encoding": 1}
    assert any("3000000000" in d.detail for d in found["bad_http_response"])


def test_a_decompression_bomb_costs_bounded_memory_and_time():
    tracemalloc.start()
    started = time.perf_counter()
    items, _ = read(MALFORMED / "chunked-gzip-bomb.warc.gz", max_payload=1 << 20)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    bomb = next(i for i in items if isinstance(i, WarcRecord))
    assert bomb.payload_too_large and not bomb.payload_length_exact and bomb.payload == b""
    assert 32 << 20 < bomb.payload_length <= (33 << 20)  # counted to 32x --max-payload-bytes, then stopped
    assert peak < 24 << 20, f"peak {peak / 2**20:.1f} MiB for a 1 GiB bomb"
    assert elapsed < 20
    doc = record_to_document(bomb, CUTOFF, CUTOFF, "test")
    assert doc.reason == "payload_too_large" and doc.detail.startswith("more than")


def test_a_file_cut_anywhere_ends_with_one_row_and_keeps_what_came_before():
    data = (DATA / "cc-main-2020-34.warc.gz").read_bytes()
    offsets = member_offsets(data)
    for cut in (offsets[7] + 3, offsets[7] + 700, offsets[20] - 1, len(data) - 10):
        items, _ = read(DATA / "cut.warc.gz", data[:cut])
        whole = [o for o, end in zip(offsets, offsets[1:] + [len(data)]) if end <= cut]
        assert [i.offset for i in items[:-1]] == whole
        assert errors(items) == [("truncated_record", max(whole) + (offsets[offsets.index(max(whole)) + 1]
                                                                    - max(whole)), cut)]


def test_the_reader_always_moves_forward(monkeypatch):
    """Records whose Content-Length points back at themselves (0, negative, tiny) never make the reader go back."""
    record = b"WARC/1.0\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:%d>\r\nContent-Length: %s\r\n\r\n%s\r\n\r\n"
    data = b"".join(record % (i, length, b"WARC/1.0\r\n" * 3) for i, length in
                    enumerate([b"30", b"0", b"-30", b"1", b"abc", b"30"]))
    for layout in (data, b"".join(gzip.compress(r, mtime=0) for r in re.split(b"(?=WARC/1.0\r\nWARC-Type)", data)
                                  if r)):
        started = time.perf_counter()
        items, _ = read(DATA / "loop.warc", layout)
        assert time.perf_counter() - started < 5
        positions = [i.offset if not isinstance(i, ErrorRecord) else i.warc_offset for i in items]
        assert positions == sorted(set(positions))
        assert kinds(items)[0] == "D:resource" and kinds(items)[-1] == "D:resource"


def test_open_failures_and_blank_files():
    def boom(_path):
        raise FileNotFoundError("no such file")

    items = list(WarcFileReader("gs://bucket/missing.warc.gz", boom))
    assert items[0].reason == "open_failed" and items[1].errors == 1
    items, _ = read(DATA / "blank.warc", b"\r\n\r\n")
    assert errors(items) == [("empty_file", 0, 4)]


def test_a_reader_bug_costs_the_rest_of_that_file_not_the_job(monkeypatch):
    data = (DATA / "cc-main-2024-22.warc.gz").read_bytes()
    calls = []
    real = WarcFileReader._read_record

    def failing(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise IndexError("a bug")
        return real(self, *args)

    monkeypatch.setattr(WarcFileReader, "_read_record", failing)
    items, stats = read(DATA / "x.warc.gz", data)
    assert kinds(items) == ["S:warcinfo", "S:request", "E:record_parse_failed"]
    assert "IndexError" == items[-1].exception_type and items[-1].warc_offset_end == len(data)
