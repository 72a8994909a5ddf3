import base64
import gzip
import hashlib
import io
import re
from collections import Counter

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tests.pipeline.conftest import DATA, curate, read_kind

MALFORMED = DATA / "malformed"

# Files whose damage must show up as error rows, with the cause.
EXPECTED_ERRORS = {
    "clipped.warc.gz": "truncated_record",  # now seen by the gzip layer: the file ends inside the member
    "path-list-not-an-archive.warc": "not_an_archive",
    # Was truncated_record: its gzip members split one record, which is valid gzip and is now read across the
    # members; the record's block then fails its WARC-Block-Digest (warcio's own check_digests agrees).
    "example-wrong-chunks.warc.gz": "digest_mismatch",
    "example-space-in-url.arc": "truncated_record",
    # Was bad_gzip: the gzip is sound (one member, CRC good); its records declare lengths (680) their blocks do
    # not have. The old reader blamed the container.
    "badexample.arc.gz": "content_length_mismatch",
    # Was record_parse_failed: ARC v2 record lines are now read (the one record of the file comes out); what is
    # wrong is the file header's length, 122 for a 121-byte block.
    "hello-world2.arc": "content_length_mismatch",
    "invalid-empty.warc": "empty_file",
    "invalid-warcheaderfieldpolicy-12.warc": "truncated_record",  # header-only record
    "invalid-warcheaderversion-1.warc": "not_an_archive",
    # Was record_parse_failed (an AttributeError inside warcio): the records have no Content-Length, which is now
    # named as such, for each record.
    "invalid-warcfile-lonely-request-response-resource-conversion.warc": "bad_content_length",
    # The regression fixtures of issue 10 (see tests/data/warc/NOTICE.md).
    "cl-not-a-number.warc.gz": "bad_content_length",
    "cl-zero.warc.gz": "content_length_mismatch",
    "cl-too-small-member.warc.gz": "content_length_mismatch",
    "member-cut-mid-file.warc.gz": "bad_gzip",
    "flipped-bit.warc.gz": "bad_gzip",
    "garbage-between-members.warc.gz": "bad_gzip",
    "duplicate-member.warc.gz": "duplicate_record",
    "single-member-flipped.warc.gz": "bad_gzip",
    "empty.warc.gz": "empty_file",
    "digest-mismatch.warc.gz": "digest_mismatch",
    "no-content-length.warc": "bad_content_length",
    "cl-negative.warc": "bad_content_length",
    "cl-not-a-number.warc": "bad_content_length",
    "warc-0.17-resync.warc": "bad_record_header",
    "warc-0.18-resync.warc": "truncated_record",
    "arc-resync.arc": "bad_record_header",
    "index.cdx": "not_an_archive",
    "index.cdxj": "not_an_archive",
    "README.txt": "not_an_archive",
    "page.html": "not_an_archive",
}
# Documents whose HTTP response or body does not decode: rejected with their own reason, never text.
EXPECTED_REJECTIONS = {
    "status-out-of-range.warc.gz": ("bad_http_response", 2),
    "content-encoding-not-gzip.warc.gz": ("bad_content_encoding", 2),
    "chunked-bad-size.warc": ("bad_transfer_encoding", 1),
    "chunked-gzip-bomb.warc.gz": ("payload_too_large", 1),
}
# Records that the damage did not touch, by file: all of them are read (a document or a skipped record).
UNTOUCHED = {
    "cl-not-a-number.warc.gz": 6, "cl-zero.warc.gz": 6, "cl-too-small-member.warc.gz": 6,
    "member-cut-mid-file.warc.gz": 6, "flipped-bit.warc.gz": 14, "garbage-between-members.warc.gz": 7,
    "duplicate-member.warc.gz": 7, "digest-mismatch.warc.gz": 6, "no-content-length.warc": 6, "cl-negative.warc": 6,
    "cl-not-a-number.warc": 6, "warc-0.17-resync.warc": 11, "warc-0.18-resync.warc": 2, "arc-resync.arc": 6,
}


@pytest.fixture(scope="module")
def malformed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("malformed") / "out"
    manifest = curate(out, str(MALFORMED / "*"), str(MALFORMED / "jhove" / "*"), extra=("--dedup", "none"))
    return out, manifest


