"""AI-text scores in Beam: the cascade, and a scoring transform per detector. Nothing here decides.

The detectors library stays Beam-free; this module runs its detectors over Documents. Each configured detector
is first described on the launcher (:func:`detector_specs`: name, direction, model ids, from the registry,
without loading a model; the thresholds are computed for those model ids), then loaded on the workers, once per
worker process, in ``setup()`` / ``load_model``, and checked to be the detector the launcher described. Nothing
is cached across runs or tests: a model lives as long as the worker's DoFn or model handler.

* A language-model detector runs through Beam's ``RunInference`` (:mod:`pipeline.inference`: our
  ``ModelHandler``, keyed by document id, batches weighted by an estimate of the tokens each text costs,
  ``--max-tokens``, one model per machine with ``--large-model``, a GPU resource hint on that step only).
* A cheap detector (fastText) runs in a plain ``ParDo`` over ``BatchElements`` (:class:`_ScoreBatches`), so a
  run without a language model imports neither torch nor transformers nor ``apache_beam.ml.inference``
  (which imports torch): :mod:`pipeline.inference` is imported only when a language-model detector is in the
  cascade. Its batches are of a fixed ``--max-batch-size`` documents: Beam's adaptive batch sizing times every
  batch and fits a regression to the timings, which costs more than a batch of fastText, and started at one
  document a batch (~5 on average over a run). A score does not depend on the batch it is computed in.

Either way a batch that raises becomes an error row per document (``scoring_failed``, stage
``score:<detector>``) with the cause, and every other batch goes on.

Cascade (``--detectors fasttext,binoculars``): every detector after the first scores only what the previous one
could not decide (its score inside ``--cascade-band``, or no score). Language-model detectors do not score
documents whose text is known to predate the cutoff (:func:`pipeline.provenance.human_era`) except a
deterministic ``--score-pre-cutoff`` sample, kept for calibration. Documents a detector skipped say why in
``not_scored_reason``. Every score is stored on the row (``scores``: one :class:`~pipeline.document.ScoreRecord`
per detector); thresholds and the machine-text decision over them are :mod:`pipeline.decision`'s.

Long documents: the LM detectors score the first window (512 tokens for Binoculars, the reference convention)
and flag ``truncated`` on the score; fastText reads the first 4096 words.
"""

from __future__ import annotations

from collections.abc import Sequence

import apache_beam as beam

from common.hashing import unit_fraction
from detectors.base import Detector, Score
from detectors.registry import DetectorSpec, build_detector, describe, is_language_model
from pipeline.document import Document, ErrorRecord, ScoreRecord
from pipeline.provenance import human_era
from pipeline.reasons import ERROR_SCORING, SCORE
from pipeline.settings import ScoringSettings
from pipeline.steps import ERRORS, KEPT, StageCounters, stage_output


def detector_specs(settings: ScoringSettings) -> list[DetectorSpec]:
    """What each configured detector is (name, direction, model ids, published thresholds), from the registry
    without loading a model; raises for a model file or folder that is not there."""
    return [describe(name, **settings.detector_options(name)) for name in settings.detectors]


def load_detector(name: str, options: dict, model_ids: Sequence[str] | None) -> Detector:
    """Build detector ``name`` (its models load here: call once per worker) and check it reports the model ids
    the launcher described, which the run's thresholds are for."""
    detector = build_detector(name, **options)
    if model_ids is not None and list(detector.model_ids) != list(model_ids):
        raise RuntimeError(f"{name} loaded models {detector.model_ids}, not the {list(model_ids)} the launcher "
                           "described and the thresholds are for")
    return detector


def attach_score(doc: Document, name: str, models: Sequence[str], score: Score) -> Document:
    """Store detector ``name``'s score on ``doc`` (replacing an earlier one of the same detector)."""
    doc.scores = [s for s in doc.scores if s.detector != name] + [ScoreRecord(
        detector=name, models=tuple(models), value=score.value, tokens=score.tokens, truncated=score.truncated,
        reason=score.reason)]
    if score.value is None:
        note_not_scored(doc, f"{name}:{score.reason}")
    return doc


def note_not_scored(doc: Document, reason: str) -> None:
    doc.not_scored_reason = f"{doc.not_scored_reason};{reason}" if doc.not_scored_reason else reason


def scoring_error(doc: Document, exc: BaseException, stage: str) -> ErrorRecord:
    return ErrorRecord.for_document(doc, exc, stage=stage, reason=ERROR_SCORING)


