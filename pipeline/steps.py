"""The stage contract of the Beam pipeline, the per-document step interface, and the one counters helper.

Stage contract. Every stage after the reader is a PTransform that takes *kept* documents only and returns a dict
of PCollections (:func:`stage_output`)::

    {"kept": Document, "rejected": Document, "errors": ErrorRecord}

A document a stage rejects (``doc.reject(reason, detail)``, a code of :mod:`pipeline.reasons` owned by that
stage) leaves through the stage's ``rejected`` output, there, for the rejected sink: later stages never see it,
so no stage re-checks ``doc.rejected``. A document a stage fails on (an exception) becomes an
:class:`~pipeline.document.ErrorRecord` in its ``errors`` output. A stage that cannot reject or fail omits that
key. The builder (:mod:`pipeline.curate`) flattens every stage's ``rejected`` into the rejected shards and every
``errors`` into the errors shards; what the last stage keeps is curated. The stages, in order: ``ExtractText``
(records in), ``DocumentSteps`` (content policy, language, quality), ``Dedup``, ``ScoreCascade``,
``CalibrateAndDecide``. (``ReadWarc``, the source, returns records, errors and per-file input statistics.)

Per-document steps are plain objects (no Beam import needed to write one), DataTrove's filter in spirit:
``setup()`` loads whatever is heavy once per worker, ``process(doc)`` fills the document's fields (its signals)
and may reject it with a reason code. :class:`DocumentSteps` runs them in order in one ``ParDo``. Steps that
need a shuffle (dedup) or a model handler (scoring) are PTransforms of their own, under the same contract.

Counters. :class:`StageCounters` is the one way a stage counts, in Beam's metrics: namespace
``lowbackground.<stage>`` (:data:`NAMESPACE`), names ``kept``, ``rejected_<reason>``, ``error_<reason>`` the same
way in every stage (a stage's own diagnostics beside them: ``skipped_<type>``, ``near_candidates``, ...). The
counters are created once per stage object and reused, never per element. The manifest reports them by stage
(``metrics``), beside the counts read from the shards, which are the ledger.
"""

from __future__ import annotations

from typing import Protocol

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.document import Document, ErrorRecord
from pipeline.reasons import ERROR, ERROR_STEP, REJECTED, check_reason

KEPT, REJECTED_TAG, ERRORS = "kept", "rejected", "errors"
ERRORS_TAG = ERRORS
NAMESPACE = "lowbackground"


def metrics_namespace(stage: str) -> str:
    return f"{NAMESPACE}.{stage}"


class StageCounters:
    """The counters of one stage (module docstring). Picklable; Beam's counter objects are made on first use."""

    def __init__(self, stage: str):
        self.stage = stage
        self._counters: dict[str, object] = {}

    def __getstate__(self) -> dict:
        return {"stage": self.stage, "_counters": {}}

    def count(self, name: str, n: int = 1) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(metrics_namespace(self.stage), name)
        counter.inc(n)  # type: ignore[attr-defined]

    def kept(self, n: int = 1) -> None:
        self.count(KEPT, n)

    def rejected(self, reason: str | None) -> None:
        """Count a rejection; a reason that is not a registered rejection code (None included) raises."""
        self.count(f"rejected_{check_reason(reason or '', REJECTED)}")

    def error(self, reason: str) -> None:
        self.count(f"error_{check_reason(reason, ERROR)}")


def stage_output(kept, rejected=None, errors=None) -> dict:
    """A stage's outputs as the contract names them (keys for the outputs a stage cannot have are left out)."""
    out = {KEPT: kept}
    if rejected is not None:
        out[REJECTED_TAG] = rejected
    if errors is not None:
        out[ERRORS] = errors
    return out


class DocumentStep(Protocol):
    name: str

    def setup(self) -> None: ...

    def process(self, doc: Document) -> Document: ...


class _ApplySteps(beam.DoFn):
    """Run steps in order on each document; a rejection or an exception ends its way at that step."""

    def __init__(self, steps: list[DocumentStep]):
        self.steps = steps
        self.counters = [StageCounters(step.name) for step in steps]

    def setup(self):
        for step in self.steps:
            step.setup()

    def process(self, doc: Document):
        for step, counters in zip(self.steps, self.counters):
            try:
                doc = step.process(doc)
            except Exception as exc:  # a bad document must not take the bundle down with it
                counters.error(ERROR_STEP)
                yield beam.pvalue.TaggedOutput(
                    ERRORS, ErrorRecord.for_document(doc, exc, stage=step.name, reason=ERROR_STEP))
                return
            if doc.rejected:
                counters.rejected(doc.reason)
                yield beam.pvalue.TaggedOutput(REJECTED_TAG, doc)
                return
            counters.kept()
        yield doc


class DocumentSteps(beam.PTransform):
    """Kept documents -> {kept, rejected, errors}: the per-document steps, in order, in one ``ParDo``."""

    def __init__(self, steps: list[DocumentStep]):
        super().__init__()
        self.steps = steps

    def expand(self, documents):
        out = documents | "ApplySteps" >> beam.ParDo(_ApplySteps(self.steps)).with_outputs(
            REJECTED_TAG, ERRORS, main=KEPT)
        return stage_output(out[KEPT], out[REJECTED_TAG], out[ERRORS])
