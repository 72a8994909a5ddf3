"""Beam ingest: list input files, read them in parallel with warcio, extract text.

``ReadWarc`` expands file patterns (anything Beam's FileSystems opens: local, gs://, s3://...) and Common Crawl
path lists into one element per file, breaks fusion with a Reshuffle so files spread over workers, and reads
each file with :class:`pipeline.warc_reader.WarcFileReader`. Compressed files are opened with
``compression_type=UNCOMPRESSED``: warcio decompresses member by member itself, which is about 3x faster than
letting Beam decompress and keeps record offsets meaningful.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipeline.document import ERROR_OPEN, ERROR_PARSE, ErrorRecord
from pipeline.extract import record_to_document
from pipeline.manifest import LIST_STAGE
from pipeline.steps import ERRORS_TAG, NAMESPACE, error_counter
from pipeline.warc_reader import InputStats, Skipped, WarcFileReader, WarcRecord

SKIPPED_TAG = "skipped"
INPUTS_TAG = "inputs"


def open_raw(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def read_path_list(path: str, base: str = "", limit: int | None = None) -> list[str]:
    """Read a Common Crawl path list (e.g. ``warc.paths.gz``) on the launcher, up to ``limit`` lines."""
    with open_raw(path) as raw:
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


def join_base(base: str, path: str) -> str:
    if not base or "://" in path or path.startswith("/"):
        return path
    return base.rstrip("/") + "/" + path.lstrip("/")


def in_sample(path: str, fraction: float | None) -> bool:
    """Deterministic file sample: the same fraction picks the same files on every run and runner."""
    if fraction is None:
        return True
    digest = int.from_bytes(hashlib.sha1(path.encode()).digest()[:8], "big")
    return digest / 2**64 < fraction


class _ExpandPattern(beam.DoFn):
    """One element per file matched; a pattern that matches nothing is an error unit, not a silent no-op."""

    def __init__(self, sample_fraction: float | None):
        self.sample_fraction = sample_fraction

    def process(self, pattern: str):
        try:
            matches = FileSystems.match([pattern])[0].metadata_list
        except Exception as exc:  # bad scheme, missing bucket, permission: report, keep the job alive
            error_counter(ERROR_OPEN).inc()
            yield beam.pvalue.TaggedOutput(ERRORS_TAG, ErrorRecord.from_exception(
                exc, warc_file=pattern, stage=LIST_STAGE, reason=ERROR_OPEN))
            return
        if not matches:
            error_counter(ERROR_OPEN).inc()
            yield beam.pvalue.TaggedOutput(ERRORS_TAG, ErrorRecord(
                warc_file=pattern, stage=LIST_STAGE, reason=ERROR_OPEN, message="pattern matched no file"))
            return
        for meta in sorted(matches, key=lambda m: m.path):
            if in_sample(meta.path, self.sample_fraction):
                yield meta.path, meta.size_in_bytes


class _ReadFiles(beam.DoFn):
    def __init__(self, max_payload_bytes: int):
        self.max_payload_bytes = max_payload_bytes
        self.records = Metrics.counter(NAMESPACE, "records_read")
        self.files = Metrics.counter(NAMESPACE, "files_read")
        self._skipped: dict[str, object] = {}

    def process(self, element: tuple[str, int | None]) -> Iterable:
        path, size = element
        for item in WarcFileReader(path, open_raw, size, self.max_payload_bytes):
            if isinstance(item, WarcRecord):
                self.records.inc()
                yield item
            elif isinstance(item, Skipped):
                self.records.inc()
                counter = self._skipped.get(item.record_type)
                if counter is None:
                    counter = self._skipped[item.record_type] = Metrics.counter(
                        NAMESPACE, f"skipped_{item.record_type}")
                counter.inc()
            elif isinstance(item, ErrorRecord):
                error_counter(item.reason).inc()
                yield beam.pvalue.TaggedOutput(ERRORS_TAG, item)
            elif isinstance(item, InputStats):
                self.files.inc()
                yield beam.pvalue.TaggedOutput(INPUTS_TAG, {
                    "path": item.path, "size": item.size, "sha256": item.sha256, "records": item.records,
                    "units": item.units, "documents": item.documents, "errors": item.errors,
                    "skipped": dict(item.skipped), "notes": item.notes,
                })


class ReadWarc(beam.PTransform):
    """PBegin -> {'records': WarcRecord, 'errors': ErrorRecord, 'inputs': per-file stats dicts}."""

    def __init__(self, patterns: list[str] = (), paths: list[str] = (), path_lists: list[str] = (),
                 input_base: str = "", sample_fraction: float | None = None,
                 max_payload_bytes: int = 8 * 1024 * 1024):
        super().__init__()
        self.patterns, self.paths, self.path_lists = list(patterns), list(paths), list(path_lists)
        self.input_base, self.sample_fraction = input_base, sample_fraction
        self.max_payload_bytes = max_payload_bytes

    def expand(self, pbegin):
        pipeline = pbegin.pipeline
        listed = []
        if self.patterns:
            expanded = (pipeline | "Patterns" >> beam.Create(self.patterns)
                        | "ExpandPatterns" >> beam.ParDo(_ExpandPattern(self.sample_fraction)).with_outputs(
                            ERRORS_TAG, main="files"))
            listed.append(expanded.files)
            list_errors = expanded[ERRORS_TAG]
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
        read = (files
                | "SpreadFiles" >> beam.Reshuffle()  # one file per element, never fused with the listing
                | "ReadFiles" >> beam.ParDo(_ReadFiles(self.max_payload_bytes)).with_outputs(
                    ERRORS_TAG, INPUTS_TAG, main="records"))
        errors = (list_errors, read[ERRORS_TAG]) | "IngestErrors" >> beam.Flatten()
        return {"records": read.records, "errors": errors, "inputs": read[INPUTS_TAG]}


class _Extract(beam.DoFn):
    def __init__(self, cutoff: dt.datetime, processed_at: dt.datetime, version: str):
        self.cutoff, self.processed_at, self.version = cutoff, processed_at, version
        self.documents = Metrics.counter(NAMESPACE, "documents_extracted")

    def process(self, record: WarcRecord):
        try:
            doc = record_to_document(record, self.cutoff, self.processed_at, self.version)
        except Exception as exc:  # a pathological page must not cost the rest of the file
            error_counter(ERROR_PARSE).inc()
            yield beam.pvalue.TaggedOutput(ERRORS_TAG, ErrorRecord.from_exception(
                exc, warc_file=record.warc_file, stage="extract", reason=ERROR_PARSE, warc_offset=record.offset,
                warc_record_id=record.record_id, url=record.target_uri))
            return
        self.documents.inc()
        if doc.rejected:
            Metrics.counter(NAMESPACE, f"rejected_{doc.reason}").inc()
        yield doc


class ExtractText(beam.PTransform):
    """WarcRecord -> Document (kept or already rejected); failures to the errors output."""

    def __init__(self, cutoff: dt.datetime, processed_at: dt.datetime, version: str):
        super().__init__()
        self.fn = _Extract(cutoff, processed_at, version)

    def expand(self, records):
        out = records | "Extract" >> beam.ParDo(self.fn).with_outputs(ERRORS_TAG, main="documents")
        return {"documents": out.documents, "errors": out[ERRORS_TAG]}
