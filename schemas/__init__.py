"""Versioned pyarrow schemas for every shard the project writes, and a validating reader.

Three kinds of shard: ``curated`` (documents kept), ``rejected`` (documents dropped, with a reason code) and
``errors`` (records or files that could not be processed, with the stage and the cause). The schema version is
written into each Parquet file's key-value metadata; :func:`read_shard` refuses a file whose version or columns
do not match.
"""

from __future__ import annotations

from importlib import metadata as _metadata

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = "2.0"  # 2.0 (from 1.0): errors.warc_offset_end; charset_source; the quality signal
# columns of pipeline/quality (stop_word_count gone, line fractions as published, float64 fractions)
SCHEMA_VERSION_KEY = b"lowbackground.schema_version"
SCHEMA_KIND_KEY = b"lowbackground.schema_kind"
KINDS = ("curated", "rejected", "errors")


def package_version() -> str:
    try:
        return _metadata.version("lowbackground")
    except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


_TS = pa.timestamp("us", tz="UTC")

# One detector's output on one document; a document may carry several (cascade).
SCORE_TYPE = pa.struct(
    [
        pa.field("detector", pa.string(), nullable=False),
        pa.field("models", pa.list_(pa.string())),
        pa.field("value", pa.float64()),
        pa.field("tokens", pa.int32()),
        pa.field("truncated", pa.bool_()),
        pa.field("reason", pa.string()),
    ]
)

_DOCUMENT_FIELDS = [
    # identity and source
    pa.field("id", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("url_host", pa.string()),
    pa.field("text", pa.string()),
    pa.field("warc_file", pa.string(), nullable=False),
    pa.field("warc_offset", pa.int64()),
    pa.field("warc_record_id", pa.string()),
    pa.field("warc_record_type", pa.string()),
    pa.field("warc_date", _TS),
    pa.field("crawl_id", pa.string()),
    pa.field("http_status", pa.int32()),
    pa.field("http_date", _TS),
    pa.field("http_last_modified", _TS),
    pa.field("content_type", pa.string()),
    pa.field("charset", pa.string()),
    pa.field("charset_source", pa.string()),
    pa.field("payload_digest", pa.string()),
    pa.field("payload_length", pa.int64()),
    pa.field("truncated", pa.bool_()),
    pa.field("truncated_reason", pa.string()),
    # provenance of the capture, with its evidence
    pa.field("provenance", pa.string(), nullable=False),
    pa.field("provenance_rule", pa.string()),
    pa.field("provenance_detail", pa.string()),
    pa.field("cutoff", _TS),
    pa.field("crawl_window_start", _TS),
    pa.field("crawl_window_end", _TS),
    pa.field("warc_date_raw", pa.string()),
    pa.field("http_date_raw", pa.string()),
    pa.field("http_last_modified_raw", pa.string()),
    # language and quality signals (scores, not decisions)
    pa.field("language", pa.string()),
    pa.field("language_score", pa.float32()),
    # (pipeline/quality/signals.py; float64 so that a rule re-applied to a stored value decides as the step did)
    pa.field("word_count", pa.int32()),
    pa.field("mean_word_length", pa.float64()),
    pa.field("alpha_word_fraction", pa.float64()),
    pa.field("symbol_word_ratio", pa.float64()),
    pa.field("bullet_line_fraction", pa.float64()),
    pa.field("ellipsis_line_fraction", pa.float64()),
    pa.field("distinct_stop_words", pa.int32()),
    pa.field("dup_para_fraction", pa.float64()),
    pa.field("dup_para_char_fraction", pa.float64()),
    pa.field("dup_line_fraction", pa.float64()),
    pa.field("dup_line_char_fraction", pa.float64()),
    pa.field("top_2gram_char_fraction", pa.float64()),
    pa.field("top_3gram_char_fraction", pa.float64()),
    pa.field("top_4gram_char_fraction", pa.float64()),
    pa.field("dup_5gram_char_fraction", pa.float64()),
    pa.field("dup_6gram_char_fraction", pa.float64()),
    pa.field("dup_7gram_char_fraction", pa.float64()),
    pa.field("dup_8gram_char_fraction", pa.float64()),
    pa.field("dup_9gram_char_fraction", pa.float64()),
    pa.field("dup_10gram_char_fraction", pa.float64()),
    pa.field("c4_sentences", pa.int32()),
    pa.field("c4_sentences_unpunctuated", pa.int32()),
    pa.field("c4_lorem_ipsum", pa.bool_()),
    pa.field("c4_lorem_ipsum_unpunctuated", pa.bool_()),
    pa.field("c4_curly_bracket", pa.bool_()),
    pa.field("c4_curly_bracket_unpunctuated", pa.bool_()),
    pa.field("line_punct_fraction", pa.float64()),
    pa.field("short_line_fraction", pa.float64()),
    pa.field("fineweb_dup_line_char_fraction", pa.float64()),
    pa.field("newline_word_ratio", pa.float64()),
    # dedup and content provenance
    pa.field("text_hash", pa.string()),
    pa.field("duplicate_of", pa.string()),
    pa.field("dup_cluster_size", pa.int32()),
    pa.field("first_seen", _TS),
    pa.field("content_provenance", pa.string()),
    pa.field("content_provenance_source", pa.string()),
    # AI-text scores
    pa.field("scores", pa.list_(SCORE_TYPE)),
    pa.field("not_scored_reason", pa.string()),
    # processing
    pa.field("processed_at", _TS, nullable=False),
    pa.field("pipeline_version", pa.string(), nullable=False),
]

_REJECT_FIELDS = [
    pa.field("reason", pa.string(), nullable=False),
    pa.field("detail", pa.string()),
]

_ERROR_FIELDS = [
    pa.field("warc_file", pa.string(), nullable=False),
    pa.field("warc_offset", pa.int64()),
    # end of the damaged byte range [warc_offset, warc_offset_end) for read errors: where reading resumed
    pa.field("warc_offset_end", pa.int64()),
    pa.field("warc_record_id", pa.string()),
    pa.field("document_id", pa.string()),
    pa.field("url", pa.string()),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("exception_type", pa.string()),
    pa.field("message", pa.string()),
    pa.field("processed_at", _TS, nullable=False),
    pa.field("pipeline_version", pa.string(), nullable=False),
]


def _with_metadata(fields: list[pa.Field], kind: str) -> pa.Schema:
    return pa.schema(fields, metadata={SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), SCHEMA_KIND_KEY: kind.encode()})


