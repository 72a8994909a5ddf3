"""pipeline.extract: the charset is checked against the bytes, on real pages in real legacy encodings."""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest

from pipeline.extract import decode, record_to_document
from pipeline.warc_reader import WarcFileReader, WarcRecord

DATA = Path(__file__).resolve().parents[1] / "data" / "warc"
UTC = dt.UTC
NOW = dt.datetime(2026, 1, 1, tzinfo=UTC)
CUTOFF = dt.datetime(2022, 11, 30, tzinfo=UTC)


def record(warc: str, url: str) -> WarcRecord:
    for item in WarcFileReader(str(DATA / warc), lambda p: open(p, "rb")):
        if isinstance(item, WarcRecord) and item.target_uri == url:
            return item
    raise LookupError(url)


def extract(rec: WarcRecord):
    return record_to_document(rec, CUTOFF, NOW, "test")


def relabel(rec: WarcRecord, payload: bytes, header: str = "text/html; charset=utf-8") -> WarcRecord:
    return dataclasses.replace(rec, payload=payload, payload_length=len(payload), http_content_type=header)


def test_cp1252_page_labelled_utf8_is_detected():
    # A real UTF-8 page (Aragonese Wikipedia, CC-MAIN-2024-22) written out in windows-1252 the way legacy sites
    # are: what the charset lacks becomes numeric character references. HTTP and <meta> still say UTF-8.
    original = record("cc-main-2024-22.warc.gz", "https://an.wikipedia.org/wiki/Escopete")
    html = original.payload.decode("utf-8")
    assert re.search(r'<meta charset="UTF-8"', html, re.I)
    legacy = html.encode("cp1252", "xmlcharrefreplace")
    with pytest.raises(UnicodeDecodeError):
        legacy.decode("utf-8")
    expected = extract(original)
    doc = extract(relabel(original, legacy))
    assert (doc.charset, doc.charset_source) == ("windows-1252", "detected")
    assert (expected.charset, expected.charset_source) == ("utf-8", "declared")
    assert doc.text == expected.text
    assert sum(1 for ch in doc.text if "À" <= ch <= "ÿ") > 10  # the accented letters came through


def test_shift_jis_page_labelled_utf8_with_a_wrong_meta_is_detected():
    # A real EUC-JP page (ClueWeb09) re-encoded to Shift_JIS; HTTP says UTF-8 and its <meta> still says EUC-JP:
    # neither label decodes the bytes, detection does.
    original = record("clueweb09-invalid-date.warc.gz", "http://www.uraharajuku.st/shopdetail/001005000005/019/000/order/")
    html = original.payload.decode("euc_jp")
    assert "euc-jp" in html.lower()
    legacy = html.encode("cp932", "xmlcharrefreplace")
    doc = extract(relabel(original, legacy))
    assert (doc.charset, doc.charset_source) == ("shift_jis", "detected")
    # As if it had been labelled right (Shift_JIS read as browsers do, windows-31j: a few symbols such as the
    # minus sign come back as their full-width forms, so the text is compared with the right label's).
    assert doc.text == extract(relabel(original, legacy, "text/html; charset=Shift_JIS")).text
    assert len(doc.text) == len(extract(original).text)
    assert "ヘッドポーター" in doc.text and "吉田カバン" in doc.text


def test_windows_1251_page_labelled_utf8_falls_back_to_its_meta_then_to_detection():
    original = record("cc-main-2020-34.warc.gz", "http://01spb.ru/company/")
    assert original.http_content_type.lower().endswith("windows-1251")
    expected = extract(original)
    assert (expected.charset, expected.charset_source) == ("windows-1251", "declared")
    assert len(re.findall("[а-яА-Я]", expected.text)) > 1000
    meta = extract(relabel(original, original.payload))  # HTTP says UTF-8: the page's own <meta> is right
    assert (meta.charset, meta.charset_source, meta.text) == ("windows-1251", "meta", expected.text)
    no_meta = re.sub(rb"<meta[^>]*charset[^>]*>", b"", original.payload, flags=re.I)
    assert no_meta != original.payload
    detected = extract(relabel(original, no_meta))
    assert (detected.charset, detected.charset_source) == ("windows-1251", "detected")
    assert detected.text == extract(relabel(original, no_meta, "text/html; charset=windows-1251")).text


def test_utf8_bytes_under_a_single_byte_label_are_utf8():
    original = record("cc-main-2024-22.warc.gz", "https://an.wikipedia.org/wiki/Escopete")
    # iso-8859-2 decodes any bytes; these are valid UTF-8 with non-ASCII letters, so they are UTF-8.
    doc = extract(relabel(original, original.payload, "text/html; charset=ISO-8859-2"))
    assert (doc.charset, doc.charset_source) == ("utf-8", "detected")
    assert doc.text == extract(original).text
    # windows-1252 (what ISO-8859-1 means on the web) leaves five bytes undefined: these bytes hold some, so the
    # label fails and the page's own <meta charset="UTF-8"> decides.
    doc = extract(relabel(original, original.payload, "text/html; charset=ISO-8859-1"))
    assert (doc.charset, doc.charset_source) == ("utf-8", "meta")


@pytest.mark.parametrize("payload,declared,expected", [
    ("Grüße aus Köln".encode()[:-1], "utf-8", ("Grüße aus Köl", "utf-8", "declared")),  # truncated
    ("Grüße".encode()[:-1] + b"\xc3", "utf-8", ("Grüß", "utf-8", "declared")),  # cut inside a character
    (codecs.BOM_UTF8 + "Grüße".encode(), "iso-8859-1", ("Grüße", "utf-8", "bom")),
    ("Grüße".encode("cp1252"), "x-no-such-charset", ("Grüße", "windows-1252", "detected")),
    (b"plain ascii", None, ("plain ascii", "utf-8", "detected")),
    (b"ascii, labelled latin-1", "iso-8859-1", ("ascii, labelled latin-1", "windows-1252", "declared")),
    (b'<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">' + "Привет".encode("koi8-r"), None,
     ('<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">Привет', "koi8-r", "meta")),
])
def test_decode_sources(payload, declared, expected):
    text, charset, source = decode(payload, declared, html=True)
    assert (text, charset, source) == expected


def test_mostly_utf8_with_a_stray_byte_stays_utf8():
    payload = ("Ein schöner Tag in Köln, über den Rhein. " * 20).encode("utf-8") + b"\xe9 Ende."
    text, charset, source = decode(payload, "utf-8", html=False)
    assert (charset, source) == ("utf-8", "fallback")
    assert text.count("ö") == 40 and text.endswith(" Ende.")
