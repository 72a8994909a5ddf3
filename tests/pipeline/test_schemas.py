import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import schemas


def test_shards_carry_and_check_their_schema_version(real_run, tmp_path):
    out, _ = real_run
    shard = sorted((out / "curated").glob("*.parquet"))[0]
    meta = pq.read_schema(shard).metadata
    assert meta[schemas.SCHEMA_VERSION_KEY] == schemas.SCHEMA_VERSION.encode()
    table = schemas.read_shard(str(shard))
    assert table.schema.names == list(schemas.DOCUMENT_COLUMNS)
    with pytest.raises(schemas.SchemaMismatch, match="kind"):
        schemas.read_shard(str(shard), "rejected")
    older = table.replace_schema_metadata({schemas.SCHEMA_VERSION_KEY: b"0.9", schemas.SCHEMA_KIND_KEY: b"curated"})
    pq.write_table(older, tmp_path / "old.parquet")
    with pytest.raises(schemas.SchemaMismatch, match="version 0.9"):
        schemas.read_shard(str(tmp_path / "old.parquet"))
    pq.write_table(table.drop_columns(["url_host"]), tmp_path / "missing.parquet")
    with pytest.raises(schemas.SchemaMismatch, match="columns differ"):
        schemas.read_shard(str(tmp_path / "missing.parquet"))
    pq.write_table(pa.table({"text": ["x"]}), tmp_path / "foreign.parquet")
    with pytest.raises(schemas.SchemaMismatch, match="not a lowbackground shard"):
        schemas.read_shard(str(tmp_path / "foreign.parquet"))


def test_rows_with_unknown_columns_or_nulls_in_required_columns_are_refused():
    with pytest.raises(schemas.SchemaMismatch, match="not in schema"):
        schemas.table_from_rows([{"id": "a", "bogus": 1}], "curated")
    table = schemas.table_from_rows([{"warc_file": "f", "stage": "read", "reason": "x"}], "errors")
    with pytest.raises(schemas.SchemaMismatch, match="processed_at"):
        schemas.validate_table(table, "errors")