class _ScoreBatches(beam.DoFn):
    """Batches of documents -> the documents with detector ``name``'s score, or an error row each for a batch
    the detector raised on; a document the router sends past the detector goes on unscored. The detector loads
    in ``setup()``, once per worker (never pickled). Routing here rather than in a step of its own spares the
    local runner a Flatten to rejoin the two halves, which it materialises (every document buffered)."""

    def __init__(self, name: str, options: dict, model_ids: Sequence[str], router: _Router):
        self.name, self.options, self.model_ids = name, dict(options), tuple(model_ids)
        self.router = router
        self.stage = f"{SCORE}:{name}"
        self.counters = StageCounters(self.stage)
        self.detector: Detector | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "detector": None}

    def setup(self):
        self.detector = load_detector(self.name, self.options, self.model_ids)

    def process(self, batch: list[Document]):
        assert self.detector is not None, "setup() loads the detector"
        routed = []
        for doc in batch:
            if self.router.scores(doc):
                routed.append(doc)
            else:
                yield doc
        if not routed:
            return
        try:
            scores = self.detector.score([doc.text or "" for doc in routed])
            if len(scores) != len(routed):
                raise RuntimeError(f"{self.name} returned {len(scores)} scores for {len(routed)} texts")
        except Exception as exc:  # one bad batch must not take the run down: its documents become error rows
            for doc in routed:
                self.counters.error(ERROR_SCORING)
                yield beam.pvalue.TaggedOutput(ERRORS, scoring_error(doc, exc, self.stage))
            return
        models = list(self.detector.model_ids)
        for doc, score in zip(routed, scores):
            self.counters.kept()
            yield attach_score(doc, self.name, models, score)


class _Router:
    """Whether detector ``name`` scores a document, or it goes past with the reason noted (module docstring)."""

    def __init__(self, name: str, previous: str | None, band, pre_cutoff_fraction: float):
        self.name, self.previous, self.band = name, previous, band
        self.pre_cutoff_fraction = pre_cutoff_fraction
        self.counters = StageCounters(f"{SCORE}:{name}")

    def scores(self, doc: Document) -> bool:
        if is_language_model(self.name) and human_era(doc) and unit_fraction(doc.id) >= self.pre_cutoff_fraction:
            note_not_scored(doc, f"{self.name}:pre_cutoff")
            self.counters.count("not_scored_pre_cutoff")
            return False
        if self.previous and self.band:
            prev = doc.score_of(self.previous)
            if prev is not None and prev.value is not None and not self.band[0] <= prev.value <= self.band[1]:
                note_not_scored(doc, f"{self.name}:outside_cascade_band")
                self.counters.count("not_scored_outside_band")
                return False
        self.counters.count("routed")
        return True


class _Route(beam.DoFn):
    """Send a document to detector ``name`` (main output) or past it (``skip``), with the reason it was skipped."""

    def __init__(self, router: _Router):
        self.router = router

    def process(self, doc: Document):
        yield doc if self.router.scores(doc) else beam.pvalue.TaggedOutput("skip", doc)


class ScoreCascade(beam.PTransform):
    """Kept documents -> {kept: scored documents, errors: ErrorRecord} (:mod:`pipeline.steps`' stage contract;
    scoring rejects nothing)."""

    def __init__(self, settings: ScoringSettings, specs: Sequence[DetectorSpec] | None = None):
        super().__init__()
        self.settings = settings
        self.specs = {spec.name: spec for spec in (specs if specs is not None else detector_specs(settings))}
        self.names = list(settings.detectors)

    def score(self, name: str, documents, router: _Router):
        """{kept, errors} of detector ``name`` over ``documents`` (module docstring: RunInference for a language
        model, a plain ParDo otherwise), the documents it does not score included, unscored."""
        s, model_ids = self.settings, self.specs[name].model_ids
        if is_language_model(name):
            from pipeline.inference import ScoreWithRunInference  # imports torch: only with an LM in the cascade

            routed = documents | f"Route[{name}]" >> beam.ParDo(_Route(router)).with_outputs("skip", main="score")
            scored = routed.score | f"Score[{name}]" >> ScoreWithRunInference(name, s, model_ids)
            kept = (scored[KEPT], routed.skip) | f"Rejoin[{name}]" >> beam.Flatten()
            return stage_output(kept, errors=scored[ERRORS])
        scored = (documents
                  | f"Batch[{name}]" >> beam.BatchElements(min_batch_size=s.max_batch_size,
                                                           max_batch_size=s.max_batch_size)
                  | f"Score[{name}]" >> beam.ParDo(_ScoreBatches(name, s.detector_options(name), model_ids, router))
                  .with_outputs(ERRORS, main=KEPT))
        return stage_output(scored[KEPT], errors=scored[ERRORS])

    def expand(self, documents):
        a = self.settings
        errors = []
        previous = None
        for name in self.names:
            scored = self.score(name, documents, _Router(name, previous, a.cascade_band, a.score_pre_cutoff or 0.0))
            errors.append(scored[ERRORS])
            documents = scored[KEPT]
            previous = name
        all_errors = errors | "ScoringErrors" >> beam.Flatten() if errors else None
        return stage_output(documents, errors=all_errors)
