"""The filter between a web generation's crawl and its training data: `none | oracle | detector:SPEC`.

  none                     train on the whole crawl
  oracle                   perfect provenance: keep the real documents only (what pre-cutoff capture dates give)
  detector:NAME[:OPTIONS]  any scorer of the detectors library, thresholded at `--target-fpr`

OPTIONS are the library's options as `key=value` pairs separated by commas (`detector:binoculars:observer=A,
performer=B`, `detector:fasttext:model=/models/det.ftz`, `detector:likelihood:model=gpt2,device=cuda`). A model
option may name one of the harness's own models instead of a checkpoint: `gen0` (generation 0's model of the same
seed) or `last` (the model of generation t-1, the one that wrote the newest samples). `detector:NAME:gen0` is short
for every model option of NAME set to gen0. This is the white-box case: for `--model ngram` through the adapter in
collapse.whitebox, for `--model gpt|hf` through the library's own scorers over the harness's transformers model.

The threshold is calibrated, with the pipeline's code (detectors.calibration: `calibrate`, `save_thresholds`,
`load_thresholds`, `Thresholds.is_machine`), on the run's calibration documents: real documents that no generation
trains on and that are not the held-out evaluation text. A candidate is removed when flagged, or when it cannot be
scored (the pipeline's "uncertain" rejection). A filter that cannot load, or whose target FPR is not measurable on
the calibration documents (fewer than 1 / FPR of them), is refused before generation 0; a harness-model filter is
calibrated when its model exists, and refused then with the same numbers if too few calibration texts score.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collapse.web import Decision, Pool

HARNESS_MODELS = ("gen0", "last")
# The options of each detector that name a language model (the ones `gen0` / `last` may stand for).
MODEL_OPTIONS = {"binoculars": ("observer", "performer"), "fast-detectgpt": ("scoring", "reference"),
                 "likelihood": ("model",), "logrank": ("model",), "entropy": ("model",), "lrr": ("model",)}
_INT_OPTIONS = {"max_tokens", "max_length", "min_tokens", "chunk_elements", "max_words", "vocab_size", "hash_key"}
_FLOAT_OPTIONS = {"gamma"}
_BOOL_OPTIONS = {"ignore_repeated_ngrams"}
# Options the white-box detectors take (the model is already loaded where the harness put it).
_HARNESS_NGRAM_OPTIONS = {"min_tokens", "max_length"}
_HARNESS_LM_OPTIONS = {"min_tokens", "max_length", "max_tokens", "chunk_elements"}


class FilterError(ValueError):
    """A filter that cannot be built, loaded or calibrated; the message names the numbers."""


@dataclass(frozen=True)
class FilterSpec:
    text: str
    kind: str  # none | oracle | detector
    detector: str = ""
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def opts(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def harness_models(self) -> set[str]:
        """Which harness models (gen0, last) the detector scores with."""
        return {v for k, v in self.options if k in MODEL_OPTIONS.get(self.detector, ()) and v in HARNESS_MODELS}

    @property
    def slug(self) -> str:
        """A folder name for this filter's arm."""
        s = re.sub(r"[^A-Za-z0-9._=-]+", "-", self.text.replace(":", "-")).strip("-.")
        if len(s) > 60 or s != self.text.replace(":", "-"):
            s = s[:48].rstrip("-.") + "-" + hashlib.sha256(self.text.encode()).hexdigest()[:8]
        return s or "filter"


def _convert(key: str, value: str) -> Any:
    try:
        if key in _INT_OPTIONS:
            return int(value)
        if key in _FLOAT_OPTIONS:
            return float(value)
    except ValueError:
        raise FilterError(f"detector option {key}={value!r} is not a number") from None
    if key in _BOOL_OPTIONS:
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise FilterError(f"detector option {key}={value!r} is not true or false")
        return value.lower() in ("true", "1", "yes")
    return value