CURATED_SCHEMA = _with_metadata(_DOCUMENT_FIELDS, "curated")
REJECTED_SCHEMA = _with_metadata(_DOCUMENT_FIELDS + _REJECT_FIELDS, "rejected")
ERRORS_SCHEMA = _with_metadata(_ERROR_FIELDS, "errors")
SCHEMAS = {"curated": CURATED_SCHEMA, "rejected": REJECTED_SCHEMA, "errors": ERRORS_SCHEMA}
DOCUMENT_COLUMNS = tuple(f.name for f in _DOCUMENT_FIELDS)
ERROR_COLUMNS = tuple(f.name for f in _ERROR_FIELDS)
SCORE_COLUMNS = tuple(f.name for f in SCORE_TYPE)


def schema_for(kind: str) -> pa.Schema:
    if kind not in SCHEMAS:
        raise ValueError(f"unknown shard kind {kind!r}; expected one of {KINDS}")
    return SCHEMAS[kind]


class SchemaMismatch(ValueError):
    """A shard that is not what its schema says it should be."""


def table_from_rows(rows: list[dict], kind: str) -> pa.Table:
    """Build a table of ``kind`` from row dicts; missing keys become nulls, unknown keys are an error."""
    schema = schema_for(kind)
    names = set(schema.names)
    for row in rows:
        extra = set(row) - names
        if extra:
            raise SchemaMismatch(f"{kind} row has columns not in schema {SCHEMA_VERSION}: {sorted(extra)}")
    return pa.Table.from_pylist(rows, schema=schema)


def validate_table(table: pa.Table, kind: str) -> None:
    """Raise :class:`SchemaMismatch` unless ``table`` has exactly the columns, types and version of ``kind``."""
    meta = table.schema.metadata or {}
    version = meta.get(SCHEMA_VERSION_KEY)
    if version is None:
        raise SchemaMismatch(f"no {SCHEMA_VERSION_KEY.decode()} in the file metadata: not a lowbackground shard")
    if version.decode() != SCHEMA_VERSION:
        raise SchemaMismatch(f"schema version {version.decode()} but this reader is {SCHEMA_VERSION}")
    found_kind = meta.get(SCHEMA_KIND_KEY, b"").decode()
    if found_kind != kind:
        raise SchemaMismatch(f"shard is of kind {found_kind!r}, expected {kind!r}")
    expected = schema_for(kind)
    if table.schema.names != expected.names:
        raise SchemaMismatch(f"columns differ from the {kind} schema: {table.schema.names} != {expected.names}")
    for got, want in zip(table.schema, expected):
        if not got.type.equals(want.type):
            raise SchemaMismatch(f"column {got.name!r} is {got.type}, schema says {want.type}")
    for name in (f.name for f in expected if not f.nullable):
        if table.column(name).null_count:
            raise SchemaMismatch(f"non-nullable column {name!r} has {table.column(name).null_count} nulls")


def read_shard(path: str, kind: str | None = None, filesystem=None) -> pa.Table:
    """Read one Parquet shard and validate it against its schema (the kind is read from the file if not given)."""
    table = pq.read_table(path, filesystem=filesystem)
    if kind is None:
        kind = (table.schema.metadata or {}).get(SCHEMA_KIND_KEY, b"").decode()
    validate_table(table, kind)
    return table


def write_shard(rows: list[dict], kind: str, sink, compression: str = "zstd") -> int:
    """Write rows as one Parquet file to ``sink`` (a path or writable binary file object); returns the row count."""
    table = table_from_rows(rows, kind)
    pq.write_table(table, sink, compression=compression)
    return table.num_rows
