"""The interface of a per-document step, and its Beam wrapper.

A step is a plain object (no Beam import needed to write one): ``setup()`` loads whatever is heavy once per
worker, ``process(doc)`` fills the document's fields (scores) and may reject it through a policy with a reason
code. Rejected documents are passed through untouched. Steps that need a shuffle (dedup) or a model handler
(scoring) are PTransforms instead.
"""

from __future__ import annotations

from typing import Protocol

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.document import ERROR_STEP, Document, ErrorRecord

ERRORS_TAG = "errors"
NAMESPACE = "lowbackground"


class DocumentStep(Protocol):
    name: str

    def setup(self) -> None: ...

    def process(self, doc: Document) -> Document: ...


def reject_counter(reason: str):
    return Metrics.counter(NAMESPACE, f"rejected_{reason}")


def error_counter(reason: str):
    return Metrics.counter(NAMESPACE, f"error_{reason}")


class ApplySteps(beam.DoFn):
    """Run steps in order on each kept document; an exception turns the document into an error row."""

    def __init__(self, steps: list[DocumentStep]):
        self.steps = steps
        self._counters: dict[str, object] = {}

    def setup(self):
        for step in self.steps:
            step.setup()

    def _count(self, reason: str):
        if reason not in self._counters:
            self._counters[reason] = reject_counter(reason)
        self._counters[reason].inc()

    def process(self, doc: Document):
        for step in self.steps:
            if doc.rejected:
                break
            try:
                doc = step.process(doc)
            except Exception as exc:  # a bad document must not take the bundle down with it
                error_counter(ERROR_STEP).inc()
                yield beam.pvalue.TaggedOutput(
                    ERRORS_TAG, ErrorRecord.for_document(doc, exc, stage=step.name, reason=ERROR_STEP))
                return
            if doc.rejected:
                self._count(doc.reason)
        yield doc
