"""The light records dedup shuffles instead of documents, and the survivor rule.

A :class:`Node` is what dedup needs of a document (id, text hash, capture time, provenance, signature) plus
what it has learnt about the copies it stands for (count, earliest capture, any pre-cutoff copy, earliest
reference match). Merging nodes is associative, so the same :class:`ClusterSummary` serves exact clusters
(one text hash) and near-dup components (nodes that are themselves exact-cluster representatives).

Survivor rule: the earliest capture; ties (and missing capture times, which sort last) by lowest id. A cluster
that matches a reference index gets the index's earliest date as ``first_seen`` (and ``pre_cutoff`` content when
that document is pre-cutoff evidence), or, when matches are to be rejected, is rejected whole as a copy of the
indexed document: a finished run already holds it, and the earliest-capture rule holds within a run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

from pipeline.document import Document
from pipeline.provenance import PRE_CUTOFF, captured_pre_cutoff
from pipeline.reasons import REASON_DUPLICATE_EXACT, REASON_DUPLICATE_NEAR

SOURCE_SELF, SOURCE_CLUSTER, SOURCE_REFERENCE = "self", "cluster", "reference"
KEEP = "keep"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


def to_us(t: dt.datetime | None) -> int | None:
    """Microseconds since the epoch (a naive time is taken as UTC), or None."""
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return (t - _EPOCH) // _US


def from_us(us: int | None) -> dt.datetime | None:
    return None if us is None else _EPOCH + dt.timedelta(microseconds=us)


def _min_opt(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


class Node(NamedTuple):
    id: str
    text_hash: str
    date_us: int | None  # this copy's capture time
    pre: bool  # this copy is pre-cutoff evidence (provenance.captured_pre_cutoff)
    provenance: str
    sig: bytes | None = None  # MinHash values (little-endian uint32); None: not computed or text too short
    size: int = 1  # documents this node stands for (itself and its exact copies)
    first_us: int | None = None  # earliest capture among them
    any_pre: bool = False  # any of them pre-cutoff evidence
    ref_us: int | None = None  # earliest matching reference document's date
    ref_id: str | None = None
    ref_hash: str | None = None  # its text hash (an exact copy of it, or a near one)
    ref_pre: bool = False  # it is pre-cutoff evidence

    @property
    def order(self) -> tuple:
        """The survivor order: earliest capture first, no capture time last, then lowest id."""
        return (self.date_us is None, self.date_us or 0, self.id)

    def light(self) -> Node:
        return self._replace(sig=None)


def node_of(doc: Document, text_hash: str, sig: bytes | None) -> Node:
    date_us = to_us(doc.warc_date)
    pre = captured_pre_cutoff(doc)
    return Node(doc.id, text_hash, date_us, pre, doc.provenance, sig, 1, date_us, pre)


class ClusterSummary:
    """Streaming aggregate of nodes: survivor, total size, earliest capture, pre-cutoff evidence, reference."""

    __slots__ = ("survivor", "size", "first_us", "any_pre", "ref_us", "ref_id", "ref_hash", "ref_pre", "count")

    def __init__(self):
        self.survivor: Node | None = None
        self.size = 0
        self.count = 0
        self.first_us: int | None = None
        self.any_pre = False
        self.ref_us: int | None = None
        self.ref_id: str | None = None
        self.ref_hash: str | None = None
        self.ref_pre = False

    def add(self, node: Node) -> None:
        if self.survivor is None or node.order < self.survivor.order:
            self.survivor = node
        self.count += 1
        self.size += node.size
        self.first_us = _min_opt(self.first_us, node.first_us)
        self.any_pre = self.any_pre or node.any_pre
        if node.ref_us is not None and (self.ref_us is None or (node.ref_us, node.ref_id) < (self.ref_us, self.ref_id)):
            self.ref_us, self.ref_id, self.ref_hash, self.ref_pre = node.ref_us, node.ref_id, node.ref_hash, \
                node.ref_pre

    @classmethod
    def of(cls, nodes: Iterable[Node]) -> ClusterSummary:
        s = cls()
        for n in nodes:
            s.add(n)
        return s

    def _survivor(self) -> Node:
        if self.survivor is None:  # a cluster is made from at least one node
            raise ValueError("an empty cluster has no survivor")
        return self.survivor

    def as_node(self) -> Node:
        """The survivor standing for the whole cluster (its signature kept: exact copies share it)."""
        return self._survivor()._replace(size=self.size, first_us=self.first_us, any_pre=self.any_pre,
                                         ref_us=self.ref_us, ref_id=self.ref_id, ref_hash=self.ref_hash,
                                         ref_pre=self.ref_pre)

    def decision(self, reject_reference: bool = False) -> Decision:
        """What the survivor gets: cluster size, first seen, content provenance and where that came from. With
        ``reject_reference`` and a reference match, the whole cluster is a copy of the indexed document (which a
        finished run already holds): the decision is the survivor's rejection, duplicate of the reference."""
        s = self._survivor()
        first = _min_opt(self.first_us, self.ref_us)
        if reject_reference and self.ref_id is not None:
            kind = REASON_DUPLICATE_EXACT if s.text_hash == self.ref_hash else REASON_DUPLICATE_NEAR
            return Decision(kind, self.ref_id, self.ref_hash or "", self.size, first, s.provenance,
                            SOURCE_REFERENCE, self.ref_us, self.ref_id, s.text_hash)
        if s.pre:
            content, source = PRE_CUTOFF, SOURCE_SELF
        elif self.any_pre:
            content, source = PRE_CUTOFF, SOURCE_CLUSTER
        elif self.ref_us is not None and self.ref_pre:
            content, source = PRE_CUTOFF, SOURCE_REFERENCE
        else:
            content, source = s.provenance, SOURCE_SELF
        return Decision(KEEP, s.id, s.text_hash, self.size, first, content, source, s.date_us, self.ref_id)


class Decision(NamedTuple):
    """The outcome for one document: kept (with cluster facts) or a duplicate of ``survivor_id``."""

    kind: str  # KEEP, REASON_DUPLICATE_EXACT or REASON_DUPLICATE_NEAR
    survivor_id: str
    survivor_hash: str
    cluster_size: int
    first_us: int | None
    content_provenance: str
    source: str
    survivor_date_us: int | None = None
    ref_id: str | None = None
    text_hash: str | None = None  # the document's own hash (losers); survivors use survivor_hash

    def for_member(self, member_id: str, member_hash: str) -> Decision:
        """The decision for another member of this decision's cluster."""
        if member_id == self.survivor_id and self.kind == KEEP:
            return self
        kind = REASON_DUPLICATE_EXACT if member_hash == self.survivor_hash else REASON_DUPLICATE_NEAR
        return self._replace(kind=kind, text_hash=member_hash)


def apply_decision(doc: Document, d: Decision) -> Document:
    if d.kind == KEEP and d.survivor_id == doc.id:
        doc.text_hash = d.survivor_hash or None
        doc.dup_cluster_size = d.cluster_size
        doc.first_seen = from_us(d.first_us)
        doc.content_provenance = d.content_provenance
        doc.content_provenance_source = d.source
        return doc
    doc.text_hash = d.text_hash or None
    doc.duplicate_of = d.survivor_id
    when = from_us(d.survivor_date_us)
    what = "copy" if d.kind == REASON_DUPLICATE_EXACT else "near copy"
    where = " in the reference index" if d.source == SOURCE_REFERENCE else ""
    return doc.reject(d.kind, f"{what} of {d.survivor_id}{where} (captured {when.isoformat() if when else 'unknown'});"
                              f" cluster of {d.cluster_size}")