def parse_filter(text: str) -> FilterSpec:
    """`none`, `oracle` or `detector:NAME[:gen0|:last|:key=value,...]` -> FilterSpec (FilterError when malformed)."""
    from detectors.registry import canonical_name, checked_options

    t = text.strip()
    if t in ("none", "oracle"):
        return FilterSpec(t, t)
    if not t.startswith("detector:"):
        raise FilterError(f"--filter {text!r}: expected none, oracle or detector:NAME[:OPTIONS]")
    name, _, rest = t[len("detector:"):].partition(":")
    try:
        name = canonical_name(name)
    except ValueError as e:
        raise FilterError(f"--filter {text!r}: {e}") from None
    options: dict[str, Any] = {}
    if rest in HARNESS_MODELS:
        if name not in MODEL_OPTIONS:
            raise FilterError(f"--filter {text!r}: {name} has no language model for {rest} to stand for")
        first = MODEL_OPTIONS[name][:1] if name == "fast-detectgpt" else MODEL_OPTIONS[name]
        options = {k: rest for k in first}
    elif rest:
        for part in rest.split(","):
            key, sep, value = part.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or not key:
                raise FilterError(f"--filter {text!r}: expected key=value options, got {part!r}")
            options[key] = _convert(key, value.strip())
    try:
        checked_options(name, options)
    except ValueError as e:
        hint = " (a model path or id, or gen0 / last for the harness's own model)" if "needs" in str(e) else ""
        raise FilterError(f"--filter {text!r}: {e}{hint}") from None
    spec = FilterSpec(t, "detector", name, tuple(sorted(options.items())))
    lm_values = [v for k, v in options.items() if k in MODEL_OPTIONS.get(name, ())]
    if spec.harness_models and any(v not in HARNESS_MODELS for v in lm_values):
        raise FilterError(f"--filter {text!r}: mix of harness models (gen0, last) and checkpoints; a detector scores "
                          "either with the harness's models or with checkpoints")
    return spec


def split_filters(values: str | Sequence[str]) -> list[str]:
    """`none,oracle,detector:binoculars:observer=a,performer=b` -> the three specs: a comma starts a new filter only
    where what follows is none, oracle or detector:."""
    parts: list[str] = []
    for value in [values] if isinstance(values, str) else values:
        for piece in value.split(","):
            p = piece.strip()
            if not p:
                continue
            if p in ("none", "oracle") or p.startswith("detector:") or not parts:
                parts.append(p)
            else:
                parts[-1] += "," + p
    return parts


# ---- the filters -----------------------------------------------------------------------------------------------------
class PoolFilter:
    """Decides which of a generation's candidates are kept. `models` gives the harness models a detector may use."""

    spec: FilterSpec
    direction: str | None = None

    def prepare(self, log: Callable[[str], None] = print) -> None:
        """Load and calibrate what can be before generation 0 (raises FilterError)."""

    def decide(self, g: int, pool: Pool, models: ModelAccess) -> Decision:
        raise NotImplementedError


class NoFilter(PoolFilter):
    def __init__(self, spec: FilterSpec) -> None:
        self.spec = spec

    def decide(self, g: int, pool: Pool, models: ModelAccess) -> Decision:
        return Decision(keep=np.ones(len(pool), dtype=bool), info={"seconds": 0.0})


class OracleFilter(PoolFilter):
    """Perfect provenance: what capture dates before the cutoff certify."""

    def __init__(self, spec: FilterSpec) -> None:
        self.spec = spec

    def decide(self, g: int, pool: Pool, models: ModelAccess) -> Decision:
        return Decision(keep=~pool.synthetic, info={"seconds": 0.0})


@dataclass
class ModelAccess:
    """The harness models a white-box detector may score with, for one seed at one generation."""

    seed: int
    generation: int
    get: Callable[[str], Any]  # "gen0" | "last" -> the fitted model
    model_id: Callable[[str], str]  # "gen0" | "last" -> a stable id of that model (binds its thresholds)


