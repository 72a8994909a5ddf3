"""AI-text scoring in Beam: a ModelHandler per detector, a cascade, run-level calibration and the decision.

The detectors library stays Beam-free; :class:`DetectorModelHandler` wraps any of its detectors for
RunInference: ``load_model`` builds the detector once per worker process (or once per machine with
``--large-model``), ``run_inference`` scores a batch of Documents. It is used through ``KeyedModelHandler`` keyed
by document id, so every result stays attached to its document, and batches are weighted by an estimate of the
tokens each text costs (``--max-tokens`` for the LM detectors). A batch that raises goes to the error shards
through RunInference's dead-letter output, with the ids and the cause of each of its documents.

Cascade (``--detectors fasttext,binoculars``): every detector after the first scores only what the previous one
could not decide (its score inside ``--cascade-band``, or no score). Language-model detectors do not score
pre-cutoff documents (human-era by construction) except a deterministic ``--score-pre-cutoff`` sample, kept for
calibration. Documents a detector skipped say why in ``not_scored_reason``.

Long documents: the LM detectors score the first window (512 tokens for Binoculars, the reference convention)
and flag ``truncated`` on the score; fastText reads the first 4096 words.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from detectors.base import Detector, estimate_tokens
from detectors.registry import build_detector, canonical_name
from pipeline.document import Document, ErrorRecord
from pipeline.layout import THRESHOLDS_FILE, join, write_bytes
from pipeline.machine_policy import (
    DetectorInfo,
    MachinePolicy,
    calibration_keys,
    compute_thresholds,
    is_human_era,
    stable_fraction,
)
from pipeline.reasons import DECISION, ERROR_SCORING, SCORE
from pipeline.settings import DecisionSettings, ScoringSettings
from pipeline.steps import KEPT, NAMESPACE, REJECTED_TAG, StageCounters, stage_output

CHEAP_DETECTORS = frozenset({"fasttext"})
CALIBRATION_SAMPLE = 100_000  # per (detector, language): an exact quantile over a bounded, deterministic sample
SORTING_POOL_PASSES = 8  # forward passes' worth of text per RunInference batch


# Detectors built by this process for the current run: the launcher builds each once to fail fast, and a runner
# that executes in the same process (the in-memory DirectRunner) reuses them instead of loading the models again.
_BUILT: dict[tuple, Detector] = {}


def build_cached(name: str, options: dict) -> Detector:
    key = (name, tuple(sorted(options.items())))
    if key not in _BUILT:
        _BUILT[key] = build_detector(name, **options)
    return _BUILT[key]


def release_detectors() -> None:
    _BUILT.clear()


def _text_cost(element: tuple[str, Document], cap: int) -> int:
    return max(1, estimate_tokens(element[1].text, cap))


class DetectorModelHandler(ModelHandler[Document, PredictionResult, Detector]):
    """RunInference handler for one detector of the `detectors` library; examples are Documents."""

    def __init__(self, name: str, options: dict, *, min_batch_size: int = 1, max_batch_size: int = 64,
                 max_batch_tokens: int | None = None, large_model: bool = False):
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size, large_model=large_model)
        self.name = canonical_name(name)
        self.options = {k: v for k, v in options.items() if v is not None}
        self.max_batch_tokens = max_batch_tokens if self.name not in CHEAP_DETECTORS else None

    def batch_elements_kwargs(self):
        if not self.max_batch_tokens:
            return super().batch_elements_kwargs()
        # A Beam batch is a pool of several forward passes: the library sorts it by length and packs passes of
        # at most --max-tokens each, so a bigger pool means less padding. Beam 2.77's BatchElements has no
        # max_batch_weight: with an element_size_fn its min/max batch sizes are weights (estimated tokens). It
        # also emits an empty batch when one element outweighs its first target: elements are capped at the
        # minimum weight to avoid that.
        cap = max(1, self.max_batch_tokens // 2)
        return {"min_batch_size": cap, "max_batch_size": self.max_batch_tokens * SORTING_POOL_PASSES,
                "element_size_fn": functools.partial(_text_cost, cap=cap)}

    def load_model(self) -> Detector:
        return build_cached(self.name, self.options)

    def run_inference(self, batch: Sequence[Document], model: Detector, inference_args=None):
        scores = model.score([doc.text for doc in batch])
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
        doc, score = result.example, result.inference
        models = result.model_id.split(",") if result.model_id else []
        doc.scores = [s for s in doc.scores if s["detector"] != self.name] + [{
            "detector": self.name, "models": models, "value": score.value, "tokens": score.tokens,
            "truncated": score.truncated, "reason": score.reason}]
        if score.value is None:
            _note_not_scored(doc, f"{self.name}:{score.reason}")
        self.counters.kept()
        yield doc


def _note_not_scored(doc: Document, reason: str) -> None:
    doc.not_scored_reason = f"{doc.not_scored_reason};{reason}" if doc.not_scored_reason else reason


class _FailedBatch(beam.DoFn):
    """RunInference's dead letter, (batch of (id, document), (type, repr, traceback)): an error row per document."""

    def __init__(self, name: str):
        self.stage = f"{SCORE}:{name}"
        self.counters = StageCounters(self.stage)

    def process(self, element):
        batch, (exc_type, exc_repr, _) = element
        for _, doc in batch:
            self.counters.error(ERROR_SCORING)
            error = ErrorRecord.for_document(doc, RuntimeError(exc_repr), stage=self.stage, reason=ERROR_SCORING)
            error.exception_type = getattr(exc_type, "__name__", str(exc_type))
            yield error


