"""pipeline/steps.py: the stage contract and the counters, on real pages. A document leaves at the step that
rejects it or fails on it (later steps never see it), every document lands in exactly one output, and the
counters name kept / rejected_<reason> / error_<reason> per step, counted against the inputs independently."""

from __future__ import annotations

import pickle

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that

from pipeline.document import Document, ErrorRecord
from pipeline.reasons import ERROR_STEP, REASON_EMPTY_TEXT, UnknownReason
from pipeline.steps import NAMESPACE, DocumentSteps, StageCounters

MIN_CHARS = 600  # 3 of the 8 pages are shorter


class ShortText:
    """Rejects documents with little text (a registered reason of its own stage)."""

    name = "content"

    def setup(self) -> None:
        pass

    def process(self, doc: Document) -> Document:
        if len(doc.text or "") < MIN_CHARS:
            return doc.reject(REASON_EMPTY_TEXT, f"{len(doc.text or '')} characters")
        return doc


class FailsOn:
    """Raises on one document: a bug in a step costs that document, not the bundle."""

    name = "quality"

    def __init__(self, doc_id: str):
        self.doc_id = doc_id

    def setup(self) -> None:
        pass

    def process(self, doc: Document) -> Document:
        if doc.id == self.doc_id:
            raise RuntimeError("a bug in the step")
        return doc


class Marks:
    """Marks what it sees, so the test can tell which documents reached the last step."""

    name = "language"

    def __init__(self):
        self.loaded = False

    def setup(self) -> None:
        self.loaded = True  # once per worker, before any document

    def process(self, doc: Document) -> Document:
        doc.language = "seen" if self.loaded else "not set up"
        return doc


def run_steps(docs: list[Document], steps: list, tmp_path) -> tuple[dict[str, list], dict[str, int]]:
    outputs: dict[str, list] = {}

    def capture(name):
        def write(actual):
            with open(tmp_path / f"{name}.pkl", "wb") as fh:
                pickle.dump(list(actual), fh)
        return write

    p = beam.Pipeline(runner="DirectRunner", options=PipelineOptions([]))
    out = p | beam.Create(docs, reshuffle=False) | "Steps" >> DocumentSteps(steps)
    for name, pcoll in out.items():
        assert_that(pcoll, capture(name), label=f"Capture_{name}")
    result = p.run()
    result.wait_until_finish()
    for name in out:
        with open(tmp_path / f"{name}.pkl", "rb") as fh:
            outputs[name] = pickle.load(fh)
    counters = {f"{r.key.metric.namespace}/{r.key.metric.name}": r.committed
                for r in result.metrics().query(MetricsFilter())["counters"]
                if r.key.metric.namespace.startswith(NAMESPACE)}
    return outputs, counters


def test_a_document_leaves_at_the_step_that_rejects_or_fails_on_it(cc_pages, doc_factory, at, tmp_path):
    docs = [doc_factory(f"d{i}", page["text"], at(2020)) for i, page in enumerate(cc_pages)]
    short = {d.id for d in docs if len(d.text) < MIN_CHARS}
    long = [d.id for d in docs if d.id not in short]
    assert short and len(long) > 2
    failing = long[1]
    out, counters = run_steps(docs, [ShortText(), FailsOn(failing), Marks()], tmp_path)

    assert set(out) == {"kept", "rejected", "errors"}
    assert {d.id for d in out["rejected"]} == short
    assert all(d.reason == REASON_EMPTY_TEXT and d.language is None for d in out["rejected"])  # never reached Marks
    assert [(e.document_id, e.stage, e.reason) for e in out["errors"]] == [(failing, "quality", ERROR_STEP)]
    assert isinstance(out["errors"][0], ErrorRecord) and "a bug in the step" in out["errors"][0].message
    assert sorted(d.id for d in out["kept"]) == sorted(set(long) - {failing})
    assert {d.language for d in out["kept"]} == {"seen"}  # setup() ran before process()

    n, n_short = len(docs), len(short)
    assert counters == {
        "lowbackground.content/kept": n - n_short, f"lowbackground.content/rejected_{REASON_EMPTY_TEXT}": n_short,
        "lowbackground.quality/kept": n - n_short - 1, f"lowbackground.quality/error_{ERROR_STEP}": 1,
        "lowbackground.language/kept": n - n_short - 1,
    }


def test_stage_counters_pickle_without_beam_objects_and_refuse_unknown_reasons():
    counters = StageCounters("content")
    counters.kept()
    counters.rejected(REASON_EMPTY_TEXT)
    copy = pickle.loads(pickle.dumps(counters))
    assert copy.stage == "content" and copy._counters == {}
    for bad in ("not_a_reason", None, ERROR_STEP):  # an error code is not a rejection reason
        with pytest.raises(UnknownReason):
            counters.rejected(bad)
    with pytest.raises(UnknownReason):
        counters.error(REASON_EMPTY_TEXT)