def test_every_malformed_fixture_is_accounted_for(malformed_run):
    out, manifest = malformed_run
    assert manifest["balanced"]
    errors = read_kind(out, "errors").to_pylist()
    assert manifest["counts"]["errors"] == len(errors) > 0
    by_file = {}
    for row in errors:
        assert row["stage"] and row["reason"] and row["message"]
        assert row["warc_offset"] is not None and (row["warc_offset_end"] is None
                                                   or row["warc_offset_end"] >= row["warc_offset"])
        by_file.setdefault(row["warc_file"].rsplit("/", 1)[-1], set()).add(row["reason"])
    for name, reason in EXPECTED_ERRORS.items():
        assert reason in by_file.get(name, set()), (name, by_file.get(name))
    inputs = {i["path"].rsplit("/", 1)[-1]: i for i in manifest["inputs"]}
    listed = [p.name for p in MALFORMED.iterdir() if p.is_file()] + [p.name for p in (MALFORMED / "jhove").iterdir()]
    assert sorted(inputs) == sorted(listed)  # every file listed (the jhove folder is not a file)
    # A single-member gzip holding many records is valid gzip: all its records are read, and the manifest says how
    # their offsets are given. (It used to say errors=0: its revisit record's WARC-Block-Digest does not match the
    # block, which the reader now checks; the digest is recomputed here with hashlib.)
    single = inputs["example-bad-non-chunked.warc.gz"]
    assert single["records_read"] == 6 and single["errors"] == 1
    assert any("share a gzip member" in note for note in single["notes"])
    data = gzip.decompress((MALFORMED / "example-bad-non-chunked.warc.gz").read_bytes())
    revisit = data.rfind(b"WARC/1.0", 0, data.find(b"WARC-Type: revisit"))
    head_end = data.index(b"\r\n\r\n", revisit) + 4
    block = data[head_end:head_end + int(re.search(rb"Content-Length: (\d+)", data[revisit:head_end]).group(1))]
    declared = re.search(rb"WARC-Block-Digest: sha1:(\w+)", data[revisit:head_end]).group(1)
    assert base64.b32encode(hashlib.sha1(block).digest()) != declared
    # Reading resumes after each damaged record: each of the four records without a Content-Length is one error
    # row whose range ends where the next record begins (the old reader lost them in a parse error each).
    lonely_name = "invalid-warcfile-lonely-request-response-resource-conversion.warc"
    lonely_bytes = (MALFORMED / "jhove" / lonely_name).read_bytes()
    starts = [m.start() for m in re.finditer(rb"WARC/1\.0\r\n", lonely_bytes)] + [len(lonely_bytes)]
    rows = sorted((e["warc_offset"], e["warc_offset_end"]) for e in errors if e["warc_file"].endswith(lonely_name))
    assert rows == list(zip(starts, starts[1:]))
    # Record types are matched case-insensitively and counted under one name.
    assert all(t == t.strip().lower() for t in manifest["counts"]["skipped"])
    # Chunked transfer encoding is decoded, not kept in the text.
    docs = read_kind(out, "curated").to_pylist() + read_kind(out, "rejected").to_pylist()
    iana = [d for d in docs if d["warc_file"].endswith("example-iana.org-chunked.warc")]
    assert iana and iana[0]["text"].startswith("Internet Assigned Numbers Authority")


def test_damaged_records_cost_only_themselves(malformed_run):
    """Each regression fixture: its damage is its error rows, and every record it did not touch is read."""
    out, manifest = malformed_run
    inputs = {i["path"].rsplit("/", 1)[-1]: i for i in manifest["inputs"]}
    for name, untouched in UNTOUCHED.items():
        item = inputs[name]
        assert item["documents"] + sum(item["skipped"].values()) == untouched, (name, item)
    docs = read_kind(out, "curated").to_pylist() + read_kind(out, "rejected").to_pylist()
    # No record read twice (negative and non-numeric lengths used to). Ids are compared within each file: these
    # fixtures are variants of the same captures, so the same WARC-Record-ID is in several of them.
    ids = [(d["warc_file"], d["id"]) for d in docs]
    assert len(ids) == len(set(ids))
    for name, (reason, count) in EXPECTED_REJECTIONS.items():
        rows = [d for d in docs if d["warc_file"].endswith("/" + name)]
        assert [d["reason"] for d in rows].count(reason) == count, (name, [(d["reason"], d["detail"]) for d in rows])
        assert all(not d["text"] for d in rows if d["reason"] == reason)
    status = [d for d in docs if d["warc_file"].endswith("/status-out-of-range.warc.gz")]
    assert all(d["http_status"] is None for d in status)
    assert any("3000000000" in d["detail"] for d in status)
    bomb = [d for d in docs if d["warc_file"].endswith("/chunked-gzip-bomb.warc.gz")][0]
    assert bomb["payload_length"] >= 8 * 1024 * 1024  # counted past --max-payload-bytes, then stopped