class _Route(beam.DoFn):
    """Send a document to detector ``name`` or past it, with the reason it was skipped."""

    def __init__(self, name: str, previous: str | None, band, pre_cutoff_fraction: float):
        self.name, self.previous, self.band = name, previous, band
        self.pre_cutoff_fraction = pre_cutoff_fraction
        self.counters = StageCounters(f"{SCORE}:{name}")

    def process(self, doc: Document):
        if self.name not in CHEAP_DETECTORS and is_human_era(doc) and \
                stable_fraction(doc.id) >= self.pre_cutoff_fraction:
            _note_not_scored(doc, f"{self.name}:pre_cutoff")
            self.counters.count("not_scored_pre_cutoff")
            yield beam.pvalue.TaggedOutput("skip", doc)
            return
        if self.previous and self.band:
            prev = doc.score_of(self.previous)
            if prev is not None and prev["value"] is not None and not self.band[0] <= prev["value"] <= self.band[1]:
                _note_not_scored(doc, f"{self.name}:outside_cascade_band")
                self.counters.count("not_scored_outside_band")
                yield beam.pvalue.TaggedOutput("skip", doc)
                return
        self.counters.count("routed")
        yield doc


class ScoreCascade(beam.PTransform):
    """Kept documents -> {kept: scored documents, errors: ErrorRecord} (:mod:`pipeline.steps`' stage contract;
    scoring rejects nothing)."""

    def __init__(self, settings: ScoringSettings):
        super().__init__()
        self.settings = settings
        self.names = list(settings.detectors)

    def handler(self, name: str) -> KeyedModelHandler:
        s = self.settings
        return KeyedModelHandler(DetectorModelHandler(
            name, s.detector_options(name), min_batch_size=s.min_batch_size, max_batch_size=s.max_batch_size,
            max_batch_tokens=s.max_tokens, large_model=s.large_model))

    def expand(self, documents):
        a = self.settings
        errors = []
        previous = None
        for name in self.names:
            routed = documents | f"Route[{name}]" >> beam.ParDo(
                _Route(name, previous, a.cascade_band, a.score_pre_cutoff or 0.0)).with_outputs("skip", main="score")
            inference = RunInference(self.handler(name))
            if a.gpu_resource_hint and name not in CHEAP_DETECTORS:
                # GPU on the scoring step only: the rest of the job stays on cheap CPU workers.
                inference = inference.with_resource_hints(accelerator=a.gpu_resource_hint)
            main, dead = (routed.score
                          | f"Key[{name}]" >> beam.Map(lambda doc: (doc.id, doc))
                          | f"Score[{name}]" >> inference.with_exception_handling())
            scored = main | f"Attach[{name}]" >> beam.ParDo(_Attach(name))
            errors.append(dead.failed_inferences | f"FailedBatches[{name}]" >> beam.ParDo(_FailedBatch(name)))
            documents = (scored, routed.skip) | f"Rejoin[{name}]" >> beam.Flatten()
            previous = name
        all_errors = errors | "ScoringErrors" >> beam.Flatten() if errors else None
        return stage_output(documents, errors=all_errors)


