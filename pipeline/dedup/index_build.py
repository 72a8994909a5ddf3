"""``lowbg index build`` and ``lowbg index extend``: the reference index (:mod:`pipeline.dedup.reference`) as a
Beam pipeline, on any runner (DirectRunner by default; ``--runner PortableRunner|DataflowRunner|FlinkRunner`` and
their options as for ``lowbg curate``).

``lowbg index build --input RUN [--input RUN ...] --output INDEX`` (``--runs RUN [RUN ...]`` says the same):
each input is a finished `lowbg curate` run (its manifest checked by :mod:`schemas.run` through Beam's
FileSystems; an unfinished run is refused, ``--allow-incomplete`` reads one without a manifest), a path or
pattern inside one, or loose Parquet files with ``id``, ``text`` and a date (``warc_date`` or ``first_seen``).

``lowbg index extend --index INDEX --input RUN ...``: adds runs to an index without re-reading the runs it
already holds: the current generation's rows join the new runs' keys in the same combine, and the next
generation is written, then ``index.json`` is switched to it (the old generation's files are deleted after). The
result has the same rows as a build over all the runs. A run already in the index (same manifest sha256) is
refused, so is one given twice.

Graph: curated shards -> one element per (file, row group) -> Reshuffle -> MinHash signatures and text hashes
(vectorised, a row group at a time) -> the rows of the three tables (exact: a text hash with its document's
first seen, id and pre-cutoff flag; bands: a (band hash, band) with first seen and id; signatures: an id with
its signature), batched by table and partition (the high bits of the row's key): one element per (row group,
partition, table), so Beam's per-element cost is paid by a batch, not by each of the ~10 keys of a document. A
``GroupByKey`` by partition brings each partition's batches (and, for ``extend``, the rows of the partition's
file in the current generation) to one writer, which keeps the earliest capture (ties: lowest id) of each key,
sorts and writes the partition's file.

Memory: the MinHash step holds one row group (a curated shard's row groups hold at most 50,000 rows: bounded by
``--shard-size``); a partition's writer holds its partition's rows as Arrow tables, copies included (a few times
their zstd size on disk), so ``--partitions`` is chosen for partition files of a few hundred MB: about 5,000 for
the 1.3 TB index of a snapshot (deploy/README.md). The local DirectRunner keeps its shuffles in memory, so its
peak RSS grows with the input; a distributed runner's shuffle does not. Counters (namespace
``lowbackground.index``): ``documents_read``, ``indexed``, ``too_short`` (no shingle: exact key only),
``no_date``, ``not_pre_cutoff`` (``--documents pre-cutoff``), ``empty_text``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState

import schemas
from common.cli import ArgumentParser, InputError, RunFailed, UsageError, positive_int, run_command
from pipeline.dedup.cluster import to_us
from pipeline.dedup.minhash import MinHasher, band_keys
from pipeline.dedup.normalize import fold, text_hash
from pipeline.dedup.reference import (
    BANDS,
    DOCUMENTS,
    EXACT,
    INDEX_FILE,
    INDEX_FORMAT,
    INDEX_FORMAT_VERSION,
    SCHEMAS,
    SIGNATURES,
    TABLES,
    ReferenceIndexError,
    exact_key,
    generation_folder,
    index_files_present,
    index_params,
    partition_name,
    partition_of,
    read_index_manifest,
    ref_key,
    table_files,
)
from pipeline.layout import (
    BEAM_FILES,
    MANIFEST_FILE,
    TMP_PREFIX,
    basename,
    check_writable,
    delete,
    exists,
    is_url,
    join,
    list_files,
    match_files,
    open_read,
    read_bytes,
    read_run_manifest,
    run_shards,
    write_atomically,
    write_bytes,
)
from pipeline.provenance import PRE_CUTOFF
from pipeline.settings import MinHashSettings

NAMESPACE = "lowbackground.index"
COUNTERS = ("documents_read", "indexed", "too_short", "no_date", "not_pre_cutoff", "empty_text")
DEFAULT_PARTITIONS = 64
ROW_GROUP_ROWS = 8192  # small row groups: a point lookup reads one (IndexReader)
_READ_COLUMNS = ("id", "text", "warc_date", "provenance", "first_seen", "content_provenance")


# --- what to read --------------------------------------------------------------------------------------------


def _folder_key(path: str) -> str:
    return path.rstrip("/") if is_url(path) else os.path.abspath(path)


def _parquet_in(path: str) -> str:
    """A folder (a local directory, or an object-store prefix that holds Parquet files but is no file itself)
    means its Parquet files; anything else is a path or a pattern as it is."""
    if is_url(path):
        folder = join(path, "*.parquet")
        return folder if not exists(path) and list_files(folder) else path
    return os.path.join(path, "*.parquet") if os.path.isdir(path) else path


def describe_input(path: str, allow_incomplete: bool = False) -> tuple[dict, list[str]]:
    """What one ``--input`` means: (its record in the index manifest, the shard paths to read). A run folder
    means its curated shards (those its manifest names); a path or pattern inside a run, its finished shards once
    the run is known to be finished; a plain folder, its Parquet files; anything else, itself. Raises
    :class:`schemas.run.IncompleteRun` for an unfinished run, FileNotFoundError when nothing matches."""
    from schemas.run import run_root_of

    root = run_root_of(path, BEAM_FILES)
    if root is None:
        files = match_files([_parquet_in(path)])
        return {"path": path, "run": None, "manifest_sha256": None, "files": len(files)}, files
    root = str(root)
    manifest = read_run_manifest(root, allow_incomplete)
    digest = hashlib.sha256(read_bytes(join(root, MANIFEST_FILE))).hexdigest() if manifest else None
    if _folder_key(root) == _folder_key(path):
        files = run_shards(root, "curated", manifest)
    else:
        files = [p for p in match_files([_parquet_in(path)]) if not basename(p).startswith(TMP_PREFIX)]
    record = {"path": path, "run": root, "manifest_sha256": digest, "files": len(files),
              "curated": manifest["counts"]["curated"] if manifest else None}
    return record, files


def check_new_runs(records: list[dict], already: list[dict]) -> None:
    """Refuse a run given twice, or already in the index (by its manifest's sha256)."""
    seen = {r["manifest_sha256"]: r["path"] for r in already if r.get("manifest_sha256")}
    for r in records:
        digest = r["manifest_sha256"]
        if digest is None:
            continue
        if digest in seen:
            raise UsageError(f"run {r['path']} is already in the index (as {seen[digest]}, manifest sha256 "
                             f"{digest[:12]}...): an index holds a run once")
        seen[digest] = r["path"]


# --- the pipeline ------------------------------------------------------------------------------------------------


class _RowGroups(beam.DoFn):
    """A Parquet file -> (path, row group) for each of its row groups, after checking its columns."""

    def process(self, path: str):
        with open_read(path) as fh:
            try:
                pf = pq.ParquetFile(fh)
            except (pa.ArrowException, OSError) as exc:
                raise ReferenceIndexError(f"{path} is not a readable Parquet file: {exc}") from exc
            names = set(pf.schema_arrow.names)
            missing = {"id", "text"} - names
            if missing or not names & {"warc_date", "first_seen"}:
                raise ReferenceIndexError(f"{path} lacks columns {sorted(missing) or ['warc_date']}")
            for rg in range(pf.metadata.num_row_groups):
                yield path, rg


class _IndexKeys(beam.DoFn):
    """(path, row group) -> its documents' rows of each table, as (partition, Arrow table) batches tagged by table.

    Rows (the columns of :data:`~pipeline.dedup.reference.SCHEMAS`): exact ``(key, text hash, first seen, id,
    pre-cutoff)``, bands ``(band hash, band, first seen, id)``, signatures ``(ref key, id, first seen, text hash,
    pre-cutoff, signature)``. One element per (row group, partition, table), not per key: Beam's cost per element
    is paid by thousands of keys at once."""

    def __init__(self, minhash: MinHashSettings, bands: int, rows: int, pre_cutoff_only: bool, partitions: int):
        self.minhash, self.bands, self.rows, self.pre_cutoff_only = minhash, bands, rows, pre_cutoff_only
        self.partitions = partitions
        self.counters = {name: Metrics.counter(NAMESPACE, name) for name in COUNTERS}

    def setup(self):
        self.hasher = MinHasher(self.minhash.num_perm, self.minhash.ngram)

    def process(self, element):
        path, rg = element
        with open_read(path) as fh:
            pf = pq.ParquetFile(fh)
            names = set(pf.schema_arrow.names)
            table = pf.read_row_group(rg, columns=[c for c in _READ_COLUMNS if c in names])
        cols = table.to_pydict()
        n = table.num_rows
        none = [None] * n
        provenance, content = cols.get("provenance", none), cols.get("content_provenance", none)
        dates, seen = cols.get("warc_date", none), cols.get("first_seen", none)
        ids, folded, firsts, pres = [], [], [], []
        skipped = {"not_pre_cutoff": 0, "no_date": 0, "empty_text": 0}
        for i in range(n):
            pre = PRE_CUTOFF in (provenance[i], content[i])
            if self.pre_cutoff_only and not pre:
                skipped["not_pre_cutoff"] += 1
                continue
            times = [us for us in (to_us(t) for t in (dates[i], seen[i])) if us is not None]
            if not times:  # a document without a date cannot date anything
                skipped["no_date"] += 1
                continue
            f = fold(cols["text"][i] or "")
            if not f.strip():
                skipped["empty_text"] += 1
                continue
            ids.append(cols["id"][i])
            folded.append(f)
            firsts.append(min(times))
            pres.append(pre)
        self.counters["documents_read"].inc(n)
        for name, count in skipped.items():
            self.counters[name].inc(count)
        self.counters["indexed"].inc(len(ids))
        if not ids:
            return
        values, ok = self.hasher.signatures(folded, folded=True)
        sig_le = values.astype("<u4")
        q = self.partitions
        out: dict[str, dict[int, list]] = {EXACT: {}, BANDS: {}, SIGNATURES: {}}
        too_short = 0
        for i, doc_id in enumerate(ids):
            h = text_hash(folded[i], folded=True)
            key = exact_key(h)
            out[EXACT].setdefault(partition_of(key, q), []).append((key, h, firsts[i], doc_id, pres[i]))
            if not ok[i]:
                too_short += 1
                continue
            for k in band_keys(values[i], self.bands, self.rows):
                band_hash = int.from_bytes(k[2:], "big")
                out[BANDS].setdefault(partition_of(band_hash, q), []).append(
                    (band_hash, k[0] << 8 | k[1], firsts[i], doc_id))
            rk = ref_key(doc_id)
            out[SIGNATURES].setdefault(partition_of(rk, q), []).append(
                (rk, doc_id, firsts[i], h, pres[i], sig_le[i].tobytes()))
        self.counters["too_short"].inc(too_short)
        for table, by_partition in out.items():
            for partition, rows in by_partition.items():
                yield beam.pvalue.TaggedOutput(table, (partition, _table_of(table, rows)))


class _ReadIndexRows(beam.DoFn):
    """(partition, file of the current generation) -> (partition, its rows as an Arrow table): the same partition
    in the next generation (the partitions do not change), so no row is converted on the way."""

    def process(self, element):
        partition, path = element
        with open_read(path) as fh:
            table = pq.read_table(fh)
        if table.num_rows:
            yield partition, table


# Every table's key is its first two columns: (key, text hash), (band hash, band), (ref key, id).
_ORDER = {EXACT: ("key", "text_hash", "first_seen", "ref_id"), BANDS: ("band_hash", "band", "first_seen", "ref_id"),
          SIGNATURES: ("key", "ref_id", "first_seen", "text_hash")}


def earliest_per_key(table_name: str, table: pa.Table) -> pa.Table:
    """The rows sorted by key, one per key: the earliest capture (then the lowest id) of each."""
    order = _ORDER[table_name]
    table = table.sort_by([(c, "ascending") for c in order])
    if table.num_rows < 2:
        return table
    new_key = np.zeros(table.num_rows, dtype=bool)
    new_key[0] = True
    for column in order[:2]:
        values = table.column(column)
        new_key[1:] |= pc.not_equal(values.slice(1), values.slice(0, table.num_rows - 1)).to_numpy(
            zero_copy_only=False)
    return table.filter(pa.array(new_key))


def _table_of(table: str, rows: list) -> pa.Table:
    schema = SCHEMAS[table]
    columns: list = list(zip(*rows)) if rows else [[] for _ in schema]
    arrays = [pa.array(column, pa.int64()).cast(f.type) if f.name == "first_seen" else pa.array(column, f.type)
              for f, column in zip(schema, columns)]
    return pa.Table.from_arrays(arrays, schema=schema)


class _WritePartition(beam.DoFn):
    """(partition, [Arrow tables]) -> the partition's file, one row per key, sorted; yields (table, partition,
    rows written)."""

    def __init__(self, table: str, folder: str, partitions: int):
        self.table, self.folder, self.partitions = table, folder, partitions

    def process(self, element):
        partition, batches = element
        batches = [b for b in batches if b is not None]
        rows = pa.concat_tables(batches) if batches else SCHEMAS[self.table].empty_table()
        table = earliest_per_key(self.table, rows)
        path = join(self.folder, f"{self.table}/{partition_name(partition, self.partitions)}")
        write_atomically(path, lambda fh: pq.write_table(table, fh, compression="zstd",
                                                         row_group_size=ROW_GROUP_ROWS))
        yield self.table, partition, table.num_rows


class WriteIndexTable(beam.PTransform):
    """(partition, row batch) of one table -> one sorted file per partition (every partition, empty ones too)."""

    def __init__(self, table: str, folder: str, partitions: int):
        super().__init__()
        self.table, self.folder, self.partitions = table, folder, partitions

    def expand(self, batches):
        every = batches.pipeline | "EveryPartition" >> beam.Create([(p, None) for p in range(self.partitions)])
        return ((batches, every)
                | "WithEveryPartition" >> beam.Flatten()
                | "GroupByPartition" >> beam.GroupByKey()
                | "Write" >> beam.ParDo(_WritePartition(self.table, self.folder, self.partitions)))


class BuildIndex(beam.PTransform):
    """PBegin -> the index tables written under ``folder`` (module docstring).

    ``shard_paths``: curated shards to index; ``previous``: files of an index generation to carry over, by table,
    in partition order (``extend``; the partitions are the same)."""

    def __init__(self, shard_paths: Sequence[str], folder: str, minhash: MinHashSettings, partitions: int,
                 pre_cutoff_only: bool = False, previous: dict[str, list[str]] | None = None):
        super().__init__()
        self.shard_paths, self.folder, self.minhash = list(shard_paths), folder, minhash
        self.partitions, self.pre_cutoff_only, self.previous = partitions, pre_cutoff_only, previous or {}

    def expand(self, pbegin):
        p = pbegin.pipeline
        params = index_params(self.minhash)
        keys = (p
                | "Shards" >> beam.Create(self.shard_paths)
                | "RowGroups" >> beam.ParDo(_RowGroups())
                | "SpreadRowGroups" >> beam.Reshuffle()
                | "IndexKeys" >> beam.ParDo(_IndexKeys(self.minhash, params["bands"], params["rows"],
                                                       self.pre_cutoff_only, self.partitions)).with_outputs(
                    EXACT, BANDS, SIGNATURES))
        written = []
        for table in TABLES:
            name = table.title()
            sources = [keys[table]]
            if self.previous.get(table):
                sources.append(p
                               | f"Previous{name}Files" >> beam.Create(list(enumerate(self.previous[table])))
                               | f"ReadPrevious{name}" >> beam.ParDo(_ReadIndexRows()))
            batches = sources | f"All{name}" >> beam.Flatten()
            written.append(batches | f"Write{name}" >> WriteIndexTable(table, self.folder, self.partitions))
        return written | "Written" >> beam.Flatten()


def _query_counters(result) -> dict[str, int]:
    try:
        counters = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    except Exception:  # a runner without metrics: the manifest still counts the rows written
        return {}
    totals = dict.fromkeys(COUNTERS, 0)
    for c in counters:
        value = c.committed if c.committed is not None else c.attempted
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + int(value or 0)
    return dict(sorted(totals.items()))


def _count_rows(index: str, manifest: dict) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        total = 0
        for path in table_files(index, table, manifest):
            with open_read(path) as fh:
                total += pq.ParquetFile(fh).metadata.num_rows
        counts[table] = total
    return counts


def run_index_pipeline(index: str, inputs: list[tuple[dict, list[str]]], minhash: MinHashSettings, partitions: int,
                       documents: str, beam_args: Sequence[str] = (), previous: dict | None = None) -> dict:
    """Build (``previous`` None) or extend an index in ``index``; writes the new generation, then the manifest
    (last). Returns the manifest."""
    generation = (previous["generation"] + 1) if previous else 1
    data = generation_folder(generation)
    folder = join(index, data)
    stale = [f.path for f in list_files(join(index, f"{data}/*/*"))]
    if stale:  # debris of a build or extension that died before switching the manifest
        delete(stale)
    carried = None
    if previous:
        carried = {t: table_files(index, t, previous) for t in TABLES}
    shard_paths = [p for _, files in inputs for p in files]
    pipeline = beam.Pipeline(options=PipelineOptions(list(beam_args)))
    _ = pipeline | "BuildIndex" >> BuildIndex(shard_paths, folder, minhash, partitions, documents == "pre-cutoff",
                                              carried)
    result = pipeline.run()
    result.wait_until_finish()
    state = getattr(result, "state", PipelineState.DONE)
    if state != PipelineState.DONE:
        raise RunFailed(f"the index job ended {state}, not DONE: {index} is unchanged")
    runs = (previous["runs"] if previous else []) + [record for record, _ in inputs]
    manifest = {
        "format": INDEX_FORMAT, "format_version": INDEX_FORMAT_VERSION, "generation": generation, "data": data,
        "partitions": partitions, "minhash": index_params(minhash), "documents": documents, "runs": runs,
        "created_at": dt.datetime.now(dt.UTC).isoformat(), "pipeline_version": schemas.package_version()}
    read = _query_counters(result)
    manifest["counts"] = {**_count_rows(index, manifest), "last_build": read,
                          "documents_read": read.get("documents_read", 0)
                          + (previous["counts"].get("documents_read", 0) if previous else 0)}
    write_bytes(join(index, INDEX_FILE), (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    if previous:  # the manifest names the new generation now: the old one's files can go
        old = [f.path for f in list_files(join(index, f"{previous['data']}/*/*"))]
        if old:
            delete(old)
    return manifest


# --- the command line --------------------------------------------------------------------------------------------


def _add_inputs(p: ArgumentParser) -> None:
    from common.flags import add_flag

    p.add_argument("--input", action="append", default=[], metavar="RUN",
                   help="a finished `lowbg curate` run (its curated shards), a path or pattern in one, or loose "
                   "Parquet shards (id, text, warc_date); repeatable")
    p.add_argument("--runs", nargs="+", action="extend", default=[], dest="input", metavar="RUN",
                   help="the same as --input, several at once")
    add_flag(p, "--allow-incomplete")


def build_index_parser() -> ArgumentParser:
    from pipeline.options import add_pipeline_flag

    p = ArgumentParser(prog="lowbg index build", description=(
        "Index the exact-hash and MinHash band keys of the curated documents of finished runs (a Beam pipeline: "
        "unrecognised flags such as --runner go to Beam)."))
    _add_inputs(p)
    p.add_argument("--output", required=True, metavar="INDEX", help="index folder (index.json, gNNNNN/...)")
    for flag in ("--minhash-num-perm", "--minhash-threshold", "--minhash-ngram"):
        add_pipeline_flag(p, flag)
    p.add_argument("--documents", choices=list(DOCUMENTS), default="all",
                   help="index every curated document (cross-run dedup, default) or only pre-cutoff ones (a "
                   "reference of content seen before the cutoff)")
    p.add_argument("--partitions", type=positive_int, default=DEFAULT_PARTITIONS,
                   help="files per table: a partition's writer holds ~70 bytes per band key of it, so size it for "
                   "a few hundred MB each (about 5,000 for a whole snapshot)")
    from common.flags import add_flag

    add_flag(p, "--overwrite")
    return p


def build_extend_parser() -> ArgumentParser:
    p = ArgumentParser(prog="lowbg index extend", description=(
        "Add finished runs to a reference index without re-reading the runs it holds (a Beam pipeline: "
        "unrecognised flags such as --runner go to Beam). The MinHash settings and partitions are the index's."))
    p.add_argument("--index", required=True, metavar="INDEX", help="the index folder to extend")
    _add_inputs(p)
    return p


def _parse(parser: ArgumentParser, argv: list[str]):
    from pipeline.options import beam_flag_names, check_beam_args

    parser.reject_unknown_flags(argv, beam_flag_names(), "neither a lowbg index flag nor a Beam pipeline option")
    ns, beam_args = parser.parse_known_args(argv)
    check_beam_args(beam_args, parser)
    if not ns.input:
        parser.error("give at least one --input (or --runs)")
    return ns, beam_args


def build_index(inputs: Sequence[str], output: str, minhash: MinHashSettings = MinHashSettings(),
                partitions: int = DEFAULT_PARTITIONS, documents: str = "all", beam_args: Sequence[str] = (),
                allow_incomplete: bool = False) -> dict:
    """Index the inputs (``--input`` values) into a new index in ``output``; returns its manifest."""
    described = [describe_input(path, allow_incomplete) for path in inputs]
    check_new_runs([r for r, _ in described], [])
    return _run(output, described, minhash, partitions, documents, beam_args, None)


def extend_index(index: str, inputs: Sequence[str], beam_args: Sequence[str] = (),
                 allow_incomplete: bool = False) -> dict:
    """Add the inputs to the index in ``index`` (its MinHash settings, partitions and documents); returns the new
    manifest."""
    try:
        previous = read_index_manifest(index)
    except ReferenceIndexError as exc:
        raise InputError(str(exc)) from exc
    described = [describe_input(path, allow_incomplete) for path in inputs]
    check_new_runs([r for r, _ in described], previous["runs"])
    m = previous["minhash"]
    minhash = MinHashSettings(m["num_perm"], m["threshold"], m["ngram"])
    return _run(index, described, minhash, previous["partitions"], previous["documents"], beam_args, previous)


def _build(argv: list[str]) -> int:
    ns, beam_args = _parse(build_index_parser(), argv)
    check_writable(ns.output)
    if exists(join(ns.output, INDEX_FILE)):
        if not ns.overwrite:
            raise UsageError(f"{ns.output} already holds an index; use `lowbg index extend --index {ns.output}` to "
                             "add runs, or --overwrite to replace it")
        delete(index_files_present(ns.output))
    minhash = MinHashSettings(ns.minhash_num_perm, ns.minhash_threshold, ns.minhash_ngram)
    manifest = build_index(ns.input, ns.output, minhash, ns.partitions, ns.documents, beam_args, ns.allow_incomplete)
    print(json.dumps({"output": ns.output, "generation": manifest["generation"], **_summary(manifest)}))
    return 0


def _extend(argv: list[str]) -> int:
    ns, beam_args = _parse(build_extend_parser(), argv)
    check_writable(ns.index)
    manifest = extend_index(ns.index, ns.input, beam_args, ns.allow_incomplete)
    print(json.dumps({"index": ns.index, "generation": manifest["generation"], **_summary(manifest)}))
    return 0


def _run(index, inputs, minhash, partitions, documents, beam_args, previous) -> dict:
    try:
        return run_index_pipeline(index, inputs, minhash, partitions, documents, beam_args, previous)
    except ReferenceIndexError as exc:
        raise InputError(str(exc)) from exc
    except Exception as exc:  # a DoFn's ReferenceIndexError arrives wrapped by the runner
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, ReferenceIndexError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise InputError(str(cause)) from exc
        raise


def _summary(manifest: dict) -> dict:
    counts = manifest["counts"]
    return {"runs": len(manifest["runs"]), "exact_keys": counts[EXACT], "band_keys": counts[BANDS],
            "signatures": counts[SIGNATURES], **counts.get("last_build", {})}


SUBCOMMANDS = {"build": _build, "extend": _extend}


def main(argv: list[str]) -> int:
    """``lowbg index build|extend ...`` (argv after ``index``; without a sub-command, ``build``)."""
    name = argv[0] if argv and argv[0] in SUBCOMMANDS else "build"
    rest = argv[1:] if argv and argv[0] in SUBCOMMANDS else argv
    if argv[:1] in (["-h"], ["--help"]):
        print("usage: lowbg index {build,extend} [options]\n\n  build   index finished runs (lowbg index build "
              "--help)\n  extend  add runs to an index without rebuilding it (lowbg index extend --help)")
        return 0
    return run_command(f"lowbg index {name}", lambda: SUBCOMMANDS[name](rest))
