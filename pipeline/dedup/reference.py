"""Reference index: the MinHash band keys of a curated pre-cutoff corpus, to recognise its content later.

``lowbg index build --input SHARDS --output INDEX`` reads Parquet shards (columns ``id``, ``text``,
``warc_date``, ``provenance``; ``first_seen``/``content_provenance`` when present), keeps the pre-cutoff
documents and writes two Parquet files:

* ``INDEX/bands.parquet``: ``band`` (int16), ``band_hash`` (uint64), ``ref_id``, ``first_seen`` -- one row per
  band key, the earliest reference document holding it (ties: lowest id), so a join group has one reference
  row however often the key occurs in the reference corpus;
* ``INDEX/signatures.parquet``: ``ref_id``, ``first_seen``, ``signature`` (num_perm little-endian uint32) for
  the documents named in ``bands.parquet``, to verify a band match by estimated Jaccard.

Both carry the MinHash parameters in their Parquet metadata (key ``lowbackground.reference_index``);
``lowbg curate --reference-index INDEX`` with other parameters is refused before any work. The build runs on
one machine (signatures of the whole reference are held in memory: 512 bytes per document at 128 perms).

An ``--input`` inside a `lowbg curate` run must be a finished run (:mod:`schemas.run`: a valid manifest naming
exactly the shards present); a run folder means the curated shards its manifest names. ``--allow-incomplete``
reads a run without one (the finished shards present). Loose Parquet files are read as they are. The output
folder is checked for writability before any input is read; both files are written atomically, ``bands.parquet``
(whose metadata marks an index) last.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from common.cli import ArgumentParser, InputError, run_command
from pipeline.dedup.cluster import to_us
from pipeline.dedup.minhash import (
    BAND_HASH_VERSION,
    DEFAULT_SCHEME,
    DEFAULT_SEED,
    MinHasher,
    band_keys,
    optimal_bands,
)
from pipeline.layout import (
    BEAM_FILES,
    TMP_PREFIX,
    basename,
    check_writable,
    exists,
    is_url,
    join,
    list_files,
    match_files,
    open_read,
    read_run_manifest,
    run_shards,
    write_atomically,
)
from pipeline.provenance import PRE_CUTOFF
from pipeline.settings import MinHashSettings

INDEX_META_KEY = b"lowbackground.reference_index"
INDEX_FORMAT = 1
SHINGLES_VERSION = "words-nfkc-casefold-v1"  # pipeline.dedup.normalize.word_shingles
BANDS_FILE, SIGNATURES_FILE = "bands.parquet", "signatures.parquet"
_TS = pa.timestamp("us", tz="UTC")
BANDS_SCHEMA = pa.schema([("band", pa.int16()), ("band_hash", pa.uint64()), ("ref_id", pa.string()),
                          ("first_seen", _TS)])
SIGNATURES_SCHEMA = pa.schema([("ref_id", pa.string()), ("first_seen", _TS), ("signature", pa.binary())])
_READ_COLUMNS = ("id", "text", "warc_date", "provenance", "first_seen", "content_provenance")


class ReferenceIndexError(ValueError):
    """A reference index that is missing, unreadable or built with other MinHash parameters."""


def index_params(minhash: MinHashSettings) -> dict:
    bands, rows = optimal_bands(minhash.threshold, minhash.num_perm)
    return {"format": INDEX_FORMAT, "num_perm": minhash.num_perm, "threshold": minhash.threshold, "bands": bands,
            "rows": rows, "ngram": minhash.ngram, "seed": DEFAULT_SEED, "scheme": DEFAULT_SCHEME,
            "band_hash": BAND_HASH_VERSION, "shingles": SHINGLES_VERSION}


def read_index_metadata(index_path: str) -> dict:
    """The parameters stored in an index (from bands.parquet's metadata)."""
    path = join(index_path, BANDS_FILE)
    try:
        with open_read(path) as fh:
            meta = pq.ParquetFile(fh).schema_arrow.metadata or {}
    except Exception as exc:  # missing file, not Parquet, permission: all the same to the user
        raise ReferenceIndexError(f"cannot read reference index {path}: {exc}") from exc
    if INDEX_META_KEY not in meta:
        raise ReferenceIndexError(f"{path} is not a lowbackground reference index (no {INDEX_META_KEY.decode()})")
    return json.loads(meta[INDEX_META_KEY])


def check_reference_index(index_path: str, minhash: MinHashSettings) -> dict:
    """Refuse an index whose MinHash parameters differ from this run's; returns its metadata."""
    found = read_index_metadata(index_path)
    want = index_params(minhash)
    keys = ("format", "num_perm", "bands", "rows", "ngram", "seed", "scheme", "band_hash", "shingles")
    diff = {k: (found.get(k), want[k]) for k in keys if found.get(k) != want[k]}
    if diff:
        text = ", ".join(f"{k}: index {a!r} vs run {b!r}" for k, (a, b) in diff.items())
        raise ReferenceIndexError(f"reference index {index_path} was built with other MinHash parameters ({text}); "
                                  "rebuild it with `lowbg index build` and this run's --minhash-* options")
    return found


def _pre_cutoff_rows(path: str, batch_rows: int):
    """(ids, texts, first_seen µs) of the pre-cutoff documents of one shard, in batches."""
    with open_read(path) as fh:
        try:
            pf = pq.ParquetFile(fh)
        except (pa.ArrowException, OSError) as exc:
            raise ReferenceIndexError(f"{path} is not a readable Parquet file: {exc}") from exc
        names = set(pf.schema_arrow.names)
        missing = {"id", "text", "provenance"} - names
        if missing or not names & {"warc_date", "first_seen"}:
            raise ReferenceIndexError(f"{path} lacks columns {sorted(missing) or ['warc_date']}")
        for batch in pf.iter_batches(batch_size=batch_rows, columns=[c for c in _READ_COLUMNS if c in names]):
            cols = batch.to_pydict()
            n = batch.num_rows
            content = cols.get("content_provenance", [None] * n)
            dates = cols.get("warc_date", [None] * n)
            seen = cols.get("first_seen", [None] * n)
            ids, texts, firsts = [], [], []
            for i in range(n):
                if PRE_CUTOFF not in (cols["provenance"][i], content[i]) or not cols["text"][i]:
                    continue
                times = [to_us(t) for t in (dates[i], seen[i]) if t is not None]
                if not times:  # a pre-cutoff label without a date cannot date anything
                    continue
                ids.append(cols["id"][i])
                texts.append(cols["text"][i])
                firsts.append(min(times))
            yield ids, texts, firsts


def build_reference_index(shard_paths: Sequence[str], output_dir: str,
                          minhash: MinHashSettings = MinHashSettings(), batch_rows: int = 1024) -> dict:
    """Build the index described in the module docstring; returns counts (documents read, indexed, keys)."""
    params = index_params(minhash)
    bands, rows, num_perm = params["bands"], params["rows"], minhash.num_perm
    hasher = MinHasher(num_perm, minhash.ngram)
    ids: list[str] = []
    firsts: list[int] = []
    sigs: list[np.ndarray] = []
    read = 0
    for path in match_files(list(shard_paths)):
        for b_ids, b_texts, b_firsts in _pre_cutoff_rows(path, batch_rows):
            read += len(b_ids)
            values, ok = hasher.signatures(b_texts)
            for i in np.flatnonzero(ok):
                ids.append(b_ids[i])
                firsts.append(b_firsts[i])
            sigs.append(values[ok])
    sig = np.concatenate(sigs) if sigs else np.zeros((0, num_perm), np.uint32)
    n = len(ids)
    # Band hashes as (band, uint64) columns; the earliest (then lowest-id) document wins each key.
    band_hash = np.zeros((n, bands), dtype=np.uint64)
    for i in range(n):
        band_hash[i] = [int.from_bytes(k[2:], "big") for k in band_keys(sig[i], bands, rows)]
    id_rank = np.argsort(np.argsort(np.array(ids, dtype=object), kind="stable"), kind="stable")
    doc = np.repeat(np.arange(n), bands)
    band = np.tile(np.arange(bands, dtype=np.int16), n)
    hashes = band_hash.reshape(-1)
    first_arr = np.array(firsts, dtype=np.int64)
    order = np.lexsort((id_rank[doc], first_arr[doc], hashes, band))  # last key sorts first
    band, hashes, doc = band[order], hashes[order], doc[order]
    head = np.ones(len(doc), dtype=bool)
    head[1:] = (band[1:] != band[:-1]) | (hashes[1:] != hashes[:-1])
    band, hashes, doc = band[head], hashes[head], doc[head]
    used = np.unique(doc)

    meta = {INDEX_META_KEY: json.dumps({**params, "documents": int(len(used)), "band_keys": int(len(doc))})}
    bands_table = pa.table({
        "band": pa.array(band, pa.int16()), "band_hash": pa.array(hashes, pa.uint64()),
        "ref_id": pa.array([ids[i] for i in doc], pa.string()),
        "first_seen": pa.array(first_arr[doc], pa.int64()).cast(_TS)}, schema=BANDS_SCHEMA.with_metadata(meta))
    sig_le = sig.astype("<u4")
    sigs_table = pa.table({
        "ref_id": pa.array([ids[i] for i in used], pa.string()),
        "first_seen": pa.array(first_arr[used], pa.int64()).cast(_TS),
        "signature": pa.array([sig_le[i].tobytes() for i in used], pa.binary())},
        schema=SIGNATURES_SCHEMA.with_metadata(meta))
    for name, table in ((SIGNATURES_FILE, sigs_table), (BANDS_FILE, bands_table)):  # bands, the marker, last
        write_atomically(join(output_dir, name), lambda fh, table=table: pq.write_table(table, fh, compression="zstd"))
    return {"pre_cutoff_read": read, "indexed": int(len(used)), "too_short": read - n, "band_keys": int(len(doc))}


def _band_row(row: dict):
    key = int(row["band"]).to_bytes(2, "big") + int(row["band_hash"]).to_bytes(8, "big")
    return key, ("r", row["ref_id"], to_us(row["first_seen"]))


def _signature_row(row: dict):
    return row["ref_id"], ("s", row["signature"], to_us(row["first_seen"]))


class ReadReferenceBands(beam.PTransform):
    """The index's band rows as (band key, ('r', ref id, first seen µs)), keys as in ``minhash.band_keys``."""

    def __init__(self, index_path: str):
        super().__init__()
        self.index_path = index_path

    def expand(self, pbegin):
        return (pbegin
                | "Read" >> beam.io.ReadFromParquet(join(self.index_path, BANDS_FILE))
                | "Key" >> beam.Map(_band_row))


class ReadReferenceSignatures(beam.PTransform):
    """The index's signatures as (ref id, ('s', signature bytes, first seen µs))."""

    def __init__(self, index_path: str):
        super().__init__()
        self.index_path = index_path

    def expand(self, pbegin):
        return (pbegin
                | "Read" >> beam.io.ReadFromParquet(join(self.index_path, SIGNATURES_FILE))
                | "Key" >> beam.Map(_signature_row))


def build_index_parser() -> ArgumentParser:
    from common.flags import add_flag
    from pipeline.options import add_pipeline_flag

    p = ArgumentParser(prog="lowbg index build",
                       description="Index the MinHash band keys of curated pre-cutoff Parquet shards.")
    p.add_argument("--input", action="append", required=True, metavar="SHARDS",
                   help="curated shards: a folder, a `lowbg curate` output folder or a file pattern; repeatable")
    p.add_argument("--output", required=True, metavar="INDEX", help="index folder (bands.parquet, signatures.parquet)")
    for flag in ("--minhash-num-perm", "--minhash-threshold", "--minhash-ngram"):
        add_pipeline_flag(p, flag)
    add_flag(p, "--allow-incomplete")
    return p


def _folder_key(path: str) -> str:
    return path.rstrip("/") if is_url(path) else os.path.abspath(path)


def _parquet_in(path: str) -> str:
    """A folder (a local directory, or an object-store prefix that holds Parquet files but is no file itself)
    means its Parquet files; anything else is a path or a pattern as it is."""
    if is_url(path):
        folder = join(path, "*.parquet")
        return folder if not exists(path) and list_files(folder) else path
    return os.path.join(path, "*.parquet") if os.path.isdir(path) else path


def shard_inputs(path: str, allow_incomplete: bool = False) -> list[str]:
    """What one ``--input`` means, as patterns or paths: a run folder, its curated shards (those its manifest
    names); a path or pattern inside a run, its finished shards, once the run is known to be finished; a plain
    folder, its Parquet files; anything else, itself. Raises :class:`schemas.run.IncompleteRun`."""
    from schemas.run import run_root_of

    root = run_root_of(path, BEAM_FILES)
    if root is None:
        return [_parquet_in(path)]
    manifest = read_run_manifest(str(root), allow_incomplete)
    if _folder_key(str(root)) == _folder_key(path):
        return run_shards(str(root), "curated", manifest)
    matched = [p for p in match_files([_parquet_in(path)]) if not basename(p).startswith(TMP_PREFIX)]
    if not matched:
        raise FileNotFoundError(f"no finished shard matches {path}")
    return matched


def _index(argv: list[str]) -> int:
    argv = list(argv)
    if argv[:1] == ["build"]:
        argv = argv[1:]
    args = build_index_parser().parse_args(argv)
    check_writable(args.output)
    inputs = [p for path in args.input for p in shard_inputs(path, args.allow_incomplete)]
    try:
        stats = build_reference_index(inputs, args.output, MinHashSettings(
            args.minhash_num_perm, args.minhash_threshold, args.minhash_ngram))
    except ReferenceIndexError as exc:
        raise InputError(str(exc)) from exc
    print(json.dumps({"output": args.output, **stats}))
    return 0


def index_main(argv: Sequence[str]) -> int:
    """``lowbg index build ...`` (argv after ``index``; a leading ``build`` is accepted and skipped)."""
    return run_command("lowbg index build", lambda: _index(list(argv)))