def test_the_same_input_twice_is_read_once(tmp_path):
    source = MALFORMED / "missing-http.warc.gz"
    out = tmp_path / "out"
    manifest = curate(out, str(source), str(source), str(MALFORMED / "copy-of-missing-http.warc.gz"),
                      extra=("--dedup", "none"))
    inputs = {i["path"].rsplit("/", 1)[-1]: i for i in manifest["inputs"]}
    assert len(manifest["inputs"]) == 2  # the path given twice is one input, listed twice
    # Of two paths with the same bytes, the first in sorted order is read; the other says so and reads nothing.
    read, duplicate = inputs["copy-of-missing-http.warc.gz"], inputs["missing-http.warc.gz"]
    assert read["records_read"] == 2 and read["duplicate_of"] is None
    assert duplicate["duplicate_of"] == read["path"] and duplicate["records_read"] == 0
    assert duplicate["listed"] == 2 and duplicate["sha256"] == read["sha256"] == hashlib.sha256(
        source.read_bytes()).hexdigest()
    assert manifest["counts"]["records_in"] == 2 and manifest["balanced"]
    assert read_kind(out, "curated").num_rows + read_kind(out, "rejected").num_rows == 1


def test_arc_ids_are_the_same_on_every_run(tmp_path):
    runs = []
    for n in range(2):
        out = tmp_path / f"run{n}"
        curate(out, str(MALFORMED / "example.arc.gz"), str(MALFORMED / "arc-resync.arc"), extra=("--dedup", "none"))
        rows = read_kind(out, "curated").to_pylist() + read_kind(out, "rejected").to_pylist()
        runs.append(sorted((r["warc_file"], r["warc_offset"], r["id"]) for r in rows))
    assert runs[0] == runs[1] and len(runs[0]) == 6
    assert all(row_id.startswith("sha1:") for _, _, row_id in runs[0])


def _warc(records: list[tuple[str, bytes, str]]) -> bytes:
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    for url, body, date in records:
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                                      warc_headers_dict={"WARC-Date": date}))
    return buffer.getvalue()


def test_large_payloads_are_read_or_rejected_by_size_not_crashing(tmp_path):
    sentence = b"The committee met on Tuesday to discuss the budget for the new library building. "
    big = b"<html><body><p>" + sentence * 20_000 + b"</p></body></html>"  # 1.6 MB
    huge = b"<html><body>" + b"x" * 3_000_000 + b"</body></html>"
    path = tmp_path / "big.warc.gz"
    path.write_bytes(_warc([("http://a.example/", big, "2021-01-01T00:00:00Z"),
                            ("http://b.example/", huge, "2021-01-01T00:00:00Z"),
                            ("http://c.example/", b"<p>A small page about the weather in the city today.</p>",
                             "2021-01-01T00:00:00Z")]))
    out = tmp_path / "out"
    manifest = curate(out, str(path), extra=("--max-payload-bytes", str(2_000_000), "--dedup", "none"))
    curated = {r["url"]: r for r in read_kind(out, "curated").to_pylist()}
    rejected = {r["url"]: r for r in read_kind(out, "rejected").to_pylist()}
    assert curated["http://a.example/"]["payload_length"] == len(big)
    assert len(curated["http://a.example/"]["text"].split()) == 14 * 20_000
    assert rejected["http://b.example/"]["reason"] == "payload_too_large"
    assert rejected["http://b.example/"]["payload_length"] == len(huge)
    assert "http://c.example/" in curated
    assert manifest["balanced"]


def test_input_list_with_base_and_missing_files(tmp_path):
    paths = tmp_path / "warc.paths.gz"
    paths.write_bytes(gzip.compress(b"cc-main-2020-34.warc.gz\nno-such-file.warc.gz\ncc-main-2024-22.warc.gz\n"))
    out = tmp_path / "out"
    from pipeline.cli import main as lowbg
    code = lowbg(["curate", "--input-list", str(paths), "--input-base", str(DATA), "--output", str(out),
                  "--detectors", "none"])
    assert code == 0
    import json
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["balanced"]
    errors = read_kind(out, "errors").to_pylist()
    assert [(e["reason"], e["warc_file"].rsplit("/", 1)[-1]) for e in errors] == [("open_failed",
                                                                                  "no-such-file.warc.gz")]
    crawls = Counter(r["crawl_id"] for kind in ("curated", "rejected") for r in read_kind(out, kind).to_pylist())
    assert set(crawls) == {"CC-MAIN-2020-34", "CC-MAIN-2024-22"}

    bounded = tmp_path / "bounded"
    assert lowbg(["curate", "--input-list", str(paths), "--input-base", str(DATA), "--output", str(bounded),
                  "--max-files", "1", "--detectors", "none"]) == 0
    manifest = json.loads((bounded / "manifest.json").read_text())
    assert [i["path"].rsplit("/", 1)[-1] for i in manifest["inputs"]] == ["cc-main-2020-34.warc.gz"]
