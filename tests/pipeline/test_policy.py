"""pipeline/policy.py (the content policy) on the 2008 Internet Archive crawl: every response that is not a
successful capture (its 404s and redirects, by warcio's independent reading of the status lines) is rejected
as http_status with its code, documents without text as empty_text, and nothing else."""

from __future__ import annotations

import datetime as dt

from warcio.archiveiterator import ArchiveIterator

from pipeline.extract import record_to_document
from pipeline.policy import ContentPolicy
from pipeline.reasons import REASON_EMPTY_TEXT, REASON_HTTP_STATUS
from pipeline.settings import ProvenanceSettings
from pipeline.warc_reader import WarcFileReader, WarcRecord
from tests.pipeline.conftest import DATA

IA_2008 = DATA / "ia-2008-heritrix.warc.gz"


def warcio_statuses() -> dict[int, int]:
    """HTTP status of each response record, by offset, as warcio reads it."""
    out = {}
    with open(IA_2008, "rb") as fh:
        it = ArchiveIterator(fh)
        for record in it:
            if record.rec_type == "response" and record.http_headers is not None:
                out[it.get_record_offset()] = int(record.http_headers.get_statuscode())
    return out


def test_the_content_policy_rejects_failed_captures_and_empty_documents_only():
    cutoff, now = ProvenanceSettings().cutoff, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    records = [r for r in WarcFileReader(str(IA_2008), lambda p: open(p, "rb")) if isinstance(r, WarcRecord)]
    documents = [d for d in (record_to_document(r, cutoff, now, "test") for r in records) if not d.rejected]
    policy = ContentPolicy()
    policy.setup()
    decided = [policy.process(d) for d in documents]

    status = warcio_statuses()
    failed = {d.warc_offset: status[d.warc_offset] for d in documents if not 200 <= status[d.warc_offset] < 300}
    assert {404, 302} <= set(failed.values())  # the fixture holds both kinds
    by_status = {d.warc_offset: d.detail for d in decided if d.reason == REASON_HTTP_STATUS}
    assert by_status == {offset: str(code) for offset, code in failed.items()}
    empty = [d for d in decided if d.reason == REASON_EMPTY_TEXT]
    assert all(not (d.text or "").strip() and 200 <= status[d.warc_offset] < 300 for d in empty)
    kept = [d for d in decided if not d.rejected]
    assert all(d.text.strip() for d in kept) and len(kept) + len(empty) + len(by_status) == len(documents)
    assert len(kept) > 100
