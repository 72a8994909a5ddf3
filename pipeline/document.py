"""The records that flow through the pipeline: a Document with explicit fields, its ScoreRecords, and an ErrorRecord.

A Document is kept until some step sets ``reason``; from then on later steps pass it through untouched and the
sink writes it to the rejected shards. Anything that fails with an exception becomes an ErrorRecord instead.
Every record read from an input therefore ends in exactly one place: curated, rejected (with a reason), error
(with a reason), or skipped (a non-document WARC record, counted by type).

One definition: the fields of :class:`Document`, :class:`ScoreRecord` and :class:`ErrorRecord` are the columns of
the shards (:mod:`schemas`): the same names, in the same order, with the same types and nullability (``X | None``
where the column is nullable). ``tests/pipeline/test_schemas.py`` fails on any difference, so one cannot change
without the other (and a schema change bumps ``schemas.SCHEMA_VERSION``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

import schemas


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class ScoreRecord:
    """One detector's score of one document, as stored (the ``scores`` column's struct, :data:`schemas.SCORE_TYPE`):
    ``value`` None when the detector could not score the text (``reason`` says why: ``empty``, ``too_short``...)."""

    detector: str
    models: tuple[str, ...] | None = None
    value: float | None = None
    tokens: int | None = None
    truncated: bool | None = None
    reason: str | None = None

    def to_row(self) -> dict:
        row = {name: getattr(self, name) for name in schemas.SCORE_COLUMNS}
        row["models"] = list(self.models) if self.models is not None else None
        return row

    @classmethod
    def from_row(cls, row: dict) -> ScoreRecord:
        models = row.get("models")
        return cls(detector=row["detector"], models=tuple(models) if models is not None else None,
                   value=row.get("value"), tokens=row.get("tokens"), truncated=row.get("truncated"),
                   reason=row.get("reason"))


_DOCUMENT_FIELD_NAMES: dict[type, frozenset[str]] = {}


@dataclass
class Document:
    id: str
    warc_file: str
    text: str = ""
    url: str | None = None
    url_host: str | None = None
    warc_offset: int | None = None
    warc_record_id: str | None = None
    warc_record_type: str | None = None
    warc_date: dt.datetime | None = None
    crawl_id: str | None = None
    http_status: int | None = None
    http_date: dt.datetime | None = None
    http_last_modified: dt.datetime | None = None
    content_type: str | None = None
    charset: str | None = None
    charset_source: str | None = None  # bom, declared, meta, detected or fallback (pipeline/extract.py)
    payload_digest: str | None = None
    payload_length: int | None = None
    truncated: bool = False
    truncated_reason: str | None = None
    provenance: str = "unknown"
    provenance_rule: str | None = None
    provenance_detail: str | None = None
    cutoff: dt.datetime | None = None
    crawl_window_start: dt.datetime | None = None
    crawl_window_end: dt.datetime | None = None
    warc_date_raw: str | None = None
    http_date_raw: str | None = None
    http_last_modified_raw: str | None = None
    language: str | None = None
    language_score: float | None = None
    # quality signals (pipeline/quality/signals.py), by group; None when the group was not computed
    word_count: int | None = None
    mean_word_length: float | None = None
    alpha_word_fraction: float | None = None
    symbol_word_ratio: float | None = None
    bullet_line_fraction: float | None = None
    ellipsis_line_fraction: float | None = None
    distinct_stop_words: int | None = None
    dup_para_fraction: float | None = None
    dup_para_char_fraction: float | None = None
    dup_line_fraction: float | None = None
    dup_line_char_fraction: float | None = None
    top_2gram_char_fraction: float | None = None
    top_3gram_char_fraction: float | None = None
    top_4gram_char_fraction: float | None = None
    dup_5gram_char_fraction: float | None = None
    dup_6gram_char_fraction: float | None = None
    dup_7gram_char_fraction: float | None = None
    dup_8gram_char_fraction: float | None = None
    dup_9gram_char_fraction: float | None = None
    dup_10gram_char_fraction: float | None = None
    c4_sentences: int | None = None
    c4_sentences_unpunctuated: int | None = None
    c4_lorem_ipsum: bool | None = None
    c4_lorem_ipsum_unpunctuated: bool | None = None
    c4_curly_bracket: bool | None = None
    c4_curly_bracket_unpunctuated: bool | None = None
    line_punct_fraction: float | None = None
    short_line_fraction: float | None = None
    fineweb_dup_line_char_fraction: float | None = None
    newline_word_ratio: float | None = None
    text_hash: str | None = None
    duplicate_of: str | None = None
    dup_cluster_size: int | None = None
    first_seen: dt.datetime | None = None
    content_provenance: str | None = None
    content_provenance_source: str | None = None
    scores: list[ScoreRecord] = field(default_factory=list)
    not_scored_reason: str | None = None
    processed_at: dt.datetime | None = None
    pipeline_version: str = ""
    # decision: None while kept; a reason code once a step rejects the document
    reason: str | None = None
    detail: str | None = None

    @property
    def rejected(self) -> bool:
        return self.reason is not None

    def reject(self, reason: str, detail: str | None = None) -> Document:
        """Mark the document rejected; the first reason wins so a later step cannot hide an earlier decision."""
        if self.reason is None:
            self.reason, self.detail = reason, detail
        return self

    @property
    def capture_time(self) -> dt.datetime | None:
        return self.warc_date

    def score_of(self, detector: str) -> ScoreRecord | None:
        for s in self.scores:
            if s.detector == detector:
                return s
        return None

    def to_row(self) -> dict:
        """The row for the curated or rejected shard (the two schemas differ by reason/detail only)."""
        row = {name: getattr(self, name) for name in schemas.DOCUMENT_COLUMNS}
        row["scores"] = [s.to_row() for s in self.scores]
        if self.rejected:
            row["reason"], row["detail"] = self.reason, self.detail
        return row

    @classmethod
    def from_row(cls, row: dict) -> Document:
        names = _DOCUMENT_FIELD_NAMES.get(cls)
        if names is None:  # once per class: dataclasses.fields() costs ~7 us a call
            names = _DOCUMENT_FIELD_NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls))
        doc = cls(**{k: v for k, v in row.items() if k in names})
        doc.scores = [ScoreRecord.from_row(s) for s in row.get("scores") or ()]
        # columns that accept null where a Document holds a value: a null reads as the default
        doc.text = doc.text if doc.text is not None else ""
        doc.truncated = bool(doc.truncated)
        return doc


@dataclass
class ErrorRecord:
    warc_file: str
    stage: str
    reason: str
    warc_offset: int | None = None
    warc_offset_end: int | None = None  # end of the damaged byte range (exclusive), for errors of the read stage
    warc_record_id: str | None = None
    document_id: str | None = None
    url: str | None = None
    exception_type: str | None = None
    message: str | None = None
    processed_at: dt.datetime | None = None
    pipeline_version: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException, *, warc_file: str, stage: str, reason: str, **where) -> ErrorRecord:
        return cls(warc_file=warc_file, stage=stage, reason=reason, exception_type=type(exc).__name__,
                   message=str(exc)[:2000], **where)

    @classmethod
    def for_document(cls, doc: Document, exc: BaseException, *, stage: str, reason: str) -> ErrorRecord:
        return cls.from_exception(exc, warc_file=doc.warc_file, stage=stage, reason=reason,
                                  warc_offset=doc.warc_offset, warc_record_id=doc.warc_record_id,
                                  document_id=doc.id, url=doc.url)

    def to_row(self) -> dict:
        return {name: getattr(self, name) for name in schemas.ERROR_COLUMNS}
