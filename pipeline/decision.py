"""Calibration and the machine-text decision: over stored scores, in the pipeline and in `lowbg decide` alike.

Scores are stored (:mod:`pipeline.scoring` attaches them); this module turns them into thresholds and decisions,
and nothing here loads a model: a detector is known by its :class:`~detectors.registry.DetectorSpec` (direction,
model ids, published thresholds), which :func:`detectors.registry.describe` gives on the launcher. Thresholds
are :class:`detectors.calibration.Thresholds` objects, the one typed form a threshold has in the project
(written to ``_thresholds.json`` and the manifest as :func:`thresholds_record`, read back with
:func:`thresholds_from_record`).

Thresholds: for each detector, the scores of *pre-cutoff* documents of the run are human text by construction;
the threshold that flags at most ``target_fpr`` of them is computed (per language when a language has at least
``min_calibration_docs`` of them, else over all), with a bootstrap CI (:func:`compute_thresholds`). With fewer
than ``min_calibration_docs`` pre-cutoff scores the threshold comes from ``--thresholds`` (a `lowbg detect
calibrate` file, read through Beam's FileSystems, so gs:// and s3:// too) or the detector's published default,
and the record says which. In the pipeline the sample is bounded: at most :data:`CALIBRATION_SAMPLE` scores per
(detector, language), a deterministic choice by document id.

Decision (:class:`MachinePolicy`): only documents whose text is not known to predate the cutoff are judged
(:func:`pipeline.provenance.human_era`). The deciding detector is the last one in cascade order with a usable
score; a score beyond its threshold flags the document. A flagged document is rejected as ``machine_generated``
when the settings say ``on_machine: reject``, and kept otherwise (its score and flag stay on the row, in
``stats/`` and in the report): by default `lowbg curate` rejects only when a language-model detector is in the
cascade (:func:`pipeline.settings.resolve_on_machine`). A document with no usable score is kept or rejected as
``uncertain`` per ``on_uncertain``. :func:`flags` applies the same rule to every document of every era, for the
run statistics.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Mapping

import apache_beam as beam

from common.hashing import unit_fraction
from detectors.base import LOWER_IS_MACHINE
from detectors.calibration import LanguageThreshold, Thresholds, threshold_at_fpr
from detectors.registry import DetectorSpec
from pipeline.document import Document
from pipeline.layout import THRESHOLDS_FILE, delete, join, read_json, write_bytes
from pipeline.provenance import captured_pre_cutoff, human_era
from pipeline.reasons import DECISION, REASON_MACHINE_GENERATED, REASON_UNCERTAIN
from pipeline.settings import DecisionSettings
from pipeline.sinks import SpillDocuments, read_document_run
from pipeline.steps import KEPT, REJECTED_TAG, StageCounters, stage_output

ALL_LANGUAGES = "*"
N_BOOTSTRAP = 200
CALIBRATION_SAMPLE = 100_000  # per (detector, language): an exact quantile over a bounded, deterministic sample
CALIBRATED = "calibrated on this run's pre-cutoff documents"


# --- thresholds ------------------------------------------------------------------------------------------------


def calibration_keys(doc: Document) -> list[tuple[str, str, str, float]]:
    """(detector, language, doc id, score) entries a document reaching the decision contributes to calibration:
    those of a pre-cutoff capture, once over all languages and once under its own."""
    if not captured_pre_cutoff(doc):
        return []
    out = []
    for s in doc.scores:
        if s.value is not None:
            out.append((s.detector, ALL_LANGUAGES, doc.id, s.value))
            if doc.language:
                out.append((s.detector, doc.language, doc.id, s.value))
    return out


def read_thresholds_file(path: str, spec: DetectorSpec) -> Thresholds:
    """A `lowbg detect calibrate` file (any Beam filesystem) for ``spec``'s detector and models (ValueError)."""
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a thresholds file (not a JSON object)")
    return Thresholds.from_document(doc, spec.name, list(spec.model_ids), path)


def thresholds_file_detector(path: str) -> str | None:
    doc = read_json(path)
    return doc.get("detector") if isinstance(doc, dict) else None


def check_thresholds_file(path: str, specs: list[DetectorSpec]) -> None:
    """Refuse, before any work, a thresholds file made for a detector or models this run does not use."""
    named = thresholds_file_detector(path)
    match = [d for d in specs if d.name == named]
    if not match:
        raise ValueError(f"{path}: thresholds were calibrated for detector {named!r}, which this run does not use "
                         f"({', '.join(d.name for d in specs)})")
    read_thresholds_file(path, match[0])  # raises on other models


