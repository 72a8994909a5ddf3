"""The spine's content policy: which extracted documents are documents at all.

Scores live on the row; this step only decides, with a reason code. Language, quality, dedup and detector
policies add their own reasons in their own steps.
"""

from __future__ import annotations

from pipeline.document import Document
from pipeline.reasons import REASON_EMPTY_TEXT, REASON_HTTP_STATUS


class ContentPolicy:
    """Reject documents with no text, and HTTP responses that are not successful captures (4xx/5xx/3xx)."""

    name = "content_policy"

    def setup(self) -> None:
        pass

    def process(self, doc: Document) -> Document:
        if doc.http_status is not None and not 200 <= doc.http_status < 300:
            return doc.reject(REASON_HTTP_STATUS, str(doc.http_status))
        if not doc.text or not doc.text.strip():
            return doc.reject(REASON_EMPTY_TEXT, f"{doc.content_type} payload of {doc.payload_length} bytes")
        return doc
