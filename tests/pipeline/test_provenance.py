import datetime as dt

import pytest

from pipeline import provenance
from pipeline.crawls import crawl_by_id, crawl_from_is_part_of, crawl_from_path
from tests.pipeline.conftest import read_kind

UTC = dt.UTC
CUTOFF = dt.datetime(2022, 11, 30, tzinfo=UTC)


def test_fixture_documents_carry_provenance_and_evidence(real_run):
    out, manifest = real_run
    rows = read_kind(out, "curated").to_pylist() + read_kind(out, "rejected").to_pylist()
    by_file = {}
    for row in rows:
        by_file.setdefault(row["warc_file"].rsplit("/", 1)[-1], []).append(row)

    cc2020 = by_file["cc-main-2020-34.warc.gz"]
    assert len(cc2020) == 16
    for row in cc2020:
        assert row["provenance"] == "pre_cutoff" and row["provenance_rule"] == "warc_date"
        assert row["crawl_id"] == "CC-MAIN-2020-34"
        assert row["crawl_window_start"] <= row["warc_date"] <= row["crawl_window_end"]
        assert row["cutoff"] == CUTOFF and row["warc_date_raw"].startswith("2020-08-")

    cc2024 = by_file["cc-main-2024-22.warc.gz"]
    assert [r["provenance"] for r in cc2024] == ["post_cutoff"]
    assert cc2024[0]["crawl_id"] == "CC-MAIN-2024-22"
    assert cc2024[0]["http_last_modified"] == dt.datetime(2024, 5, 4, 1, 58, 10, tzinfo=UTC)

    clueweb = by_file["clueweb09-invalid-date.warc.gz"]
    assert len(clueweb) == 29
    for row in clueweb:
        assert row["provenance"] == "unknown" and row["warc_date"] is None
        assert row["provenance_rule"] == "no_capture_time"
        assert "2008-10-294T05:21:46-0700" in row["provenance_detail"]
        # HTTP Date is recorded as weak evidence but never decides.
        assert row["http_date"] is not None and row["http_date"].year == 2009


def test_real_run_balances_and_counts_every_record(real_run):
    out, manifest = real_run
    counts = manifest["counts"]
    assert manifest["balanced"]
    assert counts["records_in"] == sum(i["records_read"] for i in manifest["inputs"]) == 906
    assert counts["skipped"] == {"metadata": 278, "request": 279, "warcinfo": 4}
    assert counts["curated"] == read_kind(out, "curated").num_rows > 0
    assert counts["rejected"] == read_kind(out, "rejected").num_rows
    assert counts["rejected_by_reason"]["non_text_payload"] > 0
    for item in manifest["inputs"]:
        assert len(item["sha256"]) == 64 and item["size"] > 0
    metrics = manifest["metrics"]  # by stage
    assert metrics["read"]["records_read"] == 906 and metrics["read"]["skipped_request"] == 279
    assert metrics["extract"]["rejected_non_text_payload"] == counts["rejected_by_reason"]["non_text_payload"]
    # each stage's documents in are what it kept and rejected (no stage of this run failed on a document)
    assert metrics["read"]["kept"] == metrics["extract"]["kept"] + metrics["extract"]["rejected_non_text_payload"]
    assert metrics["extract"]["kept"] == metrics["content_policy"]["kept"] + sum(
        n for name, n in metrics["content_policy"].items() if name.startswith("rejected_"))
    assert metrics["dedup"]["kept"] == counts["curated"]


def test_html_is_extracted_with_declared_and_detected_charsets(real_run):
    out, _ = real_run
    rows = read_kind(out, "curated").to_pylist()
    clueweb = [r for r in rows if "clueweb" in r["warc_file"]]
    assert {r["charset"] for r in clueweb} == {"euc-jp"}
    assert all("<" not in r["text"][:200] for r in rows if r["content_type"] == "text/html")
    assert any("ヘッドポーター" in r["text"] for r in clueweb)  # EUC-JP decoded, not mojibake


@pytest.mark.parametrize("raw, expected", [
    ("2020-08-08T17:27:41Z", dt.datetime(2020, 8, 8, 17, 27, 41, tzinfo=UTC)),
    ("2020-08-08T17:27:41.250Z", dt.datetime(2020, 8, 8, 17, 27, 41, 250000, tzinfo=UTC)),
    ("2022-11-29T23:00:00-02:00", dt.datetime(2022, 11, 30, 1, 0, tzinfo=UTC)),
    ("2020-08-08", dt.datetime(2020, 8, 8, tzinfo=UTC)),
])
def test_parse_warc_date(raw, expected):
    assert provenance.parse_warc_date(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "2008-10-294T05:21:46-0700", "2020-13-01T00:00:00Z", "yesterday",
                                 "1970-01-01T00:00:00Z", "2999-01-01T00:00:00Z"])
def test_unusable_warc_dates_raise_with_a_reason(raw):
    with pytest.raises(provenance.DateError):
        provenance.parse_warc_date(raw)


def test_cc_2022_49_straddles_the_cutoff_and_is_decided_per_record():
    crawl = crawl_by_id("CC-MAIN-2022-49")
    assert crawl.start < CUTOFF < crawl.end
    before = dt.datetime(2022, 11, 27, tzinfo=UTC)
    after = dt.datetime(2022, 12, 5, tzinfo=UTC)
    assert provenance.classify(before, None, crawl, CUTOFF)[0] == "pre_cutoff"
    assert provenance.classify(after, None, crawl, CUTOFF)[0] == "post_cutoff"
    label, rule, detail = provenance.classify(None, "WARC-Date missing", crawl, CUTOFF)
    assert (label, rule) == ("unknown", "no_capture_time") and "straddles" in detail
    # Without a date, a crawl wholly before the cutoff still decides, and says so.
    label, rule, _ = provenance.classify(None, "WARC-Date missing", crawl_by_id("CC-MAIN-2020-34"), CUTOFF)
    assert (label, rule) == ("pre_cutoff", "crawl_window")


def test_crawl_id_from_paths_of_both_file_name_schemes():
    old = ("crawl-data/CC-MAIN-2014-35/segments/1408500800168.29/warc/"
           "CC-MAIN-20140820021320-00000-ip-10-180-136-8.ec2.internal.warc.gz")
    assert crawl_from_path(old)[0].id == "CC-MAIN-2014-35"
    assert crawl_from_path(old.rsplit("/", 1)[1]) [0].id == "CC-MAIN-2014-35"
    modern = "CC-MAIN-20200808165417-20200808195417-00395.warc.gz"
    assert crawl_from_path(modern) == (crawl_by_id("CC-MAIN-2020-34"), "file_name")
    assert crawl_from_path("s3://commoncrawl/crawl-data/CC-MAIN-2024-22/segments/x/warc/a.warc.gz")[1] == "path"
    assert crawl_from_path("/tmp/random.warc.gz") == (None, None)
    assert crawl_from_is_part_of(" CC-MAIN-2024-22 ").id == "CC-MAIN-2024-22"
    assert crawl_from_is_part_of("clueweb09-ja") is None