def compute_thresholds(samples: Mapping[tuple[str, str], list[float]], specs: list[DetectorSpec],
                       settings: DecisionSettings) -> dict[str, Thresholds]:
    """Thresholds per detector from pre-cutoff scores grouped by (detector, language), with fallbacks (module
    docstring)."""
    target, min_docs, thresholds_file = settings.target_fpr, settings.min_calibration_docs, settings.thresholds
    result = {}
    for spec in specs:
        human = samples.get((spec.name, ALL_LANGUAGES), [])
        base = Thresholds(detector=spec.name, models=spec.model_ids, direction=spec.direction, target_fpr=target,
                          threshold=None, n_human=len(human))
        if len(human) >= min_docs:
            t, lo, hi, _ = threshold_at_fpr(human, target, spec.direction, n_bootstrap=N_BOOTSTRAP, seed=0)
            languages = {}
            for (name, language), scores in sorted(samples.items()):
                if name == spec.name and language != ALL_LANGUAGES and len(scores) >= min_docs:
                    lt, llo, lhi, n = threshold_at_fpr(scores, target, spec.direction, N_BOOTSTRAP, 0)
                    languages[language] = LanguageThreshold(lt, (llo, lhi), n)
            result[spec.name] = dataclasses.replace(base, threshold=t, ci=(lo, hi), languages=languages,
                                                    source=CALIBRATED)
            continue
        why = f"only {len(human)} pre-cutoff documents scored (< {min_docs}): not calibrated on this run"
        if thresholds_file and thresholds_file_detector(thresholds_file) == spec.name:
            loaded = read_thresholds_file(thresholds_file, spec)
            result[spec.name] = dataclasses.replace(
                loaded, direction=spec.direction, source=f"file {thresholds_file}", note=why,
                languages={k: v for k, v in loaded.languages.items() if v.measurable})
            continue
        fallback = spec.fallback()
        if fallback:
            result[spec.name] = dataclasses.replace(base, threshold=fallback[0], source=fallback[1], note=why)
        else:
            result[spec.name] = dataclasses.replace(base, source="none", note=why + "; no default exists")
    return result


def thresholds_record(thresholds: Mapping[str, Thresholds]) -> dict:
    """The run's thresholds as ``_thresholds.json`` and the manifest's ``thresholds`` hold them."""
    return {name: t.to_entry() for name, t in thresholds.items()}


def thresholds_from_record(record: Mapping | None) -> dict[str, Thresholds]:
    """A run's thresholds record read back (ValueError for an entry that cannot decide anything)."""
    return {name: Thresholds.from_entry(entry) for name, entry in (record or {}).items()}


# --- the decision --------------------------------------------------------------------------------------------


def flags(doc: Document, thresholds: Mapping[str, Thresholds] | None) -> dict[str, bool]:
    """Per detector, whether the run's rule flags this document's score (the decision's rule, on every era)."""
    out: dict[str, bool] = {}
    for s in doc.scores:
        t = (thresholds or {}).get(s.detector)
        flagged = t.is_machine(s.value, doc.language) if t is not None else None
        if flagged is not None:
            out[s.detector] = flagged
    return out


class MachinePolicy:
    """The machine-text decision for one document (module docstring): (reason, detail) or None (kept)."""

    name = DECISION

    def __init__(self, detector_order: list[str], settings: DecisionSettings):
        self.detector_order = list(detector_order)
        self.settings = settings

    def judged(self, doc: Document) -> bool:
        return bool(self.detector_order) and not human_era(doc)

    def decide(self, doc: Document, thresholds: Mapping[str, Thresholds]) -> tuple[str, str] | None:
        """None when kept; else the reason code and detail to reject ``doc`` with. (A document the deciding
        detector flags is kept under ``on_machine: keep``.)"""
        if not self.judged(doc):
            return None
        for name in reversed(self.detector_order):
            score, t = doc.score_of(name), thresholds.get(name)
            if score is None or score.value is None or t is None or t.threshold is None:
                continue
            if t.is_machine(score.value, doc.language) and self.settings.on_machine == "reject":
                threshold = t.threshold_for(doc.language)
                sign = "<" if t.direction == LOWER_IS_MACHINE else ">"
                return REASON_MACHINE_GENERATED, (f"{name} {score.value:.4f} {sign} {threshold:.4f} "
                                                  f"(target FPR {t.target_fpr}, {t.source})")
            return None
        if self.settings.on_uncertain == "reject":
            return REASON_UNCERTAIN, doc.not_scored_reason or "no usable score"
        return None