def detector_infos(settings: ScoringSettings) -> list[DetectorInfo]:
    """Name, direction, model ids and published thresholds of each configured detector (loads each once)."""
    infos = []
    for name in settings.detectors:
        detector = build_cached(name, settings.detector_options(name))
        infos.append(DetectorInfo(detector.name, detector.direction, tuple(detector.model_ids),
                                  tuple(sorted(detector.published_thresholds.items()))))
    return infos


def _sample_key(entry: tuple[str, str, str, float]):
    detector, language, doc_id, value = entry
    return (detector, language), (stable_fraction(doc_id), value)


def _thresholds(samples: list, infos: list[DetectorInfo], settings: DecisionSettings) -> dict:
    grouped: dict[tuple[str, str], list[float]] = defaultdict(list)
    for key, sample in samples:
        grouped[tuple(key)] = [value for _, value in sample]
    return compute_thresholds(grouped, infos, settings.target_fpr, settings.min_calibration_docs, settings.thresholds)


class CalibrateAndDecide(beam.PTransform):
    """Thresholds from this run's pre-cutoff scores (a side input), then the machine-text policy."""

    def __init__(self, settings: DecisionSettings, infos: list[DetectorInfo], output: str):
        super().__init__()
        self.settings, self.infos, self.output = settings, infos, output

    def expand(self, documents):
        settings, infos = self.settings, self.infos
        thresholds = (documents
                      | "CalibrationScores" >> beam.FlatMap(calibration_keys)
                      | "KeyByDetectorLanguage" >> beam.Map(_sample_key)
                      | "BoundedSample" >> beam.combiners.Top.PerKey(CALIBRATION_SAMPLE, key=lambda s: -s[0])
                      | "AllSamples" >> beam.combiners.ToList()
                      | "Thresholds" >> beam.Map(_thresholds, infos, settings))
        _ = thresholds | "WriteThresholds" >> beam.Map(_write_thresholds, self.output)
        self.thresholds = thresholds  # one dict; the run statistics flag scores with the same rule
        policy = MachinePolicy([i.name for i in infos], settings.on_uncertain, settings.on_machine)
        decided = documents | "MachinePolicy" >> beam.ParDo(
            _Decide(policy), beam.pvalue.AsSingleton(thresholds)).with_outputs(REJECTED_TAG, main=KEPT)
        return stage_output(decided[KEPT], decided[REJECTED_TAG])


class _Decide(beam.DoFn):
    def __init__(self, policy: MachinePolicy):
        self.policy = policy
        self.counters = StageCounters(DECISION)

    def process(self, doc: Document, thresholds: dict):
        doc = self.policy.decide(doc, thresholds)
        if doc.rejected:
            self.counters.rejected(doc.reason)
            yield beam.pvalue.TaggedOutput(REJECTED_TAG, doc)
            return
        self.counters.kept()
        yield doc


def _write_thresholds(thresholds: dict, output: str) -> None:
    data = json.dumps(thresholds, indent=2, sort_keys=True).encode()
    write_bytes(join(output, THRESHOLDS_FILE), data)
