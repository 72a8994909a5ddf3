"""Typed settings of `lowbg curate`: one frozen dataclass per stage, each default in one place.

Contract:

* Every default of the pipeline lives here, as the default of a field (or in the library that owns it, and is
  taken from there: the token budget from :mod:`detectors.base`, the target false-positive rate from
  :mod:`detectors.calibration`, the quality presets from :mod:`pipeline.quality`). The command line
  (:mod:`pipeline.options`) reads its defaults from these classes; nothing else restates them.
* :class:`CurateSettings` is built once, on the launcher, from the command line
  (:func:`pipeline.options.parse_curate_args`) and is never changed (frozen). Each stage is constructed with
  its own part and nothing else: ``ReadWarc(settings.ingest)``, ``LanguageStep(settings.language)``,
  ``QualityStep(settings.quality)``, ``Dedup(settings.dedup)``, ``ScoreCascade(settings.scoring)``,
  ``CalibrateAndDecide(settings.decision, ...)``, ``WriteShards(settings.sinks, ...)``. A worker unpickles only
  what its stage reads.
* The manifest records the settings whole, under ``options``, as :meth:`CurateSettings.to_json` writes them
  (one object per stage, field names as here, times in ISO 8601, tuples as lists). :func:`recorded_settings`
  reads that form back, and the flat one of manifests written before typed settings (flag names as keys).

This module imports no Beam (the command line is checked before Beam is imported).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from detectors.base import DEFAULT_MAX_TOKENS
from detectors.calibration import DEFAULT_TARGET_FPR
from detectors.registry import is_language_model
from pipeline.provenance import DEFAULT_CUTOFF
from pipeline.quality import QualitySettings

__all__ = ["CurateSettings", "DecisionSettings", "DedupSettings", "IngestSettings", "LanguageSettings",
           "MinHashSettings", "ProvenanceSettings", "QualitySettings", "ScoringSettings", "SinkSettings",
           "recorded_settings", "to_json"]

DEFAULT_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024  # after HTTP decoding; the reader stops decoding past it
DEDUP_MODES = ("none", "exact", "near")
ON_UNCERTAIN = ("keep", "reject")
ON_MACHINE = ("auto", "keep", "reject")
ON_REFERENCE_MATCH = ("keep", "reject")
STAGES = ("ingest", "provenance", "language", "quality", "dedup", "scoring", "decision", "sinks")


@dataclass(frozen=True)
class IngestSettings:
    """What to read (``ReadWarc``): file patterns, Common Crawl path lists, a bounded or sampled subset."""

    inputs: tuple[str, ...] = ()  # --input: file patterns (local, gs://, s3://...)
    input_lists: tuple[str, ...] = ()  # --input-list: path lists, one path per line
    input_base: str = ""  # prefix of the relative paths of a path list
    max_files: int | None = None  # read at most this many files (listed on the launcher, in order)
    sample_files: float | None = None  # a deterministic sample (by path hash) of this fraction of the files
    # (i, n), 0 <= i < n: read slice i of n of the sorted, distinct input files (pipeline.ingest.slice_inputs)
    input_slice: tuple[int, int] | None = None
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES  # larger payloads are rejected as payload_too_large


@dataclass(frozen=True)
class ProvenanceSettings:
    """Capture-time provenance (``ExtractText``): which side of the cutoff each capture is on."""

    cutoff: dt.datetime = DEFAULT_CUTOFF


@dataclass(frozen=True)
class LanguageSettings:
    """Language identification (``LanguageStep``) and the language policy."""

    enabled: bool = True  # --skip-language-id turns it off: language stays null, nothing is rejected
    languages: tuple[str, ...] | None = None  # keep only these (None: all)
    min_score: float = 0.65  # FineWeb's LanguageFilter threshold
    model: str | None = None  # a fastText language-ID model (None: the bundled lid.176.ftz)


@dataclass(frozen=True)
class MinHashSettings:
    """MinHash LSH parameters: the run's near dedup and the reference index it matches must share them."""

    num_perm: int = 128
    threshold: float = 0.8  # Jaccard similarity above which two documents are near duplicates
    ngram: int = 5  # words per shingle


