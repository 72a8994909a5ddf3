"""Write the demo's CONSTRUCTED crawl: real human texts and real LLM texts as web pages with chosen capture dates.

Not a Common Crawl capture. The bundled WARC fixtures hold ~90 pre-cutoff documents and almost no post-cutoff
HTML, so `make demo` builds this small crawl to show what `lowbg report` estimates when the answer is known:

* texts: tests/data/detect/exp_gpt3to4 (fast-detect-gpt, MIT; see tests/data/detect/NOTICE): human news (XSum),
  stories (WritingPrompts) and abstracts (PubMedQA), each paired with a continuation of its opening written by
  GPT-4 or GPT-3.5-turbo;
* pre-cutoff pages (captured 2019-2022): the human texts of pairs 0-49 of each file;
* post-cutoff pages (captured 2024): the human texts of pairs 50-99, and the machine texts of pairs 100-124, so
  exactly one post-cutoff page in three (75 of 225) is machine-written;
* one host per genre (news.demo.example, stories.demo.example, abstracts.demo.example), plain-text responses.

The bundled fastText detector never saw these generators (BENCHMARKS.md: near chance on them), which the report
shows: its lower bounds stay far below the planted third.

    python scripts/build_demo_crawl.py OUTPUT_FOLDER
"""

from __future__ import annotations

import io
import json
import sys
import uuid
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

DETECT = Path(__file__).resolve().parents[1] / "tests" / "data" / "detect" / "exp_gpt3to4"
SOURCES = {"news": "xsum_gpt-4", "stories": "writing_gpt-3.5-turbo", "abstracts": "pubmed_gpt-4"}
PRE_YEARS = (2019, 2020, 2021, 2022)


def pages() -> list[tuple[str, str, str]]:
    """(url, text, WARC-Date) of every page, in a fixed order."""
    out = []
    for genre, name in SOURCES.items():
        data = json.loads((DETECT / f"{name}.raw_data.json").read_text(encoding="utf-8"))
        host = f"http://{genre}.demo.example"
        for i in range(0, 50):
            out.append((f"{host}/archive/{i}", data["original"][i], f"{PRE_YEARS[i % 4]}-0{1 + i % 9}-15T12:00:00Z"))
        for i in range(50, 100):
            out.append((f"{host}/2024/{i}", data["original"][i], "2024-05-20T12:00:00Z"))
        for i in range(100, 125):
            out.append((f"{host}/2024/{i}", data["sampled"][i], "2024-05-20T12:00:00Z"))
    return out


def _record_id(key: str) -> str:
    """Deterministic record ids, so the same file is written every time."""
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, key)}>"


def write(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "constructed-demo-crawl.warc.gz"
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        info = (b"software: scripts/build_demo_crawl.py\r\ndescription: CONSTRUCTED demo crawl: real human and "
                b"GPT-3.5/GPT-4 texts from fast-detect-gpt (MIT) with chosen capture dates; not a Common Crawl "
                b"capture\r\n")
        writer.write_record(writer.create_warc_record(
            "", "warcinfo", payload=io.BytesIO(info), warc_content_type="application/warc-fields",
            warc_headers_dict={"WARC-Date": "2024-06-01T00:00:00Z", "WARC-Filename": path.name,
                               "WARC-Record-ID": _record_id("warcinfo")}))
        for url, text, date in pages():
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/plain; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(text.encode("utf-8")),
                                                          http_headers=http, warc_headers_dict={
                                                              "WARC-Date": date, "WARC-Record-ID": _record_id(url)}))
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(write(Path(sys.argv[1])))
