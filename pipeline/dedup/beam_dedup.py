"""Provenance-aware exact and near dedup, and reference matching, as Beam transforms.

Contract (what the pipeline builder relies on)::

    docs | "Dedup" >> Dedup(settings.dedup)     # or ExactDedup(), NearDedup(...), ReferenceMatch(index)

* In: PCollection[Document] of kept documents. Out: the stage contract of :mod:`pipeline.steps`,
  ``{"kept": Document, "rejected": Document}``, every input document exactly once (dedup cannot fail on a
  document: no errors output).
* Kept documents get ``text_hash``. Each cluster of copies (exact: same normalised text; near: connected by
  MinHash-LSH candidate pairs whose estimated Jaccard is >= threshold) keeps ONE survivor, the earliest capture
  (missing capture times last, ties by lowest id). The others are rejected ``duplicate_exact`` (same text hash
  as the survivor) or ``duplicate_near`` with ``duplicate_of`` = the survivor's id (the kept one, also for
  exact copies of a document that lost near dedup).
* Every kept document that went through dedup gets ``dup_cluster_size`` (copies in this run, itself included;
  1 when alone), ``first_seen`` (earliest capture in its cluster or matching reference document),
  ``content_provenance`` (``pre_cutoff`` if any copy is pre-cutoff evidence or a reference document matched,
  otherwise its own provenance) and ``content_provenance_source`` (``self``, ``cluster`` or ``reference``).
  With ``--dedup none`` and no reference index, no shuffle runs: documents get first_seen/content_provenance
  from themselves (source ``self``) and ``dup_cluster_size`` stays null.
* Settings: :class:`pipeline.settings.DedupSettings` (``mode`` none|exact|near, near running exact first; the
  MinHash parameters; ``reference_index`` and ``on_reference_match``). A reference index built with other
  MinHash parameters is refused when the transform is constructed (before any work).
* Reference index (:mod:`pipeline.dedup.reference`): a cluster matches it when a representative's text hash is
  one of its exact keys, or shares a band key with an indexed document whose signature passes the Jaccard check.
  ``on_reference_match=keep``: the cluster keeps its survivor, ``first_seen`` includes the index's date and
  ``content_provenance`` is ``pre_cutoff`` (source ``reference``) when the indexed document is pre-cutoff
  evidence. ``reject``: every member is rejected, ``duplicate_of`` the indexed document, ``duplicate_exact`` when
  its normalised text equals the indexed one, ``duplicate_near`` otherwise.
* Counters (:class:`pipeline.steps.StageCounters`, stage ``dedup``): ``kept``, ``rejected_duplicate_exact``,
  ``rejected_duplicate_near``, ``clusters`` (kept documents with copies), ``no_shingles`` (text shorter than one
  shingle: exact dedup only), ``empty_normalised_text`` (nothing left after normalisation: not deduplicated),
  ``near_candidates`` / ``near_verified`` (bucket pairs before/after the Jaccard check), ``reference_matches``,
  ``components_unconverged``, ``id_collisions``.

How: documents never go through a shuffle keyed by content. A light :class:`~pipeline.dedup.cluster.Node`
per document does: exact clusters (GroupByKey on text hash) -> one representative each -> band keys ->
GroupByKey on band keys, of ids only (every bucket member a candidate pair with the bucket's smallest id; the
reference index's band rows join the same groups) -> each representative's MinHash signature sent, once, to the
pairs it is in (GroupByKey on id) -> the Jaccard check, by the bucket's smallest id (near edges) or by
reference id -> connected components -> survivor per component -> decisions fanned out to exact copies ->
decisions put on documents by id. A signature (512 bytes at 128 permutations) crosses the band shuffle in no
record: it used to cross it once per band (9 at threshold 0.8), the largest shuffle of a near-dedup run, which
Beam's local runner holds whole. Every grouped iterable that can be
large (a text hash, a bucket, a component, a representative's copies) is streamed twice (summary first, then
output), never collected.

Putting decisions on documents: with ``spill_dir`` (``lowbg curate`` passes the run's output folder) a merge join
through disk, as the sinks sort (:mod:`pipeline.sinks`): each worker buffers documents up to
:data:`JOIN_SPILL_BYTES`, writes them sorted by id as runs (``<spill_dir>/.tmp-dedup-run-*.docs``, one per join
bucket, Arrow IPC of the kept document's row, read back as data: never unpickled), and only run paths and the
decisions are shuffled, by bucket (:data:`JOIN_BUCKETS`); the bucket's worker holds its decisions by id, merges its
runs one document of each at a time, and deletes them. Without ``spill_dir``, one CoGroupByKey by id (documents
through the shuffle: Beam's local runner buffers a shuffle's whole input, ~30-70 KB a document in memory).
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any

import apache_beam as beam
import numpy as np

from pipeline.dedup import components
from pipeline.dedup.cluster import KEEP, ClusterSummary, Node, apply_decision, node_of
from pipeline.dedup.minhash import MinHasher, band_keys, optimal_bands
from pipeline.dedup.normalize import fold, text_hash
from pipeline.document import Document
from pipeline.layout import delete
from pipeline.provenance import PRE_CUTOFF, captured_pre_cutoff
from pipeline.reasons import DEDUP
from pipeline.settings import DedupSettings, MinHashSettings
from pipeline.sinks import SpillDocuments, document_bucket, read_document_run
from pipeline.steps import KEPT, REJECTED_TAG, StageCounters, stage_output

FINGERPRINT_BATCH = 512  # documents per vectorised MinHash call (larger batches amortise numpy call overhead)
# The join of decisions back onto documents with ``spill_dir`` (module docstring): documents buffered by one worker
# before its sorted runs are written (estimated: text + a fixed overhead), and the join's buckets (its parallelism;
# one bucket's decisions are held in memory by the worker that joins it).
JOIN_SPILL_BYTES = 12 * 2**20
JOIN_BUCKETS = 16


class _Fingerprint(beam.DoFn):
    """A batch of kept documents -> one Node each (text hash; MinHash signature when ``hasher`` is set)."""

    def __init__(self, hasher: MinHasher | None):
        self.hasher = hasher
        self.counters = StageCounters(DEDUP)

    def process(self, docs: list[Document]):
        folded = [fold(d.text or "") for d in docs]  # once, for both the hash and the shingles
        hashes = [text_hash(f, folded=True) for f in folded]
        by_hash: dict[str, bytes | None] = {}
        if self.hasher is not None:
            # One signature per distinct text in the batch: boilerplate repeats, and equal hashes mean equal
            # normalised text, hence equal shingles.
            first = {h: f for f, h in zip(folded, hashes) if h}
            values, ok = self.hasher.signatures(list(first.values()), folded=True)
            by_hash = {h: values[i].astype("<u4").tobytes() if ok[i] else None for i, h in enumerate(first)}
        sigs = [by_hash.get(h) for h in hashes]
        for doc, h, sig in zip(docs, hashes, sigs):
            if not h:
                self.counters.count("empty_normalised_text")
            elif self.hasher is not None and sig is None:
                self.counters.count("no_shingles")
            yield node_of(doc, h, sig)


@beam.typehints.with_output_types(Any)  # mixes tagged outputs: Beam's inference would reject
class _ResolveExact(beam.DoFn):
    """(text_hash, nodes) -> the cluster's representative node; tagged 'copies': (rep id, (id, hash))."""

    COPIES = "copies"

    def process(self, element):
        _, nodes = element
        summary = ClusterSummary.of(nodes)  # pass 1
        rep = summary.as_node()
        yield rep
        if summary.count > 1:
            skipped = False
            for n in nodes:  # pass 2: everyone but the representative
                if not skipped and n.id == rep.id:
                    skipped = True
                    continue
                yield beam.pvalue.TaggedOutput(self.COPIES, (rep.id, (n.id, n.text_hash)))