# --- in the pipeline -------------------------------------------------------------------------------------------


def _sample_key(entry: tuple[str, str, str, float]):
    detector, language, doc_id, value = entry
    return (detector, language), (unit_fraction(doc_id), value)


def _thresholds(samples: list, specs: list[DetectorSpec], settings: DecisionSettings) -> dict:
    grouped: dict[tuple[str, str], list[float]] = defaultdict(list)
    for key, sample in samples:
        grouped[tuple(key)] = [value for _, value in sample]
    return thresholds_record(compute_thresholds(grouped, specs, settings))


def _write_thresholds(record: dict, output: str) -> None:
    write_bytes(join(output, THRESHOLDS_FILE), json.dumps(record, indent=2, sort_keys=True).encode())


class ThresholdsOf:
    """The typed thresholds of a run's record, read once per record (a side input is the same object for a
    whole bundle): what a DoFn holds instead of converting the record for every document."""

    def __init__(self):
        self._record: object = None
        self._thresholds: dict[str, Thresholds] = {}

    def __getstate__(self) -> dict:
        return {"_record": None, "_thresholds": {}}

    def __call__(self, record: Mapping | None) -> dict[str, Thresholds]:
        if record is not self._record:
            self._record, self._thresholds = record, thresholds_from_record(record)
        return self._thresholds


class _DecideRun(beam.DoFn):
    """A run of scored documents written by :class:`~pipeline.sinks.SpillDocuments` -> each decided by the
    :class:`MachinePolicy` under the run's thresholds (kept, or rejected with its reason); the run deleted."""

    def __init__(self, policy: MachinePolicy):
        self.policy = policy
        self.counters = StageCounters(DECISION)
        self.thresholds_of = ThresholdsOf()

    def process(self, path: str, record: dict):
        thresholds = self.thresholds_of(record)
        for doc in read_document_run(path):
            rejected = self.policy.decide(doc, thresholds)
            if rejected is not None:
                doc.reject(*rejected)
                self.counters.rejected(rejected[0])
                yield beam.pvalue.TaggedOutput(REJECTED_TAG, doc)
                continue
            if self.policy.judged(doc) and any(flags(doc, thresholds).values()):
                self.counters.count("flagged_kept")  # on_machine: keep
            self.counters.kept()
            yield doc
        delete([path])


class CalibrateAndDecide(beam.PTransform):
    """Scored, kept documents -> {kept, rejected} (:mod:`pipeline.steps`' stage contract): thresholds from this
    run's pre-cutoff scores (one dict, a side input; written to ``_thresholds.json`` and kept in
    :attr:`thresholds` for the run statistics), then :class:`MachinePolicy`."""

    def __init__(self, settings: DecisionSettings, specs: list[DetectorSpec], output: str):
        super().__init__()
        self.settings, self.specs, self.output = settings, specs, output
        self.thresholds = None

    def expand(self, documents):
        settings, specs = self.settings, self.specs
        record = (documents
                  | "CalibrationScores" >> beam.FlatMap(calibration_keys)
                  | "KeyByDetectorLanguage" >> beam.Map(_sample_key)
                  | "BoundedSample" >> beam.combiners.Top.PerKey(CALIBRATION_SAMPLE, key=lambda s: -s[0])
                  | "AllSamples" >> beam.combiners.ToList()
                  | "Thresholds" >> beam.Map(_thresholds, specs, settings))
        _ = record | "WriteThresholds" >> beam.Map(_write_thresholds, self.output)
        self.thresholds = record
        policy = MachinePolicy([s.name for s in specs], settings)
        # The decision waits for the thresholds, i.e. for every document: what waits is held whole by Beam's
        # local runner, so the documents wait on disk (runs of SpillDocuments) and only their paths in memory.
        runs = (documents
                | "SpillScored" >> beam.ParDo(SpillDocuments(self.output, name="scored"))
                | "RunPaths" >> beam.Values())
        decided = runs | "MachinePolicy" >> beam.ParDo(
            _DecideRun(policy), beam.pvalue.AsSingleton(record)).with_outputs(REJECTED_TAG, main=KEPT)
        return stage_output(decided[KEPT], decided[REJECTED_TAG])
