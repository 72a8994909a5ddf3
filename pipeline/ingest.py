"""Beam ingest: list input files, read each once, in parallel, with our own reader; extract text.

``ReadWarc`` expands file patterns (anything Beam's FileSystems opens: local, gs://, s3://...) and Common Crawl
path lists into one element per file, reads each distinct input once (below), breaks fusion with a Reshuffle so
files spread over workers, and reads each file with :class:`pipeline.warc_reader.WarcFileReader`. Compressed files
are opened with ``compression_type=UNCOMPRESSED``: the reader decompresses member by member itself, which sees
every member's damage and keeps record offsets meaningful.

The same input given twice is read once: a path listed twice is one input (its manifest entry says ``listed``),
and files with the same bytes under different paths are found by a cheap fingerprint (size and a hash of the
first and last 64 KiB), confirmed by a full sha256 only for the files whose fingerprints collide; the first path
(in sorted order) is read, the others get a manifest entry with ``duplicate_of`` and no records.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import os
from collections.abc import Iterable, Sequence

import apache_beam as beam

from common.hashing import in_sample
from pipeline import progress
from pipeline.document import ErrorRecord
from pipeline.extract import record_to_document
from pipeline.layout import list_files, open_read
from pipeline.reasons import ERROR_OPEN, ERROR_PARSE, EXTRACT, LIST_STAGE, READ
from pipeline.settings import IngestSettings, ProvenanceSettings
from pipeline.steps import ERRORS, KEPT, REJECTED_TAG, StageCounters, stage_output
from pipeline.warc_reader import InputStats, Skipped, WarcFileReader, WarcRecord

SKIPPED_TAG = "skipped"
INPUTS_TAG = "inputs"


def read_path_list(path: str, base: str = "", limit: int | None = None) -> list[str]:
    """Read a Common Crawl path list (e.g. ``warc.paths.gz``) on the launcher, up to ``limit`` lines."""
    with open_read(path) as raw:
        data = raw.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    paths = []
    for line in io.StringIO(data.decode("utf-8")):
        line = line.strip()
        if line:
            paths.append(join_base(base, line))
            if limit is not None and len(paths) >= limit:
                break
    return paths


def slice_inputs(paths: Sequence[str], index: int, count: int) -> list[str]:
    """Slice ``index`` (0-based) of ``count`` of the input files: the distinct paths, sorted, cut into ``count``
    contiguous runs whose sizes differ by at most one (slice i holds sorted positions
    ``[i * D // count, (i + 1) * D // count)`` of the D distinct paths). The ``count`` slices cover every path
    exactly once, whatever the order of the list they came from; a path listed twice stays twice in its slice
    (read once, its input record says so)."""
    distinct = sorted(set(paths))
    chosen = set(distinct[index * len(distinct) // count:(index + 1) * len(distinct) // count])
    return [p for p in paths if p in chosen]


def join_base(base: str, path: str) -> str:
    if not base or "://" in path or path.startswith("/"):
        return path
    return base.rstrip("/") + "/" + path.lstrip("/")


class _ExpandPattern(beam.DoFn):
    """One element per file matched; a pattern that matches nothing is an error unit, not a silent no-op."""

    def __init__(self, sample_fraction: float | None):
        self.sample_fraction = sample_fraction
        self.counters = StageCounters(READ)

    def process(self, pattern: str):
        try:
            matches = list_files(pattern)
        except Exception as exc:  # bad scheme, missing bucket, permission: report, keep the job alive
            self.counters.error(ERROR_OPEN)
            yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord.from_exception(
                exc, warc_file=pattern, stage=LIST_STAGE, reason=ERROR_OPEN))
            return
        if not matches:
            self.counters.error(ERROR_OPEN)
            yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord(
                warc_file=pattern, stage=LIST_STAGE, reason=ERROR_OPEN, message="pattern matched no file"))
            return
        for found in matches:
            if in_sample(found.path, self.sample_fraction):
                yield found.path, found.size


FINGERPRINT_BYTES = 64 * 1024
DUPLICATES_TAG = "duplicates"


def fingerprint(path: str, size: int | None) -> tuple:
    """(size, sha256 of the first and last 64 KiB): equal for equal files, and cheap to compute on any filesystem.

    A file that cannot be opened gets a key of its own (the reader reports why it cannot be read).
    """
    try:
        with open_read(path) as fh:
            if size is None:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(0)
            sha = hashlib.sha256(fh.read(FINGERPRINT_BYTES))
            if size > FINGERPRINT_BYTES:
                fh.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
                sha.update(fh.read(FINGERPRINT_BYTES))
        return ("fingerprint", size, sha.hexdigest())
    except Exception:  # noqa: BLE001 - missing, unreadable: no fingerprint, read (and fail) on its own
        return ("path", path)


def full_sha256(path: str) -> str | None:
    sha = hashlib.sha256()
    try:
        with open_read(path) as fh:
            while chunk := fh.read(1 << 20):
                sha.update(chunk)
    except Exception:  # noqa: BLE001 - the reader reports it
        return None
    return sha.hexdigest()


def _duplicate_entry(path: str, size: int | None, sha256: str | None, original: str, listed: int) -> dict:
    return {"path": path, "size": size, "sha256": sha256, "records": 0, "units": 0, "documents": 0, "errors": 0,
            "skipped": {}, "notes": [f"same bytes (sha256) as {original}: not read again"],
            "duplicate_of": original, "listed": listed}


class _Fingerprint(beam.DoFn):
    def process(self, element: tuple[str, Iterable]):
        path, sizes = element
        sizes = list(sizes)  # a grouped iterable: not always a list on every runner
        size = next((s for s in sizes if s is not None), None)
        yield fingerprint(path, size), (path, size, len(sizes))


class _PickOriginals(beam.DoFn):
    """One group of inputs with one fingerprint -> the inputs to read, and manifest entries for exact copies."""

    def __init__(self):
        self.counters = StageCounters(READ)

    def process(self, element):
        _, members = element
        members = sorted(members)
        if len(members) == 1:
            yield members[0]
            return
        by_sha: dict[str | None, list] = {}
        for path, size, listed in members:  # a fingerprint collision: only now is each file hashed whole
            sha = full_sha256(path)
            by_sha.setdefault(sha if sha is not None else f"unreadable:{path}", []).append((path, size, listed))
        for sha, same in sorted(by_sha.items(), key=lambda kv: kv[1][0][0]):
            original = same[0]
            yield original
            for path, size, listed in same[1:]:
                self.counters.count("duplicate_inputs")
                yield beam.pvalue.TaggedOutput(DUPLICATES_TAG, _duplicate_entry(path, size, sha, original[0], listed))


class _ReadFiles(beam.DoFn):
    def __init__(self, max_payload_bytes: int):
        self.max_payload_bytes = max_payload_bytes
        self.counters = StageCounters(READ)

    def process(self, element: tuple[str, int | None, int]) -> Iterable:
        path, size, listed = element
        shown = 0  # records reported to the progress bar (pipeline.progress) so far; the file's total at its end
        for item in WarcFileReader(path, open_read, size, self.max_payload_bytes):
            if isinstance(item, WarcRecord):
                self.counters.count("records_read")
                self.counters.kept()
                progress.report(records=1)
                shown += 1
                yield item
            elif isinstance(item, Skipped):
                self.counters.count("records_read")
                progress.report(records=1)
                shown += 1
                self.counters.count(f"skipped_{item.record_type}")
            elif isinstance(item, ErrorRecord):
                self.counters.error(item.reason)
                yield beam.pvalue.TaggedOutput(ERRORS, item)
            elif isinstance(item, InputStats):
                self.counters.count("files_read")
                progress.report(files=1, records=item.records - shown)
                notes = item.notes + ([f"listed {listed} times: read once"] if listed > 1 else [])
                yield beam.pvalue.TaggedOutput(INPUTS_TAG, {
                    "path": item.path, "size": item.size, "sha256": item.sha256, "records": item.records,
                    "units": item.units, "documents": item.documents, "errors": item.errors,
                    "skipped": dict(item.skipped), "notes": notes, "duplicate_of": None, "listed": listed,
                })


class ReadWarc(beam.PTransform):
    """PBegin -> {'records': WarcRecord, 'errors': ErrorRecord, 'inputs': per-file stats dicts}.

    ``settings`` say what to read; ``listed`` (a bounded run, ``--max-files``: the launcher listed the files, in
    order) replaces the patterns and path lists with exactly those paths.
    """

    def __init__(self, settings: IngestSettings, listed: Sequence[str] | None = None):
        super().__init__()
        if listed is None:
            self.patterns, self.paths, self.path_lists = list(settings.inputs), [], list(settings.input_lists)
        else:
            self.patterns, self.paths, self.path_lists = [], list(listed), []
        self.input_base, self.sample_fraction = settings.input_base, settings.sample_files
        self.max_payload_bytes = settings.max_payload_bytes

    def expand(self, pbegin):
        pipeline = pbegin.pipeline
        listed = []
        if self.patterns:
            expanded = (pipeline | "Patterns" >> beam.Create(self.patterns)
                        | "ExpandPatterns" >> beam.ParDo(_ExpandPattern(self.sample_fraction)).with_outputs(
                            ERRORS, main="files"))
            listed.append(expanded.files)
            list_errors = expanded[ERRORS]
        else:
            list_errors = pipeline | "NoListErrors" >> beam.Create([])
        if self.paths:
            fraction = self.sample_fraction
            listed.append(pipeline | "ExplicitPaths" >> beam.Create(
                [(p, None) for p in self.paths if in_sample(p, fraction)]))
        for i, path_list in enumerate(self.path_lists):
            base, fraction = self.input_base, self.sample_fraction
            listed.append(
                pipeline
                | f"ReadPathList{i}" >> beam.io.ReadFromText(path_list)  # splittable: no single-worker listing
                | f"PathListEntries{i}" >> beam.Filter(lambda line: bool(line.strip()))
                | f"JoinBase{i}" >> beam.Map(lambda line, b=base: (join_base(b, line.strip()), None))
                | f"SamplePathList{i}" >> beam.Filter(lambda e, f=fraction: in_sample(e[0], f)))
        files = listed | "AllFiles" >> beam.Flatten() if len(listed) != 1 else listed[0]
        distinct = (files
                    | "GroupPaths" >> beam.GroupByKey()  # a path listed twice is one input
                    | "Fingerprint" >> beam.ParDo(_Fingerprint())
                    | "GroupFingerprints" >> beam.GroupByKey()
                    | "PickOriginals" >> beam.ParDo(_PickOriginals()).with_outputs(DUPLICATES_TAG, main="files"))
        read = (distinct.files
                | "SpreadFiles" >> beam.Reshuffle()  # one file per element, never fused with the listing
                | "ReadFiles" >> beam.ParDo(_ReadFiles(self.max_payload_bytes)).with_outputs(
                    ERRORS, INPUTS_TAG, main="records"))
        errors = (list_errors, read[ERRORS]) | "IngestErrors" >> beam.Flatten()
        inputs = (read[INPUTS_TAG], distinct[DUPLICATES_TAG]) | "AllInputs" >> beam.Flatten()
        return {"records": read.records, "errors": errors, "inputs": inputs}


class _Extract(beam.DoFn):
    def __init__(self, settings: ProvenanceSettings, processed_at: dt.datetime, version: str):
        self.cutoff, self.processed_at, self.version = settings.cutoff, processed_at, version
        self.counters = StageCounters(EXTRACT)

    def process(self, record: WarcRecord):
        try:
            doc = record_to_document(record, self.cutoff, self.processed_at, self.version)
        except Exception as exc:  # a pathological page must not cost the rest of the file
            self.counters.error(ERROR_PARSE)
            yield beam.pvalue.TaggedOutput(ERRORS, ErrorRecord.from_exception(
                exc, warc_file=record.warc_file, stage=EXTRACT, reason=ERROR_PARSE, warc_offset=record.offset,
                warc_record_id=record.record_id, url=record.target_uri))
            return
        if doc.rejected:
            self.counters.rejected(doc.reason)
            yield beam.pvalue.TaggedOutput(REJECTED_TAG, doc)
            return
        self.counters.kept()
        yield doc


class ExtractText(beam.PTransform):
    """WarcRecord -> {kept, rejected, errors} (:mod:`pipeline.steps`' stage contract): a document per record,
    rejected here when its payload is not text (or did not decode); failures to the errors output."""

    def __init__(self, settings: ProvenanceSettings, processed_at: dt.datetime, version: str):
        super().__init__()
        self.fn = _Extract(settings, processed_at, version)

    def expand(self, records):
        out = records | "Extract" >> beam.ParDo(self.fn).with_outputs(REJECTED_TAG, ERRORS, main=KEPT)
        return stage_output(out[KEPT], out[REJECTED_TAG], out[ERRORS])
