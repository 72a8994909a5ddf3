import gzip
import io
from collections import Counter

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tests.pipeline.conftest import DATA, curate, read_kind

MALFORMED = DATA / "malformed"

# Files whose damage must show up as error rows, with the cause.
EXPECTED_ERRORS = {
    "clipped.warc.gz": "truncated_record",
    "path-list-not-an-archive.warc": "not_an_archive",
    "example-wrong-chunks.warc.gz": "truncated_record",
    "example-space-in-url.arc": "truncated_record",
    "badexample.arc.gz": "bad_gzip",
    "hello-world2.arc": "record_parse_failed",
    "invalid-empty.warc": "empty_file",
    "invalid-warcheaderfieldpolicy-12.warc": "truncated_record",  # header-only record
    "invalid-warcheaderversion-1.warc": "not_an_archive",
    "invalid-warcfile-lonely-request-response-resource-conversion.warc": "record_parse_failed",
}


def test_every_malformed_fixture_is_accounted_for(tmp_path):
    out = tmp_path / "out"
    manifest = curate(out, str(MALFORMED / "*"), str(MALFORMED / "jhove" / "*"))
    assert manifest["balanced"]
    errors = read_kind(out, "errors").to_pylist()
    assert manifest["counts"]["errors"] == len(errors) > 0
    by_file = {}
    for row in errors:
        assert row["stage"] and row["reason"] and row["message"]
        by_file.setdefault(row["warc_file"].rsplit("/", 1)[-1], set()).add(row["reason"])
    for name, reason in EXPECTED_ERRORS.items():
        assert reason in by_file.get(name, set()), (name, by_file.get(name))
    inputs = {i["path"].rsplit("/", 1)[-1]: i for i in manifest["inputs"]}
    assert len(inputs) == 14 - 1 + 33  # every file listed (the jhove folder is not a file)
    # A single-member gzip holding many records is valid gzip: all its records are read, and the manifest says how.
    single = inputs["example-bad-non-chunked.warc.gz"]
    assert single["records_read"] == 6 and single["errors"] == 0 and "single-member gzip" in single["notes"][0]
    # Reading resumes after a damaged record: the lonely-records file still yields a document after its errors.
    lonely = inputs["invalid-warcfile-lonely-request-response-resource-conversion.warc"]
    assert lonely["errors"] >= 1 and lonely["documents"] >= 1
    # Record types are matched case-insensitively and counted under one name.
    assert all(t == t.strip().lower() for t in manifest["counts"]["skipped"])
    # Chunked transfer encoding is decoded, not kept in the text.
    docs = read_kind(out, "curated").to_pylist() + read_kind(out, "rejected").to_pylist()
    iana = [d for d in docs if d["warc_file"].endswith("example-iana.org-chunked.warc")]
    assert iana and iana[0]["text"].startswith("Internet Assigned Numbers Authority")


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
