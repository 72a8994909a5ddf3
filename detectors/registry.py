"""Every detector by its CLI name: what it takes, how it reads (direction), what it is (model ids), and how to build it.

:func:`build_detector` loads the models (what the pipeline's workers call, once each, in ``load_model``);
:func:`describe` says, without loading anything, what a detector built from the same options will report as its
direction, model ids and published thresholds (what the launcher needs to calibrate and decide, and what a
thresholds file is checked against). A test holds the two to the same answers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from detectors.base import HIGHER_IS_MACHINE, LOWER_IS_MACHINE, Detector

_LM_COMMON = {"device", "dtype", "max_tokens", "max_length", "min_tokens", "chunk_elements"}
OPTIONS: dict[str, tuple[set[str], set[str]]] = {  # name -> (required options, optional options)
    "binoculars": ({"observer", "performer"}, _LM_COMMON),
    "fast-detectgpt": ({"scoring"}, {"reference"} | _LM_COMMON),
    "likelihood": ({"model"}, _LM_COMMON),
    "logrank": ({"model"}, _LM_COMMON),
    "entropy": ({"model"}, _LM_COMMON),
    "lrr": ({"model"}, _LM_COMMON),
    "fasttext": (set(), {"model", "max_words"}),
    "watermark": ({"tokenizer"}, {"vocab_size", "gamma", "seeding_scheme", "hash_key", "ignore_repeated_ngrams",
                                  "device"}),
}
DETECTORS = tuple(OPTIONS)
DIRECTION = {name: HIGHER_IS_MACHINE for name in DETECTORS} | {"binoculars": LOWER_IS_MACHINE,
                                                                 "entropy": LOWER_IS_MACHINE}
# Detectors that score with a language model (the zero-shot family): what a cascade needs to catch machine text
# from generators no training set covered. fastText is a supervised classifier; a watermark test needs a key.
LANGUAGE_MODEL_DETECTORS = frozenset({"binoculars", "fast-detectgpt", "likelihood", "logrank", "entropy", "lrr"})
_ALIASES = {"fast-detect-gpt": "fast-detectgpt", "fastdetectgpt": "fast-detectgpt"}
# Thresholds published with a method, for the models they were published for (Binoculars' reference code, for
# falcon-7b observer / falcon-7b-instruct performer, bf16).
PUBLISHED_THRESHOLDS: dict[str, tuple[tuple[str, ...], dict[str, float]]] = {
    "binoculars": (("tiiuae/falcon-7b", "tiiuae/falcon-7b-instruct"),
                   {"accuracy": 0.9015310749276843, "low-fpr": 0.8536432310785527}),
}
# A detector's own decision boundary, where it has one: fastText's classification rule, P(machine) > 0.5.
DECISION_BOUNDARY = {"fasttext": 0.5}
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


@dataclass(frozen=True)
class DetectorSpec:
    """What a detector is, without its models: name, direction, model ids, published thresholds."""

    name: str
    direction: str
    model_ids: tuple[str, ...]
    published: tuple[tuple[str, float], ...] = ()

    def fallback(self) -> tuple[float, str] | None:
        """(threshold, where it comes from) when a run cannot calibrate and has no thresholds file: a published
        low-FPR threshold for these models, else any published one, else the detector's decision boundary."""
        published = dict(self.published)
        for key in ("low_fpr", "low-fpr", "accuracy", "best_f1"):
            if key in published:
                return published[key], f"published default ({key})"
        if published:
            key, value = sorted(published.items())[0]
            return value, f"published default ({key})"
        if self.name in DECISION_BOUNDARY:
            return DECISION_BOUNDARY[self.name], "detector decision boundary"
        return None


def published_thresholds(name: str, model_ids: list[str] | tuple[str, ...]) -> dict[str, float]:
    models, values = PUBLISHED_THRESHOLDS.get(name, ((), {}))
    return dict(values) if tuple(model_ids) == models else {}


def _looks_local(reference: str) -> bool:
    """A model reference that names a local path (not a hub id such as ``org/name``)."""
    return os.path.isabs(reference) or reference.startswith(("./", "../", "~")) or os.path.exists(reference)


