"""A language-model detector in Beam's ``RunInference``: our ``ModelHandler`` of the `detectors` library.

Imported by :mod:`pipeline.scoring` only when a language-model detector is in the cascade: importing
``apache_beam.ml.inference`` imports torch, which a fastText-only run never needs.

:class:`DetectorModelHandler`: ``load_model`` builds the detector once per worker process (or once per machine
with ``--large-model``) and checks it is the one the launcher described
(:func:`pipeline.scoring.load_detector`); ``run_inference`` scores a batch of Documents. It is used through
``KeyedModelHandler`` keyed by document id, so every result stays attached to its document, and batches are
weighted by an estimate of the tokens each text costs (``--max-tokens``). A batch that raises goes through
RunInference's dead-letter output to an error row per document (``scoring_failed``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import cast

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from detectors.base import Detector, Score, estimate_tokens
from detectors.registry import canonical_name
from pipeline.document import Document
from pipeline.reasons import ERROR_SCORING, SCORE
from pipeline.scoring import attach_score, load_detector, scoring_error
from pipeline.settings import ScoringSettings
from pipeline.steps import NAMESPACE, StageCounters, stage_output

SORTING_POOL_PASSES = 8  # forward passes' worth of text per RunInference batch


def _text_cost(element: tuple[str, Document], cap: int) -> int:
    return max(1, estimate_tokens(element[1].text or "", cap))


class DetectorModelHandler(ModelHandler[Document, PredictionResult, Detector]):
    """RunInference handler for one language-model detector of the `detectors` library; examples are Documents."""

    def __init__(self, name: str, options: dict, *, min_batch_size: int = 1, max_batch_size: int = 64,
                 max_batch_tokens: int | None = None, large_model: bool = False,
                 model_ids: Sequence[str] | None = None):
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size, large_model=large_model)
        self.name = canonical_name(name)
        self.options = {k: v for k, v in options.items() if v is not None}
        self.max_batch_tokens = max_batch_tokens
        self.model_ids = list(model_ids) if model_ids is not None else None

    def batch_elements_kwargs(self):
        if not self.max_batch_tokens:
            return super().batch_elements_kwargs()
        # A Beam batch is a pool of several forward passes: the library sorts it by length and packs passes of
        # at most --max-tokens each, so a bigger pool means less padding. Beam 2.77's BatchElements has no
        # max_batch_weight: with an element_size_fn its min/max batch sizes are weights (estimated tokens). Its
        # adaptive sizing starts at the minimum and grows with measured latency, which only costs a throughput
        # job padding (300 texts took 33 passes in 23 growing pools, against 12 passes in one): every pool is
        # full size. An element heavier than the target would go out as an empty batch: each is capped well
        # below it.
        pool = self.max_batch_tokens * SORTING_POOL_PASSES
        cap = max(1, self.max_batch_tokens // 2)
        return {"min_batch_size": pool, "max_batch_size": pool,
                "element_size_fn": functools.partial(_text_cost, cap=cap)}

    def load_model(self) -> Detector:
        return load_detector(self.name, self.options, self.model_ids)

    def run_inference(self, batch: Sequence[Document], model: Detector, inference_args=None):
        scores = model.score([doc.text or "" for doc in batch])
        return [PredictionResult(example=doc, inference=score, model_id=",".join(model.model_ids))
                for doc, score in zip(batch, scores)]

    def get_metrics_namespace(self) -> str:
        return f"{NAMESPACE}_runinference_{self.name}"

    def share_model_across_processes(self) -> bool:
        return self._large_model


class _Attach(beam.DoFn):
    """(id, RunInference's result) -> the document with detector ``name``'s score record appended."""

    def __init__(self, name: str):
        self.name = name
        self.counters = StageCounters(f"{SCORE}:{name}")

    def process(self, element: tuple[str, PredictionResult]):
        _, result = element
        models = result.model_id.split(",") if result.model_id else []
        doc, score = cast(Document, result.example), cast(Score, result.inference)
        self.counters.kept()
        yield attach_score(doc, self.name, models, score)


class _FailedBatch(beam.DoFn):
    """RunInference's dead letter, (batch of (id, document), (type, repr, traceback)): an error row per document."""

    def __init__(self, name: str):
        self.stage = f"{SCORE}:{name}"
        self.counters = StageCounters(self.stage)

    def process(self, element):
        batch, (exc_type, exc_repr, _) = element
        for _, doc in batch:
            self.counters.error(ERROR_SCORING)
            error = scoring_error(doc, RuntimeError(exc_repr), self.stage)
            error.exception_type = getattr(exc_type, "__name__", str(exc_type))
            yield error


class ScoreWithRunInference(beam.PTransform):
    """Documents -> {kept: the documents with detector ``name``'s score, errors}: one LM detector through
    RunInference."""

    def __init__(self, name: str, settings: ScoringSettings, model_ids: Sequence[str]):
        super().__init__()
        self.name, self.settings, self.model_ids = name, settings, list(model_ids)

    def expand(self, documents):
        s, name = self.settings, self.name
        handler: KeyedModelHandler = KeyedModelHandler(DetectorModelHandler(
            name, s.detector_options(name), min_batch_size=s.min_batch_size, max_batch_size=s.max_batch_size,
            max_batch_tokens=s.max_tokens, large_model=s.large_model, model_ids=self.model_ids))
        inference = RunInference(handler)
        if s.gpu_resource_hint:
            # GPU on the scoring step only: the rest of the job stays on cheap CPU workers (with_resource_hints
            # returns the same RunInference, typed as a plain PTransform).
            inference.with_resource_hints(accelerator=s.gpu_resource_hint)
        main, dead = (documents
                      | "Key" >> beam.Map(lambda doc: (doc.id, doc))
                      | "RunInference" >> inference.with_exception_handling())
        scored = main | "Attach" >> beam.ParDo(_Attach(name))
        errors = dead.failed_inferences | "FailedBatches" >> beam.ParDo(_FailedBatch(name))
        return stage_output(scored, errors=errors)
