"""pipeline/document.py and the shard schemas (schemas/__init__.py) are one definition: the same fields, types and
nullability, checked field by field; typed score records; every reject reason re-decidable from stored columns."""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing

import pyarrow as pa
import pytest

import schemas
from pipeline import quality
from pipeline.document import Document, ErrorRecord, ScoreRecord
from pipeline.reasons import POLICY, REJECT_REASONS

# Where the class and the schema deliberately differ in nullability, and why. Anything else that differs fails.
# (Changing a column's nullability changes every shard's bytes and is a schema version change.)
SCHEMA_LOOSER = {  # the column accepts null; the class never holds None (from_row reads a null as the default)
    (Document, "text"): "",
    (Document, "truncated"): False,
    (Document, "scores"): [],
}
CLASS_LOOSER = {  # None while the record is being built; stamped before it is written (the column refuses null)
    (Document, "processed_at"),
    (ErrorRecord, "processed_at"),
}
# A rejected row's reason: None on a kept Document, never null in the rejected shards.
REJECT_FIELDS = ("reason", "detail")


def _unwrap(annotation) -> tuple[bool, object]:
    """(whether None is allowed, the type without None)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        assert len(args) == 1, annotation
        return len(args) < len(typing.get_args(annotation)), args[0]
    return False, annotation


def _same_type(annotation, arrow: pa.DataType) -> bool:
    if annotation is str:
        return arrow == pa.string()
    if annotation is bool:
        return arrow == pa.bool_()
    if annotation is int:
        return pa.types.is_integer(arrow)
    if annotation is float:
        return pa.types.is_floating(arrow)
    if annotation is dt.datetime:
        return pa.types.is_timestamp(arrow) and arrow.tz == "UTC"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, tuple) and pa.types.is_list(arrow):
        item = args[0]
        if dataclasses.is_dataclass(item):
            return pa.types.is_struct(arrow.value_type) and not _differences(item, list(arrow.value_type))
        return _same_type(item, arrow.value_type)
    return False


def _differences(cls, fields: list[pa.Field]) -> list[str]:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if not (cls is Document and f.name in REJECT_FIELDS)]
    by_name = {f.name: f for f in fields}
    out = [f"{cls.__name__}.{n}: not in the schema" for n in names if n not in by_name]
    out += [f"{cls.__name__}: no field for column {n}" for n in by_name if n not in names]
    for name in (n for n in names if n in by_name):
        optional, annotation = _unwrap(hints[name])
        column = by_name[name]
        if not _same_type(annotation, column.type):
            out.append(f"{cls.__name__}.{name}: {hints[name]} vs {column.type}")
        exception = (cls, name) in SCHEMA_LOOSER and column.nullable and not optional or \
            (cls, name) in CLASS_LOOSER and optional and not column.nullable
        if optional != column.nullable and not exception:
            out.append(f"{cls.__name__}.{name}: {'nullable' if optional else 'not nullable'} vs the column "
                       f"{'nullable' if column.nullable else 'not nullable'}")
    return out


def test_document_score_and_error_records_are_the_schema():
    assert _differences(Document, list(schemas.CURATED_SCHEMA)) == []
    assert _differences(ScoreRecord, list(schemas.SCORE_TYPE)) == []
    assert _differences(ErrorRecord, list(schemas.ERRORS_SCHEMA)) == []
    # the order of the columns is the schema's; rejected shards add reason and detail
    assert schemas.REJECTED_SCHEMA.names == [*schemas.DOCUMENT_COLUMNS, *REJECT_FIELDS]
    hints = typing.get_type_hints(Document)
    assert all(_unwrap(hints[name])[0] for name in REJECT_FIELDS)
    # every exception is still a difference (a stale one would hide a future change)
    for cls, name in [*SCHEMA_LOOSER, *CLASS_LOOSER]:
        schema = schemas.CURATED_SCHEMA if cls is Document else schemas.ERRORS_SCHEMA
        assert _unwrap(typing.get_type_hints(cls)[name])[0] != schema.field(name).nullable


def test_the_check_sees_a_difference():
    """The checker itself: a class that drifts from the schema in a name, a type or nullability is caught."""

    @dataclasses.dataclass
    class Drifted:
        detector: str | None  # nullable here, not in the schema
        models: list[int] | None  # list of ints, the schema says strings
        value: float | None
        tokens: int | None
        truncated: bool | None
        cause: str | None  # the schema calls it reason

    found = _differences(Drifted, list(schemas.SCORE_TYPE))
    assert len(found) == 4 and any("cause" in d for d in found) and any("reason" in d for d in found)


def test_rows_round_trip_with_typed_scores_and_nulls_read_as_defaults():
    score = ScoreRecord("fasttext", ("m@sha256:1",), 0.25, 12, False, None)
    doc = Document(id="a", warc_file="f", text="t", scores=[score], processed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                   pipeline_version="x")
    row = doc.to_row()
    assert row["scores"] == [{"detector": "fasttext", "models": ["m@sha256:1"], "value": 0.25, "tokens": 12,
                              "truncated": False, "reason": None}]
    table = schemas.table_from_rows([row], "curated")
    back = Document.from_row(table.to_pylist()[0])
    assert back == doc and back.score_of("fasttext") == score and back.score_of("binoculars") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        score.value = 1.0  # type: ignore[misc]
    nulls = Document.from_row({**row, "text": None, "truncated": None, "scores": None})
    assert [getattr(nulls, name) for (_, name) in SCHEMA_LOOSER] == list(SCHEMA_LOOSER.values())


def test_every_policy_reason_reads_only_stored_columns():
    """`lowbg decide` re-makes every policy rejection from the row: each rule of each quality preset (Gopher's
    bullet-line and ellipsis-line fractions included) reads columns of the schema, and each signal group
    stores exactly columns of the schema."""
    columns = set(schemas.DOCUMENT_COLUMNS)
    for preset in quality.PRESETS.values():
        for rule in preset.rules:
            assert set(rule.signals) <= columns, rule
            assert REJECT_REASONS[rule.reason].redecide == POLICY
    assert {"bullet_line_fraction", "ellipsis_line_fraction"} <= set(quality.SIGNAL_FIELDS)
    assert set(quality.SIGNAL_FIELDS) <= columns
    assert {"language", "language_score", "word_count", "scores", "provenance", "content_provenance"} <= columns
    # A row of stored signals decides as the step decided: Gopher's bullet and ellipsis rules from the columns.
    signals = quality.quality_signals("- a note\n" * 3 + "the garden behind these houses was quiet with birds\n" * 20)
    assert quality.decide(signals, "gopher-quality") is None
    assert quality.decide({**signals, "bullet_line_fraction": 0.95}, "gopher-quality")[0] == \
        "quality_gopher_bullet_lines"
    assert quality.decide({**signals, "ellipsis_line_fraction": 0.31}, "gopher-quality")[0] == \
        "quality_gopher_ellipsis_lines"