def _decide_exact(element):
    """(text_hash, nodes) -> (id, decision) for each, when exact dedup is the last word (no near, no reference)."""
    _, nodes = element
    decision = ClusterSummary.of(nodes).decision()  # pass 1
    for n in nodes:  # pass 2
        yield n.id, decision.for_member(n.id, n.text_hash)


def _band_records(node: Node, bands: int, rows: int):
    """A representative -> (band key, ('d', id)) per LSH band: ids only, its signature travels once (_Signature)."""
    if node.sig is None:
        return
    sig = np.frombuffer(node.sig, dtype="<u4")
    for key in band_keys(sig, bands, rows):
        yield key, ("d", node.id)


@beam.typehints.with_output_types(Any)  # mixes tagged outputs: Beam's inference would reject
class _Buckets(beam.DoFn):
    """(band key, members) -> the bucket's candidate pairs, by id: (member, ('p', the bucket's smallest id)) for
    every other member (near), (smallest id, ('a',)) once; tagged 'ref': (member, ('r', reference id)) for every
    member when the index has this band key. No signature here: they are joined to the candidates afterwards."""

    REF = "ref"

    def __init__(self, near: bool):
        self.near = near
        self.counters = StageCounters(DEDUP)

    def process(self, element):
        _, values = element
        anchor_id = None
        ref = None
        docs = 0
        for v in values:  # pass 1: the smallest document id, and the reference entry if any
            if v[0] == "d":
                docs += 1
                if anchor_id is None or v[1] < anchor_id:
                    anchor_id = v[1]
            elif ref is None or (v[2], v[1]) < (ref[2], ref[1]):
                ref = v
        if docs == 0 or (docs == 1 and ref is None):
            return
        pairs = self.near and docs > 1
        if pairs:
            yield anchor_id, ("a",)
        for v in values:  # pass 2
            if v[0] != "d":
                continue
            if ref is not None:
                yield beam.pvalue.TaggedOutput(self.REF, (v[1], ("r", ref[1])))
            if pairs and v[1] != anchor_id:
                self.counters.count("near_candidates")
                yield v[1], ("p", anchor_id)