@dataclass(frozen=True)
class DedupSettings:
    """Exact and near dedup, and matching against a pre-cutoff reference index (``Dedup``)."""

    mode: str = "near"  # none | exact | near (near runs exact first)
    reference_index: str | None = None
    minhash: MinHashSettings = field(default_factory=MinHashSettings)
    # a document matching the index: keep it, dated by the index (content seen before), or reject it as a
    # duplicate of the indexed document (dedup across runs, e.g. --input-slice jobs)
    on_reference_match: str = "keep"

    def __post_init__(self):
        if self.mode not in DEDUP_MODES:
            raise ValueError(f"dedup mode {self.mode!r}: expected one of {DEDUP_MODES}")
        if self.on_reference_match not in ON_REFERENCE_MATCH:
            raise ValueError(f"on_reference_match {self.on_reference_match!r}: expected one of {ON_REFERENCE_MATCH}")

    @property
    def exact(self) -> bool:
        return self.mode in ("exact", "near")

    @property
    def near(self) -> bool:
        return self.mode == "near"


@dataclass(frozen=True)
class ScoringSettings:
    """AI-text scores (``ScoreCascade``): the detectors in cascade order, their models and how they batch."""

    detectors: tuple[str, ...] = ("fasttext",)  # canonical registry names, cascade order; () scores nothing
    cascade_band: tuple[float, float] | None = None  # the next detector scores only [LOW, HIGH] of the last
    score_pre_cutoff: float | None = None  # also score this fraction of pre-cutoff documents with LM detectors
    fasttext_model: str | None = None  # None: the bundled detector
    observer: str | None = None  # Binoculars
    performer: str | None = None
    scoring_model: str | None = None  # Fast-DetectGPT
    reference_model: str | None = None
    lm_model: str | None = None  # likelihood, logrank, entropy, lrr
    device: str = "auto"
    max_tokens: int = DEFAULT_MAX_TOKENS  # padded tokens per LM forward pass
    min_batch_size: int = 1  # RunInference batch bounds (documents)
    max_batch_size: int = 64
    large_model: bool = False  # one model per machine, shared by its worker processes
    gpu_resource_hint: str | None = None  # Dataflow accelerator hint on the scoring steps only

    def detector_options(self, name: str) -> dict[str, Any]:
        """The library options (:func:`detectors.registry.build_detector`) of detector ``name``; None values are
        left out, so the library's own defaults apply."""
        lm = {"device": self.device, "max_tokens": self.max_tokens}
        if name == "fasttext":
            options: dict[str, Any] = {"model": self.fasttext_model}
        elif name == "binoculars":
            options = {"observer": self.observer, "performer": self.performer, **lm}
        elif name == "fast-detectgpt":
            options = {"scoring": self.scoring_model, "reference": self.reference_model, **lm}
        elif is_language_model(name):
            options = {"model": self.lm_model, **lm}
        else:
            raise ValueError(f"detector {name!r} cannot run inside `lowbg curate` (a watermark test needs the "
                             "generator's key)")
        return {k: v for k, v in options.items() if v is not None}


@dataclass(frozen=True)
class DecisionSettings:
    """Calibration and the machine-text decision (``CalibrateAndDecide``, `lowbg decide`)."""

    target_fpr: float = DEFAULT_TARGET_FPR  # false-positive rate on pre-cutoff (human) text to hold
    thresholds: str | None = None  # a `lowbg detect calibrate` file, used when the run cannot calibrate
    min_calibration_docs: int = 200  # fewer pre-cutoff scores: --thresholds or the published default
    on_uncertain: str = "keep"  # a document with no usable score: keep or reject (uncertain)
    # a document the deciding detector flags: reject (machine_generated) or keep (scores and flags stay on the
    # row, in stats/ and the report). The command line's "auto" resolves to reject only when a language-model
    # detector is in the cascade (:func:`resolve_on_machine`).
    on_machine: str = "keep"

    def __post_init__(self):
        if self.on_uncertain not in ON_UNCERTAIN:
            raise ValueError(f"on_uncertain {self.on_uncertain!r}: expected one of {ON_UNCERTAIN}")
        if self.on_machine not in ("keep", "reject"):
            raise ValueError(f"on_machine {self.on_machine!r}: expected keep or reject (auto is resolved first)")


def resolve_on_machine(requested: str, detectors: tuple[str, ...]) -> str:
    """``auto``: reject machine text only when a language-model detector is in the cascade. The bundled fastText
    detector alone is near chance on generators it never saw (TPR about 10% at a 5% FPR): rejecting on it would
    remove about ``target_fpr`` of the post-cutoff human pages for almost no machine text caught."""
    if requested not in ON_MACHINE:
        raise ValueError(f"on_machine {requested!r}: expected one of {ON_MACHINE}")
    if requested != "auto":
        return requested
    return "reject" if any(is_language_model(name) for name in detectors) else "keep"


