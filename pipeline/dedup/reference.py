"""Reference index: the exact-hash and MinHash band keys of finished runs, to recognise their content later.

Built by ``lowbg index build`` and grown by ``lowbg index extend`` (:mod:`pipeline.dedup.index_build`, a Beam
pipeline); read here, by ``lowbg curate --reference-index INDEX`` (as Beam transforms that join the run's keys)
and by :class:`IndexReader` (point lookups that read one row group per key, without Beam). Two uses: content
seen before the cutoff (a post-cutoff copy of a pre-cutoff document is kept, dated by the index, with
``content_provenance=pre_cutoff``), and dedup across runs (``--on-reference-match reject``: a copy of a document
a finished run already curated is rejected ``duplicate_exact``/``duplicate_near``, ``duplicate_of`` the indexed
document), e.g. a snapshot processed in ``--input-slice`` jobs, each indexed before the next one runs.

Format (version 2)::

    INDEX/index.json                                   the manifest, written last (atomically); readers start here
    INDEX/gNNNNN/exact/part-PPPPP-of-QQQQQ.parquet      one row per normalised-text hash
    INDEX/gNNNNN/bands/part-PPPPP-of-QQQQQ.parquet      one row per (band, band hash)
    INDEX/gNNNNN/signatures/part-PPPPP-of-QQQQQ.parquet one row per indexed document with a signature

* ``exact``: ``key`` (uint64: the first 8 bytes of the hash), ``text_hash`` (hex SHA-1 of the normalised text,
  :func:`pipeline.dedup.normalize.text_hash`), ``first_seen``, ``ref_id``, ``pre_cutoff``;
* ``bands``: ``band_hash`` (uint64: BLAKE2b-64 of the band's values, :func:`~pipeline.dedup.minhash.band_keys`),
  ``band`` (int16), ``first_seen``, ``ref_id``;
* ``signatures``: ``key`` (uint64: the first 8 bytes of SHA-1 of ``ref_id``), ``ref_id``, ``first_seen``,
  ``text_hash``, ``pre_cutoff``, ``signature`` (num_perm little-endian uint32), to verify a band match by
  estimated Jaccard and to tell an exact copy from a near one.

Each key holds the **earliest capture** that has it (``first_seen``: the document's earliest known capture,
``min(warc_date, first_seen)`` of its row; ties: lowest id), so a key is one row however many copies the runs
hold; ``pre_cutoff`` says that document is pre-cutoff evidence (``provenance`` or ``content_provenance`` is
``pre_cutoff``). Files are **range-partitioned** by the high bits of their uint64 key (``QQQQQ`` partitions; file
``p`` holds keys in ``[p * 2**64 / Q, (p + 1) * 2**64 / Q)``) and **sorted** by it, with small row groups whose
min/max statistics Parquet keeps: a lookup of one key opens one file and reads one row group. Every partition has
a file (possibly empty). ``gNNNNN`` is the generation: ``extend`` writes the next one and then switches the
manifest to it, so a reader never sees a half-written index.

``index.json``: ``format``, ``format_version``, ``generation``, ``data`` (the generation's folder),
``partitions``, ``minhash`` (the parameters that must match a run using the index: ``num_perm``, ``bands``,
``rows``, ``ngram``, ``seed``, ``scheme``, ``band_hash``, ``shingles``; ``threshold`` for information),
``documents`` (``all`` or ``pre-cutoff``: which curated documents were indexed), ``runs`` (each input: its path,
its manifest's sha256, its curated count; a loose Parquet input has no manifest), ``counts`` (rows per table, and
what the build read) and ``created_at``. A run built with other MinHash parameters is refused before any work.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.dedup.cluster import to_us
from pipeline.dedup.minhash import BAND_HASH_VERSION, DEFAULT_SCHEME, DEFAULT_SEED, optimal_bands
from pipeline.layout import exists, join, list_files, open_read, read_json
from pipeline.settings import MinHashSettings

INDEX_FILE = "index.json"
INDEX_FORMAT = "lowbackground.reference_index"
INDEX_FORMAT_VERSION = 2
SHINGLES_VERSION = "words-nfkc-casefold-v1"  # pipeline.dedup.normalize.word_shingles
EXACT, BANDS, SIGNATURES = "exact", "bands", "signatures"
TABLES = (EXACT, BANDS, SIGNATURES)
DOCUMENTS = ("all", "pre-cutoff")
_TS = pa.timestamp("us", tz="UTC")
SCHEMAS = {
    EXACT: pa.schema([("key", pa.uint64()), ("text_hash", pa.string()), ("first_seen", _TS), ("ref_id", pa.string()),
                      ("pre_cutoff", pa.bool_())]),
    BANDS: pa.schema([("band_hash", pa.uint64()), ("band", pa.int16()), ("first_seen", _TS),
                      ("ref_id", pa.string())]),
    SIGNATURES: pa.schema([("key", pa.uint64()), ("ref_id", pa.string()), ("first_seen", _TS),
                           ("text_hash", pa.string()), ("pre_cutoff", pa.bool_()), ("signature", pa.binary())]),
}
KEY_COLUMN = {EXACT: "key", BANDS: "band_hash", SIGNATURES: "key"}
# Format 1 (before the Beam build): two files at the top of the index folder.
_FORMAT_1_FILES = ("bands.parquet", "signatures.parquet")
# Parameters a run and its index must share (threshold only moves the verification, stored for information).
MATCHING_PARAMS = ("num_perm", "bands", "rows", "ngram", "seed", "scheme", "band_hash", "shingles")


class ReferenceIndexError(ValueError):
    """A reference index that is missing, unreadable or built with other MinHash parameters."""


def index_params(minhash: MinHashSettings) -> dict:
    bands, rows = optimal_bands(minhash.threshold, minhash.num_perm)
    return {"num_perm": minhash.num_perm, "threshold": minhash.threshold, "bands": bands, "rows": rows,
            "ngram": minhash.ngram, "seed": DEFAULT_SEED, "scheme": DEFAULT_SCHEME, "band_hash": BAND_HASH_VERSION,
            "shingles": SHINGLES_VERSION}


# --- keys and partitions -----------------------------------------------------------------------------------------


def exact_key(text_hash: str) -> int:
    return int(text_hash[:16], 16)


def ref_key(ref_id: str) -> int:
    return int.from_bytes(hashlib.sha1(ref_id.encode("utf-8", "surrogatepass")).digest()[:8], "big")


def partition_of(key: int, partitions: int) -> int:
    """Range partition of a uint64 key: file ``p`` holds ``[p * 2**64 / Q, (p + 1) * 2**64 / Q)``."""
    return (key * partitions) >> 64


def partition_name(partition: int, partitions: int) -> str:
    return f"part-{partition:05d}-of-{partitions:05d}.parquet"


def generation_folder(generation: int) -> str:
    return f"g{generation:05d}"


# --- the manifest ------------------------------------------------------------------------------------------------


def read_index_manifest(index_path: str) -> dict:
    """The index's manifest (``index.json``); :class:`ReferenceIndexError` naming what is wrong."""
    path = join(index_path, INDEX_FILE)
    try:
        found = exists(path)
    except Exception as exc:  # an unknown scheme, a bucket that cannot be reached
        raise ReferenceIndexError(f"cannot read reference index {index_path}: {exc}") from exc
    if not found:
        if any(exists(join(index_path, name)) for name in _FORMAT_1_FILES):
            raise ReferenceIndexError(f"{index_path} is a reference index of format 1 (bands.parquet, built by an "
                                      "older lowbackground): rebuild it with `lowbg index build`")
        raise ReferenceIndexError(f"cannot read reference index {path}: no such file (not a lowbackground "
                                  "reference index, or its build did not finish)")
    try:
        manifest = read_json(path)
    except Exception as exc:  # not JSON, permission: all the same to the user
        raise ReferenceIndexError(f"cannot read reference index {path}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != INDEX_FORMAT:
        raise ReferenceIndexError(f"{path} is not a lowbackground reference index manifest")
    if manifest.get("format_version") != INDEX_FORMAT_VERSION:
        raise ReferenceIndexError(f"{path}: index format version {manifest.get('format_version')!r}, this "
                                  f"lowbackground reads version {INDEX_FORMAT_VERSION}: rebuild it with "
                                  "`lowbg index build`")
    return manifest


def read_index_metadata(index_path: str) -> dict:
    """The MinHash parameters of an index, with its key counts (``band_keys``, ``exact_keys``, ``documents``)."""
    manifest = read_index_manifest(index_path)
    counts = manifest.get("counts", {})
    return {**manifest["minhash"], "format": manifest["format_version"], "band_keys": counts.get(BANDS),
            "exact_keys": counts.get(EXACT), "documents": counts.get(SIGNATURES)}


def check_reference_index(index_path: str, minhash: MinHashSettings) -> dict:
    """Refuse an index whose MinHash parameters differ from this run's; returns its manifest."""
    manifest = read_index_manifest(index_path)
    found, want = manifest.get("minhash", {}), index_params(minhash)
    diff = {k: (found.get(k), want[k]) for k in MATCHING_PARAMS if found.get(k) != want[k]}
    if diff:
        text = ", ".join(f"{k}: index {a!r} vs run {b!r}" for k, (a, b) in diff.items())
        raise ReferenceIndexError(f"reference index {index_path} was built with other MinHash parameters ({text}); "
                                  "rebuild it with `lowbg index build` and this run's --minhash-* options, or run "
                                  "with the index's")
    return manifest


def table_files(index_path: str, table: str, manifest: dict | None = None) -> list[str]:
    """The files of one table of the index's current generation, in partition order."""
    manifest = manifest or read_index_manifest(index_path)
    n = manifest["partitions"]
    return [join(index_path, f"{manifest['data']}/{table}/{partition_name(p, n)}") for p in range(n)]


def table_pattern(index_path: str, table: str, manifest: dict | None = None) -> str:
    manifest = manifest or read_index_manifest(index_path)
    return join(index_path, f"{manifest['data']}/{table}/part-*.parquet")


# --- reading in curate (Beam) -------------------------------------------------------------------------------------


def _band_row(row: dict):
    key = int(row["band"]).to_bytes(2, "big") + int(row["band_hash"]).to_bytes(8, "big")
    return key, ("r", row["ref_id"], to_us(row["first_seen"]))


def _signature_row(row: dict):
    return row["ref_id"], ("s", row["signature"], to_us(row["first_seen"]), row["text_hash"], row["pre_cutoff"])


def _exact_row(row: dict):
    return row["text_hash"], ("r", to_us(row["first_seen"]), row["ref_id"], row["pre_cutoff"])


class _ReadTable(beam.PTransform):
    table: str = ""
    key = staticmethod(lambda row: row)

    def __init__(self, index_path: str):
        super().__init__()
        self.index_path = index_path

    def expand(self, pbegin):
        return (pbegin
                | "Read" >> beam.io.ReadFromParquet(table_pattern(self.index_path, self.table))
                | "Key" >> beam.Map(type(self).key))


class ReadReferenceBands(_ReadTable):
    """The index's band rows as (band key, ('r', ref id, first seen µs)), keys as in ``minhash.band_keys``."""

    table, key = BANDS, staticmethod(_band_row)


class ReadReferenceSignatures(_ReadTable):
    """The index's signatures as (ref id, ('s', signature bytes, first seen µs, text hash, pre-cutoff))."""

    table, key = SIGNATURES, staticmethod(_signature_row)


class ReadReferenceExact(_ReadTable):
    """The index's exact keys as (text hash, ('r', first seen µs, ref id, pre-cutoff))."""

    table, key = EXACT, staticmethod(_exact_row)


# --- point lookups (no Beam) -----------------------------------------------------------------------------------


class IndexReader:
    """Point lookups in an index, reading only the row groups whose key range holds a wanted key.

    Memory: the wanted keys of one partition and one row group at a time; I/O: one footer per partition touched
    and at most one row group per wanted key (fewer when keys share a row group). ``row_groups_read`` counts the
    row groups read, for tests and for sizing.
    """

    def __init__(self, index_path: str):
        self.index_path = index_path
        self.manifest = read_index_manifest(index_path)
        self.partitions = self.manifest["partitions"]
        self.row_groups_read = 0

    def _lookup(self, table: str, keys: Iterable[int]) -> Iterable[dict]:
        by_partition: dict[int, list[int]] = {}
        for k in set(keys):
            by_partition.setdefault(partition_of(k, self.partitions), []).append(k)
        files = table_files(self.index_path, table, self.manifest)
        column = KEY_COLUMN[table]
        for p, wanted in sorted(by_partition.items()):
            wanted.sort()
            with open_read(files[p]) as fh:
                pf = pq.ParquetFile(fh)
                index = pf.schema_arrow.get_field_index(column)
                for rg in range(pf.metadata.num_row_groups):
                    stats = pf.metadata.row_group(rg).column(index).statistics
                    if stats is None or not stats.has_min_max:
                        continue
                    lo = bisect.bisect_left(wanted, stats.min)
                    if lo == len(wanted) or wanted[lo] > stats.max:
                        continue
                    self.row_groups_read += 1
                    rows = pf.read_row_group(rg)
                    found = np.isin(rows.column(column).to_numpy(), np.array(wanted, dtype=np.uint64))
                    yield from rows.filter(pa.array(found)).to_pylist()

    def exact(self, text_hashes: Sequence[str]) -> dict[str, dict]:
        """text hash -> its index row, for the hashes the index holds."""
        wanted = set(text_hashes)
        return {r["text_hash"]: r for r in self._lookup(EXACT, (exact_key(h) for h in wanted if h))
                if r["text_hash"] in wanted}

    def bands(self, band_keys: Sequence[bytes]) -> dict[bytes, dict]:
        """10-byte band key (as :func:`~pipeline.dedup.minhash.band_keys` makes them) -> its index row."""
        wanted = set(band_keys)
        rows = self._lookup(BANDS, (int.from_bytes(k[2:], "big") for k in wanted))
        out = {}
        for r in rows:
            key = int(r["band"]).to_bytes(2, "big") + int(r["band_hash"]).to_bytes(8, "big")
            if key in wanted:
                out[key] = r
        return out

    def signatures(self, ref_ids: Sequence[str]) -> dict[str, dict]:
        wanted = set(ref_ids)
        return {r["ref_id"]: r for r in self._lookup(SIGNATURES, (ref_key(i) for i in wanted))
                if r["ref_id"] in wanted}


def read_table(index_path: str, table: str) -> pa.Table:
    """A whole table of the index (tests and small indexes only: a crawl-scale table does not fit in memory)."""
    manifest = read_index_manifest(index_path)
    tables = []
    for path in table_files(index_path, table, manifest):
        with open_read(path) as fh:
            tables.append(pq.read_table(fh))
    return pa.concat_tables(tables) if tables else SCHEMAS[table].empty_table()


def index_files_present(index_path: str) -> list[str]:
    """Every file under an index folder (the manifest and all generations), for an overwrite or a cleanup."""
    found = [f.path for f in list_files(join(index_path, INDEX_FILE))] if exists(join(index_path, INDEX_FILE)) else []
    for pattern in ("g*/*/*", "g*/*"):
        found += [f.path for f in list_files(join(index_path, pattern))]
    return sorted(set(found))


def index_main(argv: Sequence[str]) -> int:
    """``lowbg index build|extend ...`` (argv after ``index``): see :mod:`pipeline.dedup.index_build`."""
    from pipeline.dedup.index_build import main

    return main(list(argv))


__all__ = ["BANDS", "DOCUMENTS", "EXACT", "INDEX_FILE", "INDEX_FORMAT", "INDEX_FORMAT_VERSION", "IndexReader",
           "ReadReferenceBands", "ReadReferenceExact", "ReadReferenceSignatures", "ReferenceIndexError", "SCHEMAS",
           "SIGNATURES", "TABLES", "check_reference_index", "exact_key", "index_main", "index_params",
           "partition_of", "read_index_manifest", "read_index_metadata", "read_table", "ref_key", "table_files"]