class DetectorFilter(PoolFilter):
    def __init__(self, spec: FilterSpec, target_fpr: float, calibration: Sequence[str], model_kind: str,
                 workdir: Path, calibration_where: str = "") -> None:
        self.spec = spec
        self.target_fpr = float(target_fpr)
        self.calibration = list(calibration)
        self.model_kind = model_kind
        self.workdir = Path(workdir)
        self.where = calibration_where
        self.external = None  # a checkpoint-based detector, loaded once
        self._thresholds: dict[str, tuple[Any, dict]] = {}  # [name, model ids] -> (Thresholds, their document)
        self.direction = None
        if spec.harness_models:
            self._check_harness_support()

    # ---- before generation 0 ---------------------------------------------------------------------------------
    def _check_harness_support(self) -> None:
        name, opts = self.spec.detector, self.spec.opts
        if self.model_kind == "ngram":
            from collapse.whitebox import STATISTICS

            if name not in STATISTICS:
                raise FilterError(f"--filter {self.spec.text}: over the harness's n-gram model the white-box detector "
                                  f"computes {', '.join(STATISTICS)}; {name} needs a pair of transformers models")
            if name == "fast-detectgpt" and opts.get("reference", opts["scoring"]) != opts["scoring"]:
                raise FilterError(f"--filter {self.spec.text}: the n-gram white-box fast-detectgpt is the one-model "
                                  "variant (reference = scoring)")
            extra = set(opts) - set(MODEL_OPTIONS[name]) - _HARNESS_NGRAM_OPTIONS
        else:
            extra = set(opts) - set(MODEL_OPTIONS[name]) - _HARNESS_LM_OPTIONS
        if extra:
            raise FilterError(f"--filter {self.spec.text}: option(s) {sorted(extra)} do not apply to the harness's own "
                              "model (it is already loaded where the run put it)")

    def min_calibration(self) -> int:
        return math.ceil(1.0 / self.target_fpr - 1e-9)

    def check_calibration_size(self, n: int) -> None:
        if n * self.target_fpr < 1:
            raise FilterError(
                f"--filter {self.spec.text} cannot calibrate: --target-fpr {self.target_fpr:g} needs at least "
                f"{self.min_calibration()} scorable calibration documents to be measurable (n * FPR >= 1), but "
                f"{n} {'are' if n != 1 else 'is'} available{(' (' + self.where + ')') if self.where else ''}; raise "
                "--calibration-fraction or --target-fpr, or add shards")

    def prepare(self, log: Callable[[str], None] = print) -> None:
        self.check_calibration_size(len(self.calibration))
        if self.spec.harness_models:
            return  # calibrated once its model exists (generation 0's, or each generation's last)
        from detectors.registry import build_detector

        t0 = time.perf_counter()
        try:
            self.external = build_detector(self.spec.detector, **self.spec.opts)
        except Exception as e:  # noqa: BLE001 - any failure to load is the user's input: name it, before generation 0
            raise FilterError(f"--filter {self.spec.text}: the detector cannot load: {type(e).__name__}: "
                              f"{' '.join(str(e).split())}") from e
        self.direction = self.external.direction
        _, doc, _ = self._calibrated(self.external, "thresholds.json")
        log(f"filter {self.spec.text}: loaded in {time.perf_counter() - t0:.1f}s, threshold {doc['threshold']:.6g} "
            f"at FPR {self.target_fpr:g} on {doc['n_negatives']} calibration documents")

    # ---- per generation --------------------------------------------------------------------------------------
    def _calibrated(self, detector, filename: str, also: Sequence[str] = ()) -> tuple[Any, dict, list]:
        """(Thresholds, their document, scores of `also`): the detector's threshold at the target FPR on the
        calibration documents, computed once per detector and models. The first call scores the calibration
        documents and `also` in one batch; later calls score `also` alone."""
        from detectors.calibration import calibrate, load_thresholds, save_thresholds

        key = json.dumps([detector.name, list(detector.model_ids)])
        if key in self._thresholds:
            thresholds, doc = self._thresholds[key]
            return thresholds, doc, detector.score(list(also)) if len(also) else []
        scores = detector.score(self.calibration + list(also))  # one call: the library batches and sorts inside
        values = [s.value for s in scores[: len(self.calibration)]]
        scored = sum(v is not None for v in values)
        self.check_calibration_size(scored)
        doc = calibrate(values, detector=detector.name, models=list(detector.model_ids),
                        direction=detector.direction, target_fpr=self.target_fpr,
                        source=f"collapse harness calibration documents ({scored} scored of "
                               f"{len(self.calibration)}{', ' + self.where if self.where else ''})")
        path = self.workdir / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        save_thresholds(doc, path)
        # Read back through the pipeline's loader: it refuses thresholds made for another detector or models.
        thresholds = load_thresholds(path, detector.name, list(detector.model_ids))
        self._thresholds[key] = (thresholds, doc)
        return thresholds, doc, scores[len(self.calibration):]

    def _detector_for(self, models: ModelAccess):
        if self.external is not None:
            return self.external, "thresholds.json"
        name, opts = self.spec.detector, self.spec.opts
        roles = {k: v for k, v in opts.items() if k in MODEL_OPTIONS[name]}
        fixed = {k: v for k, v in opts.items() if k not in MODEL_OPTIONS[name]}
        ids = {w: models.model_id(w) for w in sorted(set(roles.values()))}
        filename = name + "_" + "_".join(re.sub(r"[^A-Za-z0-9]+", "-", ids[w].split("@")[0]).strip("-")
                                         for w in sorted(ids)) + ".json"
        if self.model_kind == "ngram":
            from collapse.whitebox import NGramDetector

            w = roles[MODEL_OPTIONS[name][0]]
            det = NGramDetector(models.get(w), name, ids[w], **fixed)
        else:
            det = _library_scorer(name, {k: (models.get(v), ids[v]) for k, v in roles.items()}, fixed)
        self.direction = det.direction
        return det, filename

    def decide(self, g: int, pool: Pool, models: ModelAccess) -> Decision:
        t0 = time.perf_counter()
        det, filename = self._detector_for(models)
        calibrating = json.dumps([det.name, list(det.model_ids)]) not in self._thresholds
        thresholds, doc, scores = self._calibrated(det, filename, pool.items)
        values = np.array([np.nan if s.value is None else s.value for s in scores], dtype=np.float64)
        unscored = ~np.isfinite(values)
        flagged = np.array([bool(thresholds.is_machine(None if u else float(v))) for v, u in zip(values, unscored)],
                           dtype=bool)
        keep = ~flagged & ~unscored
        info = {"threshold": float(doc["threshold"]), "threshold_ci": doc["ci"], "n_calibration": doc["n_negatives"],
                "target_fpr": self.target_fpr, "detector": det.name, "models": list(det.model_ids),
                "direction": det.direction, "texts_scored": len(pool) + (len(self.calibration) if calibrating else 0),
                "seconds": time.perf_counter() - t0, "thresholds": doc}
        return Decision(keep=keep, scores=values, unscored=unscored, info=info)