@beam.typehints.with_output_types(Any)  # mixes tagged outputs: Beam's inference would reject
class _Signature(beam.DoFn):
    """(id, [('s', signature) | ('p', anchor id) | ('a',) | ('r', reference id)...]) -> the representative's
    signature sent to where it is compared: (anchor, ('m', id, signature)) per candidate pair it is the member
    of, (id, ('s', signature)) once when it anchors a bucket, tagged 'ref': (reference id, ('c', id, signature))
    per reference candidate. A representative in no candidate pair sends nothing."""

    REF = "ref"

    def process(self, element):
        doc_id, values = element
        sig = next((v[1] for v in values if v[0] == "s"), None)  # pass 1
        if sig is None:
            return
        anchor = False
        for v in values:  # pass 2
            if v[0] == "p":
                yield v[1], ("m", doc_id, sig)
            elif v[0] == "a":
                anchor = True
            elif v[0] == "r":
                yield beam.pvalue.TaggedOutput(self.REF, (v[1], ("c", doc_id, sig)))
        if anchor:
            yield doc_id, ("s", sig)


class _VerifyNear(beam.DoFn):
    """(anchor id, [('s', its signature) | ('m', member id, member signature)...]) -> a near edge (member, anchor)
    for each candidate pair whose estimated Jaccard is >= threshold (a pair that shares several bands comes once
    per band, as it did from the buckets: the components do not mind)."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.counters = StageCounters(DEDUP)

    def process(self, element):
        anchor_id, values = element
        anchor_sig = next((v[1] for v in values if v[0] == "s"), None)  # pass 1
        if anchor_sig is None:
            return
        anchor = np.frombuffer(anchor_sig, dtype="<u4")
        need = self.threshold * len(anchor)
        for v in values:  # pass 2
            if v[0] == "m" and np.count_nonzero(np.frombuffer(v[2], dtype="<u4") == anchor) >= need:
                self.counters.count("near_verified")
                yield v[1], anchor_id


@beam.typehints.with_output_types(Any)  # mixes tagged outputs: Beam's inference would reject
class _VerifyReference(beam.DoFn):
    """(reference id, [('s', signature, date, text hash, pre) | ('c', doc id, doc signature)...]) ->
    (doc id, (date, ref id, ref text hash, ref pre-cutoff))."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def process(self, element):
        ref_id, values = element
        ref = None
        for v in values:  # pass 1
            if v[0] == "s":
                ref = v
                break
        if ref is None:
            return
        ref_sig = np.frombuffer(ref[1], dtype="<u4")
        need = self.threshold * len(ref_sig)
        for v in values:  # pass 2 (a pair that shares several bands comes once per band; _JoinRep takes the min)
            if v[0] == "c" and np.count_nonzero(np.frombuffer(v[2], dtype="<u4") == ref_sig) >= need:
                yield v[1], (ref[2], ref_id, ref[3], ref[4])