@dataclass(frozen=True)
class SinkSettings:
    """Where and how the shards are written (``WriteShards``)."""

    output: str = ""  # the run folder (local or any Beam filesystem)
    shard_size: int = 50_000  # rows per Parquet file at most
    num_buckets: int | None = None  # buckets per shard kind (None: one per input file, at most 1024)
    overwrite: bool = False  # replace a run already in the output folder


@dataclass(frozen=True)
class CurateSettings:
    """Everything a `lowbg curate` run does, by stage (module docstring)."""

    ingest: IngestSettings = field(default_factory=IngestSettings)
    provenance: ProvenanceSettings = field(default_factory=ProvenanceSettings)
    language: LanguageSettings = field(default_factory=LanguageSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    dedup: DedupSettings = field(default_factory=DedupSettings)
    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    decision: DecisionSettings = field(default_factory=DecisionSettings)
    sinks: SinkSettings = field(default_factory=SinkSettings)
    processed_at: dt.datetime | None = None  # written on every row (None: the launcher's clock at start)
    beam_args: tuple[str, ...] = ()  # the Beam pipeline options given on the command line

    def to_json(self) -> dict:
        """The manifest's record of the run's options (module docstring)."""
        return to_json(self)


def to_json(value: Any) -> Any:
    """A settings object (or any value in one) as JSON: dataclasses as objects, tuples as lists, times in ISO."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


# Manifests written before typed settings recorded the parsed flags flat, under their flag names.
_LEGACY_FLAGS: dict[str, tuple[str, str]] = {
    "input": ("ingest", "inputs"), "input_list": ("ingest", "input_lists"), "input_base": ("ingest", "input_base"),
    "max_files": ("ingest", "max_files"), "sample_files": ("ingest", "sample_files"),
    "max_payload_bytes": ("ingest", "max_payload_bytes"), "cutoff": ("provenance", "cutoff"),
    "languages": ("language", "languages"), "min_language_score": ("language", "min_score"),
    "language_model": ("language", "model"), "quality_preset": ("quality", "preset"),
    "quality_signals": ("quality", "signals"), "min_words": ("quality", "min_words"), "dedup": ("dedup", "mode"),
    "reference_index": ("dedup", "reference_index"), "detectors": ("scoring", "detectors"),
    "cascade_band": ("scoring", "cascade_band"), "score_pre_cutoff": ("scoring", "score_pre_cutoff"),
    "fasttext_model": ("scoring", "fasttext_model"), "observer": ("scoring", "observer"),
    "performer": ("scoring", "performer"), "scoring_model": ("scoring", "scoring_model"),
    "reference_model": ("scoring", "reference_model"), "lm": ("scoring", "lm_model"),
    "device": ("scoring", "device"), "max_tokens": ("scoring", "max_tokens"),
    "min_batch_size": ("scoring", "min_batch_size"), "max_batch_size": ("scoring", "max_batch_size"),
    "large_model": ("scoring", "large_model"), "gpu_resource_hint": ("scoring", "gpu_resource_hint"),
    "target_fpr": ("decision", "target_fpr"), "thresholds": ("decision", "thresholds"),
    "min_calibration_docs": ("decision", "min_calibration_docs"), "on_uncertain": ("decision", "on_uncertain"),
    "output": ("sinks", "output"), "shard_size": ("sinks", "shard_size"), "num_buckets": ("sinks", "num_buckets"),
    "overwrite": ("sinks", "overwrite"),
}


def recorded_settings(options: dict | None) -> dict[str, dict]:
    """A manifest's ``options`` by stage, whichever form it was written in (module docstring); stages or fields
    it does not record are absent. A flat (older) record is regrouped: ``min_language_score`` becomes
    ``language.min_score``, ``skip_language_id`` becomes ``language.enabled``, and so on; those runs rejected
    machine text whenever they had detectors, which ``decision.on_machine`` then says."""
    options = options or {}
    if any(isinstance(options.get(name), dict) for name in STAGES):
        return {name: dict(value) for name, value in options.items() if isinstance(value, dict)}
    grouped: dict[str, dict] = {}
    for key, value in options.items():
        if key in _LEGACY_FLAGS:
            stage, name = _LEGACY_FLAGS[key]
            grouped.setdefault(stage, {})[name] = value
    if "skip_language_id" in options:
        grouped.setdefault("language", {})["enabled"] = not options["skip_language_id"]
    if "minhash_num_perm" in options:
        grouped.setdefault("dedup", {})["minhash"] = {"num_perm": options["minhash_num_perm"],
                                                       "threshold": options.get("minhash_threshold"),
                                                       "ngram": options.get("minhash_ngram")}
    if "detectors" in options:
        grouped.setdefault("decision", {})["on_machine"] = "reject" if options["detectors"] else "keep"
    return grouped