def _library_scorer(name: str, roles: dict[str, tuple[Any, str]], fixed: dict[str, Any]):
    """The detectors library's scorer over the harness's transformers model(s) (gpt, hf)."""
    import importlib

    from detectors.lm import wrap_model

    wrapped: dict[str, Any] = {}

    def loaded(model, model_id: str):
        if model_id not in wrapped:
            wrapped[model_id] = wrap_model(model.model, model.tok, model_id)
        return wrapped[model_id]

    lms = {k: loaded(m, mid) for k, (m, mid) in roles.items()}
    if name == "binoculars":
        from detectors.binoculars import Binoculars

        return Binoculars(lms["observer"], lms["performer"], **fixed)
    if name == "fast-detectgpt":
        from detectors.fast_detectgpt import FastDetectGPT

        ref = lms.get("reference")
        return FastDetectGPT(lms["scoring"], ref if ref is not lms["scoring"] else None, **fixed)
    cls = {"likelihood": "Likelihood", "logrank": "LogRank", "entropy": "Entropy", "lrr": "LRR"}[name]
    return getattr(importlib.import_module(f"detectors.{name}"), cls)(lms["model"], **fixed)


def build_filter(text: str, target_fpr: float, calibration: Sequence[str], model_kind: str, workdir: Path,
                 calibration_where: str = "") -> PoolFilter:
    spec = parse_filter(text)
    if spec.kind == "none":
        return NoFilter(spec)
    if spec.kind == "oracle":
        return OracleFilter(spec)
    return DetectorFilter(spec, target_fpr, calibration, model_kind, workdir, calibration_where)