def _match_exact(element):
    """(text hash, {rep: [rep id...], ref: [('r', date, ref id, pre)]}) -> (rep id, (date, ref id, hash, pre))."""
    text_hash, grouped = element
    refs = list(grouped["ref"])
    if not refs:
        return
    _, date, ref_id, pre = min(refs)
    for rep_id in grouped["rep"]:
        yield rep_id, (date, ref_id, text_hash, pre)


@beam.typehints.with_output_types(Any)  # mixes tagged outputs: Beam's inference would reject
class _JoinRep(beam.DoFn):
    """(id, {rep, label, ref}) -> (label, node) for nodes in a near component; tagged 'decided' otherwise."""

    DECIDED = "decided"

    def __init__(self, reject_reference: bool = False):
        self.reject_reference = reject_reference
        self.counters = StageCounters(DEDUP)

    def process(self, element):
        _, grouped = element
        refs = list(grouped["ref"])
        best_ref = min(refs) if refs else None  # earliest date, then lowest reference id
        for rep in grouped["rep"]:
            if best_ref is not None:
                self.counters.count("reference_matches")
                rep = rep._replace(ref_us=best_ref[0], ref_id=best_ref[1], ref_hash=best_ref[2],
                                   ref_pre=best_ref[3])
            labels = list(grouped["label"])
            if labels:
                yield labels[0], rep
            else:
                decision = ClusterSummary.of([rep]).decision(self.reject_reference)
                yield beam.pvalue.TaggedOutput(self.DECIDED, (rep.id, decision))


def _resolve_component(element, reject_reference: bool = False):
    """(label, nodes) -> (node id, decision) for every node; survivor = earliest capture, ties lowest id."""
    _, nodes = element
    decision = ClusterSummary.of(nodes).decision(reject_reference)  # pass 1
    for n in nodes:  # pass 2
        yield n.id, decision.for_member(n.id, n.text_hash)


def _fan_out(element):
    """(rep id, [('d', decision) | ('c', (copy id, hash))...]) -> the decision for the rep and each exact copy."""
    rep_id, values = element
    decision = next((v[1] for v in values if v[0] == "d"), None)  # pass 1
    if decision is None:
        return
    yield rep_id, decision
    for v in values:  # pass 2
        if v[0] == "c":
            yield v[1][0], decision.for_member(*v[1])