def check_safetensors_only(path: str | os.PathLike) -> None:
    """Refuse a local model directory whose weights exist only in pickle form."""
    p = Path(path)
    if not p.is_dir():
        return  # a hub id: from_pretrained(use_safetensors=True) refuses pickle-only repositories itself
    files = [f.name for f in p.iterdir() if f.is_file()]
    if any(f.endswith(".safetensors") or f == "model.safetensors.index.json" for f in files):
        return
    pickles = sorted(f for f in files if f.endswith(_PICKLE_SUFFIXES) and "tokenizer" not in f)
    if pickles:
        raise ValueError(
            f"refusing to load {p}: it has only pickle weights ({', '.join(pickles)}). Unpickling runs arbitrary "
            "code stored in the file, so lowbackground loads safetensors only. Convert the checkpoint to "
            "safetensors with a tool you trust (e.g. model.save_pretrained() in a sandbox) and retry.")
    raise ValueError(f"no model weights (*.safetensors) found in {p}")


def check_model_reference(reference: str) -> None:
    """What can be checked of a language model without loading it: a local folder must exist and hold
    safetensors weights (a hub id is checked when the model loads)."""
    if _looks_local(reference):
        path = Path(reference).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"model folder not found: {reference}")
        check_safetensors_only(path)


def checked_options(key: str, options: dict) -> dict:
    """``options`` without its None values; ValueError naming what detector ``key`` does not take or lacks."""
    required, optional = OPTIONS[key]
    opts = {k: v for k, v in options.items() if v is not None}
    unknown = set(opts) - required - optional
    if unknown:
        raise ValueError(f"detector {key!r} does not take option(s) {sorted(unknown)}; "
                         f"it takes {sorted(required | optional)}")
    missing = required - set(opts)
    if missing:
        raise ValueError(f"detector {key!r} needs option(s) {sorted(missing)}")
    return opts


def canonical_name(name: str) -> str:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in OPTIONS:
        raise ValueError(f"unknown detector {name!r}; expected one of {', '.join(DETECTORS)}")
    return key


def is_language_model(name: str) -> bool:
    return canonical_name(name) in LANGUAGE_MODEL_DETECTORS


def describe(name: str, **options) -> DetectorSpec:
    """What :func:`build_detector` with the same options would report (name, direction, model ids, published
    thresholds), without loading a model: the fastText file is hashed, a local model folder is checked
    (:func:`check_model_reference`). Raises ValueError for options the detector does not take, FileNotFoundError
    for a model file or folder that is not there. (Watermark tests have no model ids before their tokenizer loads.)"""
    key = canonical_name(name)
    opts = checked_options(key, options)
    if key == "fasttext":
        from detectors.fasttext_detector import fasttext_model_id

        return DetectorSpec(key, DIRECTION[key], (fasttext_model_id(opts.get("model")),))
    if key == "watermark":
        raise ValueError("a watermark test is identified by its tokenizer, which only loading tells")
    if key == "binoculars":
        ids: tuple[str, ...] = (str(opts["observer"]), str(opts["performer"]))
    elif key == "fast-detectgpt":
        scoring, reference = str(opts["scoring"]), opts.get("reference")
        ids = (str(reference), scoring) if reference not in (None, scoring) else (scoring,)
    else:
        ids = (str(opts["model"]),)
    for reference in dict.fromkeys(ids):
        check_model_reference(reference)
    return DetectorSpec(key, DIRECTION[key], ids, tuple(sorted(published_thresholds(key, ids).items())))


def build_detector(name: str, **options) -> Detector:
    """A ready detector. Options are the CLI flags with underscores (observer=, performer=, device=, max_tokens=,
    ...); None values are ignored, unknown or missing options raise ValueError. Models load here, so call this
    once per worker (e.g. in a DoFn's setup), not per element."""
    key = canonical_name(name)
    opts = checked_options(key, options)
    if key == "binoculars":
        from detectors.binoculars import Binoculars

        return Binoculars.from_pretrained(**opts)
    if key == "fast-detectgpt":
        from detectors.fast_detectgpt import FastDetectGPT

        return FastDetectGPT.from_pretrained(**opts)
    if key in ("likelihood", "logrank", "entropy", "lrr"):
        import importlib

        cls = {"likelihood": "Likelihood", "logrank": "LogRank", "entropy": "Entropy", "lrr": "LRR"}[key]
        return getattr(importlib.import_module(f"detectors.{key}"), cls).from_pretrained(**opts)
    if key == "fasttext":
        from detectors.fasttext_detector import FastTextDetector

        return FastTextDetector(**opts)
    from detectors.watermark import WatermarkDetector

    return WatermarkDetector.from_pretrained(**opts)