class _Apply(beam.DoFn):
    """(id, {doc, decision}) -> the document with its decision: kept, or to the rejected output."""

    def __init__(self):
        self.counters = StageCounters(DEDUP)

    def process(self, element):
        _, grouped = element
        yield from self.apply(list(grouped["doc"]), list(grouped["decision"]))

    def apply(self, docs: list[Document], decisions: list):
        """The documents of one id with the decisions for that id (one each, unless ids collide)."""
        if len(docs) != 1 or len(decisions) != 1:
            # Document ids are meant to be unique; if not, prefer a KEEP so nothing is dropped silently.
            self.counters.count("id_collisions")
            decisions.sort(key=lambda d: d.kind != KEEP)
        for doc in docs:
            if not decisions:  # cannot happen unless ids collide across stages; leave the document as it was
                self.counters.kept()
                yield doc
                continue
            d = decisions[0]
            doc = apply_decision(doc, d)
            if doc.rejected:
                self.counters.rejected(doc.reason)
                yield beam.pvalue.TaggedOutput(REJECTED_TAG, doc)
                continue
            self.counters.kept()
            if d.cluster_size > 1:
                self.counters.count("clusters")
            yield doc


def _join_bucket(doc_id: str) -> int:
    return document_bucket(doc_id, JOIN_BUCKETS)


class _JoinOnDisk(_Apply):
    """(bucket, [('r', run path) | ('d', (id, decision))...]) -> each document of the bucket with its decision.

    A merge join: the bucket's decisions (small) are held by id, its runs of documents (sorted by id) are merged
    one document of each at a time, so the documents themselves are never all in memory (nor in a shuffle, which
    Beam's local runner buffers whole)."""

    def process(self, element):
        _, values = element
        runs: list[str] = []
        decisions: dict[str, list] = {}
        for tag, value in values:
            if tag == "r":
                runs.append(value)
            else:
                decisions.setdefault(value[0], []).append(value[1])
        runs.sort()  # the shuffle's order must not decide the order of documents with one id
        merged = heapq.merge(*(read_document_run(path) for path in runs), key=lambda d: d.id)
        for doc_id, docs in itertools.groupby(merged, key=lambda d: d.id):
            yield from self.apply(list(docs), decisions.pop(doc_id, []))
        for doc_id in sorted(decisions):  # decisions whose document never came: counted as id collisions
            yield from self.apply([], decisions[doc_id])
        if runs:
            delete(runs)


class _AnnotateSelf(beam.DoFn):
    """No dedup and no reference index: each document's first sighting and content provenance are its own."""

    def __init__(self):
        self.counters = StageCounters(DEDUP)

    def process(self, doc: Document):
        doc.first_seen = doc.warc_date
        doc.content_provenance = PRE_CUTOFF if captured_pre_cutoff(doc) else doc.provenance
        doc.content_provenance_source = "self"
        self.counters.kept()
        yield doc


class Dedup(beam.PTransform):
    """Exact dedup, then reference matching, then near dedup, as configured (see the module docstring)."""

    def __init__(self, settings: DedupSettings = DedupSettings(), *,
                 component_rounds: int = components.DEFAULT_ROUNDS, batch_size: int = FINGERPRINT_BATCH,
                 spill_dir: str | None = None):
        super().__init__()
        self.settings = settings
        self.spill_dir = spill_dir
        self.exact, self.near, self.reference_index = settings.exact, settings.near, settings.reference_index
        self.reject_reference = settings.on_reference_match == "reject"
        self.num_perm, self.threshold, self.ngram = (settings.minhash.num_perm, settings.minhash.threshold,
                                                     settings.minhash.ngram)
        self.component_rounds, self.batch_size = component_rounds, batch_size
        if self.reference_index is not None:
            from pipeline.dedup.reference import check_reference_index

            check_reference_index(self.reference_index, settings.minhash)

    @property
    def needs_signatures(self) -> bool:
        return self.near or self.reference_index is not None

    def expand(self, docs):
        if not (self.exact or self.needs_signatures):
            return stage_output(docs | "AnnotateSelf" >> beam.ParDo(_AnnotateSelf()))
        kept = docs
        hasher = MinHasher(self.num_perm, self.ngram) if self.needs_signatures else None
        nodes = (kept
                 | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.batch_size)
                 | "Fingerprint" >> beam.ParDo(_Fingerprint(hasher)))

        copies = None
        if self.exact:
            by_hash = (nodes
                       | "KeyByTextHash" >> beam.Map(lambda n: (n.text_hash or "\0" + n.id, n))
                       | "GroupByTextHash" >> beam.GroupByKey())
            if not self.needs_signatures:  # exact only: the decisions are known here, two shuffles in all
                return self._apply(kept, by_hash | "DecideExact" >> beam.FlatMap(_decide_exact))
            exact = by_hash | "ResolveExact" >> beam.ParDo(_ResolveExact()).with_outputs(
                _ResolveExact.COPIES, main="reps")
            reps, copies = exact.reps, exact[_ResolveExact.COPIES]
        else:
            reps = nodes

        p = docs.pipeline
        labels = refs = None
        if self.needs_signatures:
            bands, rows = optimal_bands(self.threshold, self.num_perm)  # datasketch: only when signatures are made
            records = [reps | "BandKeys" >> beam.FlatMap(_band_records, bands, rows)]
            if self.reference_index is not None:
                from pipeline.dedup.reference import ReadReferenceBands

                records.append(p | "ReadReferenceBands" >> ReadReferenceBands(self.reference_index))
            buckets = (records
                       | "FlattenBandRecords" >> beam.Flatten()
                       | "GroupByBandKey" >> beam.GroupByKey()
                       | "Buckets" >> beam.ParDo(_Buckets(self.near)).with_outputs(_Buckets.REF, main="pairs"))
            signatures = (reps | "KeySignatureById" >> beam.FlatMap(
                lambda n: [(n.id, ("s", n.sig))] if n.sig is not None else []))
            sent = ((signatures, buckets.pairs, buckets[_Buckets.REF])
                    | "FlattenSignatureRequests" >> beam.Flatten()
                    | "GroupSignatureRequests" >> beam.GroupByKey()
                    | "SendSignatures" >> beam.ParDo(_Signature()).with_outputs(_Signature.REF, main="to_anchors"))
            if self.near:
                edges = (sent.to_anchors
                         | "GroupByAnchor" >> beam.GroupByKey()
                         | "VerifyNear" >> beam.ParDo(_VerifyNear(self.threshold)))
                labels = edges | "Components" >> components.ConnectedComponents(self.component_rounds)
            if self.reference_index is not None:
                from pipeline.dedup.reference import ReadReferenceSignatures

                ref_signatures = p | "ReadReferenceSignatures" >> ReadReferenceSignatures(self.reference_index)
                from pipeline.dedup.reference import ReadReferenceExact

                near_refs = ((sent[_Signature.REF], ref_signatures)
                             | "FlattenReferencePairs" >> beam.Flatten()
                             | "GroupByReference" >> beam.GroupByKey()
                             | "VerifyReference" >> beam.ParDo(_VerifyReference(self.threshold)))
                exact_refs = ({"rep": reps | "KeyRepByTextHash" >> beam.FlatMap(
                                  lambda n: [(n.text_hash, n.id)] if n.text_hash else []),
                               "ref": p | "ReadReferenceExact" >> ReadReferenceExact(self.reference_index)}
                              | "JoinReferenceExact" >> beam.CoGroupByKey()
                              | "MatchReferenceExact" >> beam.FlatMap(_match_exact))
                refs = (near_refs, exact_refs) | "FlattenReferenceMatches" >> beam.Flatten()

        joined = ({"rep": reps | "KeyRepById" >> beam.Map(lambda n: (n.id, n.light())),
                   "label": labels if labels is not None else p | "NoLabels" >> beam.Create([]),
                   "ref": refs if refs is not None else p | "NoReferenceMatches" >> beam.Create([])}
                  | "JoinRepFacts" >> beam.CoGroupByKey()
                  | "JoinRep" >> beam.ParDo(_JoinRep(self.reject_reference)).with_outputs(_JoinRep.DECIDED,
                                                                                         main="in_component"))
        from_components = (joined.in_component
                           | "GroupByComponent" >> beam.GroupByKey()
                           | "ResolveComponent" >> beam.FlatMap(_resolve_component, self.reject_reference))
        rep_decisions = ((joined[_JoinRep.DECIDED], from_components)
                         | "FlattenRepDecisions" >> beam.Flatten())
        if copies is not None:
            decisions = ((rep_decisions | "TagDecision" >> beam.Map(lambda kv: (kv[0], ("d", kv[1]))),
                          copies | "TagCopy" >> beam.Map(lambda kv: (kv[0], ("c", kv[1]))))
                         | "FlattenForFanOut" >> beam.Flatten()
                         | "GroupByRepresentative" >> beam.GroupByKey()
                         | "FanOutToCopies" >> beam.FlatMap(_fan_out))
        else:
            decisions = rep_decisions
        return self._apply(kept, decisions)

    def _apply(self, kept, decisions) -> dict:
        """Put each document's decision on it: {kept, rejected}. With ``spill_dir``, a merge join through sorted
        runs of documents on disk (only run paths and decisions are shuffled); otherwise a CoGroupByKey by id."""
        if self.spill_dir is not None:
            runs = (kept
                    | "SpillDocuments" >> beam.ParDo(SpillDocuments(self.spill_dir, JOIN_BUCKETS, JOIN_SPILL_BYTES,
                                                                    name="dedup-run"))
                    | "TagRuns" >> beam.Map(lambda kv: (kv[0], ("r", kv[1]))))
            keyed = decisions | "KeyDecisionByBucket" >> beam.Map(lambda kv: (_join_bucket(kv[0]), ("d", kv)))
            decided = ((runs, keyed)
                       | "FlattenRunsAndDecisions" >> beam.Flatten()
                       | "GroupByJoinBucket" >> beam.GroupByKey()
                       | "ApplyDecisions" >> beam.ParDo(_JoinOnDisk()).with_outputs(REJECTED_TAG, main=KEPT))
        else:
            decided = ({"doc": kept | "KeyDocById" >> beam.Map(lambda d: (d.id, d)), "decision": decisions}
                       | "JoinDecisions" >> beam.CoGroupByKey()
                       | "ApplyDecisions" >> beam.ParDo(_Apply()).with_outputs(REJECTED_TAG, main=KEPT))
        return stage_output(decided[KEPT], decided[REJECTED_TAG])


class ExactDedup(Dedup):
    """Exact dedup only (one survivor per normalised-text hash)."""

    def __init__(self, **kwargs):
        super().__init__(DedupSettings(mode="exact"), **kwargs)


class NearDedup(Dedup):
    """Near dedup with MinHash LSH; ``exact_first`` (default) runs exact dedup before, as ``--dedup near``."""

    def __init__(self, minhash: MinHashSettings = MinHashSettings(), exact_first: bool = True,
                 reference_index: str | None = None, **kwargs):
        super().__init__(DedupSettings(mode="near", minhash=minhash, reference_index=reference_index), **kwargs)
        self.exact = exact_first


class ReferenceMatch(Dedup):
    """Reference matching only: documents matching the pre-cutoff index get content_provenance=pre_cutoff."""

    def __init__(self, index_path: str, exact: bool = False, minhash: MinHashSettings = MinHashSettings(),
                 **kwargs):
        super().__init__(DedupSettings(mode="exact" if exact else "none", minhash=minhash,
                                       reference_index=index_path), **kwargs)


__all__ = ["Dedup", "ExactDedup", "NearDedup", "ReferenceMatch"]
